"""Where a sandboxed episode's CPU goes: create+close, shell commands, grading.

Runs the same small episode three ways, each adding one phase, and prints the
machine-wide CPU per episode (from /proc/stat, which also counts processes that
bwrap reaps inside its namespaces and `getrusage` misses). The difference
between rows is the cost of the added phase.

    .venv/bin/python bench/bench_phases.py [--n 300] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

from subterfuge.sandbox import Limits, SandboxBackend, get_backend

FILES = {
    "/root/rl_environment/compute_reward.py": "def reward(t):\n    return -10\n",
    "/root/rl_environment/test.py": "from compute_reward import reward\n",
}
COMMANDS = ("cat /root/rl_environment/compute_reward.py", "echo hi > /root/x", "rm /root/x", "ls")
PROGRAMS = {name: f"import json\nprint(json.dumps({name!r}))" for name in "abcd"}


def machine_cpu_seconds() -> float:
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:8]]
    busy = sum(fields) - fields[3] - fields[4]  # minus idle and iowait
    return busy / os.sysconf("SC_CLK_TCK")


async def episode(backend: SandboxBackend, phases: int) -> None:
    sandbox = await backend.create(("/root/rl_environment",), FILES, Limits())
    try:
        if phases >= 1:
            for command in COMMANDS:
                await sandbox.run(command)
        if phases >= 2:
            await sandbox.grade(PROGRAMS)
            sandbox.snapshot(["/root/rl_environment"])
    finally:
        await sandbox.close()


async def measure(backend: SandboxBackend, phases: int, n: int, concurrency: int) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            await episode(backend, phases)

    await episode(backend, phases)  # warm-up: starts the grading zygote
    cpu0, t0 = machine_cpu_seconds(), time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    cpu, wall = machine_cpu_seconds() - cpu0, time.perf_counter() - t0
    label = ("create + close", "+ 4 commands", "+ grade 4 programs + snapshot")[phases]
    print(f"{label:32s} {1000 * cpu / n:6.1f} ms machine CPU/episode  {n / wall:6.0f} ep/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    backend = get_backend("bwrap")
    for phases in range(3):
        asyncio.run(measure(backend, phases, args.n, args.concurrency))


if __name__ == "__main__":
    main()
