"""Tiny seccomp filters: what agent code may not do, in the shell and in grading.

Grading programs import agent-written code. Without a filter that code could
ptrace the grading process (same uid) and forge another program's result, so
grading denies ptrace, process_vm_readv/writev and pidfd_getfd. A warm sandbox
outlives its episode (see `pid1.py`), so both the shell and grading also deny
the two kinds of kernel object that outlive every process and that pid 1 cannot
list to remove: POSIX message queues and keys in the user namespace's keyrings,
and the old `_sysctl` call (x86_64, before Linux 5.5), which writes sysctls past
the read-only mount of /proc/sys.
Pid 1 runs as the agent's uid, so the kernel would also let the agent lower pid
1's resource limits or priority (`prlimit --pid 1`) and make grading fail:
those calls are denied when they name pid 1 (or every process of a user or
group), allowed on any other process. Every syscall of a foreign ABI (32-bit,
x32) is denied so that no denial can be sidestepped.
"""

from __future__ import annotations

import platform
import struct
import sys
from collections.abc import Mapping, Sequence

_LD_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JGE = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_RET = 0x06  # BPF_RET | BPF_K
_ALLOW = 0x7FFF0000
_DENY = 0x00050000 | 1  # SECCOMP_RET_ERRNO | EPERM

# machine -> (AUDIT_ARCH, syscall numbers by name, first number of a foreign ABI or 0)
_ARCHES: dict[str, tuple[int, dict[str, int], int]] = {
    "x86_64": (
        0xC000003E,
        {
            "ptrace": 101,
            "process_vm_readv": 310,
            "process_vm_writev": 311,
            "pidfd_getfd": 438,
            "mq_open": 240,
            "add_key": 248,
            "request_key": 249,
            "keyctl": 250,
            "setpriority": 141,
            "sched_setparam": 142,
            "sched_setscheduler": 144,
            "sched_setaffinity": 203,
            "ioprio_set": 251,
            "prlimit64": 302,
            "sched_setattr": 314,
            "_sysctl": 156,
        },
        0x40000000,
    ),
    "aarch64": (
        0xC00000B7,
        {
            "ptrace": 117,
            "process_vm_readv": 270,
            "process_vm_writev": 271,
            "pidfd_getfd": 438,
            "mq_open": 180,
            "add_key": 217,
            "request_key": 218,
            "keyctl": 219,
            "setpriority": 140,
            "sched_setparam": 118,
            "sched_setscheduler": 119,
            "sched_setaffinity": 122,
            "ioprio_set": 30,
            "prlimit64": 261,
            "sched_setattr": 274,
        },
        0,
    ),
}

LEFTOVERS = ("mq_open", "add_key", "request_key", "keyctl", "_sysctl")
"""Objects that would outlive the episode in a warm sandbox: pid 1 denies them to itself,
so to everything in the sandbox."""
TRACING = ("ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd")
"""Reaching into another process: denied to grading programs (filters stack)."""

Test = tuple[int, bool, int]
"""(argument index, deny when equal (True) or when not equal (False), value): compares the
argument's low 32 bits, all the kernel reads of the int arguments tested here."""
PRIO_PROCESS = 0
IOPRIO_WHO_PROCESS = 1
PID1_GUARDS: dict[str, tuple[Test, ...]] = {
    "prlimit64": ((0, True, 1),),
    "sched_setparam": ((0, True, 1),),
    "sched_setscheduler": ((0, True, 1),),
    "sched_setaffinity": ((0, True, 1),),
    "sched_setattr": ((0, True, 1),),
    "setpriority": ((0, False, PRIO_PROCESS), (1, True, 1)),
    "ioprio_set": ((0, False, IOPRIO_WHO_PROCESS), (1, True, 1)),
}
"""Changing pid 1's limits or scheduling: denied when the call names pid 1, or a whole
process group or user (which includes pid 1); allowed on the caller (pid 0) and others."""

_DENY_LABEL = "deny"


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def filter_program(
    denied: Sequence[str], guarded: Mapping[str, Sequence[Test]] | None = None
) -> bytes | None:
    """The compiled filter denying `denied` outright and each `guarded` syscall when one of
    its tests matches, on this machine; None where the arch is unknown."""
    arch = _ARCHES.get(platform.machine())
    if arch is None or sys.maxsize <= 2**32:  # (a 32-bit interpreter makes 32-bit calls)
        return None
    audit, numbers, foreign = arch
    # (code, jump if true, jump if false, k); a jump is a count of instructions to skip
    # or the deny label, resolved once the program's length is known.
    prog: list[tuple[int, int | str, int | str, int]] = [
        (_LD_ABS, 0, 0, 4),
        (_JEQ, 0, _DENY_LABEL, audit),
        (_LD_ABS, 0, 0, 0),
    ]
    if foreign:
        prog.append((_JGE, _DENY_LABEL, 0, foreign))
    # (a call this architecture lacks needs no denial)
    prog += [(_JEQ, _DENY_LABEL, 0, numbers[name]) for name in denied if name in numbers]
    for name, tests in (guarded or {}).items():
        # not this syscall: skip its block (the accumulator still holds the number)
        prog.append((_JEQ, 0, 2 * len(tests) + 1, numbers[name]))
        for index, when_equal, value in tests:
            prog.append((_LD_ABS, 0, 0, 16 + 8 * index))  # seccomp_data.args[index], low half
            jump = (_DENY_LABEL, 0) if when_equal else (0, _DENY_LABEL)
            prog.append((_JEQ, *jump, value))
        prog.append((_RET, 0, 0, _ALLOW))
    prog.append((_RET, 0, 0, _ALLOW))
    deny_at = len(prog)
    prog.append((_RET, 0, 0, _DENY))

    def resolve(at: int, jump: int | str) -> int:
        offset = deny_at - at - 1 if jump == _DENY_LABEL else int(jump)
        assert 0 <= offset <= 255, "classic BPF jumps reach 255 instructions"
        return offset

    return b"".join(
        _insn(code, resolve(i, jt), resolve(i, jf), k) for i, (code, jt, jf, k) in enumerate(prog)
    )
