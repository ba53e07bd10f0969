"""Isolated workspaces for agent episodes: `bwrap` (default) or `plain` (no isolation)."""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import cache
from typing import Any

from subterfuge.sandbox.base import CommandResult, Limits, Sandbox, SandboxBackend, SandboxError
from subterfuge.sandbox.bwrap import BwrapBackend
from subterfuge.sandbox.plain import PlainBackend
from subterfuge.sandbox.uids import POOL_BASE

__all__ = [
    "BwrapBackend",
    "CommandResult",
    "Limits",
    "PlainBackend",
    "Sandbox",
    "SandboxBackend",
    "SandboxError",
    "bwrap_available",
    "close_backend",
    "get_backend",
]

BACKENDS: dict[str, Any] = {"bwrap": BwrapBackend, "plain": PlainBackend}
_HINT = "install it with: apt-get install bubblewrap"


def get_backend(name: str, **kw: Any) -> SandboxBackend:
    """The backend called `name`, constructed with `kw`."""
    try:
        cls = BACKENDS[name]
    except KeyError:
        raise ValueError(
            f"unknown sandbox backend {name!r}; choose one of: {', '.join(BACKENDS)}"
        ) from None
    backend: SandboxBackend = cls(**kw)
    return backend


def close_backend(backend: SandboxBackend) -> None:
    """Remove the warm sandboxes a backend keeps (bwrap's slots) now: a worker process
    about to be killed or to exit leaves no time for the finalizer that does it at exit."""
    close = getattr(backend, "close", None)
    if close is not None:
        close()


@cache
def bwrap_available() -> tuple[bool, str]:
    """Whether bwrap exists and a trivial sandbox really starts (as the pool uid if root)."""
    path = shutil.which("bwrap")
    if path is None:
        return False, f"bwrap is not installed; {_HINT}"
    argv = [path, "--unshare-all", "--unshare-user", "--disable-userns", "--uid", "0"]
    argv += ["--gid", "0", "--cap-drop", "ALL", "--die-with-parent", "--ro-bind", "/", "/"]
    argv += ["--proc", "/proc", "--dev", "/dev", "--", "true"]
    ids: dict[str, Any] = {}
    if os.geteuid() == 0:
        ids = {"user": POOL_BASE, "group": POOL_BASE, "extra_groups": []}
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False, **ids)
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"bwrap could not be run: {exc}; {_HINT}"
    if res.returncode != 0:
        why = res.stderr.strip() or f"exit code {res.returncode}"
        return False, (
            f"bwrap is installed but cannot create a sandbox here ({why}); user namespaces "
            "may be disabled (sysctl kernel.unprivileged_userns_clone / "
            "user.max_user_namespaces, or an AppArmor policy); otherwise " + _HINT
        )
    return True, "ok"
