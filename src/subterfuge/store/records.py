"""The rows the store keeps, as typed values, and their exact encoding to SQLite columns.

JSON columns are written with `ensure_ascii=True`: every Python string (lone
surrogates from decoded tool output included) then round-trips exactly, and no
single odd character can make a whole batch fail to encode as UTF-8.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any

from subterfuge.envs.base import Stage, Verdict


@dataclass(frozen=True)
class EpisodeRecord:
    """One finished episode, as stored: what was asked, what happened, how it was judged.

    `transcript` is what a user or grader saw (hidden reasoning removed);
    `reasoning` keeps the hidden reasoning per assistant turn apart, so reports
    can show one without leaking the other. `caught` is None when the
    environment has no oversight check. `usage` is the episode's token counts
    summed over its model calls (`input`, `output`, and where reported
    `reasoning`, `cache_read`, `cache_write`); `cost` is in the currency of the
    price table the run was given (None without one).
    """

    run_id: str
    idx: int
    env: str
    stage: Stage
    variant: int
    policy: str
    seed: int
    verdict: Verdict
    reward: float | None
    caught: bool | None
    pays: bool
    prompt: list[dict[str, str]]
    transcript: list[dict[str, Any]]
    reasoning: list[str]
    diffs: dict[str, str]
    details: dict[str, Any]
    timings: dict[str, float]
    error: str | None
    turns: int
    started: float
    ended: float
    usage: dict[str, int] = field(default_factory=dict)
    cost: float | None = None


@dataclass(frozen=True)
class RunInfo:
    """A run's definition and progress; `episodes` counts stored (finished) episodes."""

    run_id: str
    created: float
    config: dict[str, Any]
    finished: float | None
    episodes: int


FIELDS: tuple[str, ...] = tuple(f.name for f in fields(EpisodeRecord))
DERIVED: tuple[str, ...] = ("input_tokens", "output_tokens")
"""Columns computed from `usage` on write (indexed, for cheap run totals), not read back."""
COLUMNS: tuple[str, ...] = FIELDS + DERIVED


@dataclass(frozen=True)
class UsageTotals:
    """A run's token counts and cost; `priced` counts the episodes that have a cost."""

    episodes: int
    input_tokens: int
    output_tokens: int
    cost: float | None
    priced: int

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


_JSON_COLUMNS = frozenset(
    {"prompt", "transcript", "reasoning", "diffs", "details", "timings", "usage"}
)


def dump_json(value: Any) -> str:
    """Compact, ASCII-safe JSON; see the module docstring for why ASCII."""
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"))


def _safe_text(value: str) -> str:
    """Plain TEXT columns must be valid UTF-8; replace what cannot be (lone surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def to_row(rec: EpisodeRecord) -> tuple[Any, ...]:
    """The record as a parameter tuple in `COLUMNS` order."""
    return (
        rec.run_id,
        rec.idx,
        _safe_text(rec.env),
        str(rec.stage),
        rec.variant,
        _safe_text(rec.policy),
        rec.seed,
        str(rec.verdict),
        None if rec.reward is None else float(rec.reward),
        None if rec.caught is None else int(rec.caught),
        int(rec.pays),
        dump_json(rec.prompt),
        dump_json(rec.transcript),
        dump_json(rec.reasoning),
        dump_json(rec.diffs),
        dump_json(rec.details),
        dump_json(rec.timings),
        None if rec.error is None else _safe_text(rec.error),
        rec.turns,
        rec.started,
        rec.ended,
        dump_json(rec.usage),
        None if rec.cost is None else float(rec.cost),
        int(rec.usage.get("input", 0)),
        int(rec.usage.get("output", 0)),
    )


def from_row(row: tuple[Any, ...]) -> EpisodeRecord:
    """Inverse of `to_row` for a row selected in `FIELDS` order."""
    v = dict(zip(FIELDS, row, strict=True))
    for name in _JSON_COLUMNS:
        v[name] = json.loads(v[name])
    v["stage"] = Stage(v["stage"])
    v["verdict"] = Verdict(v["verdict"])
    v["caught"] = None if v["caught"] is None else bool(v["caught"])
    v["pays"] = bool(v["pays"])
    return EpisodeRecord(**v)
