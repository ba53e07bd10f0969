"""Many episodes on one machine: bounded concurrency, batched writes, exact resume.

A run is identified by its id in the store. Episode `i` of a run always uses
the same variant, so re-running the same command after a crash (even `kill -9`)
skips the episodes already stored and redoes only the missing ones; the store's
primary key (run id, index) makes a duplicate impossible.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from subterfuge.envs.base import Environment, Verdict
from subterfuge.policy.base import Policy
from subterfuge.rollout.episode import EpisodeTask, run_episode
from subterfuge.sandbox.base import Limits, SandboxBackend
from subterfuge.store import BatchWriter, Store
from subterfuge.store.records import EpisodeRecord


@dataclass(frozen=True)
class RunPlan:
    """What to run: `n` episodes of one policy in one environment."""

    run_id: str
    env: Environment
    policy: Policy
    n: int
    seed: int = 0
    concurrency: int = 16
    limits: Limits = field(default_factory=Limits)

    def config(self, backend: str) -> dict[str, Any]:
        """The settings that define the run; resuming with different ones is refused."""
        return {
            "env": self.env.name,
            "stage": self.env.stage.value,
            "policy": self.policy.name,
            "seed": self.seed,
            "n": self.n,
            "sandbox": backend,
            "limits": self.limits.__dict__,
        }

    def variant(self, index: int) -> int:
        return (index + self.seed) % max(1, self.env.n_variants)


@dataclass(frozen=True)
class RunResult:
    run_id: str
    episodes: int
    new: int
    verdicts: dict[str, int]
    seconds: float

    @property
    def rate(self) -> float:
        return self.new / self.seconds if self.seconds > 0 else 0.0


OnEpisode = Callable[[EpisodeRecord], None]


async def run_local(
    plan: RunPlan,
    backend: SandboxBackend,
    store: Store,
    *,
    progress: bool | None = None,
    on_episode: OnEpisode | None = None,
) -> RunResult:
    """Run every episode of `plan` not already in `store`; returns the run's totals."""
    store.create_run(plan.run_id, plan.config(backend.name))
    done = store.done_indices(plan.run_id)
    todo = [i for i in range(plan.n) if i not in done]
    show = sys.stderr.isatty() if progress is None else progress
    started = time.perf_counter()
    async with BatchWriter(store) as writer:
        with _progress(show) as bar:
            task_id = bar.add_task(f"{plan.env.name} × {plan.policy.name}", total=plan.n)
            bar.update(task_id, completed=len(done))
            pending: Iterator[int] = iter(todo)

            async def worker() -> None:
                for index in pending:
                    task = EpisodeTask(plan.run_id, index, plan.variant(index), plan.seed)
                    record = await run_episode(plan.env, plan.policy, backend, task, plan.limits)
                    await writer.put(record)
                    if on_episode is not None:
                        on_episode(record)
                    bar.update(task_id, advance=1)

            workers = [asyncio.create_task(worker()) for _ in range(max(1, plan.concurrency))]
            try:
                await asyncio.gather(*workers)
            finally:
                for w in workers:
                    w.cancel()
    seconds = time.perf_counter() - started
    if len(store.done_indices(plan.run_id)) >= plan.n:
        store.finish_run(plan.run_id)
    counts = summed_verdicts(store, plan.run_id)
    return RunResult(plan.run_id, sum(counts.values()), len(todo), counts, seconds)


def summed_verdicts(store: Store, run_id: str) -> dict[str, int]:
    """Verdict counts over the whole run, every verdict name present (zeros included)."""
    totals = {v.value: 0 for v in Verdict}
    for counts in store.verdict_counts(run_id).values():
        for verdict, count in counts.items():
            totals[verdict] = totals.get(verdict, 0) + count
    return totals


def _progress(show: bool) -> Progress:
    """Progress on stderr, so `--json` output on stdout stays clean."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not show,
    )
