"""`subterfuge export`: runs as JSON Lines or Parquet, one row per episode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from subterfuge.cli.common import DbOption, JsonOption, fail, open_runs, out
from subterfuge.export import FORMATS
from subterfuge.export import export as export_runs
from subterfuge.progress import stderr_progress


def export(
    run_ids: Annotated[list[str], typer.Argument(help="Runs to export.")],
    db: DbOption = Path("runs.sqlite"),
    fmt: Annotated[str, typer.Option("--format", help="jsonl or parquet.")] = "jsonl",
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="File to write (default: RUN.jsonl / RUN.parquet)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """One row per episode: stage, policy, verdict, reward, oversight, labels, transcript.

    Readable by pandas (`read_json(lines=True)` / `read_parquet`), DuckDB and
    Hugging Face `datasets`. Large runs stream: constant memory.
    """
    if fmt not in FORMATS:
        fail(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    target = output or Path(f"{run_ids[0] if len(run_ids) == 1 else 'export'}.{fmt}")
    store, ids = open_runs(db, run_ids)
    with store:
        total = sum(store.run(r).episodes for r in ids)
        with stderr_progress(not as_json, eta=False) as progress:
            task = progress.add_task("export", total=total)
            try:
                result = export_runs(
                    store, ids, target, fmt,
                    on_page=lambda n: progress.advance(task, n),
                )  # fmt: skip
            except ImportError as exc:
                fail(f"--format parquet needs pyarrow (pip install pyarrow): {exc}")
    size = result.path.stat().st_size
    if as_json:
        print(json.dumps({"path": str(result.path), "rows": result.rows, "runs": list(ids),
                          "format": fmt, "bytes": size}, indent=2))  # fmt: skip
        return
    out.print(f"{result.rows:,} episodes → {result.path} ({size / 1024:.0f} KiB, {fmt})")
