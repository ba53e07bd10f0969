"""Host-side process and directory clean-up that an agent cannot obstruct."""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import shutil
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path

_KILL = 9
PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37


def set_subreaper(on: bool) -> bool | None:
    """Make this process a child subreaper, or stop it being one: the orphans of its
    descendants come to it rather than to init. Whether it was one before; None where
    refused (not Linux, no prctl)."""
    import ctypes  # (the harness only; pid 1 has its own)

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
        was = ctypes.c_int(0)
        if prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(was), 0, 0, 0) != 0:
            return None
        if prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) != 0:
            return None
    except (OSError, AttributeError):
        return None
    return bool(was.value)


def _each_process(name: str) -> Iterator[tuple[int, bytes]]:
    """(pid, bytes of /proc/<pid>/<name>) for every process still there when read."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/{name}", "rb") as f:
                raw = f.read()
        except OSError:
            continue
        yield int(entry.name), raw


def _ppid(stat: bytes) -> int | None:
    """The parent's pid in a /proc stat line."""
    # the command name may contain spaces and parentheses: split after the last ')'
    fields = stat[stat.rfind(b")") + 2 :].split()
    return int(fields[1]) if len(fields) > 1 else None


def parent_of(pid: int) -> int | None:
    """The parent of process `pid` (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return _ppid(f.read())
    except OSError:
        return None


def _parents() -> dict[int, int]:
    """pid -> ppid for every process visible in /proc (a rare path: floods only)."""
    table: dict[int, int] = {}
    for pid, raw in _each_process("stat"):
        ppid = _ppid(raw)
        if ppid is not None:
            table[pid] = ppid
    return table


def children_map() -> dict[int, list[int]]:
    """ppid -> [pid], from one /proc scan."""
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    return children


def descendants(pid: int, children: dict[int, list[int]] | None = None) -> list[int]:
    """Every live descendant of `pid` (parents before their children)."""
    if children is None:
        children = children_map()
    found: list[int] = []
    todo = list(children.get(pid, []))
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def naming(paths: list[str]) -> dict[str, list[int]]:
    """For each path, the processes whose command line names it (one /proc scan)."""
    found: dict[str, list[int]] = {path: [] for path in paths}
    needles = [(path, os.fsencode(path)) for path in paths]
    for pid, line in _each_process("cmdline"):
        for path, needle in needles:
            if needle in line:
                found[path].append(pid)
    return found


def kill_pids(pids: list[int]) -> None:
    for p in pids:
        with contextlib.suppress(OSError):
            os.kill(p, _KILL)


def rmtree(path: Path | str) -> None:
    """`shutil.rmtree` (fd-based, never follows links) that also undoes agent `chmod 000`s.

    A tree nothing stands in the way of (most) is removed by a plain walk first, at half
    `shutil.rmtree`'s cost.
    """
    try:
        _remove_plainly(os.fspath(path))
        return
    except OSError:
        pass  # something in the way (a chmod): the careful way, from where this stopped

    def fix(func: object, failed: str, exc: BaseException) -> None:
        if isinstance(exc, FileNotFoundError):
            return  # removed meanwhile: nothing to repair
        parent = os.path.dirname(failed)
        try:
            st = os.lstat(parent)
            if stat.S_ISDIR(st.st_mode) and os.fspath(failed) != os.fspath(path):  # not above it
                os.chmod(parent, 0o700)
            st = os.lstat(failed)
            if stat.S_ISDIR(st.st_mode):
                os.chmod(failed, 0o700)
                shutil.rmtree(failed, ignore_errors=True)
            else:
                os.unlink(failed)
        except OSError:
            pass

    if not os.path.lexists(path):
        return
    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=fix)
    else:
        shutil.rmtree(path, onerror=lambda f, p, e: fix(f, p, e[1]))
    if os.path.lexists(path):  # a second pass after permissions were repaired
        shutil.rmtree(path, ignore_errors=True)


_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _remove_plainly(path: str) -> None:
    """Remove directory `path` and all in it, each step relative to the descriptor of the
    directory it is in (one open at a time, whatever the depth; no recursion): a
    directory swapped for a link meanwhile is never followed."""
    fd = os.open(path, _OPEN_DIR)
    todo = [_listing(fd)]  # per level down from `path`: entries not yet removed
    names: list[str] = []  # the directories entered, by name in their parent
    try:
        while True:
            if todo[-1]:
                name, is_dir = todo[-1].pop()
                if is_dir:
                    down = os.open(name, _OPEN_DIR, dir_fd=fd)
                    os.close(fd)
                    fd = down
                    names.append(name)
                    todo.append(_listing(fd))
                else:
                    os.unlink(name, dir_fd=fd)
                continue
            todo.pop()
            if not names:
                break
            up = os.open("..", _OPEN_DIR, dir_fd=fd)  # (nothing runs in the tree any more)
            os.close(fd)
            fd = up
            os.rmdir(names.pop(), dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(path)


def _listing(fd: int) -> list[tuple[str, bool]]:
    """(name, is a directory) of each entry, read while `fd` is open."""
    with os.scandir(fd) as entries:
        return [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in entries]


def exited(pidfd: int, timeout: float = 0.0) -> bool:
    """Whether the process behind `pidfd` has exited, waiting up to `timeout` seconds."""
    waiting = select.poll()
    waiting.register(pidfd, select.POLLIN)
    return bool(waiting.poll(int(timeout * 1000)))


def reap(pidfd: int, timeout: float = 0.0) -> None:
    """If the process behind `pidfd` is our child (an orphan this process, a subreaper,
    adopted: see `slot.become_subreaper`), wait up to `timeout` for it to exit and collect
    it, or it stays a zombie. Anyone else's is left to its parent at once."""
    try:
        os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return  # not ours (or already collected)
    exited(pidfd, timeout)
    with contextlib.suppress(ChildProcessError):
        os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOHANG)


def pid_of(pidfd: int) -> int:
    """The pid (in our namespace) of the process behind `pidfd`: -1 once it is reaped."""
    with open(f"/proc/self/fdinfo/{pidfd}") as f:
        for line in f:
            if line.startswith("Pid:"):
                return int(line.split()[1])
    raise OSError("no pid for a pidfd")


def collect(pidfd: int, timeout: float) -> None:
    """Wait up to `timeout` for the process behind `pidfd` to be dead and reaped, reaping it
    here once it is our child: one whose parent exits meanwhile comes to us (a subreaper)
    and would otherwise stay our zombie."""
    deadline = time.monotonic() + timeout
    pid = pid_of(pidfd)
    exited(pidfd, timeout)
    # Reaped: fdinfo says -1 (Linux >= 5.10?) or /proc has no such pid any more.
    while pid_of(pidfd) != -1 and parent_of(pid) is not None and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):  # not ours (yet)
            os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOHANG)
            continue
        time.sleep(0.001)


async def wait_gone(pidfd: int, timeout: float | None = 10.0) -> None:
    """Wait until the process behind `pidfd` has exited (None: however long it takes).
    The caller keeps `pidfd`, to reap through it say."""
    loop = asyncio.get_running_loop()
    gone: asyncio.Future[None] = loop.create_future()

    def exited() -> None:
        if not gone.done():
            gone.set_result(None)

    loop.add_reader(pidfd, exited)
    try:
        await asyncio.wait_for(gone, timeout)
    finally:
        loop.remove_reader(pidfd)
