"""Memory of warm sandboxes: N open at once, each after a command, a grading and a
command again (its shell running).

Usage: python bench/bench_sandbox_memory.py [--n 64]

Prints the proportional set size (PSS: pages shared by k processes count 1/k in each)
per sandbox, of its processes together and by name (pid 1, the shell), and the
zygote's, whose pages the pid 1s share (`sandbox/zygote.py`).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from subterfuge.sandbox import BwrapBackend, Limits
from subterfuge.sandbox.procs import children_map, descendants

FILES = {"/root/rl_environment/compute_reward.py": "def reward():\n    return 1.0\n"}
REWARD = "import json\nprint(json.dumps({'reward': 1.0}))\n"


def rollup(pid: int) -> dict[str, int]:
    """KiB totals from /proc/PID/smaps_rollup."""
    lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]
    return {key: int(rest.split()[0]) for key, _, rest in (line.partition(":") for line in lines)}


async def main(n: int) -> None:
    backend = BwrapBackend()
    sandboxes = []
    try:
        for _ in range(n):
            sb = await backend.create(["/root/rl_environment"], FILES, Limits())
            await sb.run("cat /root/rl_environment/compute_reward.py; ls /root")
            await sb.grade({"reward": REWARD})  # (ends the shell)
            await sb.run("true")  # a shell again, as in an episode's next turn
            sandboxes.append(sb)
        children = children_map()
        total: dict[str, int] = {}
        by_name: dict[str, list[int]] = {}
        for sb in sandboxes:
            pid1 = sb._slot.pid1
            for pid in (pid1, *descendants(pid1, children)):
                memory = rollup(pid)
                name = "pid 1" if pid == pid1 else Path(f"/proc/{pid}/comm").read_text().strip()
                for key in ("Pss", "Private_Dirty", "Shared_Dirty"):
                    total[key] = total.get(key, 0) + memory[key]
                by_name.setdefault(name, []).append(memory["Pss"])
        print(f"sandboxes:                 {n}")
        for key, kib in total.items():
            print(f"{key + ' per sandbox:':<27}{kib / n / 1024:.2f} MiB")
        for name, values in by_name.items():
            print(f"  {name + ':':<25}{sum(values) / len(values) / 1024:.2f} MiB PSS each")
        zygote = backend._zygote._proc
        if zygote is not None:
            pss = rollup(zygote.pid)["Pss"] / 1024
            print(f"zygote:                    {pss:.2f} MiB PSS (one)")
    finally:
        for sb in sandboxes:
            await sb.close()
        backend.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64, help="sandboxes open at once")
    asyncio.run(main(parser.parse_args().n))
