"""Warm sandboxes ("slots"): one bubblewrap sandbox serves episode after episode.

A slot is a host directory (`<base>/slot-<pid ns>-<pid>-XXXX/fs/<top>`,
bind-mounted into the sandbox), the sandbox's pid 1 (`pid1.py`), and the socket
to that pid 1. bwrap's own process, which only waits for pid 1 to exit, is let go
once pid 1 is ready (~0.2 MiB and a process per sandbox): pid 1 then belongs to
this process, a child subreaper (`become_subreaper`), which waits on it and kills
it through a pidfd pid 1 sent with its first message. Until then pid 1 dies with
bwrap (--die-with-parent), from then on with this process (`pid1.py`: "adopted"),
and it also ends when its socket closes.
Between two episodes pid 1 kills every process and empties what lies outside the
episode's files, and the host empties the files; the namespaces and mounts,
which cost most of a new sandbox, are kept. A slot whose pid 1 is gone or fails
to reset is destroyed, never reused.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import marshal
import os
import signal
import socket
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from subterfuge.sandbox import seccomp
from subterfuge.sandbox.base import SandboxError
from subterfuge.sandbox.grading import RUNNER_SOURCE
from subterfuge.sandbox.procs import exited, reap, rmtree, set_subreaper, wait_gone
from subterfuge.sandbox.runner import write_all
from subterfuge.sandbox.seccomp import filter_program
from subterfuge.sandbox.workspace import chown_tree

PID1_SOURCE = Path(__file__).with_name("pid1.py").read_text(encoding="utf-8")
BOOT_SECONDS = 30.0
CALL_SECONDS = 30.0

INLINE_BYTES = 64 << 10
"""Requests up to this size travel in the socket message itself (its limit is ~200 KB)."""
LARGE = b"SFG-LARGE"
"""Sent instead of a larger request, whose bytes travel in a memfd (`pid1.LARGE`)."""


def _memfd(data: bytes) -> int:
    fd = os.memfd_create("subterfuge-request", os.MFD_CLOEXEC)
    try:
        write_all(fd, data)
    except OSError:
        os.close(fd)
        raise
    return fd


def become_subreaper() -> bool:
    """Adopt our descendants' orphans (the slots' pid 1s once bwrap is gone): they stay in
    this process's tree and are reaped here (`Slot.destroy`). For the whole process:
    any other orphan of ours (a double-forked daemon) comes too, and stays a zombie until
    this process ends (nothing waits for pids it did not start). False where refused."""
    return set_subreaper(True) is not None


Command = Callable[[int], list[str]]
"""Given the descriptor bwrap reports its pid on, the argv that starts a slot's sandbox
(everything before the program it runs)."""


BOOT = """import marshal, os, sys
_fd = int(sys.argv[1])
_tag, _, _code = os.pread(_fd, os.fstat(_fd).st_size, 0).partition(b"\\n")
os.close(_fd)
if _tag != sys.implementation.cache_tag.encode():
    sys.exit(f"pid 1 was compiled for {_tag.decode()}, not {sys.implementation.cache_tag}")
_code = marshal.loads(_code)
exec(_code[0])
main(_code[1], int(sys.argv[2]), sys.argv[3])
"""
"""What the sandbox's interpreter runs as pid 1: the code `boot_code` compiled, from a
descriptor (`pid1.main`), once it has checked that the code is its version's (marshalled
code of another version can crash the interpreter without a word)."""

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

    Compiled once here rather than in every pid 1: a pid 1 that compiles its own source
    keeps ~2 MiB more memory (what the compiler allocated, in pages it cannot give
    back), in every sandbox, and every fork of it maps those pages. Marshalled code only
    loads in the same Python version, hence the sandbox's interpreter, not ours.
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
                              timeout=BOOT_SECONDS, env={}, check=False)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxError(f"could not compile pid 1 with {host_python}: {exc}") from None
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", "replace")[-2000:]
        raise SandboxError(f"could not compile pid 1 with {host_python}: {tail}")
    return done.stdout


def pid1_argv(python: str, code_fd: int, sock_fd: int) -> list[str]:
    """`-S -I -B`: only the stdlib, nothing from the environment or the (agent-writable) cwd.
    Pid 1 denies itself, and so everything it starts, what would outlive an episode and
    what would change its own limits or scheduling."""
    own = (filter_program(seccomp.LEFTOVERS, seccomp.PID1_GUARDS) or b"").hex()
    return [python, "-S", "-I", "-B", "-c", BOOT, str(code_fd), str(sock_fd), own]


class Slot:
    """One warm sandbox; `call` talks to its pid 1 (one request at a time)."""

    def __init__(
        self,
        root: Path,
        tops: Sequence[str],
        uid: int | None,
        command: Command,
        python: tuple[str, bytes],
    ) -> None:
        """`python`: the sandbox's interpreter (its path inside) and `boot_code`'s output."""
        self.root = root
        self.tops = tuple(tops)
        self.uid = uid
        self._command = command
        self._python, self._code = python
        self._proc: subprocess.Popen[bytes] | None = None
        """bwrap's process, until pid 1 is ready."""
        self._pidfd: int | None = None
        """Pid 1's, from then on."""
        self._stderr: int | None = None
        """Our end of the pipe bwrap and pid 1 write to (read for their last words)."""
        self._info: int | None = None
        """bwrap's report (`--info-fd`, its child's pid), until pid 1 is adopted."""
        self._ended = False
        """Set by `kill`: what is left is `destroy`'s, maybe in another thread."""
        self._sock: socket.socket | None = None
        self._lock = asyncio.Lock()
        self._owed = 0
        self.pid1 = -1
        """Host pid of the sandbox's pid 1."""

    @property
    def fs(self) -> Path:
        return self.root / "fs"

    def make_tops(self) -> None:
        """The (empty) bind-mounted directories, owned by the slot's uid (bwrap starts in
        /root); also undoes an agent's chmod, chown or ACLs on them."""
        self.fs.mkdir(mode=0o755, exist_ok=True)
        for top in self.tops:
            path = self.fs / top
            path.mkdir(mode=0o755, exist_ok=True)
            path.chmod(0o700 if top == "root" else 0o755)
            for name in os.listxattr(path, follow_symlinks=False):  # ACLs too
                os.removexattr(path, name, follow_symlinks=False)
        if self.uid is not None:
            for path in (self.root, self.fs, *(self.fs / top for top in self.tops)):
                os.lchown(path, self.uid, self.uid)

    def empty_tops(self) -> None:
        """Remove every file the episode left (host side: no agent permission stops root)."""
        for top in self.tops:
            with os.scandir(self.fs / top) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        rmtree(Path(entry.path))
                    else:
                        os.unlink(entry.path)
        self.make_tops()

    def little_left(self, entries: int, size: int) -> bool:
        """Whether the episode left at most `entries` files and directories under the top
        directories, holding at most `size` bytes: removing so little costs less in the
        caller's thread than a hand-over to another."""
        todo, seen, total = [str(self.fs / top) for top in self.tops], 0, 0
        try:
            while todo:
                with os.scandir(todo.pop()) as found:
                    for entry in found:
                        seen += 1
                        if entry.is_dir(follow_symlinks=False):
                            todo.append(entry.path)
                        else:  # what it holds: space kept beyond its size too
                            st = entry.stat(follow_symlinks=False)
                            total += max(st.st_size, st.st_blocks * 512)
                        if seen > entries or total > size:
                            return False
        except OSError:  # one the walk cannot read: `empty_tops` repairs it, in a thread
            return False
        return True

    def give_files(self) -> None:
        """The episode's new files to the slot's uid."""
        if self.uid is not None:
            chown_tree(self.fs, self.uid)

    # --- the sandbox's life ----------------------------------------------------------
    @property
    def alive(self) -> bool:
        if self._sock is None:
            return False
        if self._pidfd is not None:
            return not exited(self._pidfd)
        return self._proc is not None and self._proc.poll() is None

    async def boot(self) -> None:
        """Start the sandbox (again, if its pid 1 died) over the same files."""
        self.destroy(remove=False)
        self._ended = False
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        info_r, info_w = os.pipe()
        os.set_blocking(info_r, False)
        self._info = info_r
        self._stderr, err_w = os.pipe()
        code = -1
        try:
            code = _memfd(self._code)
            argv = [*self._command(info_w), "--", *pid1_argv(self._python, code, theirs.fileno())]
            # Popen, not asyncio: a slot outlives the event loop that created it.
            self._proc = subprocess.Popen(
                argv,
                pass_fds=(theirs.fileno(), info_w, code),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err_w,
                env={},
            )
        except BaseException as exc:
            ours.close()
            self._info = None
            os.close(info_r)
            if isinstance(exc, OSError):
                raise SandboxError(f"could not start the sandbox: {exc}") from exc
            raise
        finally:
            theirs.close()
            os.close(info_w)
            os.close(err_w)
            if code >= 0:
                os.close(code)
        ours.setblocking(False)
        self._sock, self._owed = ours, 0
        try:
            self._adopt(await asyncio.wait_for(self._recv_ready(), BOOT_SECONDS))
            await self.call(("adopted",), timeout=BOOT_SECONDS)
        except (SandboxError, TimeoutError, ValueError, KeyError, OSError) as exc:
            err = await self._last_words(kill=True)
            self.destroy(remove=False)
            raise SandboxError(f"sandbox failed to start: {err or exc}") from None

    async def _recv_ready(self) -> int:
        """Pid 1's first message, ("ready",) with a pidfd for itself: the pidfd."""
        assert self._sock is not None
        sock, loop = self._sock, asyncio.get_running_loop()
        got: asyncio.Future[tuple[bytes, list[int]]] = loop.create_future()

        def readable() -> None:
            if got.done():
                return
            try:
                data, fds, _, _ = socket.recv_fds(sock, 1 << 16, 1, socket.MSG_CMSG_CLOEXEC)
            except BlockingIOError:
                return
            except OSError as exc:
                got.set_exception(exc)
            else:
                got.set_result((data, fds))

        loop.add_reader(sock.fileno(), readable)
        try:
            data, fds = await got
        except BaseException:  # cancelled (timed out) with the message already taken
            if got.done() and not got.cancelled() and got.exception() is None:
                for fd in got.result()[1]:
                    os.close(fd)
            raise
        finally:
            loop.remove_reader(sock.fileno())
        if not data:
            raise await self._gone()
        try:
            ready = marshal.loads(data) == ("ready",) and len(fds) == 1
        except (EOFError, ValueError, TypeError):
            ready = False
        if not ready:
            for fd in fds:
                os.close(fd)
            raise SandboxError(f"sandbox pid 1 said {data[:40]!r} with {len(fds)} descriptors")
        return fds[0]

    def _adopt(self, pidfd: int) -> None:
        """Keep pid 1 by its pidfd and end bwrap's process: pid 1, which stopped dying with
        it before it said it was ready, comes to us (`become_subreaper`)."""
        self._pidfd = pidfd
        self.pid1 = self._bwrap_child()
        if self.pid1 < 0:
            raise SandboxError("bwrap did not say which process is the sandbox's pid 1")
        proc, self._proc = self._proc, None
        assert proc is not None
        proc.kill()
        proc.wait()

    def _bwrap_child(self) -> int:
        """The host pid of bwrap's child (pid 1) from bwrap's report, or -1; closes it.
        Called once bwrap has written it: with pid 1 ready, or with bwrap dead (or never
        started)."""
        info, self._info = self._info, None
        if info is None:
            return -1
        try:
            return int(json.loads(os.read(info, 1 << 16) or b"{}")["child-pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return -1
        finally:
            os.close(info)

    async def _gone(self) -> SandboxError:
        """The error for a dead pid 1, with its last words (a traceback) if it left any."""
        last = await self._last_words(kill=False)
        return SandboxError("the sandbox's pid 1 is gone" + (f": {last}" if last else ""))

    async def _last_words(self, kill: bool) -> str:
        """The end of what bwrap and pid 1 wrote to stderr, once the sandbox has ended.

        With `kill`, end it first. Without, wait up to a second: pid 1's socket closes
        a moment before it exits. Read without blocking the event loop either way.
        """
        if self._stderr is None or self._ended:
            return ""
        if kill:
            self._kill()
        with contextlib.suppress(OSError, TimeoutError):  # gone meanwhile; still running
            if self._pidfd is not None:
                await wait_gone(self._pidfd, 5.0 if kill else 1.0)
            elif self._proc is not None and self._proc.poll() is None:
                bwrap = os.pidfd_open(self._proc.pid)
                try:
                    await wait_gone(bwrap, 5.0 if kill else 1.0)
                finally:
                    os.close(bwrap)
        if self._stderr is None or self._ended:  # destroyed meanwhile (maybe in a thread)
            return ""
        fd, chunks = self._stderr, []
        os.set_blocking(fd, False)
        with contextlib.suppress(OSError):  # BlockingIOError: nothing more for now
            while chunk := os.read(fd, 1 << 16):
                chunks.append(chunk)
        return b"".join(chunks).decode("utf-8", "replace").strip()[-2000:]

    async def _recv(self) -> tuple[Any, ...]:
        assert self._sock is not None
        data = await asyncio.get_running_loop().sock_recv(self._sock, 1 << 20)
        if not data:
            raise await self._gone()
        reply: tuple[Any, ...] = marshal.loads(data)
        return reply

    async def call(
        self, request: tuple[Any, ...], fds: Sequence[int] = (), timeout: float = CALL_SECONDS
    ) -> tuple[Any, ...]:
        """Send one request (with `fds`), return pid 1's reply; `SandboxError` if it fails.

        A call cancelled while waiting leaves its reply owed; the next call reads it
        first, so requests and replies never get out of step.
        """
        async with self._lock:
            if not self.alive:
                raise await self._gone()
            assert self._sock is not None
            while self._owed:
                try:
                    async with asyncio.timeout(timeout):
                        await self._recv()
                except TimeoutError:
                    raise SandboxError("sandbox pid 1 did not answer") from None
                self._owed -= 1
            message, extra = marshal.dumps(request, 4), []
            try:
                if len(message) > INLINE_BYTES:
                    extra.append(_memfd(message))
                    message = LARGE
                socket.send_fds(self._sock, [message], [*fds, *extra])
            except OSError as exc:  # EPIPE: pid 1 is gone; EMFILE: we are out of descriptors
                raise SandboxError(f"could not reach the sandbox's pid 1: {exc}") from exc
            finally:
                for fd in extra:
                    os.close(fd)
            self._owed += 1
            try:
                async with asyncio.timeout(timeout):  # no task of its own, as wait_for makes
                    reply = await self._recv()
            except TimeoutError:
                raise SandboxError(f"sandbox pid 1 did not answer {request[0]!r}") from None
            self._owed -= 1
        if reply[0] != "ok":
            raise SandboxError(f"sandbox pid 1: {reply[-1]}")
        return reply

    def _kill(self) -> None:
        """SIGKILL to pid 1 once we hold its pidfd (every process of the sandbox dies with
        it), and to bwrap while it runs (pid 1 dies with it until it is ready)."""
        with contextlib.suppress(ProcessLookupError):
            if self._pidfd is not None:
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
        if self._proc is not None:
            self._proc.kill()  # (a no-op once it has exited)

    def kill(self) -> None:
        """End the sandbox now, without waiting (`destroy` waits)."""
        self._ended = True
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._kill()

    def destroy(self, remove: bool = True) -> None:
        """Kill the sandbox, wait for its end and reap its pid 1 (or bwrap), then remove
        its files. Blocks until the kernel has freed the sandbox (for a live one: a thread's
        work, see `bwrap.BwrapBackend._destroy`)."""
        self.kill()
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.wait()  # first: its child, dead or dying, is then ours or reaped by it
        pidfd, self._pidfd = self._pidfd, None
        if pidfd is None:  # not adopted: pid 1 died with bwrap and may have come to us
            pid = self._bwrap_child()
            with contextlib.suppress(OSError):  # ESRCH: bwrap reaped it
                pidfd = os.pidfd_open(pid) if pid > 0 else None
        if pidfd is not None:
            try:
                reap(pidfd, timeout=10.0)  # (a SIGKILLed namespace ends in milliseconds)
            finally:
                os.close(pidfd)
        if self._info is not None:
            os.close(self._info)
            self._info = None
        if self._stderr is not None:
            os.close(self._stderr)
            self._stderr = None
        self.pid1 = -1
        if remove:
            rmtree(self.root)


class SlotShell:
    """The agent's bash inside a slot, shaped like asyncio's `Process` for `ShellSandbox`."""

    def __init__(
        self,
        slot: Slot,
        pid: int,
        stdin: asyncio.StreamWriter,
        stdout: asyncio.StreamReader,
        stderr: asyncio.StreamReader,
        transports: list[asyncio.BaseTransport],
    ) -> None:
        self.slot = slot
        self.pid = pid
        """The shell's pid inside the sandbox."""
        self.stdin: asyncio.StreamWriter | None = stdin
        self.stdout: asyncio.StreamReader | None = stdout
        self.stderr: asyncio.StreamReader | None = stderr
        self._transports = transports
        self._code: int | None = None

    @property
    def returncode(self) -> int | None:
        return self._code

    def exited(self, code: int) -> None:
        """Record the exit code pid 1 reported some other way (a `kill` reply)."""
        if self._code is None:
            self._code = code
            for transport in self._transports:
                transport.close()

    async def wait(self) -> int:
        while self._code is None:
            try:
                code = (await self.slot.call(("wait", self.pid, 0.5)))[1]
            except SandboxError:
                code = -9  # pid 1 is gone, and with it every process of the sandbox
            if code is not None:
                self.exited(int(code))
        return self._code

    def host_pid(self) -> int | None:
        """The shell's pid on the host (its pid 1's child with our inner pid), if alive."""
        with contextlib.suppress(OSError):
            with open(f"/proc/{self.slot.pid1}/task/{self.slot.pid1}/children") as f:
                children = [int(p) for p in f.read().split()]
            for child in children:
                with open(f"/proc/{child}/status") as f:
                    for line in f:
                        if line.startswith("NSpid:") and int(line.split()[-1]) == self.pid:
                            return child
        return None


async def start_shell(slot: Slot, argv: list[str]) -> SlotShell:
    """Have pid 1 start `argv` on three new pipes; wrap our ends as asyncio streams."""
    loop = asyncio.get_running_loop()
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        pid = (await slot.call(("shell", argv), fds=(in_r, out_w, err_w)))[1]
    except BaseException:
        for fd in (in_w, out_r, err_r):
            os.close(fd)
        raise
    finally:
        for fd in (in_r, out_w, err_w):
            os.close(fd)
    transports: list[asyncio.BaseTransport] = []
    readers: list[asyncio.StreamReader] = []
    for fd in (out_r, err_r):
        reader, transport = await pipe_reader(fd, 1 << 16)
        transports.append(transport)
        readers.append(reader)
    w_transport, w_protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(in_w, "wb", 0)
    )
    transports.append(w_transport)
    writer = asyncio.StreamWriter(w_transport, w_protocol, None, loop)
    return SlotShell(slot, int(pid), writer, readers[0], readers[1], transports)


async def pipe_reader(fd: int, limit: int) -> tuple[asyncio.StreamReader, asyncio.BaseTransport]:
    """A reader (buffering up to `limit` bytes) on pipe `fd`; closing the transport closes `fd`."""
    reader = asyncio.StreamReader(limit=limit)
    make = functools.partial(asyncio.StreamReaderProtocol, reader)
    transport, _ = await asyncio.get_running_loop().connect_read_pipe(make, os.fdopen(fd, "rb", 0))
    return reader, transport
