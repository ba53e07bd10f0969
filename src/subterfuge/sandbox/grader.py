"""Harness side of the grading zygote (see `zygote.py` for why it exists).

`ZygoteGrader.grade` sends one request per episode with the episode's pinned
namespaces and reads the result document from a pipe of its own, so requests
from many episodes are in flight at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import marshal
import os
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path

from subterfuge.envs.base import ProgramResult
from subterfuge.sandbox import zygote
from subterfuge.sandbox.base import Limits, SandboxError
from subterfuge.sandbox.grading import grading_budget, parse_runner_output, runner_rlimits
from subterfuge.sandbox.seccomp import filter_program

NAMESPACES = ("user", "mnt", "net")


def pin_namespaces(pid: int) -> list[int]:
    """Descriptors that keep a sandbox's namespaces alive after its processes die."""
    fds: list[int] = []
    try:
        for ns in NAMESPACES:
            fds.append(os.open(f"/proc/{pid}/ns/{ns}", os.O_RDONLY | os.O_CLOEXEC))
    except OSError as exc:
        for fd in fds:
            os.close(fd)
        raise SandboxError(f"could not pin the sandbox's namespaces: {exc}") from exc
    return fds


class ZygoteGrader:
    """Starts the zygote on first use; one per backend."""

    def __init__(self, python: str, path_map: tuple[str, str] | None = None) -> None:
        self._python = python
        self._path_map = path_map
        self._sock: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = asyncio.Lock()

    async def _start(self) -> socket.socket:
        async with self._lock:
            if self._sock is not None and self._proc is not None and self._proc.poll() is None:
                return self._sock
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            here = Path(__file__).parent
            path_map = ":".join(self._path_map) if self._path_map else ""
            argv = [self._python, "-S", "-I", "-B", "-c", zygote.BOOTSTRAP]
            argv += [str(here / "runner.py"), str(here / "zygote.py")]
            argv += [str(theirs.fileno()), path_map]
            # A plain Popen: the zygote outlives any one event loop (it dies with us).
            self._proc = subprocess.Popen(
                argv, pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL
            )
            theirs.close()
            self._sock = ours
            return ours

    async def grade(
        self, namespaces: list[int], programs: Mapping[str, str], limits: Limits
    ) -> dict[str, ProgramResult]:
        """Run `programs` in the pinned namespaces; the descriptors are consumed."""
        if not programs:
            return {}
        sock = await self._start()
        payload = marshal.dumps(
            (
                [(str(k), str(v)) for k, v in programs.items()],
                float(limits.program_timeout),
                int(limits.output_bytes),
                runner_rlimits(limits),
                filter_program(),
            ),
            4,
        )
        r, w = os.pipe()
        try:
            socket.send_fds(sock, [payload], [w, *namespaces])
        except OSError as exc:
            os.close(r)
            raise SandboxError(f"grading zygote is gone: {exc}") from exc
        finally:
            os.close(w)
            for fd in namespaces:
                os.close(fd)
        budget = grading_budget(programs, limits)
        try:
            data = await asyncio.wait_for(_read_all(r), budget)
        except TimeoutError:
            raise SandboxError(f"grading did not finish within {budget:.0f}s") from None
        try:
            return parse_runner_output(data, list(programs))
        except (SandboxError, ValueError) as exc:
            raise SandboxError(f"{exc}: {data[:300]!r}") from None

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()  # the zygote exits when its socket closes
            self._sock = None
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
            self._proc.wait()
            self._proc = None


async def _read_all(fd: int) -> bytes:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    pipe = os.fdopen(fd, "rb", 0)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    try:
        return await reader.read()
    finally:
        transport.close()
