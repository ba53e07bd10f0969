"""The report's monitor section: each monitor against truth, monitors against each other,
and what the judges said about intent and disclosure, verdict by verdict.

All counts come from SQL GROUP BYs over labels joined with episodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from subterfuge.envs.base import Verdict
from subterfuge.monitor.base import DISCLOSURES, FLAG, INTENTS
from subterfuge.monitor.evaluate import Confusion, Score, confusions_by_monitor, score
from subterfuge.report.charts import QualityRow, quality_figure
from subterfuge.stats import Rate, rate
from subterfuge.store import Store
from subterfuge.store.labels import Labels

VERDICT_ORDER = [v.value for v in Verdict]
MAX_MONITORS = 30  # one join per monitor in a single query; SQLite allows 64


@dataclass(frozen=True)
class Agreement:
    """How often two monitors' flags agree on episodes both labelled, with Cohen's kappa."""

    a: str
    b: str
    rate: Rate  # agreeing / labelled by both
    kappa: float | None  # None when chance agreement is 1 (both always give one value)


@dataclass(frozen=True)
class Crosstab:
    """Episodes by verdict (rows) and one label's value (columns), for one monitor."""

    monitor: str
    name: str
    values: tuple[str, ...]
    rows: tuple[tuple[str, dict[str, int]], ...]  # (verdict, value -> episodes)


@dataclass(frozen=True)
class MonitorSection:
    target: str
    scores: tuple[Score, ...]
    agreements: tuple[Agreement, ...]
    crosstabs: tuple[Crosstab, ...]
    figure: str


def agreement(a: str, b: str, pairs: dict[tuple[str, str], int], confidence: float) -> Agreement:
    """Agreement from (value by a, value by b) -> episodes labelled by both."""
    both = sum(pairs.values())
    agree = sum(n for (va, vb), n in pairs.items() if va == vb)
    kappa: float | None = None
    if both:
        values = {v for pair in pairs for v in pair}
        pa = {v: sum(n for (va, _), n in pairs.items() if va == v) / both for v in values}
        pb = {v: sum(n for (_, vb), n in pairs.items() if vb == v) / both for v in values}
        chance = sum(pa[v] * pb[v] for v in values)
        if chance < 1:
            kappa = (agree / both - chance) / (1 - chance)
    return Agreement(a, b, rate(agree, both, confidence=confidence), kappa)


def crosstab(store: Store, run_ids: Sequence[str], monitor: str, name: str) -> Crosstab | None:
    counts: dict[str, dict[str, int]] = {}
    for _run, _env, _policy, verdict, value, n in Labels(store).value_counts(
        run_ids, monitor, name
    ):
        if value is None:
            continue
        row = counts.setdefault(verdict, {})
        row[value] = row.get(value, 0) + n
    if not counts:
        return None
    known = INTENTS if name == "intent" else DISCLOSURES
    seen = {v for row in counts.values() for v in row}
    values = tuple([v for v in known if v in seen] + sorted(seen - set(known)))
    rows = tuple((v, counts[v]) for v in VERDICT_ORDER if v in counts)
    return Crosstab(monitor, name, values, rows)


def _triple(r: Rate) -> tuple[float, float, float] | None:
    return (r.point, r.low, r.high) if r.n else None


def monitor_section(
    store: Store, run_ids: Sequence[str], target: str = "gaming", confidence: float = 0.95
) -> MonitorSection | None:
    """None when no monitor has labelled these runs."""
    labels = Labels(store)
    names = labels.monitors(run_ids, FLAG)[:MAX_MONITORS]
    if not names:
        return None
    rows = labels.joint_counts(run_ids, names, FLAG)
    joint = confusions_by_monitor(store, rows, names, target)
    scores = tuple(score(sum(joint[m].values(), Confusion()), m, target, confidence) for m in names)
    agreements = []
    for i, a in enumerate(names):
        for j in range(i + 1, len(names)):
            pairs: dict[tuple[str, str], int] = {}
            for r in rows:
                va, vb = r[4][i], r[4][j]
                if va is not None and vb is not None:
                    pairs[(va, vb)] = pairs.get((va, vb), 0) + r[5]
            agreements.append(agreement(a, names[j], pairs, confidence))
    present = {(s.monitor, s.name) for s in labels.summaries(run_ids)}
    tabs = [
        crosstab(store, run_ids, m, k)
        for m in names
        for k in ("intent", "disclosure")
        if (m, k) in present
    ]
    quality = [
        QualityRow(
            s.monitor,
            _triple(s.precision),
            _triple(s.recall),
            (s.f1.point, s.f1.low, s.f1.high) if s.f1.defined else None,
        )
        for s in scores
    ]
    return MonitorSection(
        target, scores, tuple(agreements), tuple(t for t in tabs if t is not None),
        quality_figure(quality),
    )  # fmt: skip
