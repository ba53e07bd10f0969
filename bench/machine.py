"""Machine-wide CPU time, shared by the benchmarks.

`getrusage` misses what the sandboxes' own init processes reap inside their pid
namespaces and the kernel's namespace teardown; /proc/stat sees all of it (and
everything else the machine runs, so measure on a quiet machine).
"""

from __future__ import annotations

import os


def machine_cpu_seconds() -> float:
    """Busy CPU seconds of the whole machine since boot (all but idle and iowait)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:8]]
    busy = sum(fields) - fields[3] - fields[4]
    return busy / os.sysconf("SC_CLK_TCK")


def machine_events() -> tuple[int, int]:
    """(page faults, context switches) of the whole machine since boot.

    Unlike CPU time these hardly depend on what else the host runs, so on a shared
    machine they show a change that is smaller than the run-to-run noise.
    """
    faults = switches = 0
    with open("/proc/vmstat") as f:
        for line in f:
            if line.startswith("pgfault "):
                faults = int(line.split()[1])
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("ctxt "):
                switches = int(line.split()[1])
    return faults, switches
