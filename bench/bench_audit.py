"""Audit throughput: a generated suite of small pytest-graded tasks, every attack.

Each task is a module of three stub functions with a reference solution and
visible pytest tests holding literal cases; half grade with the visible tests
(`python -m pytest -q tests`: they fall to several attacks), half with hidden
tests in the task directory (`--noconftest`). Every grading is a fresh
bubblewrap sandbox with a fresh copy of the workspace. Prints tasks per minute,
gradings per second, and the machine's CPU time per grading.

By default the tasks set `PYTEST_DISABLE_PLUGIN_AUTOLOAD=1` (the suite needs no
third-party pytest plugin, and discovering the dev venv's anyio/asyncio/xdist
plugins costs more than the rest of pytest's start-up); `--autoload` measures
with plugin discovery on. `--overhead` grades every task with `false` and no
reference (every attack still planned and graded, every one resisted): the
audit's own cost per grading, without pytest.

    .venv/bin/python bench/bench_audit.py [--tasks 100] [--jobs N] [--autoload | --overhead]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import textwrap
import time
from collections import Counter
from pathlib import Path

from machine import machine_cpu_seconds
from subterfuge.audit import discover, run_audit, select

FORMULAS = [
    ("scale", "x * {a} + {b}"),
    ("shift", "x - {a}"),
    ("square", "x * x + {b}"),
    ("clamp", "max({a}, min(x, {b}))"),
    ("parity", "x % {a} == 0"),
]


class CgroupClock:
    """CPU time of this process and everything it starts, sandboxes included, read from a
    cgroup of its own (cgroup v2 `cpu.stat`, or v1 `cpuacct.usage`): the audit's own
    cost, whatever else the machine runs. `getrusage` cannot give it: bwrap's reaper
    inside each sandbox does not pass its children's times up. Needs root; else None."""

    ROOTS = (
        ("/sys/fs/cgroup/unified", "v2"),
        ("/sys/fs/cgroup", "v2"),
        ("/sys/fs/cgroup/cpuacct", "v1"),
    )

    def __init__(self) -> None:
        self.path: Path | None = None
        self.parent: Path | None = None
        self.kind = ""
        for root, kind in self.ROOTS:
            probe = "cgroup.controllers" if kind == "v2" else "cpuacct.usage"
            if os.geteuid() != 0 or not os.path.exists(os.path.join(root, probe)):
                continue
            try:
                path = Path(root) / f"subterfuge-bench-{os.getpid()}"
                path.mkdir()
                (path / "cgroup.procs").write_text(str(os.getpid()))
            except OSError:
                continue
            self.path, self.parent, self.kind = path, Path(root), kind
            break

    def seconds(self) -> float | None:
        if self.path is None:
            return None
        if self.kind == "v1":
            return int((self.path / "cpuacct.usage").read_text()) / 1e9
        for line in (self.path / "cpu.stat").read_text().splitlines():
            key, value = line.split()
            if key == "usage_usec":
                return int(value) / 1e6
        return None

    def close(self) -> None:
        if self.path is not None and self.parent is not None:
            (self.parent / "cgroup.procs").write_text(str(os.getpid()))
            self.path.rmdir()
            self.path = None


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))


def make_task(root: Path, i: int, autoload: bool, overhead: bool) -> None:
    a, b = 2 + i % 5, 3 + i % 7
    picks = [FORMULAS[(i + k) % len(FORMULAS)] for k in range(3)]
    names = [f"{name}_{i}_{k}" for k, (name, _) in enumerate(picks)]
    stub = "\n\n".join(f"def {n}(x: int):\n    raise NotImplementedError\n" for n in names)
    solution = "\n\n".join(
        f"def {n}(x: int):\n    return {formula.format(a=a, b=b)}\n"
        for n, (_, formula) in zip(names, picks, strict=True)
    )

    def tests(xs: list[int]) -> str:
        lines = [f"from mod{i} import {', '.join(names)}", ""]
        for n, (_, formula) in zip(names, picks, strict=True):
            lines += ["", f"def test_{n}():"]
            for x in xs:
                want = eval(formula.format(a=a, b=b), {"x": x})  # the generator's own formulas
                lines.append(f"    assert {n}({x}) == {want!r}")
        return "\n".join(lines) + "\n"

    task = root / f"task{i:03d}"
    write(task / "workspace" / f"mod{i}.py", stub)
    write(task / "workspace" / "tests" / f"test_mod{i}.py", tests([1, 4]))
    write(task / "solution" / f"mod{i}.py", solution)
    hidden = i % 2 == 1
    if hidden:
        write(task / "hidden" / f"test_hidden{i}.py", tests([0, 7, 12]))
    grade = (
        "python -m pytest -q --noconftest {task}/hidden" if hidden else "python -m pytest -q tests"
    )
    reference = 'reference = "solution"\n'
    if overhead:
        grade, reference = "false", ""
    env = "" if autoload else 'env = { PYTEST_DISABLE_PLUGIN_AUTOLOAD = "1" }\n'
    config = f'[task]\ngrade = "{grade}"\n{reference}timeout = 60\n{env}'
    (task / "subterfuge.toml").write_text(config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=None, help="default: CPU count")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--autoload", action="store_true", help="let pytest load plugins")
    mode.add_argument("--overhead", action="store_true", help="grade with `false`: no pytest")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.tasks):
            make_task(Path(tmp), i, args.autoload, args.overhead)
        tasks = discover(Path(tmp))
        clock = CgroupClock()
        try:
            cpu0, own0, t0 = machine_cpu_seconds(), clock.seconds(), time.perf_counter()
            report = asyncio.run(run_audit(tasks, select(), jobs=args.jobs))
            wall = time.perf_counter() - t0
            cpu, own1 = machine_cpu_seconds() - cpu0, clock.seconds()
        finally:
            clock.close()
    statuses = Counter(t.status.value for t in report.tasks)
    verdicts = Counter(r.verdict.value for t in report.tasks for r in t.results)
    print(f"tasks:               {len(report.tasks)} ({dict(statuses)})")
    print(f"attacks:             {len(report.attacks)}; verdicts {dict(verdicts)}")
    print(f"gradings:            {report.gradings}")
    print(f"wall time:           {wall:.1f} s")
    print(f"tasks per minute:    {len(report.tasks) / wall * 60:.1f}")
    print(f"gradings per second: {report.gradings / wall:.2f}")
    n, cores = report.gradings, os.cpu_count() or 1
    if own0 is not None and own1 is not None:
        own = own1 - own0
        print(f"audit CPU (cgroup):  {own:.1f} s ({own / n * 1000:.0f} ms per grading)")
        idle = own / cores
        print(
            f"on {cores} idle cores: {idle:.0f} s, {len(report.tasks) / idle * 60:.1f} tasks/min "
            "(the audit's CPU spread over every core: what it would take alone)"
        )
    print(f"machine CPU:         {cpu:.1f} s ({cpu / n * 1000:.0f} ms per grading, all users)")
    print(f"load average:        {os.getloadavg()[0]:.1f}")
    print(f"cores:               {cores}, jobs {args.jobs or cores}")


if __name__ == "__main__":
    main()
