"""Batch episode writes from many concurrent episodes into few SQLite transactions.

Commits are the expensive part of a write (an fsync-ish WAL append each), so
records are gathered and stored in batches, off the event loop thread so the
running episodes are not stalled while SQLite works.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Self

from subterfuge.store.records import EpisodeRecord
from subterfuge.store.sqlite import Store


class BatchWriter:
    """Queue records and flush them when `max_batch` are waiting, `max_delay` seconds
    after the first one was queued, and on exit (by exception too).

    A batch whose write fails (or whose flush is cancelled) goes back to the
    front of the queue and is retried by the next flush; since the store
    ignores duplicates, retrying a batch that did commit is harmless. So
    nothing `put` is lost short of the process dying.
    """

    def __init__(self, store: Store, max_batch: int = 256, max_delay: float = 0.25) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if max_delay < 0:
            raise ValueError(f"max_delay must be >= 0, got {max_delay}")
        self._store = store
        self.max_batch = max_batch
        self.max_delay = max_delay
        self.written = 0  # rows that were new to the store
        self._pending: list[EpisodeRecord] = []
        self._flushing = asyncio.Lock()  # one flush at a time
        self._timer: asyncio.Task[None] | None = None
        self._writes: set[asyncio.Future[int]] = set()  # in-flight thread writes
        self._error: BaseException | None = None  # from a timer flush, raised by the next put
        self._closed = False

    @property
    def pending(self) -> int:
        """Records queued and not yet stored."""
        return len(self._pending)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def put(self, record: EpisodeRecord) -> None:
        """Queue one record; waits only when this put fills a batch (back-pressure).

        A failed background flush is raised here, before `record` is queued, so
        the caller learns the store is failing; the failed batch stays queued.
        """
        if self._closed:
            raise RuntimeError("BatchWriter is closed")
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        self._pending.append(record)
        if len(self._pending) >= self.max_batch:
            await self.flush()
        elif self._timer is None:
            self._timer = asyncio.create_task(self._flush_later())

    async def flush(self) -> int:
        """Store everything queued now; returns how many rows were new."""
        async with self._flushing:
            self._cancel_timer()
            batch, self._pending = self._pending, []
            if not batch:
                return 0
            write = asyncio.ensure_future(asyncio.to_thread(self._store.add_episodes, batch))
            self._writes.add(write)
            write.add_done_callback(lambda fut: self._settle(fut, batch))
            # shield: if this flush is cancelled, the thread write still finishes and is settled.
            return await asyncio.shield(write)

    async def close(self) -> None:
        """Flush everything, waiting for writes still running from cancelled flushes."""
        self._closed = True
        self._cancel_timer()
        while self._writes or self._pending:
            if self._writes:
                await asyncio.gather(*self._writes, return_exceptions=True)
            await self.flush()

    def _settle(self, fut: asyncio.Future[int], batch: list[EpisodeRecord]) -> None:
        """Count a finished write, or re-queue its batch at the front for the next flush."""
        self._writes.discard(fut)
        if not fut.cancelled() and fut.exception() is None:
            self.written += fut.result()
        else:
            self._pending[:0] = batch

    def _cancel_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()

    async def _flush_later(self) -> None:
        await asyncio.sleep(self.max_delay)
        try:
            await self.flush()
        except Exception as e:  # the batch was re-queued; the next put reports the failure
            self._error = e
