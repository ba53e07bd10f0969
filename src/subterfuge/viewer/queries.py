"""The viewer's reads: filtered, keyset-paged episode lists that never load a whole run.

Pages are ordered by (run_id, idx) and continue *after* the last row shown
(keyset pagination), so page 500 costs what page 1 costs; an OFFSET would
make SQLite step over every earlier row. Lists select only summary columns,
which the `episodes_browse` index covers; the label filter is a join on the
`labels_filter` index. Only an episode page reads one full record.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from subterfuge.envs.base import Verdict
from subterfuge.report.summary import GAMING_GROUPS, GROUPS

PAGE_SIZE = 50
GROUP_FILTERS = GAMING_GROUPS
_FACETS_TTL = 15.0


@dataclass(frozen=True)
class EpisodeFilter:
    """What the list shows. `verdict` is a verdict or a group (`tampering`: both tampered
    verdicts); `label` is `monitor|name|value` (e.g. `judge-reasoning|intent|malign`)."""

    run: str | None = None
    stage: str | None = None
    verdict: str | None = None
    label: str | None = None

    def verdicts(self) -> list[str] | None:
        if not self.verdict:
            return None
        if self.verdict in GROUP_FILTERS:
            return sorted(v.value for v in GROUPS[self.verdict])
        return [Verdict(self.verdict).value]

    def label_parts(self) -> tuple[str, str, str] | None:
        if not self.label:
            return None
        parts = self.label.split("|")
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"label filter must be MONITOR|NAME|VALUE, got {self.label!r}")
        return parts[0], parts[1], parts[2]

    def query(self) -> dict[str, str]:
        """As URL query parameters (empty ones left out)."""
        items = {"run": self.run, "stage": self.stage, "verdict": self.verdict, "label": self.label}
        return {k: v for k, v in items.items() if v}


@dataclass(frozen=True)
class Cursor:
    """A position in the (run_id, idx) order; `token` is how it travels in a URL."""

    run_id: str
    idx: int

    @property
    def token(self) -> str:
        return f"{self.idx}:{self.run_id}"

    @classmethod
    def parse(cls, token: str) -> Cursor:
        idx, sep, run_id = token.partition(":")
        if not sep or not idx.lstrip("-").isdigit():
            raise ValueError(f"bad cursor {token!r}")
        return cls(run_id, int(idx))


@dataclass(frozen=True)
class Summary:
    """One row of the episode list."""

    run_id: str
    idx: int
    env: str
    stage: str
    policy: str
    verdict: str
    reward: float | None
    caught: bool | None
    pays: bool
    turns: int

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.run_id, self.idx)


@dataclass(frozen=True)
class Page:
    rows: tuple[Summary, ...]
    next: Cursor | None


@dataclass(frozen=True)
class Facets:
    """The choices the filters offer."""

    runs: tuple[tuple[str, int], ...]  # (run id, episodes)
    stages: tuple[str, ...]
    labels: tuple[tuple[str, str, str, int], ...]  # (monitor, name, value, episodes)


_SUMMARY = (
    "SELECT e.run_id, e.idx, e.env, e.stage, e.policy, e.verdict, e.reward, e.caught, e.pays,"
    " e.turns FROM episodes e"
)


class Browser:
    """Read-only queries on one run database, safe from any thread (a connection per thread)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._facets: tuple[float, Facets] | None = None
        self._lock = threading.Lock()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 5000")
            self._local.conn = conn
        return conn

    def _rows(self, sql: str, params: Sequence[Any]) -> list[Any]:
        return self._conn().execute(sql, params).fetchall()

    def _run_ids(self, f: EpisodeFilter, start: str | None, forward: bool) -> list[str]:
        """The runs a query visits, in list order from `start` (inclusive)."""
        if f.run:
            return [f.run]
        op, order = (">=", "ASC") if forward else ("<=", "DESC")
        where = f" WHERE run_id {op} ?" if start is not None else ""
        rows = self._rows(
            f"SELECT run_id FROM runs{where} ORDER BY run_id {order}",
            [start] if start is not None else [],
        )
        return [r[0] for r in rows]

    def _ids(
        self,
        f: EpisodeFilter,
        run_id: str,
        *,
        after: int | None = None,
        before: int | None = None,
        descending: bool = False,
    ) -> tuple[str, list[Any]]:
        """SQL selecting the matching indices of one run, in order (LIMIT to be appended).

        Read from indexes alone: the label filter walks `labels_filter` (already in
        index order); a verdict or stage filter reads the covering `episodes_browse`
        index and sorts what matches (`+e.idx` stops SQLite from walking the primary
        key instead and reading every large row to test it).
        """
        params: list[Any] = []
        verdicts = f.verdicts()
        label = f.label_parts()
        conditions: list[str] = []
        if label is not None:
            key = "l.idx"
            sql = "SELECT l.idx FROM labels l"
            if verdicts or f.stage:
                sql += " JOIN episodes e ON e.run_id = l.run_id AND e.idx = l.idx"
            conditions += ["l.run_id = ?", "l.monitor = ?", "l.name = ?", "l.value = ?"]
            params += [run_id, *label]
            order = "l.idx"
        else:
            key = "e.idx"
            sql = "SELECT e.idx FROM episodes e"
            conditions.append("e.run_id = ?")
            params.append(run_id)
            order = "+e.idx" if verdicts or f.stage else "e.idx"
        if f.stage:
            conditions.append("e.stage = ?")
            params.append(f.stage)
        if verdicts:
            conditions.append(f"e.verdict IN ({', '.join('?' for _ in verdicts)})")
            params += verdicts
        if after is not None:
            conditions.append(f"{key} > ?")
            params.append(after)
        if before is not None:
            conditions.append(f"{key} < ?")
            params.append(before)
        direction = "DESC" if descending else "ASC"
        return f"{sql} WHERE {' AND '.join(conditions)} ORDER BY {order} {direction}", params

    def page(self, f: EpisodeFilter, after: Cursor | None = None, limit: int = PAGE_SIZE) -> Page:
        """Up to `limit` episodes matching `f` after `after`, in (run, idx) order.

        One query per run, run by run from the cursor's: within a run every
        filter is an index range, so a rare verdict is found by seeking, not by
        reading the run's rows until enough match. Only the page's own rows are
        read from the table.
        """
        found: list[Summary] = []
        for run_id in self._run_ids(f, after.run_id if after else None, True):
            start = after.idx if after is not None and run_id == after.run_id else None
            ids, params = self._ids(f, run_id, after=start)
            want = limit + 1 - len(found)
            rows = self._rows(
                f"{_SUMMARY} WHERE e.run_id = ? AND e.idx IN ({ids} LIMIT ?) ORDER BY e.idx",
                [run_id, *params, want],
            )
            found += [_summary(r) for r in rows]
            if len(found) > limit:
                break
        summaries = tuple(found[:limit])
        more = len(found) > limit and summaries
        return Page(summaries, summaries[-1].cursor if more else None)

    def count(self, f: EpisodeFilter, cap: int = 1_000_000) -> int:
        """Episodes matching `f`, counted from the indexes run by run (capped for huge stores)."""
        total = 0
        for run_id in self._run_ids(f, None, True):
            ids, params = self._ids(f, run_id)
            sql = f"SELECT COUNT(*) FROM ({ids} LIMIT ?)"
            total += int(self._rows(sql, [*params, cap - total])[0][0])
            if total >= cap:
                break
        return total

    def neighbour(self, f: EpisodeFilter, at: Cursor, *, forward: bool = True) -> Cursor | None:
        """The next (or previous) episode matching `f` after (before) `at`."""
        for run_id in self._run_ids(f, at.run_id, forward):
            here = run_id == at.run_id
            ids, params = self._ids(
                f, run_id,
                after=at.idx if here and forward else None,
                before=at.idx if here and not forward else None,
                descending=not forward,
            )  # fmt: skip
            rows = self._rows(f"{ids} LIMIT 1", params)
            if rows:
                return Cursor(run_id, rows[0][0])
        return None

    def facets(self) -> Facets:
        """Runs, stages and monitor labels to filter by (cached for a few seconds)."""
        with self._lock:
            if self._facets is not None and time.monotonic() - self._facets[0] < _FACETS_TTL:
                return self._facets[1]
        runs = self._rows(
            "SELECT r.run_id, r.config, (SELECT COUNT(*) FROM episodes e WHERE e.run_id = r.run_id)"
            " FROM runs r ORDER BY r.run_id",
            (),
        )
        stages = set()
        for _, config, _ in runs:
            stage = _json_field(config, "stage")
            stages.add(stage if stage else "custom")
        labels = self._rows(
            "SELECT monitor, name, value, COUNT(*) FROM labels"
            " WHERE name NOT IN ('judge_status') GROUP BY monitor, name, value",
            (),
        )
        facets = Facets(
            tuple((r[0], r[2]) for r in runs),
            tuple(sorted(stages)),
            tuple((m, n, v, c) for m, n, v, c in labels if v != "false" or n == "flag"),
        )
        with self._lock:
            self._facets = (time.monotonic(), facets)
        return facets

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def _json_field(config: str, key: str) -> str | None:
    try:
        value = json.loads(config).get(key)
    except (ValueError, AttributeError):
        return None
    return str(value) if value is not None else None


def _summary(r: Sequence[Any]) -> Summary:
    return Summary(
        run_id=r[0],
        idx=r[1],
        env=r[2],
        stage=r[3],
        policy=r[4],
        verdict=r[5],
        reward=r[6],
        caught=None if r[7] is None else bool(r[7]),
        pays=bool(r[8]),
        turns=r[9],
    )
