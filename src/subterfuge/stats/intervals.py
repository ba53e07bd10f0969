"""Confidence intervals for a rate of rare events (k hacks in n episodes).

Reward hacking is rare: 7 of 32,768 episodes is a typical result, and 0 of n is
common. Normal-approximation intervals are wrong there, so the default is the
exact Clopper–Pearson interval; with zero events the only honest statement is a
one-sided upper bound, which is what we report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

from scipy.stats import beta, norm  # type: ignore[import-untyped]

from subterfuge.stats.formatting import confidence_label, percent, percent_bound

Method = Literal["clopper-pearson", "wilson", "jeffreys"]

_METHODS: tuple[str, ...] = get_args(Method)


@dataclass(frozen=True)
class Rate:
    """k events in n trials with a confidence interval [low, high].

    When k == 0 the interval is one-sided: low is 0 and high is an upper bound
    at `confidence` (not a two-sided interval's upper end).
    """

    k: int
    n: int
    low: float
    high: float
    method: Method
    confidence: float

    @property
    def point(self) -> float:
        """Observed proportion k/n; 0.0 with no trials so reports never divide by zero."""
        return self.k / self.n if self.n else 0.0

    @property
    def is_upper_bound(self) -> bool:
        """True when only an upper bound is meaningful (no events seen)."""
        return self.k == 0


def validate_counts(k: int, n: int) -> None:
    """Reject impossible counts early, with a message naming the bad value."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got n={n}")
    if k < 0:
        raise ValueError(f"k must be >= 0, got k={k}")
    if k > n:
        raise ValueError(f"k must be <= n, got k={k} > n={n}")


def validate_confidence(confidence: float) -> None:
    """Confidence is a probability strictly between 0 and 1 (0.95, not 95)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), e.g. 0.95; got {confidence}")


def zero_event_upper(n: int, confidence: float) -> float:
    """Exact one-sided upper bound for 0 of n: 1 - (1 - confidence)**(1/n).

    Written with expm1/log1p so the bound stays accurate for very large n.
    """
    return -math.expm1(math.log1p(-confidence) / n)


def _clopper_pearson(k: int, n: int, confidence: float) -> tuple[float, float]:
    if k == 0:
        return 0.0, zero_event_upper(n, confidence)
    tail = (1.0 - confidence) / 2.0
    low = float(beta.ppf(tail, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1.0 - tail, k + 1, n - k))
    return low, high


def _wilson(k: int, n: int, confidence: float) -> tuple[float, float]:
    if k == 0:
        z = float(norm.ppf(confidence))
        return 0.0, z * z / (n + z * z)
    z = float(norm.ppf((1.0 + confidence) / 2.0))
    p = k / n
    z2n = z * z / n
    center = (p + z2n / 2.0) / (1.0 + z2n)
    half = z / (1.0 + z2n) * math.sqrt(p * (1.0 - p) / n + z2n / (4.0 * n))
    return max(0.0, center - half), min(1.0, center + half)


def _jeffreys(k: int, n: int, confidence: float) -> tuple[float, float]:
    if k == 0:
        return 0.0, float(beta.ppf(confidence, 0.5, n + 0.5))
    tail = (1.0 - confidence) / 2.0
    low = float(beta.ppf(tail, k + 0.5, n - k + 0.5))
    high = 1.0 if k == n else float(beta.ppf(1.0 - tail, k + 0.5, n - k + 0.5))
    return low, high


def rate(k: int, n: int, method: Method = "clopper-pearson", confidence: float = 0.95) -> Rate:
    """Rate of k events in n trials with its interval (one-sided upper bound when k == 0)."""
    validate_counts(k, n)
    validate_confidence(confidence)
    if method not in _METHODS:
        raise ValueError(f"method must be one of {', '.join(_METHODS)}; got {method!r}")
    if n == 0:
        return Rate(k, n, 0.0, 1.0, method, confidence)
    if method == "clopper-pearson":
        low, high = _clopper_pearson(k, n, confidence)
    elif method == "wilson":
        low, high = _wilson(k, n, confidence)
    else:
        low, high = _jeffreys(k, n, confidence)
    return Rate(k, n, low, high, method, confidence)


def format_rate(r: Rate, digits: int = 2) -> str:
    """Human-readable rate; zero events print as an upper bound, never a bare "0%"."""
    if r.n == 0:
        return f"{r.k}/{r.n} (no episodes)"
    if r.is_upper_bound:
        bound = percent_bound(r.high)
        return f"{r.k}/{r.n} (< {bound}, {confidence_label(r.confidence)} upper bound)"
    point = percent(r.point, digits)
    return f"{r.k}/{r.n} = {point} [{percent(r.low, digits)}, {percent(r.high, digits)}]"
