"""Label a stored run with monitors: paged, concurrent, resumable, stored in batches.

Episodes are read a page at a time (a run of 32,768 is never held in memory),
each monitor labels the episodes it has not labelled yet (so an interrupted
LLM-judge pass resumes where it stopped), and labels are written in batches
beside the verdicts, which they never change.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from subterfuge.monitor.base import FLAG, Finding, Monitor
from subterfuge.progress import stderr_progress
from subterfuge.store import EpisodeRecord, Store
from subterfuge.store.labels import Label, Labels

PAGE = 256


@dataclass
class MonitorTally:
    """What one monitor did in one pass over a run."""

    labelled: int = 0
    skipped: int = 0  # already labelled before this pass
    failed: int = 0  # the monitor gave no flag (an LLM judge that errored or was unreadable)
    failures: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LabelRunResult:
    run_id: str
    episodes: int
    tallies: dict[str, MonitorTally]
    seconds: float

    @property
    def failed(self) -> int:
        return sum(t.failed for t in self.tallies.values())


async def label_run(
    store: Store,
    run_id: str,
    monitors: Sequence[Monitor],
    *,
    concurrency: int = 16,
    relabel: bool = False,
    progress: bool | None = None,
) -> LabelRunResult:
    """Label every stored episode of `run_id` with every monitor; returns per-monitor tallies.

    With `relabel`, each monitor's earlier labels in the run are deleted first;
    otherwise episodes a monitor already flagged are skipped (resume). The
    caller owns the monitors' judges and closes them.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    labels = Labels(store)
    total = store.run(run_id).episodes
    if relabel:
        for m in monitors:
            labels.clear(run_id, m.name)
    done = {m.name: labels.labelled(run_id, m.name) for m in monitors}
    tallies = {m.name: MonitorTally(skipped=len(done[m.name])) for m in monitors}
    work = sum(total - len(done[m.name]) for m in monitors)
    limit = asyncio.Semaphore(concurrency)
    started = time.perf_counter()
    show = sys.stderr.isatty() if progress is None else progress

    async def one(monitor: Monitor, rec: EpisodeRecord) -> list[Label]:
        async with limit:
            findings = await monitor.label(rec)
        tally = tallies[monitor.name]
        if any(f.name == FLAG for f in findings):
            tally.labelled += 1
        else:
            tally.failed += 1
            if len(tally.failures) < 5:
                tally.failures.append(f"episode {rec.idx}: {_why(findings)}")
        return [
            Label(run_id, rec.idx, monitor.name, f.name, f.value, f.evidence_json())
            for f in findings
        ]

    with stderr_progress(show) as bar:
        task = bar.add_task(f"{run_id}: {', '.join(m.name for m in monitors)}", total=work)
        for page in store.episode_pages(run_id, PAGE):
            jobs = [one(m, rec) for rec in page for m in monitors if rec.idx not in done[m.name]]
            batch: list[Label] = []
            for finished in asyncio.as_completed(jobs):
                batch.extend(await finished)
                bar.advance(task)
            await asyncio.to_thread(labels.add, batch)
    return LabelRunResult(run_id, total, tallies, time.perf_counter() - started)


def _why(findings: Sequence[Finding]) -> str:
    return "; ".join(n for f in findings if (n := f.note or f.value)) or "no flag label"
