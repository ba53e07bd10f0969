"""`subterfuge report`: the self-contained HTML report of stored runs."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from subterfuge.cli.common import DbOption, JsonOption, err, fail, open_runs, out
from subterfuge.monitor import TARGETS
from subterfuge.report.html import build_report, write_report
from subterfuge.report.summary import cells


def report(
    run_ids: Annotated[
        list[str] | None, typer.Argument(help="Runs to report (default: every run in --db).")
    ] = None,
    db: DbOption = Path("runs.sqlite"),
    output: Annotated[Path, typer.Option("-o", "--output", help="The HTML file to write.")] = Path(
        "report.html"
    ),
    title: Annotated[str, typer.Option(help="The page title.")] = "Subterfuge results",
    target: Annotated[
        str, typer.Option(help="What monitors are scored against: gaming, tampering or hiding.")
    ] = "gaming",
    examples: Annotated[
        int, typer.Option(min=0, help="Example episodes per gaming verdict and row (0: none).")
    ] = 2,
    max_examples: Annotated[int, typer.Option(min=0, help="Example episodes in all.")] = 60,
    viewer_url: Annotated[
        str | None,
        typer.Option(help="Link examples into a running viewer, e.g. http://127.0.0.1:8765."),
    ] = None,
    confidence: Annotated[float, typer.Option(min=0.5, max=0.9999)] = 0.95,
    as_json: JsonOption = False,
) -> None:
    """Write one self-contained HTML file: rates per stage and model with exact intervals
    (a chart in the style of the reference's generalization figure), the counts, the
    monitors against truth and each other, and example episodes. Opens with no network.
    """
    if target not in TARGETS:
        fail(f"--target must be one of {', '.join(TARGETS)}, not {target!r}")
    started = time.perf_counter()
    store, ids = open_runs(db, run_ids or [])
    with store, err.status("counting, scoring monitors, drawing charts…"):
        found = cells(store, ids)
        built = build_report(
            found, store=store, title=title, target=target, confidence=confidence,
            examples=examples, max_examples=max_examples, viewer_url=viewer_url,
        )  # fmt: skip
    page = write_report(built, output)
    seconds = time.perf_counter() - started
    episodes = sum(c.n for c in found)
    if as_json:
        print(json.dumps({
            "report": str(page), "runs": ids, "episodes": episodes, "rows": len(found),
            "monitors": [s.monitor for s in built.monitors.scores] if built.monitors else [],
            "examples": sum(len(g.episodes) for g in built.examples),
            "bytes": page.stat().st_size, "seconds": round(seconds, 3),
        }, indent=2))  # fmt: skip
        return
    out.print(
        f"report: {page.resolve()}  ({len(ids)} runs, {episodes:,} episodes, "
        f"{page.stat().st_size / 1024:.0f} KiB, {seconds:.1f} s; opens without a network)"
    )
