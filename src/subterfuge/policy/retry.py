"""Retries with jittered exponential backoff, honouring the provider's `Retry-After`.

"Full jitter" (a uniform draw between 0 and the exponential cap) spreads the
retries of thousands of concurrent episodes that failed together, so they do
not come back as one wave. A `Retry-After` (or `retry-after-ms`) from the
provider is a floor on the wait.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass

RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})
"""HTTP statuses worth retrying: timeouts, conflicts, rate limits, server errors, overload."""


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` tries in all; waits up to `base * 2**n` seconds (capped at `max_delay`)."""

    attempts: int = 10
    base: float = 0.5
    max_delay: float = 60.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before retry number `attempt` (0-based)."""
        cap = min(self.max_delay, self.base * (2**attempt))
        wait = rng.uniform(0, cap)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_delay) + rng.uniform(0, self.base))
        return wait


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the provider asked us to wait, from `retry-after-ms` or `Retry-After`."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("Retry-After") or headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
