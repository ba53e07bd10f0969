"""Model-run speed: reward-tampering episodes against the fake provider over real HTTP.

The fake provider runs in its own process (`subterfuge fake-provider`), answers
every call after `--latency` seconds, replays the `hider` policy, and fails
`--fail-rate` of calls (split evenly: 429 with Retry-After, 500, hang). The
harness runs here with isolation on. Prints wall time, the latency floor
(episodes × turns × latency ÷ concurrency), their ratio, where a mean episode's
time went (model calls, sandbox, grading) against the time it was in flight,
the peak memory (PSS) of the harness, of its sandboxes and of the two together (and
with what the kernel holds for them: page tables, kernel stacks, unreclaimable slab), CPU
per episode (harness process, fake provider, whole machine with the sandboxes),
tokens per second, the first error episode's
traceback, and checks that every episode is stored exactly once (re-running the
missing ones, as a user would, if any failed past the retries). With `--backend
ray` the episodes run in Ray actors on this machine (one per core unless
`--workers`); Ray's start-up counts in the wall time, the harness CPU is the
driver's plus every Ray process's (workers, raylet, GCS), and memory is the
peak PSS of the driver and workers, and of Ray's services. With `--backend
processes` they run in worker processes of the local backend (`run
--processes`, one per core unless `--workers`), counted the same way.

    .venv/bin/python bench/bench_provider.py -n 1000 --concurrency 64 --latency 0.2
    .venv/bin/python bench/bench_provider.py -n 1000 --concurrency 64 --latency 0.2 --fail-rate 0.05
    .venv/bin/python bench/bench_provider.py -n 32768 --concurrency 512 --backend processes
    .venv/bin/python bench/bench_provider.py -n 32768 --concurrency 512 --backend ray
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from machine import machine_cpu_seconds
from subterfuge.envs.tampering import RewardTampering
from subterfuge.policy.registry import make_policy
from subterfuge.policy.retry import RetryPolicy
from subterfuge.policy.settings import ModelSettings, ToolProtocol
from subterfuge.runner.local import RunPlan, RunResult, run_local
from subterfuge.sandbox import get_backend
from subterfuge.sandbox.procs import children_map, descendants
from subterfuge.store import Store


def process_cpu(pid: int) -> float:
    parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def ray_processes() -> dict[int, str]:
    """This machine's Ray processes: pid -> kind (a worker, raylet, gcs_server, other)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue  # exited meanwhile
        if b"ray::" in command or b"default_worker" in command:
            found[int(entry.name)] = "workers"
        elif b"/ray/" in command:
            name = command.split(b"\0")[0].rsplit(b"/", 1)[-1].decode(errors="replace")
            found[int(entry.name)] = name if name in ("raylet", "gcs_server") else "other"
    return found


def worker_processes() -> dict[int, str]:
    """This run's worker processes (`--backend processes`): pid -> "workers". Only this
    process's children: another run's workers on the same machine are not ours to count."""
    found = {}
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                with contextlib.suppress(OSError):
                    if (
                        b"subterfuge.runner.processes"
                        in Path(f"/proc/{child}/cmdline").read_bytes()
                    ):
                        found[int(child)] = "workers"
    return found


def cpu_of(processes: dict[int, str]) -> dict[int, tuple[str, float]]:
    """pid -> (kind, CPU seconds so far) of `processes` still alive."""
    found = {}
    for pid, kind in processes.items():
        with contextlib.suppress(OSError):
            found[pid] = (kind, process_cpu(pid))
    return found


def below(roots: set[int], leave_out: set[int]) -> set[int]:
    """Every live process below `roots` (the sandboxes: pid 1s, adopted from bwrap,
    bwrap while one starts, shells, what they run), less the trees under `leave_out`
    (the fake provider, which stands in for a server elsewhere; Ray's services, counted
    apart)."""
    children = children_map()
    found = {pid for root in roots for pid in descendants(root, children)}
    left_out = {pid for top in leave_out for pid in (top, *descendants(top, children))}
    return found - left_out - roots


def pss_bytes(pid: int) -> int:
    """Proportional set size: shared pages (the libraries) counted once across processes."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return 0


KERNEL = ("PageTables", "KernelStack", "SUnreclaim")
"""What the kernel holds per process and namespace (`/proc/meminfo`), not in any PSS."""


def kernel_bytes() -> int:
    """The machine's kernel memory of the `KERNEL` kinds (its growth is the run's, as long
    as nothing else starts processes meanwhile)."""
    total = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in KERNEL:
            total += int(rest.split()[0]) * 1024
    return total


class Watch(threading.Thread):
    """Looks at the helper processes (Ray's, or the worker processes) each second: the peak
    memory (PSS) of this process plus the workers, and of any services (Ray's), and each
    one's CPU so far, so that a process gone by the last look (Ray's actors are killed as
    the run ends) still counts. Every fifth second, the sandboxes too (every process below
    this one and the workers but the fake provider's): their peak memory, and the peak of
    the harness and its sandboxes together, which is what the run's processes need, and
    of that plus how much the kernel's memory grew since the start (`KERNEL`)."""

    def __init__(self, find: Callable[[], dict[int, str]], server: int) -> None:
        super().__init__(daemon=True)
        self.find, self.server = find, server
        self.harness = self.services = self.sandboxes = self.run_peak = self.all_peak = 0
        self.kernel_start = kernel_bytes()
        self.baseline = cpu_of(find())  # helpers already running (none, usually)
        self.seen: dict[int, tuple[str, float]] = {}
        self.cpu = 0.0
        self._done = threading.Event()

    def run(self) -> None:
        processes: dict[int, str] = {}
        for tick in itertools.count():
            if self._done.wait(1.0):
                break
            sandboxes = -1
            if tick % 5 == 0:  # walking /proc past thousands of sandbox processes costs
                processes = {os.getpid(): "driver", **self.find()}
                roots = {pid for pid, kind in processes.items() if kind in ("driver", "workers")}
                sandboxes = 0
                others = {pid for pid in processes if pid not in roots}
                for pid in below(roots, {self.server, *others}):
                    with contextlib.suppress(OSError, ValueError):
                        sandboxes += pss_bytes(pid)
            harness = services = 0
            for pid, kind in processes.items():
                with contextlib.suppress(OSError, ValueError):
                    if kind in ("driver", "workers"):
                        harness += pss_bytes(pid)
                    else:
                        services += pss_bytes(pid)
                    if kind != "driver":
                        self.seen[pid] = (kind, process_cpu(pid))
            self.harness = max(self.harness, harness)
            self.services = max(self.services, services)
            if sandboxes >= 0:
                kernel = kernel_bytes() - self.kernel_start
                self.sandboxes = max(self.sandboxes, sandboxes)
                self.run_peak = max(self.run_peak, harness + sandboxes)
                self.all_peak = max(self.all_peak, harness + sandboxes + kernel)
        self.cpu = time.thread_time()

    def finish(self) -> dict[str, float]:
        """Stop looking; the helper processes' CPU during the run, by kind."""
        self._done.set()
        self.join()
        self.seen.update(cpu_of(self.find()))
        totals: dict[str, float] = {}
        for pid, (kind, cpu) in self.seen.items():
            used = cpu - self.baseline.get(pid, (kind, 0.0))[1]
            totals[kind] = totals.get(kind, 0.0) + used
        return totals


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(args: argparse.Namespace, port: int) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "subterfuge.cli", "fake-provider", "--port", str(port),
        "--policy", args.policy, "--env", "reward_tampering", "--latency", str(args.latency),
        "--fail-rate", str(args.fail_rate), "--retry-after", "0.5", "--seed", "1",
    ]  # fmt: skip
    server = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
            return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("the fake provider did not start")


def runner(args: argparse.Namespace, plan: RunPlan, store: Store) -> Callable[[], RunResult]:
    """One pass over the plan's missing episodes, on the chosen backend."""
    if args.backend == "ray":
        from subterfuge.runner.ray import run_ray

        return lambda: run_ray(plan, args.sandbox, store, workers=args.workers)
    if args.backend == "processes":
        from subterfuge.runner.processes import run_processes

        workers = args.workers or os.cpu_count() or 1
        return lambda: asyncio.run(run_processes(plan, args.sandbox, store, workers))
    return lambda: asyncio.run(run_local(plan, get_backend(args.sandbox), store))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1000, help="episodes")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per model call")
    parser.add_argument("--fail-rate", type=float, default=0.0, help="calls failing (mixed)")
    parser.add_argument("--api", choices=["openai", "anthropic"], default="openai")
    parser.add_argument("--protocol", choices=["text", "tools"], default="text")
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--policy", default="hider", help="scripted moves the server replays")
    parser.add_argument("--sandbox", default="bwrap")
    parser.add_argument("--request-timeout", type=float, default=3.0, help="hangs end after it")
    parser.add_argument("--backend", choices=["local", "processes", "ray"], default="local")
    parser.add_argument(
        "--workers", type=int, default=None, help="Ray actors or worker processes (default: cores)"
    )
    args = parser.parse_args()

    port = free_port()
    server = start_server(args, port)
    base = f"http://127.0.0.1:{port}" + ("/v1" if args.api == "openai" else "")
    settings = ModelSettings(
        base,
        protocol=ToolProtocol(args.protocol),
        stream=args.stream,
        timeout=args.request_timeout,
        max_requests=args.concurrency,
        retry=RetryPolicy(attempts=10, base=0.5, max_delay=10),
    )
    policy = make_policy(f"{args.api}:fake", settings)
    results: list[RunResult] = []
    try:
        with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "b.sqlite") as store:
            plan = RunPlan("bench", RewardTampering(), policy, args.n, concurrency=args.concurrency)
            own0 = resource.getrusage(resource.RUSAGE_SELF)
            machine0, server0, t0 = (
                machine_cpu_seconds(),
                process_cpu(server.pid),
                time.perf_counter(),
            )
            finder = {"ray": ray_processes, "processes": worker_processes}.get(args.backend)
            watch = Watch(finder or dict, server.pid)
            helpers: dict[str, float] = {}
            watch.start()
            if args.backend == "ray":  # started here so that Ray's start-up is timed
                import ray

                ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
            try:
                run = runner(args, plan, store)
                results.append(run())
                wall = time.perf_counter() - t0
                helpers = watch.finish()
                own1 = resource.getrusage(resource.RUSAGE_SELF)
                machine, server_cpu = (
                    machine_cpu_seconds() - machine0,
                    process_cpu(server.pid) - server0,
                )
                while results[-1].failed:  # what a user does: re-run the same command
                    results.append(run())
            finally:
                if args.backend == "ray":
                    ray.shutdown()
            turns, rows, distinct = store._query(
                "SELECT SUM(turns), COUNT(*), COUNT(DISTINCT idx) FROM episodes WHERE run_id = ?",
                ("bench",),
            )[0]
            errors = store._query(
                "SELECT substr(error, 1, 160) AS why, COUNT(*) FROM episodes"
                " WHERE run_id = ? AND verdict = 'error' GROUP BY why ORDER BY 2 DESC LIMIT 5",
                ("bench",),
            )
            timings = store._query(
                "SELECT AVG(json_extract(timings, '$.total')), AVG(json_extract(timings, "
                "'$.policy')), AVG(json_extract(timings, '$.sandbox')), "
                "AVG(json_extract(timings, '$.grade')) FROM episodes WHERE run_id = ?",
                ("bench",),
            )[0]
            where = store._query(  # the first error's traceback: where to look
                "SELECT details FROM episodes WHERE run_id = ? AND verdict = 'error' LIMIT 1",
                ("bench",),
            )
        stats = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/stats").read())
    finally:
        server.terminate()
        server.wait()
    first = results[0]
    n = args.n
    floor = turns * args.latency / args.concurrency
    own = own1.ru_utime + own1.ru_stime - own0.ru_utime - own0.ru_stime
    own += sum(helpers.values()) - watch.cpu  # the driver, less the watch, plus the helpers
    print(
        f"episodes:              {n} at concurrency {args.concurrency}, latency {args.latency} s,"
        f" {args.api}/{args.protocol}{' stream' if args.stream else ''}, sandbox {args.sandbox},"
        f" backend {args.backend}"
    )
    print(f"verdicts:              { {k: v for k, v in results[-1].verdicts.items() if v} }")
    print(
        f"model turns:           {turns} ({turns / n:.2f} per episode); calls served "
        f"{stats['requests']}, faults injected "
        f"{ {k: v for k, v in stats['faults'].items() if k != 'none' and v} }"
    )
    print(f"wall time:             {wall:.1f} s")
    print(f"latency floor:         {floor:.1f} s  (episodes × turns × latency ÷ concurrency)")
    print(f"ratio:                 {wall / floor:.2f}×")
    print(f"episodes per second:   {n / wall:.1f}")
    total, model, sandbox, grade = (t or 0.0 for t in timings)  # None: no episode stored
    print(
        f"episode time (mean):   {total:.3f} s: model calls {model:.3f}, sandbox {sandbox:.3f},"
        f" grading {grade:.3f}; in flight {args.concurrency * wall / n:.3f} s (Little's law,"
        " start-up included)"
    )
    print(f"tokens per second:     {first.tokens_per_second:,.0f}")
    print(
        f"peak memory (PSS):     harness (driver + workers) {watch.harness / 2**20:.0f} MiB,"
        f" sandboxes {watch.sandboxes / 2**20:.0f} MiB, the two at once"
        f" {watch.run_peak / 2**20:.0f} MiB; services (Ray's) {watch.services / 2**20:.0f} MiB"
    )
    print(
        f"  with the kernel's:   {watch.all_peak / 2**20:.0f} MiB (the two, and the growth of"
        f" the machine's {', '.join(KERNEL)})"
    )
    if finder is not None:
        split = ", ".join(f"{k} {1000 * v / n:.1f} ms" for k, v in sorted(helpers.items()))
        print(f"helper CPU per episode: {split}")
    else:
        print(f"peak RSS (harness):    {own1.ru_maxrss / 1024:.0f} MiB")
    print(
        f"CPU per episode:       harness {'(driver + helpers) ' if finder else 'process '}"
        f"{1000 * own / n:.1f} ms, fake provider "
        f"{1000 * server_cpu / n:.1f} ms, whole machine (sandboxes included) "
        f"{1000 * machine / n:.1f} ms"
    )
    busy = machine / wall / (os.cpu_count() or 1)
    print(f"cores:                 {os.cpu_count()}; machine CPU busy {busy:.0%}")
    print(f"failed past retries:   {first.failed} (re-runs: {len(results) - 1})")
    for why, count in errors:  # episodes that broke: the first words of each cause
        print(f"error episodes:        {count} × {why}")
    for (details,) in where:
        print(json.loads(details).get("traceback", ""))
    ok = rows == distinct == n and results[-1].episodes == n
    verdict = "yes" if ok else "NO"
    print(f"stored exactly once:   {verdict} ({rows} rows, {distinct} distinct indices)")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
