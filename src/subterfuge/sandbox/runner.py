"""The grading runner: runs each grading program in a forked child.

Two users: pid 1 of every bwrap sandbox (`pid1.py`) calls `run_all` itself;
the plain backend runs this file as `python3 -S -I -c <source>`,
one interpreter per episode. Programs never share modules or state and one that
hangs is killed alone. It imports only modules built into the interpreter (no
`json`, `signal`, `traceback`: those cost more start-up time than the whole rest
of the runner), and must stay valid for any Python >= 3.8 because the sandbox's
interpreter is not necessarily the harness's.

Input (stdin): marshal of (programs, timeout, output_bytes, rlimits), where
programs is [(name, source)] and rlimits is [(RLIMIT_NAME, value)]. Output
(stdout), written once at the end: b"SFGR1\\n", then per program a
header b"<exit> <timed_out> <len stdout> <len stderr>\\n" and the raw bytes, then b"END\\n".
"""

from __future__ import annotations

import marshal
import os
import resource
import select
import sys
import time

_KILL = 9  # SIGKILL; the `signal` module is avoided because it imports `enum`.


def _execute(name: str, source: str) -> int:
    """Run one program as `__main__` and return its exit code (in the child)."""
    import builtins

    if not hasattr(builtins, "exit"):  # -S skips `site`, which defines exit/quit
        setattr(builtins, "exit", sys.exit)  # noqa: B010
        setattr(builtins, "quit", sys.exit)  # noqa: B010
    sys.argv = [name]
    code = 0
    try:
        exec(compile(source, name, "exec"), {"__name__": "__main__", "__builtins__": builtins})
    except SystemExit as stop:
        if stop.code is None:
            code = 0
        elif isinstance(stop.code, int):
            code = stop.code & 0xFF
        else:
            sys.stderr.write(str(stop.code) + "\n")
            code = 1
    except BaseException:
        sys.excepthook(*sys.exc_info())  # prints the traceback in C, no `traceback` import
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            code = code or 1
    return code


def _child(
    name: str, source: str, w_out: int, w_err: int, close: list[int], prepare: object
) -> None:
    code = 1
    try:
        os.setsid()
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(w_out, 1)
        os.dup2(w_err, 2)
        for fd in [null, w_out, w_err, *close]:
            os.close(fd)
        # Nothing but stdio: an inherited descriptor (the result pipe above all)
        # would let agent code write into what the harness parses.
        os.closerange(3, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        if callable(prepare):
            prepare()
        code = _execute(name, source)
    finally:
        os._exit(code)


def _read(fd: int, chunks: list[bytes], size: list[int], cap: int) -> bool | None:
    """Read what is there, keeping at most `cap` bytes: True if data came, False at EOF,
    None if nothing is available now (non-blocking descriptors)."""
    try:
        data = os.read(fd, 65536)
    except BlockingIOError:
        return None
    if not data:
        return False
    if size[0] < cap:
        chunks.append(data[: cap - size[0]])
    size[0] += len(data)
    return True


def _drain(fd: int, chunks: list[bytes], size: list[int], cap: int) -> None:
    """Read what is buffered now, without waiting for writers that are still alive."""
    os.set_blocking(fd, False)
    while size[0] < cap + 65536 and _read(fd, chunks, size, cap):
        pass


def _status_code(status: int) -> int:
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return 1


def _run_one(
    name: str, source: str, timeout: float, cap: int, prepare: object = None
) -> tuple[int, bool, bytes, bytes]:
    r_out, w_out = os.pipe()
    r_err, w_err = os.pipe()
    pid = os.fork()
    if pid == 0:
        _child(name, source, w_out, w_err, [r_out, r_err], prepare)
    os.close(w_out)
    os.close(w_err)
    deadline = time.monotonic() + timeout
    pidfd = os.pidfd_open(pid) if hasattr(os, "pidfd_open") else -1
    bufs: dict[int, tuple[list[bytes], list[int]]] = {r_out: ([], [0]), r_err: ([], [0])}
    poller = select.poll()
    for fd in (r_out, r_err, pidfd):
        if fd >= 0:
            poller.register(fd, select.POLLIN)
    open_fds = {r_out, r_err}
    exited = timed_out = False
    while not exited and (pidfd >= 0 or open_fds):
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        for fd, _ in poller.poll(max(1, int(left * 1000))):
            if fd == pidfd:
                exited = True
            elif fd in open_fds and _read(fd, *bufs[fd], cap) is False:
                poller.unregister(fd)
                open_fds.discard(fd)
    if exited:  # take what the program wrote before exiting; grandchildren may hold pipes
        for fd in open_fds:
            _drain(fd, *bufs[fd], cap)
    try:  # noqa: SIM105 (contextlib costs start-up time)
        os.killpg(pid, _KILL)
    except OSError:
        pass
    if pidfd >= 0 or timed_out:
        _, status = os.waitpid(pid, 0)
    else:  # old Python without pidfd: the pipes closed, wait for the exit up to the deadline
        while True:
            got, status = os.waitpid(pid, os.WNOHANG)
            if got:
                break
            if time.monotonic() > deadline:
                timed_out = True
                os.kill(pid, _KILL)
                _, status = os.waitpid(pid, 0)
                break
            time.sleep(0.01)
    for fd in (r_out, r_err, pidfd):
        if fd >= 0:
            os.close(fd)
    code = -_KILL if timed_out else _status_code(status)
    return code, timed_out, b"".join(bufs[r_out][0]), b"".join(bufs[r_err][0])


def apply_rlimits(rlimits: list[tuple[str, int]]) -> None:
    """Hard and soft limits for this process and everything it forks."""
    for rname, value in rlimits:
        limit = getattr(resource, rname)
        resource.setrlimit(limit, (value, value))


def run_all(
    programs: list[tuple[str, str]],
    timeout: float,
    cap: int,
    after_each: object = None,
    prepare: object = None,
) -> bytes:
    """Run each program in turn; the framed result document (see the module docstring).

    `after_each` (if given) is called after every program, before the next starts;
    `prepare` (if given) in each program's process, just before the program runs.
    """
    parts = [b"SFGR1\n"]
    for name, source in programs:
        code, timed_out, out, err = _run_one(name, source, timeout, cap, prepare)
        if callable(after_each):
            after_each()
        parts.append(b"%d %d %d %d\n" % (code, timed_out, len(out), len(err)))
        parts += [out, err]
    parts.append(b"END\n")
    return b"".join(parts)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def main() -> None:
    programs, timeout, cap, rlimits = marshal.loads(sys.stdin.buffer.read())
    apply_rlimits(rlimits)
    write_all(1, run_all(programs, timeout, cap))


if __name__ == "__main__":
    main()
