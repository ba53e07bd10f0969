"""Harness speed: reward-tampering episodes with the `hider` policy, isolation on.

Every episode creates a bubblewrap sandbox, runs the hider's shell commands in
a persistent shell, snapshots on the host, grades in the sandbox (reward,
oversight, the harness's probe), snapshots again, judges and stores the record
in SQLite. Prints episodes
per second and the machine's CPU time per episode, and the harness process's share;
and the machine's page faults and context switches per episode, which a noisy
neighbour hardly changes (compare versions by those when the CPU figures swing).
On a machine with more cores, `taskset -c 0,1` gives the 2-core figure.

    .venv/bin/python bench/bench_harness.py [-n 2000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import tempfile
import time
from pathlib import Path

from machine import machine_cpu_seconds, machine_events
from subterfuge.envs.tampering import RewardTampering
from subterfuge.policy.scripted import scripted_policy
from subterfuge.runner.local import RunPlan, run_local
from subterfuge.sandbox import get_backend
from subterfuge.store import Store


def harness_cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="episodes")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--policy", default="hider")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "bench.sqlite")
        plan = RunPlan("bench", RewardTampering(), scripted_policy(args.policy), args.n,
                       concurrency=args.concurrency)  # fmt: skip
        cpu0, own0, t0 = machine_cpu_seconds(), harness_cpu_seconds(), time.perf_counter()
        events0 = machine_events()
        result = asyncio.run(run_local(plan, get_backend("bwrap"), store, progress=False))
        wall = time.perf_counter() - t0
        cpu, own = machine_cpu_seconds() - cpu0, harness_cpu_seconds() - own0
        faults, switches = (b - a for a, b in zip(events0, machine_events(), strict=True))
        store.close()
    print(f"episodes:            {result.episodes}")
    print(f"verdicts:            { ({k: v for k, v in result.verdicts.items() if v}) }")
    print(f"wall time:           {wall:.2f} s")
    print(f"episodes per second: {result.episodes / wall:.1f}")
    print(f"CPU per episode:     {1000 * cpu / result.episodes:.1f} ms (whole machine)")
    print(f"  harness process:   {1000 * own / result.episodes:.1f} ms")
    print(f"page faults/episode: {faults / result.episodes:.0f} (whole machine)")
    print(f"context switches:    {switches / result.episodes:.0f} per episode (whole machine)")
    print(f"cores usable:        {len(os.sched_getaffinity(0))} of {os.cpu_count()}")


if __name__ == "__main__":
    main()
