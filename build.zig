// build.zig - the one build of Trireme (Zig 0.14.1, pinned in tools/deps.sh).
//
//   zig build                          zig-out/bin/trireme (Debug: UBSan traps on)
//   zig build -Doptimize=ReleaseFast   the build benchmarks use
//   zig build unit                     cmocka unit tests (tests/unit/test_*.c)
//   zig build fuzz                     bounded libFuzzer run of tests/fuzz/fuzz_*.c
//   zig build e2e                      end-to-end tests against the real binary
//   zig build asan                     ASan+UBSan binary and unit tests (clang)
//   zig build unit-asan | e2e-asan     the suites against those
//   zig build test                     all of the above, one after the other
//
// C sources are found by listing kernel/, proto/ and modules/, so adding a
// file needs no edit here. kernel/main.c holds main() and is left out of
// unit-test links.
const std = @import("std");

const cflags = [_][]const u8{
    "-std=gnu11",
    "-D_GNU_SOURCE",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wshadow",
    "-Wno-unused-parameter",
    "-fno-strict-aliasing",
};

const system_libs = [_][]const u8{ "uring", "jansson", "libpq" };

fn listC(b: *std.Build, dir: []const u8, skip_main: bool, out: *std.ArrayList([]const u8)) !void {
    var d = std.fs.cwd().openDir(b.pathFromRoot(dir), .{ .iterate = true }) catch return;
    defer d.close();
    var walker = try d.walk(b.allocator);
    defer walker.deinit();
    var found = std.ArrayList([]const u8).init(b.allocator);
    while (try walker.next()) |e| {
        if (e.kind != .file or !std.mem.endsWith(u8, e.path, ".c")) continue;
        if (skip_main and std.mem.eql(u8, e.path, "main.c")) continue;
        try found.append(b.fmt("{s}/{s}", .{ dir, e.path }));
    }
    std.mem.sort([]const u8, found.items, {}, struct {
        fn lt(_: void, a: []const u8, c: []const u8) bool {
            return std.mem.lessThan(u8, a, c);
        }
    }.lt);
    try out.appendSlice(found.items);
}

fn addLibs(c: *std.Build.Step.Compile) void {
    c.linkLibC();
    for (system_libs) |l| c.linkSystemLibrary(l);
}

pub fn build(b: *std.Build) !void {
    const target = b.standardTargetOptions(.{});
    const optimize = b.standardOptimizeOption(.{});

    var prod = std.ArrayList([]const u8).init(b.allocator);
    try listC(b, "proto", false, &prod);
    try listC(b, "kernel", false, &prod);
    try listC(b, "modules", false, &prod);

    var lib_srcs = std.ArrayList([]const u8).init(b.allocator);
    try listC(b, "proto", false, &lib_srcs);
    try listC(b, "kernel", true, &lib_srcs);
    try listC(b, "modules", false, &lib_srcs);

    const exe = b.addExecutable(.{ .name = "trireme", .target = target, .optimize = optimize });
    exe.addCSourceFiles(.{ .files = prod.items, .flags = &cflags });
    exe.addIncludePath(b.path("."));
    addLibs(exe);
    b.installArtifact(exe);

    const run = b.addRunArtifact(exe);
    run.step.dependOn(b.getInstallStep());
    if (b.args) |args| run.addArgs(args);
    b.step("run", "Run trireme").dependOn(&run.step);

    // Unit tests: one executable per tests/unit/test_*.c, linked with every
    // non-main source so kernel/ code is testable too.
    var tests = std.ArrayList([]const u8).init(b.allocator);
    try listC(b, "tests/unit", false, &tests);
    var unit_exes = std.ArrayList(*std.Build.Step.Compile).init(b.allocator);
    for (tests.items) |t| {
        const te = b.addExecutable(.{ .name = std.fs.path.stem(t), .target = target, .optimize = optimize });
        te.addCSourceFiles(.{ .files = lib_srcs.items, .flags = &cflags });
        te.addCSourceFile(.{ .file = b.path(t), .flags = &cflags });
        te.addIncludePath(b.path("."));
        addLibs(te);
        te.linkSystemLibrary("cmocka");
        try unit_exes.append(te);
    }

    // Each suite is a chain of commands; `test` runs them all one after the
    // other (they share two cores, and e2e tests must not fight a fuzzer).
    const Suite = struct {
        b: *std.Build,
        fn cmd(self: @This(), argv: []const []const u8, after: ?*std.Build.Step) *std.Build.Step.Run {
            const r = self.b.addSystemCommand(argv);
            r.stdio = .inherit;
            r.has_side_effects = true;
            if (after) |a| r.step.dependOn(a);
            return r;
        }
    };
    const suite = Suite{ .b = b };
    const fuzz_secs = b.option(u32, "fuzz-seconds", "seconds per fuzz target (default 20)") orelse 20;
    const fuzz_arg = b.fmt("{d}", .{fuzz_secs});

    const Chain = struct {
        fn unitRuns(bb: *std.Build, exes: []*std.Build.Step.Compile, after: ?*std.Build.Step) *std.Build.Step {
            const done = bb.allocator.create(std.Build.Step) catch @panic("OOM");
            done.* = std.Build.Step.init(.{ .id = .custom, .name = "unit tests", .owner = bb });
            for (exes) |te| {
                const r = bb.addRunArtifact(te);
                r.stdio = .inherit;
                r.has_side_effects = true;
                if (after) |a| r.step.dependOn(a);
                done.dependOn(&r.step);
            }
            return done;
        }
    };

    // Standalone steps.
    b.step("unit", "Run the cmocka unit tests (Zig build, UBSan on in Debug)")
        .dependOn(Chain.unitRuns(b, unit_exes.items, null));
    b.step("fuzz", "Bounded libFuzzer run of tests/fuzz/fuzz_*.c (clang, ASan)")
        .dependOn(&suite.cmd(&.{ "sh", "tests/fuzz/run.sh", fuzz_arg }, null).step);
    b.step("e2e", "Run the end-to-end tests against zig-out/bin/trireme")
        .dependOn(&suite.cmd(&.{ "python3", "-m", "pytest", "-q", "tests/e2e" }, b.getInstallStep()).step);
    // Memory-error checking: ASan + UBSan builds by clang (the script says
    // why not valgrind), then the unit and e2e suites against them.
    const asan_build = suite.cmd(&.{ "sh", "tools/build-asan.sh" }, null);
    b.step("asan", "Build zig-out/asan/trireme and unit tests with ASan+UBSan (clang)").dependOn(&asan_build.step);
    const unit_asan_argv = &[_][]const u8{ "sh", "-c", "set -e; for t in zig-out/asan/test_*; do if [ -x \"$t\" ]; then \"$t\"; fi; done" };
    b.step("unit-asan", "Run the unit tests built with ASan+UBSan")
        .dependOn(&suite.cmd(unit_asan_argv, &asan_build.step).step);
    const e2e_asan = suite.cmd(&.{ "python3", "-m", "pytest", "-q", "tests/e2e" }, &asan_build.step);
    e2e_asan.setEnvironmentVariable("TRIREME_BIN", "zig-out/asan/trireme");
    b.step("e2e-asan", "Run the e2e tests against the ASan+UBSan binary").dependOn(&e2e_asan.step);

    // Everything, in sequence.
    const t_unit = Chain.unitRuns(b, unit_exes.items, b.getInstallStep());
    const t_fuzz = suite.cmd(&.{ "sh", "tests/fuzz/run.sh", fuzz_arg }, t_unit);
    const t_e2e = suite.cmd(&.{ "python3", "-m", "pytest", "-q", "tests/e2e" }, &t_fuzz.step);
    const t_asan = suite.cmd(&.{ "sh", "tools/build-asan.sh" }, &t_e2e.step);
    const t_unit_asan = suite.cmd(unit_asan_argv, &t_asan.step);
    const t_e2e_asan = suite.cmd(&.{ "python3", "-m", "pytest", "-q", "tests/e2e" }, &t_unit_asan.step);
    t_e2e_asan.setEnvironmentVariable("TRIREME_BIN", "zig-out/asan/trireme");
    b.step("test", "Run every test in sequence: unit, fuzz (bounded), e2e, then unit+e2e under ASan")
        .dependOn(&t_e2e_asan.step);
}
