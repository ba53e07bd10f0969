"""`--backend ray`: episodes (their sandboxes and model calls) spread over a Ray cluster.

The driver is the local runner's (`run_episodes`): it resumes from the store,
keeps `concurrency` episodes in flight, batches the writes and shows progress.
Only running an episode moves: each Ray worker is an async actor holding the
environment, the policy and a sandbox backend, and runs many episodes at once
on its node. Episode `i` gets the same variant and seeds as locally, so the
verdicts match the local backend's on the same seed. The per-model request
limit is shared out between the actors. Nodes need Subterfuge (and bubblewrap)
installed; the API key travels inside the policy, not through node
environments.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import ray

from subterfuge.envs.base import Environment
from subterfuge.policy.base import Policy, close_policy, shared_policy
from subterfuge.policy.errors import ProviderError
from subterfuge.rollout.episode import EpisodeBudget, EpisodeTask, run_episode
from subterfuge.runner.fdlimit import ensure_open_files
from subterfuge.runner.local import OnEpisode, RunPlan, RunResult, run_episodes
from subterfuge.sandbox import close_backend, get_backend
from subterfuge.sandbox.base import Limits
from subterfuge.sandbox.plain import ONE_PROCESS
from subterfuge.store import Store
from subterfuge.store.records import EpisodeRecord


@ray.remote
class EpisodeWorker:
    """Runs episodes on one Ray worker process, many at a time (an async actor)."""

    def __init__(
        self,
        env: Environment,
        policy: Policy,
        backend: str,
        limits: Limits,
        budget: EpisodeBudget,
        concurrency: int,
    ) -> None:
        self.env, self.policy, self.limits, self.budget = env, policy, limits, budget
        ensure_open_files(concurrency)
        self.backend = get_backend(backend)

    async def run(self, task: EpisodeTask) -> EpisodeRecord:
        return await run_episode(
            self.env, self.policy, self.backend, task, self.limits, self.budget
        )

    async def close(self) -> None:
        """The policy's connections, and the warm sandboxes: the driver then kills this
        actor, which leaves no time for the finalizer that removes them at exit."""
        await close_policy(self.policy)
        close_backend(self.backend)


def run_ray(
    plan: RunPlan,
    backend: str,
    store: Store,
    *,
    address: str | None = None,
    workers: int | None = None,
    progress: bool | None = None,
    on_episode: OnEpisode | None = None,
) -> RunResult:
    """Run every episode of `plan` not already in `store` on Ray (local Ray when no address).

    `workers` defaults to the cluster's CPU count (at most one per episode in
    flight); the plain sandbox needs exactly one. A Ray started here is shut down
    at the end; one already running (e.g. `ray.init` by the caller) is left as it was.
    """
    if backend == "plain" and workers != 1:  # actors sharing a node would collide
        raise ValueError(f"{ONE_PROCESS}; use one Ray worker (or bwrap)")
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    actors: list[Any] = []
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))  # type: ignore[no-untyped-call]
        count = max(1, min(workers or cpus, plan.concurrency))
        per_actor = -(-plan.concurrency // count)
        policy = shared_policy(plan.policy, count)
        actors = [
            EpisodeWorker.options(max_concurrency=per_actor).remote(  # type: ignore[attr-defined]
                plan.env, policy, backend, plan.limits, plan.budget, per_actor
            )
            for _ in range(count)
        ]
        turn = itertools.cycle(actors)

        async def execute(task: EpisodeTask) -> EpisodeRecord:
            try:
                record: EpisodeRecord = await next(turn).run.remote(task)
            except ray.exceptions.RayTaskError as exc:
                if isinstance(exc.cause, ProviderError):
                    raise exc.cause from None
                raise
            return record

        async def drive() -> RunResult:
            try:
                return await run_episodes(
                    plan, store, execute, backend, progress=progress, on_episode=on_episode
                )
            finally:
                await asyncio.gather(*(a.close.remote() for a in actors), return_exceptions=True)

        return asyncio.run(drive())
    finally:
        for actor in actors:
            ray.kill(actor)
        if started_here:
            ray.shutdown()
