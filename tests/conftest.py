"""Shared fixtures: the sandbox backend, skipped with a clear reason when bubblewrap cannot run."""

from __future__ import annotations

import pytest

from subterfuge.sandbox import SandboxBackend, bwrap_available, get_backend


@pytest.fixture(scope="session")
def bwrap() -> SandboxBackend:
    ok, why = bwrap_available()
    if not ok:
        pytest.skip(f"bubblewrap unavailable ({why}); install it: apt-get install bubblewrap")
    return get_backend("bwrap")
