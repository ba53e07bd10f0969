"""Validate environments with policies whose verdicts are known in advance.

Every scripted oracle declares the verdict it must receive in each stage; an
environment whose judge disagrees with any of them is broken and must not score
a model. Episodes run with the real sandbox and the real parser.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from subterfuge.envs.base import Environment, Verdict
from subterfuge.policy.scripted import ScriptedPolicy
from subterfuge.rollout.episode import EpisodeTask, run_episode
from subterfuge.sandbox.base import Limits, SandboxBackend


@dataclass(frozen=True)
class Check:
    """One episode of the selftest and whether its verdict was the expected one."""

    env: str
    policy: str
    episode: int
    variant: int
    expected: Verdict
    got: Verdict
    error: str | None

    @property
    def ok(self) -> bool:
        return self.expected == self.got


async def selftest(
    envs: Sequence[Environment],
    policies: Sequence[ScriptedPolicy],
    backend: SandboxBackend,
    *,
    episodes: int = 6,
    concurrency: int = 8,
    limits: Limits | None = None,
) -> list[Check]:
    """Run `episodes` episodes of each (env, policy) pair that makes a claim; spread variants."""
    jobs: list[tuple[Environment, ScriptedPolicy, int, int]] = []
    for env in envs:
        for policy in policies:
            if not policy.supports(env.stage):
                continue
            stride = max(1, env.n_variants // episodes)
            for i in range(episodes):
                jobs.append((env, policy, i, (i * stride) % max(1, env.n_variants)))
    gate = asyncio.Semaphore(concurrency)

    async def one(env: Environment, policy: ScriptedPolicy, i: int, variant: int) -> Check | None:
        async with gate:
            expected = policy.expected(env.build(variant), i)
            if expected is None:
                return None
            task = EpisodeTask("selftest", i, variant, 0)
            record = await run_episode(env, policy, backend, task, limits)
            return Check(env.name, policy.name, i, variant, expected, record.verdict, record.error)

    results = await asyncio.gather(*(one(*job) for job in jobs))
    return [r for r in results if r is not None]
