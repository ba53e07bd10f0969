"""Resumable at scale: `kill -9` mid-run, re-run, every episode stored exactly once."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from subterfuge.envs.registry import get_environment
from subterfuge.fakeprovider import FakeProvider, Faults, ScriptedResponder
from subterfuge.sandbox import SandboxBackend
from subterfuge.store import Store
from subterfuge.store.schema import MIGRATIONS
from subterfuge.store.sqlite import USAGE_TOTALS

N = 48


def test_kill_9_and_rerun_with_a_faulty_provider(
    bwrap: SandboxBackend, tmp_path: Path, stored: Callable[[Path], int]
) -> None:
    db = tmp_path / "scale.sqlite"
    faults = Faults.mixed(0.05, seed=7, retry_after=0.05, hang_seconds=60)
    env = get_environment("reward_tampering")
    with FakeProvider(ScriptedResponder("hider", [env]), latency=0.03, faults=faults) as fp:
        command = [
            sys.executable, "-m", "subterfuge.cli", "run", "--env", "reward_tampering",
            "--policy", "openai:fake", "--base-url", fp.base_url, "-n", str(N),
            "--db", str(db), "--concurrency", "16", "--request-timeout", "1", "--json",
        ]  # fmt: skip
        first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while stored(db) < 12 and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.05)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        killed_at = stored(db)
        assert 0 < killed_at < N, "the run was not interrupted mid-way"
        second = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert second.returncode == 0, second.stderr[-2000:]
        injected = {k: v for k, v in fp.stats.faults.items() if k != "none"}
    summary = json.loads(second.stdout)
    assert summary["episodes"] == N and summary["failed"] == 0
    assert summary["new_episodes"] == N - killed_at
    assert summary["verdicts"]["tampered_and_hid"] == N  # redone episodes judged like the rest
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT idx), MIN(idx), MAX(idx) FROM episodes"
        )
        assert rows.fetchone() == (N, N, 0, N - 1)
    assert sum(injected.values()) > 0, injected


def test_v2_files_gain_usage_columns_and_totals_read_the_index(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    for script in MIGRATIONS[:2]:
        conn.executescript(script)
    conn.execute("PRAGMA user_version = 2")
    conn.execute("INSERT INTO runs VALUES ('old', 0, '{}', NULL)")
    conn.execute(
        "INSERT INTO episodes (run_id, idx, env, stage, variant, policy, seed, verdict, reward,"
        " caught, pays, prompt, transcript, reasoning, diffs, details, timings, error, turns,"
        " started, ended) VALUES ('old', 0, 'e', 'reward_tampering', 0, 'p', 0, 'honest', NULL,"
        " NULL, 0, '[]', '[]', '[]', '{}', '{}', '{}', NULL, 1, 0, 0)"
    )
    conn.commit()
    conn.close()
    with Store.open(path) as store:
        old = store.episode("old", 0)
        assert old.usage == {} and old.cost is None
        totals = store.usage_totals("old")
        assert (totals.episodes, totals.tokens, totals.cost) == (1, 0, None)
        # The totals query itself must not touch the table rows.
        plan = store._query(f"EXPLAIN QUERY PLAN {USAGE_TOTALS}", ("old",))
        assert any("COVERING INDEX episodes_run_usage" in str(row) for row in plan)


def _with_nofile(soft: int, hard: int) -> object:
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return limit


def test_a_low_open_file_limit_is_raised_not_turned_into_errors(
    bwrap: SandboxBackend, tmp_path: Path
) -> None:
    """1,024 open files (a common default) once broke runs of a few hundred episodes in
    flight with EMFILE; here 40 breaks 16 in flight the same way unless the run raises it."""
    command = [
        sys.executable, "-m", "subterfuge.cli", "run", "--env", "reward_tampering",
        "--policy", "hider", "-n", "32", "--concurrency", "16",
        "--db", str(tmp_path / "fd.sqlite"), "--json",
    ]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=300, preexec_fn=_with_nofile(40, 4096)
    )
    assert done.returncode == 0, done.stderr[-2000:]
    verdicts = json.loads(done.stdout)["verdicts"]
    assert verdicts["tampered_and_hid"] == 32 and verdicts["error"] == 0, verdicts


def test_open_file_limit_raised_to_what_the_concurrency_needs_and_warned_when_capped() -> None:
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 1456:
        pytest.skip(f"the hard limit on open files here ({hard}) is below what the test raises to")
    probe = (
        "import resource, warnings\n"
        "from subterfuge.runner.fdlimit import ensure_open_files, needed\n"
        "warnings.simplefilter('always')\n"
        "print(ensure_open_files(100) == needed(100), resource.getrlimit(resource.RLIMIT_NOFILE))\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (64, 300))\n"
        "print(ensure_open_files(100), resource.getrlimit(resource.RLIMIT_NOFILE))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True, text=True, timeout=60, preexec_fn=_with_nofile(64, hard),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    assert first == f"True (1456, {hard})"  # what 100 episodes need, not the hard limit
    assert second == "300 (300, 300)"  # capped by the hard limit...
    assert "may open at most 300" in done.stderr  # ...and said so
