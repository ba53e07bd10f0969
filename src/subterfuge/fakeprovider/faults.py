"""Fault injection for the fake provider: which call fails, and how.

Each request draws once from a seeded generator: with probability `rate_429`
it is refused with 429 and a `Retry-After` header, `rate_500` a 500 (529
"overloaded" on the Anthropic route), `rate_hang` the server never answers
(until the client gives up or the server stops), `rate_truncate` the reply is
cut off mid-body (a dropped connection; mid-stream for streaming requests),
`rate_malformed` the reply is delivered but broken (bad tool-call JSON for tool
requests, an unclosed tag or an empty message otherwise). The rates add up to
the chance that a call misbehaves; they must sum to at most 1.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from enum import StrEnum


class Fault(StrEnum):
    NONE = "none"
    RATE_LIMIT = "429"
    SERVER_ERROR = "500"
    HANG = "hang"
    TRUNCATE = "truncate"
    MALFORMED = "malformed"


@dataclass(frozen=True)
class Faults:
    """Per-call fault probabilities and their parameters."""

    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_hang: float = 0.0
    rate_truncate: float = 0.0
    rate_malformed: float = 0.0
    retry_after: float = 0.2
    """Seconds sent in `Retry-After` with a 429 (fractions are allowed by this server)."""
    hang_seconds: float = 3600.0
    """How long a hanging call stalls before the server gives up and closes it."""
    seed: int = 0

    def __post_init__(self) -> None:
        rates = [rate for _, rate in self.rates()]
        if any(r < 0 for r in rates) or sum(rates) > 1.0 + 1e-9:
            raise ValueError(f"fault rates must be >= 0 and sum to <= 1, got {rates}")

    @classmethod
    def mixed(
        cls, rate: float, seed: int = 0, retry_after: float = 0.2, hang_seconds: float = 3600.0
    ) -> Faults:
        """`rate` of all calls fail, split evenly between 429, 500 and hangs."""
        third = rate / 3
        return cls(
            rate_429=third, rate_500=third, rate_hang=third,
            retry_after=retry_after, hang_seconds=hang_seconds, seed=seed,
        )  # fmt: skip

    def rates(self) -> tuple[tuple[Fault, float], ...]:
        """Each fault with its probability, in the order a draw tests them."""
        return (
            (Fault.RATE_LIMIT, self.rate_429),
            (Fault.SERVER_ERROR, self.rate_500),
            (Fault.HANG, self.rate_hang),
            (Fault.TRUNCATE, self.rate_truncate),
            (Fault.MALFORMED, self.rate_malformed),
        )


class FaultDraw:
    """A thread-safe seeded stream of fault decisions."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self._rates = faults.rates()
        self._rng = random.Random(faults.seed)
        self._lock = threading.Lock()

    def next(self) -> Fault:
        with self._lock:
            x = self._rng.random()
        for fault, rate in self._rates:
            if x < rate:
                return fault
            x -= rate
        return Fault.NONE
