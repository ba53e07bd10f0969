"""Shared fixtures: the sandbox backend, skipped with a clear reason when bubblewrap cannot run."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from subterfuge.sandbox import SandboxBackend, bwrap_available, get_backend


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
