"""Monitor labels, stored beside verdicts and never in place of them.

A monitor's reading of an episode is a set of (name, value) labels with the
evidence spans it relied on, keyed by (run, episode, monitor, name). Verdicts
are host-side truth and live in `episodes`; labels are opinions about the
same episodes and live in `labels`, so comparing the two (monitor quality,
agreement) is a join, counted by SQLite with GROUP BY rather than by loading
episodes into Python.

This module is part of the store package and uses the `Store`'s connection
and lock directly (package-internal), so label writes share the store's
transactions and thread safety.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from subterfuge.store.records import dump_json
from subterfuge.store.sqlite import Store

_INSERT = (
    "INSERT {mode} INTO labels (run_id, idx, monitor, name, value, evidence, created)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)


@dataclass(frozen=True)
class Label:
    """One monitor's reading of one aspect of one episode.

    `value` is text (`"true"`, `"malign"`, ...) so every monitor fits one
    column and a filter is an index lookup. `evidence` is a list of JSON
    objects, normally spans of the episode (see `subterfuge.monitor.Span`).
    """

    run_id: str
    idx: int
    monitor: str
    name: str
    value: str
    evidence: list[dict[str, Any]] = field(default_factory=list)
    created: float = 0.0


@dataclass(frozen=True)
class LabelSummary:
    """Which labels a monitor wrote in a set of runs, with counts per value."""

    monitor: str
    name: str
    values: dict[str, int]


JointRow = tuple[str, str, str, str, tuple[str | None, ...], int]
"""(run, env, policy, verdict, (value by each monitor, None if unlabelled), episodes)."""


def _in(values: Sequence[str]) -> str:
    if not values:
        raise ValueError("at least one run id is needed")
    return ", ".join("?" for _ in values)


class Labels:
    """Read and write the `labels` table of one store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # --- writing ----------------------------------------------------------------------------

    def add(self, labels: Sequence[Label], *, replace: bool = True) -> int:
        """Store labels in one transaction; returns how many rows were written.

        With `replace`, a label already stored under the same key is replaced
        (re-running a monitor updates its own opinion); otherwise it is kept.
        Labels of episodes that do not exist are refused: a label without its
        episode could never be checked.
        """
        if not labels:
            return 0
        now = time.time()
        rows = [
            (x.run_id, x.idx, x.monitor, x.name, x.value, dump_json(x.evidence), x.created or now)
            for x in labels
        ]
        keys = sorted({(x.run_id, x.idx) for x in labels})
        sql = _INSERT.format(mode="OR REPLACE" if replace else "OR IGNORE")
        with self._store._transaction() as conn:
            for run_id, idx in keys:
                hit = conn.execute(
                    "SELECT 1 FROM episodes WHERE run_id = ? AND idx = ?", (run_id, idx)
                ).fetchone()
                if hit is None:
                    raise KeyError(f"run {run_id!r} has no stored episode {idx} to label")
            before = conn.total_changes
            conn.executemany(sql, rows)
            return conn.total_changes - before

    def clear(self, run_id: str, monitor: str) -> int:
        """Delete every label `monitor` wrote in `run_id`; returns how many."""
        with self._store._transaction() as conn:
            cur = conn.execute(
                "DELETE FROM labels WHERE run_id = ? AND monitor = ?", (run_id, monitor)
            )
            return cur.rowcount

    # --- reading ----------------------------------------------------------------------------

    def of_episode(self, run_id: str, idx: int) -> list[Label]:
        """Every label of one episode, by monitor then name."""
        return self.of_episodes(run_id, [idx]).get(idx, [])

    def of_episodes(self, run_id: str, idxs: Iterable[int]) -> dict[int, list[Label]]:
        """Labels of several episodes of one run (one query per 500 indices)."""
        wanted = sorted(set(idxs))
        out: dict[int, list[Label]] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = self._store._query(
                "SELECT run_id, idx, monitor, name, value, evidence, created FROM labels"
                f" WHERE run_id = ? AND idx IN ({', '.join('?' for _ in chunk)})"
                " ORDER BY idx, monitor, name",
                [run_id, *chunk],
            )
            for r in rows:
                out.setdefault(r[1], []).append(
                    Label(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6])
                )
        return out

    def labelled(self, run_id: str, monitor: str, name: str = "flag") -> set[int]:
        """Indices of episodes `monitor` has given a `name` label (read from the index)."""
        rows = self._store._query(
            "SELECT idx FROM labels WHERE run_id = ? AND monitor = ? AND name = ?",
            (run_id, monitor, name),
        )
        return {r[0] for r in rows}

    def summaries(self, run_ids: Sequence[str]) -> list[LabelSummary]:
        """Every (monitor, label name) present in the runs, with value counts."""
        rows = self._store._query(
            "SELECT monitor, name, value, COUNT(*) FROM labels"
            f" WHERE run_id IN ({_in(run_ids)}) GROUP BY monitor, name, value"
            " ORDER BY monitor, name, value",
            list(run_ids),
        )
        found: dict[tuple[str, str], dict[str, int]] = {}
        for monitor, name, value, n in rows:
            found.setdefault((monitor, name), {})[value] = n
        return [LabelSummary(m, k, v) for (m, k), v in found.items()]

    def monitors(self, run_ids: Sequence[str], name: str = "flag") -> list[str]:
        """Monitors that gave `name` labels in any of the runs, sorted."""
        rows = self._store._query(
            f"SELECT DISTINCT monitor FROM labels WHERE run_id IN ({_in(run_ids)}) AND name = ?",
            [*run_ids, name],
        )
        return sorted(r[0] for r in rows)

    def value_counts(
        self, run_ids: Sequence[str], monitor: str, name: str
    ) -> list[tuple[str, str, str, str, str | None, int]]:
        """(run, env, policy, verdict, value, episodes) for every episode of the runs.

        `value` is None for episodes the monitor did not label, so the counts
        always add up to the runs' episodes: nothing unlabelled goes missing.
        """
        return [
            (run, env, policy, verdict, values[0], n)
            for run, env, policy, verdict, values, n in self.joint_counts(run_ids, [monitor], name)
        ]

    def joint_counts(
        self, run_ids: Sequence[str], monitors: Sequence[str], name: str = "flag"
    ) -> list[JointRow]:
        """(run, env, policy, verdict, (value by each monitor), episodes), in one pass.

        Every monitor's confusion against the verdicts and every pair's agreement
        come from this one GROUP BY, counted by SQLite: the episodes are read from
        a covering index (grouped in its order) and each monitor's label is one
        primary-key lookup; no episode row is read.
        """
        if not monitors or len(monitors) > 60:
            raise ValueError(f"between 1 and 60 monitors, got {len(monitors)}")
        joins = "".join(
            f" LEFT JOIN labels l{i} ON l{i}.run_id = e.run_id AND l{i}.idx = e.idx"
            f" AND l{i}.monitor = ? AND l{i}.name = ?"
            for i in range(len(monitors))
        )
        values = ", ".join(f"l{i}.value" for i in range(len(monitors)))
        rows = self._store._query(
            f"SELECT e.run_id, e.env, e.policy, e.verdict, {values}, COUNT(*) FROM episodes e"
            f"{joins} WHERE e.run_id IN ({_in(run_ids)})"
            f" GROUP BY e.run_id, e.verdict, e.stage, e.env, e.policy, {values}",
            [*(x for m in monitors for x in (m, name)), *run_ids],
        )
        k = len(monitors)
        return [(r[0], r[1], r[2], r[3], tuple(r[4 : 4 + k]), r[4 + k]) for r in rows]
