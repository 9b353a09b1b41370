#!/usr/bin/env python3
"""
seccomp_run.py - run a command under a Docker-format seccomp profile, as
runc would: `seccomp_run.py PROFILE [--drop NAME,...] -- COMMAND ARGS...`.

Reads defaultAction/defaultErrnoRet and the syscalls rules (names, action,
errnoRet, args with SCMP_CMP_* ops) for this machine's architecture,
loads the filter through libseccomp (pyseccomp, a ctypes binding) with
no_new_privs, then execs the command, which keeps the filter, as do its
children. --drop removes names from every ALLOW rule (a negative control).
Names libseccomp does not know on this architecture are skipped, as runc
skips them.
"""
import json
import os
import sys

import pyseccomp as sc

OPS = {"SCMP_CMP_EQ": sc.EQ, "SCMP_CMP_NE": sc.NE, "SCMP_CMP_LT": sc.LT, "SCMP_CMP_LE": sc.LE,
       "SCMP_CMP_GT": sc.GT, "SCMP_CMP_GE": sc.GE, "SCMP_CMP_MASKED_EQ": sc.MASKED_EQ}


def action(name: str, errno_ret: int):
    if name == "SCMP_ACT_ALLOW":
        return sc.ALLOW
    if name == "SCMP_ACT_ERRNO":
        return sc.ERRNO(errno_ret)
    if name in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"):
        return sc.KILL
    if name == "SCMP_ACT_KILL_PROCESS":
        return sc.KILL_PROCESS
    raise SystemExit(f"seccomp_run: unsupported action {name}")


def main():
    argv = sys.argv[1:]
    if "--" not in argv or not argv:
        raise SystemExit(__doc__)
    sep = argv.index("--")
    opts, cmd = argv[:sep], argv[sep + 1:]
    profile = json.load(open(opts[0]))
    drop = set()
    if len(opts) == 3 and opts[1] == "--drop":
        drop = set(opts[2].split(","))
    f = sc.SyscallFilter(action(profile["defaultAction"], profile.get("defaultErrnoRet", 1)))
    for rule in profile["syscalls"]:
        act = action(rule["action"], rule.get("errnoRet", 1))
        args = [sc.Arg(a["index"], OPS[a["op"]], a["value"], a.get("valueTwo", 0))
                for a in rule.get("args", [])]
        for name in rule["names"]:
            if rule["action"] == "SCMP_ACT_ALLOW" and name in drop:
                continue
            try:
                f.add_rule(act, name, *args)
            except (RuntimeError, ValueError, OSError):
                pass  # not a system call on this architecture
    f.load()
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    main()
