"""Did a change (new prompt, new model, mitigation) move the rate of hacking?

Counts are tiny, so the comparison uses Fisher's exact test rather than a
chi-square or z-test, whose approximations break down with a handful of events.
"""

from __future__ import annotations

from dataclasses import dataclass

from scipy.stats import fisher_exact  # type: ignore[import-untyped]

from subterfuge.stats.formatting import percent, percent_bound, significant
from subterfuge.stats.intervals import Method, Rate, rate


@dataclass(frozen=True)
class Comparison:
    """Rate `a` (baseline) against rate `b` (treatment).

    `odds_ratio` is scipy's sample odds ratio for the table with `b` as the first
    row, i.e. odds(b) / odds(a), matching the direction of `difference` and
    `ratio`; it may be inf or nan when a cell is zero.
    """

    a: Rate
    b: Rate
    odds_ratio: float
    p_value: float
    difference: float
    ratio: float | None


def compare(
    k1: int,
    n1: int,
    k2: int,
    n2: int,
    confidence: float = 0.95,
    method: Method = "clopper-pearson",
) -> Comparison:
    """Compare k1/n1 (baseline) with k2/n2 using a two-sided Fisher's exact test."""
    a = rate(k1, n1, method=method, confidence=confidence)
    b = rate(k2, n2, method=method, confidence=confidence)
    table = [[k2, n2 - k2], [k1, n1 - k1]]
    odds_ratio, p_value = fisher_exact(table, alternative="two-sided")
    return Comparison(
        a=a,
        b=b,
        odds_ratio=float(odds_ratio),
        p_value=float(p_value),
        difference=b.point - a.point,
        ratio=b.point / a.point if a.point != 0 else None,
    )


def _short(r: Rate) -> str:
    """A rate in a few characters; zero events show their bound, not "0%"."""
    if r.n == 0:
        return "0/0"
    if r.is_upper_bound:
        return f"0/{r.n} (< {percent_bound(r.high)})"
    return percent(r.point)


def _p_value(p: float) -> str:
    """Tiny p-values in scientific notation rather than a run of zeros."""
    return f"{p:.1e}" if 0 < p < 1e-3 else significant(p)


def format_comparison(c: Comparison) -> str:
    """One line such as `0.14% → 0.024%  (×0.17, Fisher p = 0.031)`."""
    details = [] if c.ratio is None else [f"×{significant(c.ratio)}"]
    details.append(f"Fisher p = {_p_value(c.p_value)}")
    return f"{_short(c.a)} → {_short(c.b)}  ({', '.join(details)})"
