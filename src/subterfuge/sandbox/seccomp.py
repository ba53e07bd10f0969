"""Tiny seccomp filters: what agent code may not do, in the shell and in grading.

Grading programs import agent-written code. Without a filter that code could
ptrace the grading process (same uid) and forge another program's result, so
grading denies ptrace, process_vm_readv/writev and pidfd_getfd. A warm sandbox
outlives its episode (see `pid1.py`), so both the shell and grading also deny
the two kinds of kernel object that outlive every process and that pid 1 cannot
list to remove: POSIX message queues and keys in the user namespace's keyrings.
Every syscall of a foreign ABI (32-bit, x32) is denied so that no denial can be
sidestepped.
"""

from __future__ import annotations

import platform
import struct
from collections.abc import Sequence

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
        },
        0,
    ),
}

LEFTOVERS = ("mq_open", "add_key", "request_key", "keyctl")
"""Objects that would outlive the episode in a warm sandbox: pid 1 denies them to itself,
so to everything in the sandbox."""
TRACING = ("ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd")
"""Reaching into another process: denied to grading programs (filters stack)."""


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def filter_program(denied: Sequence[str]) -> bytes | None:
    """The compiled filter denying `denied` on this machine, or None where the arch is unknown."""
    arch = _ARCHES.get(platform.machine())
    if arch is None:
        return None
    audit, numbers, foreign = arch
    checks = [(_JGE, foreign)] if foreign else []
    checks += [(_JEQ, numbers[name]) for name in denied]
    n = len(checks)
    prog = [_insn(_LD_ABS, 0, 0, 4), _insn(_JEQ, 0, n + 2, audit), _insn(_LD_ABS, 0, 0, 0)]
    for i, (op, k) in enumerate(checks):
        prog.append(_insn(op, n - i, 0, k))  # true: jump to the deny return
    prog += [_insn(_RET, 0, 0, _ALLOW), _insn(_RET, 0, 0, _DENY)]
    return b"".join(prog)
