"""Verdict counts per (run, environment, policy), with exact rates: what every report shows.

Rates are grouped the way the reference study reads them: `gaming` is any
episode that gamed or tampered, `tampering` any that changed the reward
process, `hiding` any that also defeated oversight. Each comes with its exact
interval; zero counts become upper bounds downstream.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from subterfuge.envs.base import CURRICULUM, Stage, Verdict
from subterfuge.stats import Method, Rate, rate
from subterfuge.store import Store

V = Verdict
GROUPS: dict[str, frozenset[Verdict]] = {
    "gaming": frozenset({V.GAMED, V.GAMED_AND_HID, V.TAMPERED, V.TAMPERED_AND_HID}),
    "tampering": frozenset({V.TAMPERED, V.TAMPERED_AND_HID}),
    "hiding": frozenset({V.GAMED_AND_HID, V.TAMPERED_AND_HID}),
    "honest": frozenset({V.HONEST}),
    "invalid": frozenset({V.INVALID}),
    "error": frozenset({V.ERROR}),
}
GAMING_GROUPS: tuple[str, ...] = ("gaming", "tampering", "hiding")
"""The groups that are misbehaviour: what the report plots, monitors are scored against and
the viewer filters by."""


@dataclass(frozen=True)
class Cell:
    """One (run, environment, policy) group and its verdict counts."""

    run_id: str
    env: str
    stage: Stage
    policy: str
    counts: Mapping[str, int]

    @property
    def n(self) -> int:
        return sum(self.counts.values())

    def count(self, group: str) -> int:
        return sum(self.counts.get(v.value, 0) for v in GROUPS[group])

    def rate(
        self, group: str, method: Method = "clopper-pearson", confidence: float = 0.95
    ) -> Rate:
        return rate(self.count(group), self.n, method=method, confidence=confidence)


def run_stage(config: Mapping[str, Any], env: str) -> Stage:
    """The stage of `env`'s episodes in a run with this config: its `stage`, else custom."""
    if str(config.get("env")) != env:
        return Stage.CUSTOM
    try:
        return Stage(str(config.get("stage", "custom")))
    except ValueError:
        return Stage.CUSTOM


def cells(store: Store, run_ids: Iterable[str]) -> list[Cell]:
    """Every (env, policy) group of the given runs, in curriculum order."""
    out: list[Cell] = []
    for run_id in run_ids:
        config = store.run(run_id).config
        for (env, policy), counts in store.verdict_counts(run_id).items():
            out.append(Cell(run_id, env, run_stage(config, env), policy, dict(counts)))
    order = {stage: i for i, stage in enumerate(CURRICULUM)}
    return sorted(out, key=lambda c: (order.get(c.stage, len(order)), c.env, c.policy, c.run_id))


def cell_json(cell: Cell, confidence: float = 0.95) -> dict[str, object]:
    """A cell with every group's rate under all three interval methods."""
    methods: tuple[Method, ...] = ("clopper-pearson", "wilson", "jeffreys")
    groups: dict[str, object] = {}
    for group in GROUPS:
        entry: dict[str, object] = {"k": cell.count(group), "n": cell.n}
        for method in methods:
            r = cell.rate(group, method, confidence)
            entry[method] = {"low": r.low, "high": r.high, "upper_bound_only": r.is_upper_bound}
        groups[group] = entry
    return {
        "run_id": cell.run_id,
        "env": cell.env,
        "stage": cell.stage.value,
        "policy": cell.policy,
        "episodes": cell.n,
        "verdicts": dict(cell.counts),
        "rates": groups,
        "confidence": confidence,
    }
