"""Shared fixtures: the sandbox backend, skipped with a clear reason when bubblewrap cannot run."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from subterfuge.envs.registry import get_environment
from subterfuge.policy.scripted import scripted_policy
from subterfuge.runner.local import RunPlan, RunResult, run_local
from subterfuge.sandbox import SandboxBackend, bwrap_available, get_backend
from subterfuge.store import Store


@pytest.fixture(scope="session")
def bwrap() -> SandboxBackend:
    ok, why = bwrap_available()
    if not ok:
        pytest.skip(f"bubblewrap unavailable ({why}); install it: apt-get install bubblewrap")
    return get_backend("bwrap")


def _stored(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM episodes").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


@pytest.fixture
def stored() -> Callable[[Path], int]:
    """Episodes stored so far in a run database another process is writing (0 before it
    exists or while it is locked): for tests that interrupt a run mid-way."""
    return _stored


def _outcomes(store: Store, run_id: str) -> list[tuple[object, ...]]:
    """Each stored episode of a run as what another backend must reproduce on the same
    seed: index, variant, verdict, readings, changed files, commands, hiding forms."""
    return [
        (r.idx, r.variant, r.verdict, r.reward, r.caught, sorted(r.diffs),
         [t.get("command") for t in r.transcript], r.details.get("hiding_forms"))
        for r in store.episodes(run_id, limit=1000)
    ]  # fmt: skip


SpreadRun = Callable[[RunPlan], Awaitable[RunResult]]
SameAsOneProcess = Callable[[Store, SpreadRun], Awaitable[tuple[RunPlan, RunResult]]]


@pytest.fixture
def same_as_one_process(bwrap: SandboxBackend) -> SameAsOneProcess:
    """Nine hider episodes (seed 5) in this process, then the same plan through `run`
    (another backend): each must be stored as in one process; the plan and result return."""

    async def check(store: Store, run: SpreadRun) -> tuple[RunPlan, RunResult]:
        env = get_environment("reward_tampering")
        one = RunPlan("one", env, scripted_policy("hider"), 9, seed=5, concurrency=4)
        await run_local(one, bwrap, store, progress=False)
        spread = RunPlan("spread", env, scripted_policy("hider"), 9, seed=5, concurrency=4)
        result = await run(spread)
        assert result.episodes == 9 and result.new == 9
        assert _outcomes(store, "spread") == _outcomes(store, "one")
        assert store.run("spread").finished is not None
        return spread, result

    return check
