"""The grading runner: runs the grading programs in forked children.

Two users: pid 1 of every bwrap sandbox (`pid1.py`) calls `run_all` itself;
the plain backend runs this file as `python3 -S -I -c <source>`,
one interpreter per episode. Each program's stdout and stderr go to memory files, of
which the first `output_bytes` are kept. RLIMIT_FSIZE applies to them as to any
file: past it a write fails with EFBIG (Python ignores SIGXFSZ, and so does what it
execs), a command started by `subprocess` dies of SIGXFSZ. It imports only
modules built into the interpreter (no `json`, `signal`, `traceback`: those cost
more start-up time than the whole rest of the runner), and must stay valid for
any Python >= 3.8 because the sandbox's interpreter is not necessarily the
harness's.

A program runs in a process of its own unless it is *joined*: then it runs in the
process of the program before it, once that one has returned, which spares a fork
(a grading process costs about as much CPU as the harness's own work for an
episode). It finds the module table, import path and standard streams put back as
they were, and inherits whatever else the earlier programs did to the process
(their threads and children too): join only a program that runs the same untrusted
code itself. A process's first program is killed at its own time limit, as alone;
a later one has its own, and the parent kills it once the time the programs before
it left is spent too. Should one end the process, run past its time or leave
output it could not flush, the programs after it run in a fresh process. Earlier
results are out of a later program's reach once recorded (their files are closed),
short of a descriptor or thread the earlier program kept.

Input (stdin): marshal of (programs, timeout, output_bytes, rlimits), where
programs is [(name, source, joined)] and rlimits is [(RLIMIT_NAME, value)]. Output
(stdout), written once at the end: b"SFGR1\\n", then per program a
header b"<exit> <timed_out> <len stdout> <len stderr>\\n" and the raw bytes, then b"END\\n".
"""

from __future__ import annotations

import gc
import marshal
import os
import resource
import select
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # (no `typing` import at run time: start-up time)
    from typing import Any

_KILL = 9  # SIGKILL; the `signal` module is avoided because it imports `enum`.
_RECORD = 8  # bytes of a program's record: b"S", b"T" or its exit code, space-padded


def _execute(name: str, source: str) -> int:
    """Run one program as `__main__` and return its exit code (in the child)."""
    import builtins

    if not hasattr(builtins, "exit"):  # -S skips `site`, which defines exit/quit
        setattr(builtins, "exit", sys.exit)  # noqa: B010
        setattr(builtins, "quit", sys.exit)  # noqa: B010
    sys.argv = [name]
    code = 0
    try:
        # dont_inherit: not this file's `from __future__ import annotations`
        program = compile(source, name, "exec", dont_inherit=True)
        exec(program, {"__name__": "__main__", "__builtins__": builtins})
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
    programs: list[tuple[str, str, bool]],
    files: list[tuple[int, int, int]],
    timeout: float,
    prepare: object,
) -> None:
    """Run `programs` in turn in this process; `files` holds each one's stdout, stderr
    and record memory files. The record (when the process runs several) says how far a
    program got: b"S" once started, its exit code once it returned within its time with
    its output flushed, b"T" past its time. Anything else ends the process, and the
    parent runs the programs after it in a fresh one."""
    code = 1
    try:
        os.setsid()
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        # Nothing but stdio and the files still to fill: an inherited descriptor (the
        # result channel above all) would let agent code write into what the harness
        # parses.
        _close_all_but(sorted(fd for trio in files for fd in trio if fd >= 0))
        if callable(prepare):
            prepare()
        # What the parent allocated lately is not this process's to collect: a collection
        # that traversed it would copy every page it touched.
        gc.freeze()
        saved = _saved()
        for i, (name, source, _) in enumerate(programs):  # (no zip strict= before 3.10)
            out, err, record = files[i]
            if i:
                _put_back(saved)  # should it fail, the rest run afresh (no b"S" yet)
            os.dup2(out, 1)
            os.dup2(err, 2)
            for fd in (out, err):
                if fd > 2:  # (always, with stdio open in the parent)
                    os.close(fd)
            if record >= 0:
                _mark(record, b"S")
            started = time.monotonic()
            code = 1
            code = _execute(name, source)
            if record < 0:
                break
            if time.monotonic() - started > timeout:  # (the parent's deadlines may be later)
                _mark(record, b"T")
                break
            if not _flushed(sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
                break  # what it left in a buffer would land in the next one's output
            _mark(record, b"%d" % code)
            os.close(record)  # out of a later program's reach, as are its output files
    finally:
        os._exit(code)


def _mark(record: int, state: bytes) -> None:
    """One write of fixed width, over whatever an earlier program put there: should it
    fail, the record still says b"S" (the program ended the process), never nothing
    (never started: it would run again)."""
    os.pwrite(record, state.ljust(_RECORD), 0)


def _close_all_but(keep: list[int]) -> None:
    low = 3
    for fd in keep:
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, resource.getrlimit(resource.RLIMIT_NOFILE)[0])


def _saved() -> tuple[Any, ...]:
    """What `_put_back` restores, as the first program of a process finds it."""
    return (
        sys.modules,
        dict(sys.modules),
        list(sys.path),
        list(sys.meta_path),
        list(sys.path_hooks),
        dict(sys.path_importer_cache),
    )


def _put_back(saved: tuple[Any, ...]) -> None:
    """The module table, import machinery and standard streams as they were before the
    first program: a later one imports the agent's files afresh, as in a process of its
    own (what else the earlier one did to the process, it inherits)."""
    table, modules, path, meta_path, path_hooks, finders = saved
    sys.modules = table  # the interpreter's own table, should a program have rebound it
    for name in [name for name in table if name not in modules]:
        del table[name]
    table.update(modules)
    sys.path, sys.meta_path, sys.path_hooks = list(path), list(meta_path), list(path_hooks)
    sys.path_importer_cache = dict(finders)
    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__


def _flushed(*streams: object) -> bool:
    for stream in streams:
        try:
            stream.flush()  # type: ignore[attr-defined]
        except BaseException:
            return False
    return True


def read_start(fd: int, cap: int) -> bytes:
    """The first `cap` bytes of a file another process wrote, whatever its offset."""
    chunks: list[bytes] = []
    got, size = 0, min(os.fstat(fd).st_size, cap)
    while got < size:
        chunk = os.pread(fd, size - got, got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _status_code(status: int) -> int:
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return 1


def _wait_exit(
    pid: int, timeout: float, returned: object = None, steps: int = 1
) -> tuple[int, bool]:
    """Wait for the process to exit, kill its process group either way, and return (exit
    code, timed out). It has `timeout` per program, `steps` of them, in turn: past step
    i, unless `returned(i)` says program i has returned, it is killed. So the first
    program never runs past its own time, and a later one past the time its elders left.
    Only a few system calls: while the child lives, every page the parent writes is a
    copy-on-write fault."""
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):  # Python < 3.9 or an old kernel
        pidfd = -1
    poller = select.poll()
    if pidfd >= 0:
        poller.register(pidfd, select.POLLIN)
    reaped, timed_out = (0, 0), True
    for step in range(steps):
        if pidfd >= 0:
            timed_out = not poller.poll(max(1, int(timeout * 1000)))
        else:
            deadline = time.monotonic() + timeout
            while not reaped[0] and time.monotonic() < deadline:
                time.sleep(0.002)
                reaped = os.waitpid(pid, os.WNOHANG)
            timed_out = not reaped[0]
        if not timed_out or step + 1 == steps or not returned(step):  # type: ignore[operator]
            break
    if pidfd >= 0:
        os.close(pidfd)
    for kill in (os.killpg, os.kill):  # its group; itself, should it not have one yet
        try:  # noqa: SIM105 (contextlib costs start-up time)
            kill(pid, _KILL)
        except OSError:
            pass
    status = reaped[1] if reaped[0] else os.waitpid(pid, 0)[1]
    return (-_KILL, True) if timed_out else (_status_code(status), False)


def _run_process(
    programs: list[tuple[str, str, bool]],
    timeout: float,
    cap: int,
    prepare: object,
    after: object,
) -> list[tuple[int, bool, bytes, bytes]]:
    """Fork, run `programs` in turn with their stdout and stderr in memory files, then
    `after`; the programs after one that ended the process run in a fresh one.

    Memory files rather than pipes: nothing has to drain them while the programs run,
    so the parent sleeps in one `poll` (a pipe's reader wakes for every write, and each
    page it touches while the child lives is copied). Read once `after` (which kills
    what the programs left) has run, so nothing writes to them any more.
    """
    fds: list[int] = []

    def memfd(name: str) -> int:
        fds.append(os.memfd_create(name))
        return fds[-1]

    try:
        several = len(programs) > 1
        files = [
            (memfd("stdout"), memfd("stderr"), memfd("record") if several else -1) for _ in programs
        ]
        pid = os.fork()
        if pid == 0:
            _child(programs, files, timeout, prepare)

        def state(i: int) -> bytes:
            record = files[i][2]
            return read_start(record, _RECORD).strip() if record >= 0 else b"S"

        def returned(i: int) -> bool:
            return state(i).isdigit() or state(i) == b"T"

        code, timed_out = _wait_exit(pid, timeout, returned, len(programs))
        if callable(after):
            after()
        results: list[tuple[int, bool, bytes, bytes]] = []
        for i, (out, err, _) in enumerate(files):
            now = state(i)
            if not now and i:  # it never started: it and the rest, afresh
                return results + _run_process(programs[i:], timeout, cap, prepare, after)
            output = read_start(out, cap), read_start(err, cap)
            if now.isdigit():
                results.append((int(now), False, *output))
                continue
            if now == b"T":
                results.append((-_KILL, True, *output))
            else:  # it ended the process (or was running when it was killed)
                results.append((code, timed_out, *output))
            rest = programs[i + 1 :]
            return results + (_run_process(rest, timeout, cap, prepare, after) if rest else [])
        return results
    finally:
        for fd in fds:
            os.close(fd)


def apply_rlimits(rlimits: list[tuple[str, int]]) -> None:
    """Hard and soft limits for this process and everything it forks."""
    for rname, value in rlimits:
        limit = getattr(resource, rname)
        resource.setrlimit(limit, (value, value))


def run_all(
    programs: list[tuple[str, str, bool]],
    timeout: float,
    cap: int,
    after_process: object = None,
    prepare: object = None,
) -> bytes:
    """Run the programs, each process in turn; the framed result document (see the
    module docstring). `programs` is [(name, source, joined)].

    `after_process` (if given) is called after every process, before the next starts;
    `prepare` (if given) in each program's process, before its first program runs.
    """
    parts = [b"SFGR1\n"]
    start = 0
    while start < len(programs):
        end = start + 1
        while end < len(programs) and programs[end][2]:
            end += 1
        for code, timed_out, out, err in _run_process(
            programs[start:end], timeout, cap, prepare, after_process
        ):
            parts.append(b"%d %d %d %d\n" % (code, timed_out, len(out), len(err)))
            parts += [out, err]
        start = end
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
