"""The host process every warm sandbox's pid 1 is forked from (`pid1.zygote`).

An interpreter started for each sandbox wrote ~2 MiB of its own pages at start-up (the
binary's data, its arenas), in every one of hundreds of sandboxes. A fork of one
interpreter that has loaded pid 1's code and the grading runner shares those pages
with it, and copies only what it writes. The zygote runs on the host, outside every
sandbox, with the sandbox's interpreter; a fork of it takes the slot's uid, joins the
namespaces bwrap set up and becomes pid 1 there (`pid1._enter`). One per harness
process, started on first use and again after it died. Being the sandbox's interpreter
in its start-up state, it also compiles the grading programs, once each (`compiled`).
"""

from __future__ import annotations

import contextlib
import functools
import marshal
import os
import select
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from subterfuge.sandbox import seccomp
from subterfuge.sandbox.base import SandboxError
from subterfuge.sandbox.grading import RUNNER_SOURCE
from subterfuge.sandbox.runner import write_all
from subterfuge.sandbox.seccomp import filter_program

PID1_SOURCE = Path(__file__).with_name("pid1.py").read_text(encoding="utf-8")
COMPILE_SECONDS = 30.0
CLOSE_SECONDS = 10.0
SEND_SECONDS = 10.0
"""How long a request may wait for room on the zygote's socket (it reads them as they come)."""
COMPILE_BYTES = 60_000
"""Most program text one compile request carries (one socket message: the zygote reads up
to ~124 KiB, marshal's framing included)."""
COMPILED_PROGRAMS = 2048
"""Distinct grading programs remembered (the built-in environments have ~650)."""

BOOT = """import marshal, os, sys
_fd = int(sys.argv[1])
_tag, _, _code = os.pread(_fd, os.fstat(_fd).st_size, 0).partition(b"\\n")
os.close(_fd)
if _tag != sys.implementation.cache_tag.encode():
    sys.exit(f"pid 1 was compiled for {_tag.decode()}, not {sys.implementation.cache_tag}")
_code = marshal.loads(_code)
exec(_code[0])
zygote(_code[1], int(sys.argv[2]))
"""
"""What the sandbox's interpreter runs as the zygote: the code `boot_code` compiled, from
a descriptor, once it has checked that the code is its version's (marshalled code of
another version can crash the interpreter without a word)."""

_COMPILE = """import marshal, sys
def compiled(sources):
    code = tuple(compile(s, n, "exec", dont_inherit=True) for n, s in sources)
    return sys.implementation.cache_tag.encode() + b"\\n" + marshal.dumps(code)
"""
"""What `BOOT` loads: the version tag, a newline, the marshalled code. Run by the
sandbox's interpreter, or here when that is this process's."""


@functools.cache
def boot_code(host_python: str | None) -> bytes:
    """Pid 1 and the grading runner compiled (marshal) by the interpreter the sandboxes
    run, at `host_python` on the host, or this process's own when None.

    Compiled here rather than by the zygote: the compiler's allocations would stay in
    pages every fork maps. Marshalled code only loads in the same Python version, hence
    the sandbox's interpreter, not ours.
    """
    sources = [("pid1.py", PID1_SOURCE), ("runner.py", RUNNER_SOURCE)]
    if host_python is None:
        namespace: dict[str, Any] = {}
        exec(_COMPILE, namespace)
        return bytes(namespace["compiled"](sources))
    write = "sys.stdout.buffer.write(compiled(marshal.loads(sys.stdin.buffer.read())))"
    argv = [host_python, "-S", "-I", "-B", "-c", _COMPILE + write]
    try:
        done = subprocess.run(argv, input=marshal.dumps(sources, 4), capture_output=True,
                              timeout=COMPILE_SECONDS, env={}, check=False)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxError(f"could not compile pid 1 with {host_python}: {exc}") from None
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", "replace")[-2000:]
        raise SandboxError(f"could not compile pid 1 with {host_python}: {tail}")
    return done.stdout


def read_until_eof(fd: int, seconds: float) -> bytes | None:
    """Everything written to `fd` until its writers close it; None after `seconds`."""
    deadline = time.monotonic() + seconds
    waiting = select.poll()
    waiting.register(fd, select.POLLIN)
    chunks: list[bytes] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not waiting.poll(int(left * 1000) + 1):
            return None
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def memfd(data: bytes) -> int:
    """A memory file holding `data` (offset at its end)."""
    fd = os.memfd_create("subterfuge", os.MFD_CLOEXEC)
    try:
        write_all(fd, data)
    except OSError:
        os.close(fd)
        raise
    return fd


class Zygote:
    """The zygote process of this harness process, and what every pid 1 it forks gets."""

    def __init__(
        self,
        python: str,
        compiled: Callable[[], bytes],
        *,
        python_env: Mapping[str, str],
        sandbox_env: Mapping[str, str],
        paths: tuple[str, str] | None = None,
    ) -> None:
        """`python`: the sandbox's interpreter on the host (run with `python_env`);
        `compiled`: gives `boot_code`'s output; `sandbox_env`: pid 1's environment, and so the
        shell's; `paths`: (prefix on the host, prefix inside) where the interpreter is
        mounted elsewhere inside."""
        self.python = python
        self._compiled = compiled
        self._python_env = dict(python_env)
        # Pid 1 denies itself, and so everything it starts, what would outlive an
        # episode and what would change its own limits or scheduling.
        own = (filter_program(seccomp.LEFTOVERS, seccomp.PID1_GUARDS) or b"").hex()
        self._request = (dict(sandbox_env), list(paths) if paths else None, own)
        self._proc: subprocess.Popen[bytes] | None = None
        self._code: dict[tuple[str, str], str | bytes] = {}
        """Grading programs as `compiled` gives them."""
        self._sock: socket.socket | None = None
        self._owner = -1

    def prepare(self) -> None:
        """Compile what the zygote runs, if not yet (a process of the sandbox's interpreter
        where it is not ours: in a thread, say)."""
        self._compiled()

    def _start(self) -> None:
        """`-S -I -B`: only the stdlib, nothing from the environment or the cwd."""
        self.close()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        code = -1
        try:
            code = memfd(self._compiled())
            argv = [self.python, "-S", "-I", "-B", "-c", BOOT, str(code), str(theirs.fileno())]
            self._proc = subprocess.Popen(
                argv,
                pass_fds=(code, theirs.fileno()),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=self._python_env,
                cwd="/",
            )
        except OSError as exc:
            ours.close()
            raise SandboxError(f"could not start the sandboxes' zygote: {exc}") from exc
        finally:
            theirs.close()
            if code >= 0:
                os.close(code)
        ours.settimeout(SEND_SECONDS)
        self._sock, self._owner = ours, os.getpid()

    def enter(self, uid: int | None, fds: Sequence[int]) -> None:
        """Have a fork of the zygote become a sandbox's pid 1, given (socket to it, its
        stderr, bwrap holder's pidfd, the holder's user namespace's parent, the holder's
        user namespace). Pid 1 says it is ready on the socket, or writes why not."""
        env, paths, own = self._request
        self._send(marshal.dumps(("enter", uid, own, env, paths), 4), fds)

    def compiled(self, programs: Sequence[tuple[str, str]]) -> list[str | bytes]:
        """Each (name, source) grading program as its marshalled code where the sandbox's
        interpreter compiles it cleanly (`pid1._compile`), else as its text, which the
        grading runner compiles itself.

        Once per distinct program and harness process, in the calling thread (the event
        loop's: a fork of the zygote and a few ms, the first time a program is seen).
        """
        batch: list[tuple[str, str]] = []
        size = 0
        for program in dict.fromkeys(programs):
            if program in self._code:
                continue
            if len(program[1]) > COMPILE_BYTES:  # past one message: the runner compiles it
                self._remember(program, program[1])
            elif size + len(program[1]) <= COMPILE_BYTES:
                batch.append(program)
                size += len(program[1])
        if batch:
            found = self._compile(batch)
            for program, code in zip(batch, found or (), strict=False):
                self._remember(program, program[1] if code is None else code)
        return [self._code.get(program, program[1]) for program in programs]

    def _remember(self, program: tuple[str, str], code: str | bytes) -> None:
        if len(self._code) >= COMPILED_PROGRAMS:
            del self._code[next(iter(self._code))]  # the oldest
        self._code[program] = code

    def _compile(self, batch: list[tuple[str, str]]) -> list[bytes | None] | None:
        """The zygote's fork's answer (None for each program if it gave none in time or
        died); None if the zygote could not be reached (nothing learnt: asked again)."""
        read, write = os.pipe()
        try:
            try:
                self._send(marshal.dumps(("compile", batch), 4), [write])
            except SandboxError:
                return None
            finally:
                os.close(write)
            data = read_until_eof(read, COMPILE_SECONDS)
        finally:
            os.close(read)
        try:
            found = marshal.loads(data or b"")  # (the sandbox's interpreter's marshal)
        except (EOFError, ValueError, TypeError):
            found = None
        if not isinstance(found, list) or len(found) != len(batch):
            return [None] * len(batch)
        return [code if isinstance(code, bytes) else None for code in found]

    def _send(self, message: bytes, fds: Sequence[int]) -> None:
        for attempt in (1, 2):  # a zygote found dead is started again, once
            if self._owner != os.getpid() or self._proc is None or self._proc.poll() is not None:
                self._start()
            assert self._sock is not None
            try:
                socket.send_fds(self._sock, [message], list(fds))
                return
            except ConnectionError as exc:  # it died: EPIPE, ECONNRESET
                if attempt == 2:
                    raise SandboxError(f"could not reach the sandboxes' zygote: {exc}") from exc
                self.close()
            except OSError as exc:  # a timeout (a busy zygote), EMFILE: this sandbox fails
                raise SandboxError(f"could not reach the sandboxes' zygote: {exc}") from exc

    def close(self) -> None:
        """End the zygote (the sandboxes it forked live on): it exits once the forks it
        has in flight have (milliseconds), else it is killed."""
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
        proc, self._proc = self._proc, None
        if proc is not None and self._owner == os.getpid():
            try:
                proc.wait(CLOSE_SECONDS)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(OSError):
                    proc.kill()
                proc.wait()
