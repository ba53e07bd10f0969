"""The harness's ends of a sandboxed shell's pipes, read and written from the event loop.

asyncio's pipe transports and streams would do, and the plain backend uses them; a
warm sandbox sets up three pipes per episode, and those cost about 0.2 ms of CPU an
episode more than this (a transport, a protocol, a waiter and two loop iterations per
pipe, and a 256 KiB buffer allocated per read). These are one file descriptor each,
watched with `add_reader` / `add_writer`.
"""

from __future__ import annotations

import asyncio
import os

READ_BYTES = 1 << 16
"""Read at most this much per wake-up (under glibc's mmap threshold: a larger buffer is an
mmap and munmap per read)."""


class PipeReader:
    """The read end of a pipe; `read` as `asyncio.StreamReader.read` for n > 0. Reading
    pauses while `limit` bytes wait unread, so a flooding writer blocks on a full pipe."""

    def __init__(self, fd: int, limit: int) -> None:
        os.set_blocking(fd, False)
        self._fd = fd
        self._limit = limit
        self._loop = asyncio.get_running_loop()
        self._buffer = bytearray()
        self._eof = False
        self._waiter: asyncio.Future[None] | None = None
        self._watching = False
        self._watch(True)

    def _watch(self, on: bool) -> None:
        if on and not self._watching:
            self._loop.add_reader(self._fd, self._ready)
        elif not on and self._watching:
            self._loop.remove_reader(self._fd)
        self._watching = on

    def _ready(self) -> None:
        try:
            data = os.read(self._fd, READ_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""  # the pipe is unusable: its end (the collector then restarts the shell)
        if data:
            self._buffer += data
            if len(self._buffer) >= self._limit:
                self._watch(False)
        else:
            self.close()  # (as asyncio's transport does at the end)
            return
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def read(self, n: int) -> bytes:
        """Up to `n` (> 0) bytes, waiting for some; b"" at the end. One reader at a time."""
        if n <= 0 or self._waiter is not None:
            raise RuntimeError("read() needs n > 0 and no other read() waiting")
        while not self._buffer and not self._eof:
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        if not self._eof and len(self._buffer) < self._limit:
            self._watch(True)
        return data

    def close(self) -> None:
        """Stop reading and close the descriptor; a waiting `read` returns what is left."""
        if self._fd >= 0:
            self._watch(False)
            os.close(self._fd)
            self._fd = -1
        self._eof = True
        self._wake()

    def __del__(self) -> None:  # dropped unclosed (a loop that ended first): the descriptor
        if getattr(self, "_fd", -1) >= 0:
            os.close(self._fd)


class PipeWriter:
    """The write end of a pipe: `write` and `drain` as `asyncio.StreamWriter`'s. A write the
    pipe has no room for waits in a buffer until the reader takes some."""

    def __init__(self, fd: int) -> None:
        os.set_blocking(fd, False)
        self._fd = fd
        self._loop = asyncio.get_running_loop()
        self._pending = bytearray()
        self._error: OSError | None = None
        self._drained: asyncio.Future[None] | None = None

    def write(self, data: bytes) -> None:
        """Write now what fits (`BrokenPipeError` once the reader is gone), queue the rest."""
        if self._error is not None:
            raise self._error
        if self._fd < 0:
            raise BrokenPipeError("the pipe is closed")
        if self._pending:
            self._pending += data
            return
        try:
            done = os.write(self._fd, data)
        except (BlockingIOError, InterruptedError):
            done = 0
        if done < len(data):
            self._pending += data[done:]
            self._loop.add_writer(self._fd, self._flush)

    def _flush(self) -> None:
        try:
            done = os.write(self._fd, self._pending)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._error = exc
            done = len(self._pending)
        del self._pending[:done]
        if not self._pending:
            self._loop.remove_writer(self._fd)
            if self._drained is not None and not self._drained.done():
                self._drained.set_result(None)

    async def drain(self) -> None:
        """Wait until everything written is in the pipe; the write error if there was one."""
        if self._pending:
            self._drained = self._loop.create_future()
            try:
                await self._drained
            finally:
                self._drained = None
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        """Close the descriptor (the reader sees the end); what is still queued is dropped."""
        if self._fd >= 0:
            if self._pending:
                self._loop.remove_writer(self._fd)
                self._pending.clear()
            os.close(self._fd)
            self._fd = -1
        if self._drained is not None and not self._drained.done():
            self._drained.set_exception(BrokenPipeError("the pipe was closed"))

    def __del__(self) -> None:  # dropped unclosed: the descriptor at least
        if getattr(self, "_fd", -1) >= 0:
            os.close(self._fd)
