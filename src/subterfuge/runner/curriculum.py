"""The whole curriculum with several policies: one resumable run per (stage, policy)."""

from __future__ import annotations

from collections.abc import Sequence

from subterfuge.envs.base import Environment
from subterfuge.policy.base import Policy
from subterfuge.runner.local import RunPlan, run_local
from subterfuge.sandbox.base import Limits, SandboxBackend
from subterfuge.store import Store


def curriculum_run_id(prefix: str, env: str, policy: str) -> str:
    return f"{prefix}-{env}-{policy}"


async def run_curriculum(
    store: Store,
    backend: SandboxBackend,
    envs: Sequence[Environment],
    policies: Sequence[Policy],
    *,
    n: int,
    concurrency: int = 16,
    prefix: str = "demo",
    limits: Limits | None = None,
    progress: bool | None = None,
) -> list[str]:
    """Run every (env, policy) pair in curriculum order; returns the run ids."""
    ids: list[str] = []
    for env in envs:
        for policy in policies:
            plan = RunPlan(
                run_id=curriculum_run_id(prefix, env.name, policy.name),
                env=env,
                policy=policy,
                n=n,
                concurrency=concurrency,
                limits=limits or Limits(),
            )
            await run_local(plan, backend, store, progress=progress)
            ids.append(plan.run_id)
    return ids
