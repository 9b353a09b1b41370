#!/usr/bin/env python3
"""
tools/seccomp-profile.py - write docs/deploy/seccomp.json, the container
seccomp profile that lets trireme use io_uring without running unconfined.

Docker's default profile (25.0 and later) refuses io_uring_setup,
io_uring_enter and io_uring_register, so trireme cannot start under it; the
usual advice, `seccomp=unconfined`, drops every other restriction as well.
This profile is an allowlist built the same way as Docker's: every system
call the running kernel's headers name (asm/unistd_64.h), except the ones a
container must not make (DENY below, each with its reason), plus io_uring.
Arguments are checked where Docker checks them: clone may not create
namespaces; clone3 answers ENOSYS so libc falls back to clone, whose flags
can be checked; personality may only query or set the plain Linux persona.

Child processes inherit the filter, so `exec` kinds' programs (Python, Node,
shell tools) run under it too; tests/e2e/test_deploy.py applies it with
libseccomp and runs trireme, a Python exec kind and a pool worker under it.

    python3 tools/seccomp-profile.py > docs/deploy/seccomp.json
"""
import json
import re
import sys

HEADER = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h"

DENY = {
    # kernel modules, kexec, reboot, swap, accounting: the host's business
    "init_module": "loads kernel modules", "finit_module": "loads kernel modules",
    "delete_module": "unloads kernel modules", "create_module": "kernel modules (obsolete)",
    "query_module": "kernel modules (obsolete)", "get_kernel_syms": "kernel modules (obsolete)",
    "kexec_load": "replaces the running kernel", "kexec_file_load": "replaces the running kernel",
    "reboot": "reboots the host", "swapon": "host swap", "swapoff": "host swap",
    "acct": "process accounting for the host",
    # clocks shared with the host
    "settimeofday": "sets the host clock", "clock_settime": "sets the host clock",
    "clock_adjtime": "adjusts the host clock", "adjtimex": "adjusts the host clock",
    # namespaces and mounts: a way out of the container
    "unshare": "new namespaces", "setns": "joins other namespaces", "mount": "mounts",
    "umount2": "unmounts", "pivot_root": "changes the root mount",
    "open_tree": "mount API", "move_mount": "mount API", "fsopen": "mount API",
    "fsconfig": "mount API", "fsmount": "mount API", "fspick": "mount API",
    "mount_setattr": "mount API",
    # inspecting or writing other processes and the kernel
    "ptrace": "reads and writes other processes", "process_vm_readv": "reads other processes",
    "process_vm_writev": "writes other processes", "kcmp": "compares kernel objects of others",
    "bpf": "loads programs into the kernel", "perf_event_open": "kernel and hardware tracing",
    "lookup_dcookie": "kernel profiling", "userfaultfd": "a kernel-exploit primitive",
    "iopl": "raw I/O ports", "ioperm": "raw I/O ports", "vm86": "i386 only", "vm86old": "i386 only",
    "modify_ldt": "a kernel-exploit primitive", "uselib": "obsolete loader call",
    "_sysctl": "obsolete", "sysfs": "obsolete", "ustat": "obsolete", "nfsservctl": "obsolete",
    "quotactl": "host quotas", "quotactl_fd": "host quotas",
    "name_to_handle_at": "file handles bypass path checks",
    "open_by_handle_at": "file handles bypass path checks (the shocker escape)",
    # the kernel keyring is not namespaced
    "add_key": "kernel keyring", "request_key": "kernel keyring", "keyctl": "kernel keyring",
    # NUMA policy and page moves across the host
    "mbind": "NUMA policy", "set_mempolicy": "NUMA policy", "get_mempolicy": "NUMA policy",
    "move_pages": "moves other processes' pages", "migrate_pages": "moves other processes' pages",
    "set_mempolicy_home_node": "NUMA policy",
    "pidfd_getfd": "takes descriptors from other processes",
    "fanotify_init": "watches the whole host's files", "vhangup": "terminal hangup for the host",
    "syslog": "the kernel log", "lsm_set_self_attr": "security modules",
    # special cases below, never plain allows
    "clone": "checked below", "clone3": "answered ENOSYS below", "personality": "checked below",
}

# clone flags that create namespaces (CLONE_NEWNS | NEWCGROUP | NEWUTS |
# NEWIPC | NEWUSER | NEWPID | NEWNET | NEWTIME)
CLONE_NS_MASK = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | \
    0x20000000 | 0x40000000 | 0x00000080


def names():
    out = []
    for line in open(HEADER):
        m = re.match(r"#define __NR_(\w+) (\d+)", line)
        if m:
            out.append(m.group(1))
    return out


def main():
    allowed = sorted(n for n in names() if n not in DENY)
    for must in ("io_uring_setup", "io_uring_enter", "io_uring_register"):
        assert must in allowed, must
    profile = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "archMap": [
            {"architecture": "SCMP_ARCH_X86_64",
             "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
        ],
        "syscalls": [
            {"names": allowed, "action": "SCMP_ACT_ALLOW",
             "comment": "everything the kernel offers but what tools/seccomp-profile.py denies; "
                        "io_uring included"},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": CLONE_NS_MASK, "valueTwo": 0,
                       "op": "SCMP_CMP_MASKED_EQ"}],
             "comment": "threads and processes, no new namespaces"},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
             "comment": "ENOSYS: its flags sit in memory a filter cannot read, so libc falls "
                        "back to clone"},
        ] + [
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": v, "op": "SCMP_CMP_EQ"}],
             "comment": "query, or the plain Linux persona"}
            for v in (0x0, 0x8, 0x20000, 0x20008, 0xffffffff)
        ],
    }
    json.dump(profile, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
