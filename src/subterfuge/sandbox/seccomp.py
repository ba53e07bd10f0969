"""A tiny seccomp filter for grading programs: no process may reach into another.

Grading programs import agent-written code. Without this filter that code could
ptrace the runner (same uid) and forge another program's result. The filter
denies ptrace, process_vm_readv/writev and pidfd_getfd, and every syscall of a
foreign ABI (32-bit, x32) so the denial cannot be sidestepped. The zygote's
grading init installs it for itself and every program it forks; the init is
also not dumpable, which closes /proc/1/mem to the programs.
"""

from __future__ import annotations

import platform
import struct

_LD_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JGE = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_RET = 0x06  # BPF_RET | BPF_K
_ALLOW = 0x7FFF0000
_DENY = 0x00050000 | 1  # SECCOMP_RET_ERRNO | EPERM

# machine -> (AUDIT_ARCH, syscall numbers to deny, first number of a foreign ABI or 0)
_ARCHES: dict[str, tuple[int, tuple[int, ...], int]] = {
    "x86_64": (0xC000003E, (101, 310, 311, 438), 0x40000000),
    "aarch64": (0xC00000B7, (117, 270, 271, 438), 0),
}


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def filter_program() -> bytes | None:
    """The compiled filter for this machine, or None where the arch is unknown."""
    arch = _ARCHES.get(platform.machine())
    if arch is None:
        return None
    audit, denied, foreign = arch
    checks = [(_JGE, foreign)] if foreign else []
    checks += [(_JEQ, nr) for nr in denied]
    n = len(checks)
    prog = [_insn(_LD_ABS, 0, 0, 4), _insn(_JEQ, 0, n + 2, audit), _insn(_LD_ABS, 0, 0, 0)]
    for i, (op, k) in enumerate(checks):
        prog.append(_insn(op, n - i, 0, k))  # true: jump to the deny return
    prog += [_insn(_RET, 0, 0, _ALLOW), _insn(_RET, 0, 0, _DENY)]
    return b"".join(prog)
