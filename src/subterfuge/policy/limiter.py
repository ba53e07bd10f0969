"""A limit on concurrent requests per model, shared by every policy using that model.

Thousands of episodes may be in flight; a provider (or a local server's batch)
takes only so many requests at once. Policies naming the same model at the
same endpoint share one limiter per event loop, so a judge and an agent on one
model count together. A rate-limit answer pauses the whole model, not just the
one request: when the provider says "retry after 2 s", nobody else should call
it sooner either.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class RequestLimiter:
    """At most `limit` requests at once; `pause(s)` holds new requests for `s` seconds."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"request limit must be >= 1, got {limit}")
        self.limit = limit
        self._slots = asyncio.Semaphore(limit)
        self._resume_at = 0.0
        self.in_flight = 0

    def pause(self, seconds: float) -> None:
        self._resume_at = max(self._resume_at, time.monotonic() + seconds)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._slots:
            while (wait := self._resume_at - time.monotonic()) > 0:
                await asyncio.sleep(wait)
            self.in_flight += 1
            try:
                yield
            finally:
                self.in_flight -= 1


_LIMITERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, RequestLimiter]] = (
    weakref.WeakKeyDictionary()
)


def limiter_for(key: str, limit: int) -> RequestLimiter:
    """The running loop's limiter for `key` (created with `limit` on first use)."""
    per_loop = _LIMITERS.setdefault(asyncio.get_running_loop(), {})
    found = per_loop.get(key)
    if found is None:
        found = per_loop[key] = RequestLimiter(limit)
    return found
