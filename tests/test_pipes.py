"""The shell's pipe ends (`sandbox/pipes.py`): nothing lost or stalled at the edges."""

from __future__ import annotations

import asyncio
import os

import pytest

from subterfuge.sandbox.pipes import PipeReader, PipeWriter


async def test_what_is_written_arrives_whole_past_the_pipes_capacity() -> None:
    read_fd, write_fd = os.pipe()
    reader, writer = PipeReader(read_fd, 1 << 12), PipeWriter(write_fd)
    data = os.urandom(1 << 20)  # sixteen pipes' worth: most of it waits in the writer

    async def send() -> None:
        for start in range(0, len(data), 100_000):
            writer.write(data[start : start + 100_000])
        await writer.drain()
        writer.close()

    async def receive() -> bytes:
        got = bytearray()
        while chunk := await reader.read(5000):
            assert len(chunk) <= 5000
            got += chunk
            await asyncio.sleep(0)  # a slow reader: the writer must wait, not fail
        return bytes(got)

    _, received = await asyncio.gather(send(), receive())
    assert received == data
    reader.close()


async def test_a_writer_whose_reader_is_gone_raises_broken_pipe() -> None:
    read_fd, write_fd = os.pipe()
    writer = PipeWriter(write_fd)
    os.close(read_fd)
    with pytest.raises(BrokenPipeError):
        writer.write(b"x")
        await writer.drain()
    writer.close()


async def test_a_reader_closed_while_waiting_returns_the_end() -> None:
    read_fd, write_fd = os.pipe()
    reader = PipeReader(read_fd, 1 << 16)
    waiting = asyncio.ensure_future(reader.read(10))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    reader.close()
    assert await waiting == b""
    os.close(write_fd)


async def test_the_end_of_the_pipe_comes_after_its_last_bytes() -> None:
    read_fd, write_fd = os.pipe()
    reader = PipeReader(read_fd, 1 << 16)
    os.write(write_fd, b"last words")
    os.close(write_fd)
    assert await reader.read(4) == b"last"
    assert await reader.read(100) == b" words"
    assert await reader.read(100) == b""
    reader.close()
