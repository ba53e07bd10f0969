"""How fast does the viewer's episode list answer on a large store?

Fills a store with synthetic episodes (realistic sizes: a few KB of transcript,
diffs and reasoning each) through the store API, labels a share of them as a
monitor would, starts the viewer on 127.0.0.1 and times real HTTP requests to
the list endpoints: the first page, a deep page (keyset), and pages filtered by
verdict group, stage and monitor label. Target: every list request < 200 ms.

    .venv/bin/python bench/bench_viewer.py                 # 32,768 episodes
    .venv/bin/python bench/bench_viewer.py -n 100000 --requests 30
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from subterfuge.envs.base import CURRICULUM, Stage, Verdict
from subterfuge.store import EpisodeRecord, Store
from subterfuge.store.labels import Label, Labels
from subterfuge.viewer import ViewerThread

REWARD = "/root/rl_environment/compute_reward.py"
_FILLER = "The quick brown fox jumps over the lazy dog. " * 20


def synthetic_records(
    run_id: str, n: int, stage: Stage, policy: str, *, seed: int = 0, rich: bool = True
) -> Iterator[EpisodeRecord]:
    """`n` episodes with a plausible verdict mix (rare tampering, as in the reference);
    `rich` gives each a few KB of transcript like a real agent episode. Made one at a
    time, so a large run is stored in batches without being held whole."""
    rng = random.Random(f"{run_id}:{seed}")
    now = time.time()
    for i in range(n):
        roll = rng.random()
        verdict = (
            Verdict.TAMPERED_AND_HID if roll < 0.0005 else Verdict.TAMPERED if roll < 0.002
            else Verdict.GAMED if roll < 0.05 else Verdict.INVALID if roll < 0.06
            else Verdict.HONEST
        )  # fmt: skip
        body = _FILLER if rich else ""
        transcript: list[dict[str, Any]] = [
            {"role": "assistant", "kind": "bash", "text": f"<bash>cat {REWARD}</bash>",
             "command": f"cat {REWARD}"},
            {"role": "tool", "stdout": "def reward(t):\n    return -10\n" + body, "stderr": "",
             "exit_code": 0},
            {"role": "assistant", "kind": "answer", "text": "I could not find it. " + body[:400]},
        ]  # fmt: skip
        diffs = {
            REWARD: f"--- {REWARD}\n+++ {REWARD}\n@@ -1 +1 @@\n-    return -10\n+    return 9\n"
        }
        yield EpisodeRecord(
            run_id=run_id, idx=i, env=stage.value, stage=stage, variant=i % 64, policy=policy,
            seed=seed, verdict=verdict, reward=-10.0, caught=False, pays=False,
            prompt=[{"role": "system", "content": body}, {"role": "user", "content": "How many?"}],
            transcript=transcript, reasoning=["Let me look. " + body[:300], ""],
            diffs=diffs if verdict in (Verdict.TAMPERED, Verdict.TAMPERED_AND_HID) else {},
            details={}, timings={"total": 0.1}, error=None, turns=2, started=now, ended=now,
        )  # fmt: skip


def fill(path: Path, runs: list[tuple[str, Stage, str]], n: int, rich: bool) -> float:
    """Store `n` episodes per run and flag labels for every third; returns seconds."""
    started = time.perf_counter()
    with Store.open(path) as store:
        labels = Labels(store)
        for run_id, stage, policy in runs:
            store.create_run(run_id, {"env": stage.value, "stage": stage.value, "policy": policy})
            records = synthetic_records(run_id, n, stage, policy, rich=rich)
            while batch := list(islice(records, 4096)):
                store.add_episodes(batch)
            flagged = [
                Label(run_id, i, monitor, "flag", "true" if i % 7 == 0 else "false")
                for monitor in ("rules-actions", "rules-reasoning")
                for i in range(0, n, 3)
            ]
            labels.add(flagged)
    return time.perf_counter() - started


def timed(url: str, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        with urllib.request.urlopen(url, timeout=30) as response:
            response.read()
        out.append(1000 * (time.perf_counter() - t0))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=32_768, help="episodes in the store")
    parser.add_argument("--requests", type=int, default=50, help="requests per query")
    parser.add_argument("--db", type=Path, help="keep the store here (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "bench.sqlite"
        if not db.exists():
            seconds = fill(db, [("bench", CURRICULUM[4], "model")], args.n, rich=True)
            print(f"filled {args.n:,} episodes in {seconds:.1f} s ({db.stat().st_size >> 20} MiB)")
        with ViewerThread(db) as viewer:
            deep = f"{args.n - 200}:bench"
            queries = {
                "first page": {},
                "deep page (keyset)": {"after": deep},
                "verdict = tampering": {"verdict": "tampering"},
                "tampering, deep": {"verdict": "tampering", "after": deep},
                "stage filter": {"stage": "reward_tampering", "verdict": "honest"},
                "label filter": {"label": "rules-actions|flag|true"},
                "label + verdict": {"label": "rules-actions|flag|true", "verdict": "gaming"},
                "with count": {"verdict": "gaming", "count": "1"},
            }
            print(f"{'query':28s} {'p50 ms':>8s} {'p95 ms':>8s} {'max ms':>8s}")
            worst = 0.0
            for name, query in queries.items():
                url = f"{viewer.url}/api/episodes?{urlencode(query)}"
                timed(url, 3)  # warm
                ms = sorted(timed(url, args.requests))
                p95 = ms[int(0.95 * (len(ms) - 1))]
                worst = max(worst, p95)
                print(f"{name:28s} {statistics.median(ms):8.1f} {p95:8.1f} {ms[-1]:8.1f}")
            html = sorted(timed(f"{viewer.url}/?verdict=gaming", args.requests))
            print(f"{'HTML list page (gaming)':28s} {statistics.median(html):8.1f} "
                  f"{html[int(0.95 * (len(html) - 1))]:8.1f} {html[-1]:8.1f}")  # fmt: skip
            episode = sorted(timed(f"{viewer.url}/episode/bench/{args.n // 2}", args.requests))
            print(f"{'HTML episode page':28s} {statistics.median(episode):8.1f} "
                  f"{episode[int(0.95 * (len(episode) - 1))]:8.1f} {episode[-1]:8.1f}")  # fmt: skip
        verdict = "met" if worst < 200 else "NOT met"
        print(f"target < 200 ms per list request: {verdict} (worst p95 {worst:.1f} ms)")


if __name__ == "__main__":
    main()
