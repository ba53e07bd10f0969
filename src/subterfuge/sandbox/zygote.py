"""The grading zygote: one long-lived process that grades every episode.

Starting an interpreter (and a second bubblewrap) per episode to run four small
grading programs cost three times more CPU than the rest of the episode. The
zygote starts once, with the runner already imported; per episode it forks a
job that joins the episode's own namespaces (user, mount, network — pinned by
file descriptors the harness opened before killing the agent's processes) and
starts pid 1 of a fresh pid namespace with every capability dropped,
`no_new_privs`, the seccomp filter and the resource limits; that init forks
each program in turn and kills everything a program left behind before the
next one starts. Agent code therefore runs exactly where it would in the
sandbox: same files, no network, no way to see or signal any process outside
its own program, and no descriptor but its own stdout and stderr.

Protocol (a SOCK_SEQPACKET socket): each request is a marshalled
`(programs, timeout, output_bytes, rlimits, seccomp)` with four descriptors
attached: the pipe to write the result document to (the runner's format), and
the episode's user, mount and network namespaces.
"""

from __future__ import annotations

import ctypes
import fcntl
import marshal
import os
import signal
import socket
import sys
from typing import Any

runner: Any = None
"""The runner module (`runner.py`); the bootstrap loads it from its file and sets it."""
PATH_MAP: tuple[str, str] | None = None
"""(host prefix, sandbox prefix) of the stdlib when the interpreter is mounted elsewhere."""

CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
_CAP_VERSION_3 = 0x20080522
NS_GET_USERNS = 0xB701  # _IO(0xb7, 0x1): the user namespace owning a namespace

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _drop_privileges(seccomp: bytes | None) -> None:
    """No capabilities now or after exec, no new privileges, the seccomp filter."""
    for cap in range(64):
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break  # past the last capability this kernel knows
    data = (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(_CapHeader(_CAP_VERSION_3, 0)), data), "capset")
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    if seccomp:
        buf = ctypes.create_string_buffer(seccomp, len(seccomp))
        prog = _SockFprog(len(seccomp) // 8, ctypes.cast(buf, ctypes.c_void_p))
        _check(
            _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0), "seccomp"
        )


def _reap_everyone() -> None:
    """As pid 1: kill every other process of the namespace and wait until all are gone."""
    try:  # noqa: SIM105
        os.kill(-1, signal.SIGKILL)  # from pid 1: everyone in the namespace but itself
    except OSError:
        pass
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return
        except InterruptedError:
            continue


def _grading_init(
    out_fd: int,
    programs: list[tuple[str, str]],
    timeout: float,
    cap: int,
    rlimits: list[tuple[str, int]],
    seccomp: bytes | None,
) -> None:
    """Pid 1 of the grading pid namespace: run each program, clear the namespace between.

    One namespace per episode and one fork per program: after each program,
    every process it left behind (daemons included) is killed and reaped, so
    programs cannot reach one another. Not dumpable, so no program can read or
    write this process's memory through /proc/1/mem.
    """
    _check(_libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "dumpable")
    runner.apply_rlimits(rlimits)
    _drop_privileges(seccomp)
    runner.write_all(out_fd, runner.run_all(programs, timeout, cap, after_each=_reap_everyone))


def _job(payload: bytes, fds: list[int]) -> None:
    """Join the episode's namespaces, then grade as pid 1 of a new pid namespace."""
    out_fd, user_fd, mnt_fd, net_fd = fds
    programs, timeout, cap, rlimits, seccomp = marshal.loads(payload)
    try:
        if os.geteuid() == 0:
            os.setgroups([])
        # bwrap nests user namespaces (--disable-userns); the mount namespace belongs
        # to the outer one, which is where the capabilities to enter it are.
        owner = fcntl.ioctl(mnt_fd, NS_GET_USERNS)
        _check(_libc.setns(owner, CLONE_NEWUSER), "setns(user)")
        os.close(owner)
        _check(_libc.setns(mnt_fd, CLONE_NEWNS), "setns(mount)")
        _check(_libc.setns(net_fd, CLONE_NEWNET), "setns(net)")
        for fd in (user_fd, mnt_fd, net_fd):
            os.close(fd)
        os.chdir("/")
        if PATH_MAP is not None:  # the stdlib lives at another path inside the sandbox
            host, inside = PATH_MAP
            sys.path[:] = [inside + p[len(host) :] if p.startswith(host) else p for p in sys.path]
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
        _check(_libc.unshare(CLONE_NEWPID), "unshare(pid)")
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                _grading_init(out_fd, programs, timeout, cap, rlimits, seccomp)
                code = 0
            except BaseException as exc:  # report, never hang the harness
                runner.write_all(out_fd, f"grading init failed: {exc!r}".encode())
            finally:
                os._exit(code)
        os.close(out_fd)
        out_fd = -1
        os.waitpid(pid, 0)
    except BaseException as exc:
        if out_fd >= 0:
            runner.write_all(out_fd, f"zygote job failed: {exc!r}".encode())


def serve(sock: socket.socket) -> None:
    """Fork one job per request until the harness closes the socket."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # jobs are reaped by the kernel
    while True:
        payload, fds, _, _ = socket.recv_fds(sock, 1 << 22, 8)
        if not payload:
            return
        if os.fork() == 0:
            code = 0
            try:
                sock.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                _job(payload, fds)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        for fd in fds:
            os.close(fd)


PRELOADED = ("json", "runpy")
"""Stdlib modules grading programs commonly import: loaded once here, every forked
program gets them for free (each program's copy is its own; agent code is never
loaded here)."""


def main(sock_fd: int) -> None:
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    for name in PRELOADED:
        __import__(name)
    serve(socket.socket(fileno=sock_fd))


BOOTSTRAP = """
import importlib.util, sys
def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
runner_path, zygote_path, fd, path_map = sys.argv[1:5]
zygote = load("subterfuge_zygote", zygote_path)
zygote.runner = load("subterfuge_runner", runner_path)
zygote.PATH_MAP = tuple(path_map.split(":", 1)) if path_map else None
zygote.main(int(fd))
"""
"""Run with the interpreter the sandbox sees (`-S -I -B -c BOOTSTRAP ...`): programs
import the stdlib from inside the sandbox, so it must be that interpreter's."""
