"""Export runs for other tools: JSON Lines or Parquet, one row per episode.

Each row holds the episode's identity (run, index, environment, stage,
variant, policy, seed), its three readings (verdict, visible reward, the
oversight result `caught`, whether the bonus was paid), its monitor labels,
and the episode itself (prompt, transcript, hidden reasoning per turn, diffs,
verdict details), so pandas, DuckDB or Hugging Face `datasets` can take over.

Runs are read a page at a time and written as they are read (a Parquet row
group per page), so an export of any size runs in constant memory. Parquet
columns have a fixed schema; the few free-form values (verdict details, label
evidence, transcript keys beyond the known ones) travel as JSON text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from subterfuge.store import EpisodeRecord, Store
from subterfuge.store.labels import Label, Labels

Format = Literal["jsonl", "parquet"]
FORMATS: tuple[Format, ...] = ("jsonl", "parquet")
PAGE = 1024

_TURN_KEYS = (
    "role", "kind", "text", "command", "error", "stdout", "stderr", "exit_code",
    "timed_out", "truncated", "seconds", "finish", "tool_call",
)  # fmt: skip


@dataclass(frozen=True)
class ExportResult:
    path: Path
    rows: int
    runs: tuple[str, ...]


def episode_row(rec: EpisodeRecord, labels: Sequence[Label]) -> dict[str, Any]:
    """One episode as a plain JSON-ready row (the JSON Lines form)."""
    return {
        "run_id": rec.run_id,
        "idx": rec.idx,
        "env": rec.env,
        "stage": rec.stage.value,
        "variant": rec.variant,
        "policy": rec.policy,
        "seed": rec.seed,
        "verdict": rec.verdict.value,
        "reward": rec.reward,
        "caught": rec.caught,
        "pays": rec.pays,
        "turns": rec.turns,
        "error": rec.error,
        "labels": [
            {"monitor": x.monitor, "name": x.name, "value": x.value, "evidence": x.evidence}
            for x in labels
        ],
        "prompt": rec.prompt,
        "transcript": rec.transcript,
        "reasoning": rec.reasoning,
        "diffs": rec.diffs,
        "details": rec.details,
        "timings": rec.timings,
        "usage": dict(rec.usage),
        "cost": rec.cost,
        "started": rec.started,
        "ended": rec.ended,
    }


def _pages(store: Store, run_ids: Sequence[str]) -> Iterator[list[dict[str, Any]]]:
    labels = Labels(store)
    for run_id in run_ids:
        for page in store.episode_pages(run_id, PAGE):
            by_idx = labels.of_episodes(run_id, [r.idx for r in page])
            yield [episode_row(r, by_idx.get(r.idx, [])) for r in page]


def _parquet_schema() -> Any:
    import pyarrow as pa  # type: ignore[import-untyped]

    string_map = pa.map_(pa.string(), pa.string())
    turn = pa.struct(
        [
            ("role", pa.string()), ("kind", pa.string()), ("text", pa.string()),
            ("command", pa.string()), ("error", pa.string()), ("stdout", pa.string()),
            ("stderr", pa.string()), ("exit_code", pa.int64()), ("timed_out", pa.bool_()),
            ("truncated", pa.bool_()), ("seconds", pa.float64()), ("finish", pa.string()),
            ("tool_call", pa.string()), ("usage", pa.map_(pa.string(), pa.int64())),
            ("extra", pa.string()),
        ]
    )  # fmt: skip
    label = pa.struct(
        [("monitor", pa.string()), ("name", pa.string()), ("value", pa.string()),
         ("evidence", pa.string())]
    )  # fmt: skip
    return pa.schema(
        [
            ("run_id", pa.string()), ("idx", pa.int64()), ("env", pa.string()),
            ("stage", pa.string()), ("variant", pa.int64()), ("policy", pa.string()),
            ("seed", pa.int64()), ("verdict", pa.string()), ("reward", pa.float64()),
            ("caught", pa.bool_()), ("pays", pa.bool_()), ("turns", pa.int64()),
            ("error", pa.string()), ("labels", pa.list_(label)),
            ("prompt", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
            ("transcript", pa.list_(turn)), ("reasoning", pa.list_(pa.string())),
            ("diffs", string_map), ("details", pa.string()),
            ("timings", pa.map_(pa.string(), pa.float64())),
            ("usage", pa.map_(pa.string(), pa.int64())), ("cost", pa.float64()),
            ("started", pa.float64()), ("ended", pa.float64()),
        ]
    )  # fmt: skip


def _parquet_row(row: dict[str, Any]) -> dict[str, Any]:
    """The JSON Lines row reshaped to the fixed Parquet schema."""
    out = dict(row)
    out["details"] = json.dumps(row["details"], ensure_ascii=False)
    out["labels"] = [
        {**x, "evidence": json.dumps(x["evidence"], ensure_ascii=False)} for x in row["labels"]
    ]
    out["prompt"] = [{"role": m.get("role"), "content": m.get("content")} for m in row["prompt"]]
    turns = []
    for entry in row["transcript"]:
        turn = {k: entry.get(k) for k in _TURN_KEYS}
        for key in ("command", "error", "finish", "tool_call"):
            turn[key] = None if turn[key] is None else str(turn[key])
        turn["usage"] = (
            list(entry["usage"].items()) if isinstance(entry.get("usage"), dict) else None
        )
        extra = {k: v for k, v in entry.items() if k not in _TURN_KEYS and k != "usage"}
        turn["extra"] = json.dumps(extra, ensure_ascii=False) if extra else None
        turns.append(turn)
    out["transcript"] = turns
    out["diffs"] = list(row["diffs"].items())
    out["timings"] = list(row["timings"].items())
    out["usage"] = list(row["usage"].items())
    return out


def export(
    store: Store,
    run_ids: Sequence[str],
    path: str | Path,
    fmt: Format = "jsonl",
    *,
    on_page: Callable[[int], None] | None = None,
) -> ExportResult:
    """Write every episode of `run_ids` to `path`; `on_page(rows)` reports progress."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    for run_id in run_ids:
        store.run(run_id)  # unknown runs fail before a file is started
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = 0
    if fmt == "jsonl":
        with out.open("w", encoding="utf-8") as fh:
            for page in _pages(store, run_ids):
                for row in page:
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                rows += len(page)
                if on_page:
                    on_page(len(page))
        return ExportResult(out, rows, tuple(run_ids))
    import pyarrow as pa
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    schema = _parquet_schema()
    with pq.ParquetWriter(out, schema, compression="zstd") as writer:
        for page in _pages(store, run_ids):
            table = pa.Table.from_pylist([_parquet_row(r) for r in page], schema=schema)
            writer.write_table(table)
            rows += len(page)
            if on_page:
                on_page(len(page))
        if rows == 0:
            writer.write_table(pa.Table.from_pylist([], schema=schema))
    return ExportResult(out, rows, tuple(run_ids))
