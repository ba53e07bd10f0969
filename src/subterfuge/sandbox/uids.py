"""Host uids for sandboxes, so a root harness can still limit processes per episode."""

from __future__ import annotations

import os
import threading

from subterfuge.sandbox.base import SandboxError

POOL_BASE = 200_000
"""First uid handed out; `POOL_BASE + slot` must be unused on the host (no passwd entry)."""
POOL_SIZE = 4096


class UidPool:
    """Free list of uids; a uid is reused only after its sandbox's processes are dead."""

    def __init__(self, base: int = POOL_BASE, size: int = POOL_SIZE) -> None:
        self._free = list(range(base + size - 1, base - 1, -1))
        self._lock = threading.Lock()

    def acquire(self) -> int:
        with self._lock:
            if not self._free:
                raise SandboxError("no free sandbox uid: too many sandboxes open at once")
            return self._free.pop()

    def release(self, uid: int) -> None:
        with self._lock:
            self._free.append(uid)


def user_processes(uid: int) -> int:
    """How many processes `uid` runs now (for the non-root, pre-5.14 fallback)."""
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat(follow_symlinks=False).st_uid == uid:
                    count += 1
            except OSError:
                continue
    return count
