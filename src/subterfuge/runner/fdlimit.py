"""Room for the open files a run needs: each episode in flight holds several.

An episode in flight holds its sandbox's socket to pid 1, pid 1's pidfd and
stderr, the shell's three pipes, a grading pipe and, for a model policy, an HTTP
connection; idle warm sandboxes keep the first three. A soft limit of 1,024 open files (a common
default) therefore breaks a run of a few hundred concurrent episodes with
`EMFILE`, each failure recorded as an `error` episode. The hard limit is
usually far higher and a process may raise its soft limit up to it, so a run
does that first, and warns when even the hard limit is short.
"""

from __future__ import annotations

import resource
import warnings

PER_EPISODE = 12
"""Descriptors an episode in flight may hold (measured ~8; with a margin)."""
BASE = 256
"""The harness's own: the store, the event loop, the provider's pool, Python's."""


def needed(concurrency: int) -> int:
    """Open files a run of `concurrency` episodes in flight may hold."""
    return BASE + PER_EPISODE * max(1, concurrency)


def ensure_open_files(concurrency: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE so `concurrency` episodes fit; the new soft limit.

    Never lowers it. Warns (RuntimeWarning) when the hard limit leaves too few.
    """
    want = needed(concurrency)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= want:
        return soft
    target = want if hard == resource.RLIM_INFINITY else min(hard, want)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < want:
        warnings.warn(
            f"{concurrency} episodes in flight may need {want} open files, but this process "
            f"may open at most {target} (hard limit); episodes past it end as `error` with "
            f"'Too many open files'. Raise the hard limit (ulimit -Hn) or lower --concurrency.",
            RuntimeWarning,
            stacklevel=2,
        )
    return target
