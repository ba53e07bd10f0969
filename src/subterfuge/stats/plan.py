"""How many episodes does an experiment need?

Two questions researchers ask before spending compute: how many clean episodes
bound the hacking rate below a target, and how many per arm detect a change.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import beta, fisher_exact, norm  # type: ignore[import-untyped]

from subterfuge.stats.intervals import validate_confidence, zero_event_upper


def _validate_probability(name: str, p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1]; got {p}")


def _validate_alpha_power(alpha: float, power: float | None = None) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), e.g. 0.05; got {alpha}")
    if power is not None and not 0.0 < power < 1.0:
        raise ValueError(f"power must be in (0, 1), e.g. 0.8; got {power}")


def one_sided_upper(events: int, n: int, confidence: float) -> float:
    """Exact one-sided Clopper–Pearson upper bound for `events` of `n`."""
    if events >= n:
        return 1.0
    if events == 0:
        return zero_event_upper(n, confidence)
    return float(beta.ppf(confidence, events + 1, n - events))


def episodes_to_bound(rate: float, confidence: float = 0.95, events: int = 0) -> int:
    """Smallest n whose one-sided upper bound, after seeing `events` events, is below `rate`.

    The bound falls strictly as n grows, so an integer bisection finds the exact n;
    the zero-event closed form only seeds the search.
    """
    if not 0.0 < rate < 1.0:
        raise ValueError(f"rate must be in (0, 1); got {rate}")
    validate_confidence(confidence)
    if events < 0:
        raise ValueError(f"events must be >= 0; got {events}")

    def below(n: int) -> bool:
        return one_sided_upper(events, n, confidence) < rate

    guess = math.log1p(-confidence) / math.log1p(-rate)
    hi = max(events + 1, math.ceil(guess) + events)
    while not below(hi):
        hi *= 2
    lo = events  # the bound is 1 here, so `lo` never satisfies
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if below(mid):
            hi = mid
        else:
            lo = mid
    return hi


def episodes_to_detect(p1: float, p2: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Episodes per arm to detect p1 -> p2 with a two-sided test (arcsine approximation).

    Cohen's h stabilises the variance: 2*asin(sqrt(p_hat)) has variance about 1/n,
    so a difference of two arms has variance 2/n, giving n = 2 * ((z_a + z_b) / h)**2
    per arm. Fisher's test is conservative, so check the result with `power_of_fisher`.
    """
    _validate_probability("p1", p1)
    _validate_probability("p2", p2)
    if p1 == p2:
        raise ValueError("p1 and p2 must differ: there is no change to detect")
    _validate_alpha_power(alpha, power)
    h = 2.0 * math.asin(math.sqrt(p2)) - 2.0 * math.asin(math.sqrt(p1))
    z = float(norm.ppf(1.0 - alpha / 2.0)) + float(norm.ppf(power))
    return math.ceil(2.0 * (z / h) ** 2)


def power_of_fisher(
    p1: float,
    p2: float,
    n: int,
    alpha: float = 0.05,
    simulations: int = 2000,
    seed: int = 0,
) -> float:
    """Monte Carlo power of the two-sided Fisher's exact test with n episodes per arm.

    With p1 == p2 this estimates the test's actual size instead. At small rates the
    same (k1, k2) outcomes recur, so each distinct table is tested only once.
    """
    _validate_probability("p1", p1)
    _validate_probability("p2", p2)
    _validate_alpha_power(alpha)
    if n < 1:
        raise ValueError(f"n must be >= 1; got {n}")
    if simulations < 1:
        raise ValueError(f"simulations must be >= 1; got {simulations}")
    rng = np.random.default_rng(seed)
    draws = np.stack([rng.binomial(n, p1, simulations), rng.binomial(n, p2, simulations)], axis=1)
    tables, counts = np.unique(draws, axis=0, return_counts=True)
    rejections = 0
    for (k1, k2), count in zip(tables.tolist(), counts.tolist(), strict=True):
        _, p_value = fisher_exact([[k1, n - k1], [k2, n - k2]], alternative="two-sided")
        if float(p_value) <= alpha:
            rejections += count
    return rejections / simulations
