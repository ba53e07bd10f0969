"""Where a sandboxed episode's CPU goes: create+close, shell commands, grading.

Runs the same small episode several ways, each adding one phase, and prints the
machine-wide CPU per episode (from /proc/stat, which also counts processes that
bwrap reaps inside its namespaces and `getrusage` misses). The difference
between rows is the cost of the added phase; the grading rows, one per count in
`--programs`, split grading into its fixed part and its cost per program.

    .venv/bin/python bench/bench_phases.py [--n 300] [--concurrency 8] [--programs 1,4,8]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from machine import machine_cpu_seconds
from subterfuge.sandbox import Limits, SandboxBackend, get_backend

FILES = {
    "/root/rl_environment/compute_reward.py": "def reward(t):\n    return -10\n",
    "/root/rl_environment/test.py": "from compute_reward import reward\n",
}
COMMANDS = ("cat /root/rl_environment/compute_reward.py", "echo hi > /root/x", "rm /root/x", "ls")


def programs(k: int) -> dict[str, str]:
    # Only what pid 1 has loaded: `json` (what these programs imported until 2026-11-23)
    # brings `re` and `enum`, ~15 ms of compiling regular expressions in every program
    # since pid 1 stopped preloading it.
    return {f"p{i}": f"import sys\nprint(sys.version_info[0] + {i})" for i in range(k)}


async def episode(backend: SandboxBackend, phases: int, k: int) -> None:
    sandbox = await backend.create(("/root/rl_environment",), FILES, Limits())
    try:
        if phases >= 1:
            for command in COMMANDS:
                await sandbox.run(command)
        if phases >= 2:
            await sandbox.grade(programs(k))
            sandbox.snapshot(["/root/rl_environment"])
    finally:
        await sandbox.close()


async def measure(backend: SandboxBackend, phases: int, k: int, n: int, concurrency: int) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            await episode(backend, phases, k)

    # warm-up: boots as many sandboxes as run at once (they are reused from then on)
    await asyncio.gather(*(episode(backend, 2, 1) for _ in range(concurrency)))
    cpu0, t0 = machine_cpu_seconds(), time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    cpu, wall = machine_cpu_seconds() - cpu0, time.perf_counter() - t0
    label = ("create + close", "+ 4 commands", f"+ grade {k} programs + snapshot")[phases]
    print(f"{label:32s} {1000 * cpu / n:6.1f} ms machine CPU/episode  {n / wall:6.0f} ep/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--programs", default="4", help="grading program counts, e.g. 1,4,8")
    args = parser.parse_args()
    backend = get_backend("bwrap")
    for phases in (0, 1):
        asyncio.run(measure(backend, phases, 0, args.n, args.concurrency))
    for k in (int(x) for x in args.programs.split(",")):
        asyncio.run(measure(backend, 2, k, args.n, args.concurrency))


if __name__ == "__main__":
    main()
