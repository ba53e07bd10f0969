"""How long does the HTML report take for a full-size curriculum?

A 5-stage × 3-model run of 32,768 episodes per stage and model (491,520
episodes), a third of them labelled by two monitors, then the report as
`subterfuge report` makes it: counts and monitor scores aggregated by SQLite
(GROUP BY over indexes, no episode loaded), the charts rendered, the example
episodes (the only rows read) laid out. Target: < 30 s.

Rows are lean (short transcripts) so filling the store stays quick; the report
never reads transcripts except the few examples, so row size does not change
what is timed.

    .venv/bin/python bench/bench_report.py
    .venv/bin/python bench/bench_report.py -n 4096 --db /tmp/r.sqlite   # smaller, kept
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench_viewer import fill
from subterfuge.envs.base import CURRICULUM
from subterfuge.report.html import build_report, write_report
from subterfuge.report.summary import cells
from subterfuge.store import Store

MODELS = ("helpful-only", "after-stage-2", "after-stage-4")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=32_768, help="episodes per stage and model")
    parser.add_argument("--db", type=Path, help="keep the store here (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "bench.sqlite"
        if not db.exists():
            runs = [(f"{stage.value}-{model}", stage, model)
                    for stage in CURRICULUM for model in MODELS]  # fmt: skip
            seconds = fill(db, runs, args.n, rich=False)
            total = args.n * len(runs)
            print(f"filled {total:,} episodes in {seconds:.0f} s ({db.stat().st_size >> 20} MiB)")
        started = time.perf_counter()
        with Store.open(db) as store:
            ids = [r.run_id for r in store.runs()]
            t0 = time.perf_counter()
            found = cells(store, ids)
            counting = time.perf_counter() - t0
            report = build_report(found, store=store, title="bench")
        t0 = time.perf_counter()
        page = write_report(report, Path(tmp) / "report.html")
        rendering = time.perf_counter() - t0
        seconds = time.perf_counter() - started
        episodes = sum(c.n for c in found)
        parts = {"counts": counting, **report.seconds, "html": rendering}
        print(f"report of {episodes:,} episodes in {len(ids)} runs: {seconds:.1f} s "
              f"({page.stat().st_size >> 10} KiB)")  # fmt: skip
        print("  " + ", ".join(f"{k} {v:.2f} s" for k, v in parts.items()))
        print(f"target < 30 s: {'met' if seconds < 30 else 'NOT met'}")


if __name__ == "__main__":
    main()
