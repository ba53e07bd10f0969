"""Shared fixtures: the sandbox backend, skipped with a clear reason when bubblewrap cannot run."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

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
    return [
        (r.idx, r.variant, r.verdict, r.reward, r.caught, sorted(r.diffs),
         [t.get("command") for t in r.transcript], r.details.get("hiding_forms"))
        for r in store.episodes(run_id, limit=1000)
    ]  # fmt: skip


@pytest.fixture
def outcomes() -> Callable[[Store, str], list[tuple[object, ...]]]:
    """Each stored episode of a run as what another backend must reproduce on the same
    seed: index, variant, verdict, readings, changed files, commands, hiding forms."""
    return _outcomes
