// build.zig - the one build of Trireme (Zig 0.14.1, pinned in tools/deps.sh).
//
//   zig build                          zig-out/bin/trireme (Debug: UBSan traps on)
//   zig build -Doptimize=ReleaseFast   the build benchmarks use
//   zig build unit                     cmocka unit tests (tests/unit/test_*.c)
//   zig build e2e                      end-to-end tests against the real binary
//   zig build fuzz                     bounded libFuzzer run of every proto fuzz target
//   zig build test                     all of the above
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

const system_libs = [_][]const u8{ "uring", "jansson" };

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
    const unit = b.step("unit", "Run the cmocka unit tests");
    var tests = std.ArrayList([]const u8).init(b.allocator);
    try listC(b, "tests/unit", false, &tests);
    for (tests.items) |t| {
        const base = std.fs.path.stem(t);
        const te = b.addExecutable(.{ .name = base, .target = target, .optimize = optimize });
        te.addCSourceFiles(.{ .files = lib_srcs.items, .flags = &cflags });
        te.addCSourceFile(.{ .file = b.path(t), .flags = &cflags });
        te.addIncludePath(b.path("."));
        addLibs(te);
        te.linkSystemLibrary("cmocka");
        const inst = b.addInstallArtifact(te, .{ .dest_dir = .{ .override = .{ .custom = "tests" } } });
        const r = b.addRunArtifact(te);
        r.step.dependOn(&inst.step);
        r.stdio = .inherit;
        unit.dependOn(&r.step);
    }

    // Fuzz: libFuzzer needs clang's runtime, which Zig does not ship, so
    // this step drives the system clang (Debian clang-14 + libclang-rt-14-dev).
    const fuzz_secs = b.option(u32, "fuzz-seconds", "seconds per fuzz target (default 20)") orelse 20;
    const fuzz = b.step("fuzz", "Bounded libFuzzer run of tests/fuzz/fuzz_*.c");
    const fr = b.addSystemCommand(&.{ "sh", "tests/fuzz/run.sh", b.fmt("{d}", .{fuzz_secs}) });
    fr.stdio = .inherit;
    fuzz.dependOn(&fr.step);

    const e2e = b.step("e2e", "Run the end-to-end tests against zig-out/bin/trireme");
    const er = b.addSystemCommand(&.{ "python3", "-m", "pytest", "-q", "tests/e2e" });
    er.stdio = .inherit;
    er.step.dependOn(b.getInstallStep());
    e2e.dependOn(&er.step);

    const all = b.step("test", "Run every test: unit, fuzz (bounded), e2e");
    all.dependOn(unit);
    all.dependOn(fuzz);
    all.dependOn(e2e);
}
