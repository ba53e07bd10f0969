"""`run --processes N`: episodes on worker processes, the same results and store as in one."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from conftest import SameAsOneProcess
from subterfuge.envs.registry import get_environment
from subterfuge.fakeprovider import FakeProvider, ScriptedResponder
from subterfuge.policy.errors import ProviderRejected
from subterfuge.policy.registry import make_policy
from subterfuge.policy.scripted import scripted_policy
from subterfuge.policy.settings import ModelSettings
from subterfuge.runner.local import RunPlan, RunResult
from subterfuge.runner.processes import WorkerGone, WorkerPool, WorkerSetup, run_processes
from subterfuge.sandbox import SandboxBackend
from subterfuge.store import Store

WORKER_MARK = b"subterfuge.runner.processes"


def _children(pid: int) -> set[int]:
    return {
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    }


def _workers_of(pid: int) -> list[int]:
    """The worker processes `pid` started (its children running the worker's main)."""
    found = []
    for child in _children(pid):
        try:
            if WORKER_MARK in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(child)
        except OSError:
            continue
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _where(pid: int) -> str:
    """What a live process is waiting in, and its children: for a failure's message."""
    with contextlib.suppress(OSError):
        children = [Path(f"/proc/{c}/cmdline").read_bytes()[:120] for c in _children(pid)]
        return f"{pid}: wchan {Path(f'/proc/{pid}/wchan').read_text()!r}, children {children}"
    return f"{pid}: gone"


async def test_worker_processes_give_the_one_process_results(
    tmp_path: Path, same_as_one_process: SameAsOneProcess
) -> None:
    with Store.open(tmp_path / "runs.sqlite") as store:

        def spread(plan: RunPlan) -> Awaitable[RunResult]:
            return run_processes(plan, "bwrap", store, 2, progress=False)

        plan, result = await same_as_one_process(store, spread)
        assert result.verdicts["tampered_and_hid"] == 9
        again = await spread(plan)
        assert again.new == 0 and again.episodes == 9  # resumes: nothing to redo


async def test_a_provider_refusing_the_run_stops_it_from_a_worker(
    bwrap: SandboxBackend, tmp_path: Path
) -> None:
    with FakeProvider(ScriptedResponder("honest"), api_key="secret") as fp:
        policy = make_policy("openai:fake", ModelSettings(fp.base_url))
        plan = RunPlan("refused", get_environment("reward_tampering"), policy, 4, concurrency=2)
        with Store.open(tmp_path / "runs.sqlite") as store, pytest.raises(ProviderRejected):
            await run_processes(plan, "bwrap", store, 2, progress=False)


async def test_a_worker_that_dies_stops_the_run_and_a_rerun_completes(
    bwrap: SandboxBackend, tmp_path: Path
) -> None:
    n = 40
    env = get_environment("reward_tampering")
    with FakeProvider(ScriptedResponder("hider", [env]), latency=0.05) as fp:
        policy = make_policy("openai:fake", ModelSettings(fp.base_url))
        plan = RunPlan("dies", env, policy, n, concurrency=8)
        with Store.open(tmp_path / "runs.sqlite") as store:
            finished: list[object] = []
            killed: list[int] = []

            def kill_one_worker(record: object) -> None:
                finished.append(record)
                if len(finished) == 5:
                    killed.append(_workers_of(os.getpid())[0])
                    os.kill(killed[0], signal.SIGKILL)

            with pytest.raises(WorkerGone, match=r"worker process \d+ exited"):
                await run_processes(
                    plan, "bwrap", store, 2, progress=False, on_episode=kill_one_worker
                )
            stored = len(store.done_indices("dies"))
            assert 0 < stored < n
            result = await run_processes(plan, "bwrap", store, 2, progress=False)
            assert result.new == n - stored and result.episodes == n
            assert result.verdicts["tampered_and_hid"] == n
            assert sorted(r.idx for r in store.episodes("dies", limit=100)) == list(range(n))
        assert not _alive(killed[0])


async def test_a_worker_killed_with_episodes_unread_fails_them(bwrap: SandboxBackend) -> None:
    """Its death then resets the connection (ECONNRESET, not EOF): still the worker's end."""
    plan = RunPlan("unread", get_environment("reward_tampering"), scripted_policy("honest"), 1)
    setup = WorkerSetup(plan.env, plan.policy, "bwrap", plan.limits, plan.budget, 1)
    pool = await WorkerPool.start(1, setup)
    try:
        (pid,) = pool.pids
        os.kill(pid, signal.SIGSTOP)
        episode = asyncio.create_task(pool.run(plan.task(0)))
        await asyncio.sleep(0.2)  # the task waits, unread, in the stopped worker's socket
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(WorkerGone, match=f"worker process {pid} exited"):
            await asyncio.wait_for(episode, 30)
        with pytest.raises(WorkerGone):  # and nothing more is sent its way
            await pool.run(plan.task(0))
    finally:
        await pool.close()


async def test_workers_share_what_they_imported_and_are_the_drivers_children() -> None:
    """Forks of one template: the modules they import are memory they share, not each
    a copy (a fresh interpreter per worker shares no written page with another)."""
    plan = RunPlan("shared", get_environment("reward_tampering"), scripted_policy("honest"), 1)
    setup = WorkerSetup(plan.env, plan.policy, "bwrap", plan.limits, plan.budget, 1)
    pool = await WorkerPool.start(2, setup)
    try:
        assert sorted(_workers_of(os.getpid())) == sorted(pool.pids)
        for pid in pool.pids:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
            shared = {k: int(v.split()[0]) for k, v in (line.split(":") for line in rollup[1:])}
            assert shared["Shared_Dirty"] > 8 * 1024, rollup  # KiB: the imports' objects
    finally:
        await pool.close()
    assert not any(_alive(pid) for pid in pool.pids)


_SECOND_FORK_FAILS = (
    "import os, sys\n"
    "from subterfuge.runner import processes\n"
    "forks, real = [], os.fork\n"
    "def fork():\n"
    "    forks.append(1)\n"
    "    if len(forks) == 2:\n"
    "        raise OSError('no more processes')\n"
    "    return real()\n"
    "os.fork = fork\n"
    "processes.template(int(sys.argv[1]))\n"
)
_DIES_BEFORE_NAMING_ITS_FORK = (  # killed between a fork and writing the worker's pid
    "import os, sys\n"
    "from subterfuge.runner import processes\n"
    "real = os.fork\n"
    "def fork():\n"
    "    pid = real()\n"
    "    if pid:\n"
    "        os.kill(os.getpid(), 9)\n"
    "    return pid\n"
    "os.fork = fork\n"
    "processes.template(int(sys.argv[1]))\n"
)


@pytest.mark.parametrize(
    ("template", "code"),
    [
        ("import sys; sys.exit(3)", "3"),  # (an import that fails, say)
        (_SECOND_FORK_FAILS, "1"),  # one worker forked, and then none
        (_DIES_BEFORE_NAMING_ITS_FORK, "-9"),
    ],
)
async def test_a_template_that_fails_is_an_error_and_leaves_no_process(
    template: str, code: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subterfuge.runner.processes as processes

    monkeypatch.setattr(processes, "TEMPLATE", template)
    plan = RunPlan("broken", get_environment("reward_tampering"), scripted_policy("honest"), 1)
    setup = WorkerSetup(plan.env, plan.policy, "bwrap", plan.limits, plan.budget, 1)
    before = _children(os.getpid())
    with pytest.raises(RuntimeError, match=rf"template: exit code {code}\)"):
        await WorkerPool.start(3, setup)
    assert _children(os.getpid()) == before  # none left, not even a zombie


def test_the_driver_is_left_as_it_was_no_subreaper() -> None:
    """Workers' orphans (a dead worker's sandboxes) go to init, not to a driver that would
    never reap them."""
    script = (
        "import asyncio, ctypes\n"
        "from subterfuge.envs.registry import get_environment\n"
        "from subterfuge.policy.scripted import scripted_policy\n"
        "from subterfuge.runner.local import RunPlan\n"
        "from subterfuge.runner.processes import WorkerPool, WorkerSetup\n"
        "plan = RunPlan('x', get_environment('reward_tampering'), scripted_policy('honest'), 1)\n"
        "async def main():\n"
        "    setup = WorkerSetup(plan.env, plan.policy, 'bwrap', plan.limits, plan.budget, 1)\n"
        "    pool = await WorkerPool.start(1, setup)\n"
        "    flag = ctypes.c_int(-1)\n"
        "    ctypes.CDLL(None).prctl(37, ctypes.byref(flag), 0, 0, 0)\n"
        "    print(pool.pids, flag.value)\n"
        "    await pool.close()\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    pids, flag = done.stdout.rsplit(" ", 1)
    assert flag.strip() == "0" and len(json.loads(pids)) == 1


class _FailsToLoad:
    """Pickles, but loading it raises: a worker that cannot start (like an import error)."""

    def __reduce__(self) -> tuple[object, ...]:
        return (int, ("not a number",))


async def test_a_worker_that_cannot_start_fails_its_episodes_instead_of_hanging() -> None:
    plan = RunPlan("nostart", get_environment("reward_tampering"), scripted_policy("honest"), 1)
    setup = WorkerSetup(_FailsToLoad(), plan.policy, "bwrap", plan.limits, plan.budget, 1)  # type: ignore[arg-type]
    pool = await WorkerPool.start(1, setup)
    try:
        with pytest.raises(WorkerGone, match=r"exited \(code 1\)"):
            await asyncio.wait_for(pool.run(plan.task(0)), 60)
    finally:
        await pool.close()
    assert not _alive(pool.pids[0])


async def test_plain_sandboxes_are_refused_on_several_processes(tmp_path: Path) -> None:
    """Each process has its own plain lock, so two workers' episodes would share real paths."""
    plan = RunPlan("plain", get_environment("reward_tampering"), scripted_policy("honest"), 2)
    with Store.open(tmp_path / "runs.sqlite") as store, pytest.raises(ValueError, match="plain"):
        await run_processes(plan, "plain", store, 2, progress=False)


def test_kill_9_of_the_driver_ends_its_workers_and_the_rerun_stores_each_once(
    bwrap: SandboxBackend, tmp_path: Path, stored: Callable[[Path], int]
) -> None:
    n = 48
    db = tmp_path / "runs.sqlite"
    env = get_environment("reward_tampering")
    with FakeProvider(ScriptedResponder("hider", [env]), latency=0.05) as fp:
        command = [
            sys.executable, "-m", "subterfuge.cli", "run", "--env", "reward_tampering",
            "--policy", "openai:fake", "--base-url", fp.base_url, "-n", str(n), "--db", str(db),
            "--concurrency", "8", "--processes", "2", "--json",
        ]  # fmt: skip
        first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while stored(db) < 8 and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.05)
        workers = _workers_of(first.pid)
        assert len(workers) == 2
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        killed_at = stored(db)
        assert 0 < killed_at < n, "the run was not interrupted mid-way"
        deadline = time.monotonic() + 30
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        stuck = [_where(w) for w in workers if _alive(w)]
        assert not stuck, f"workers outlived their driver: {stuck}"
        second = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert second.returncode == 0, second.stderr[-2000:]
    summary = json.loads(second.stdout)
    assert summary["episodes"] == n and summary["new_episodes"] == n - killed_at
    assert summary["verdicts"]["tampered_and_hid"] == n
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*), COUNT(DISTINCT idx) FROM episodes").fetchone() == (
            n,
            n,
        )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--processes", "2", "--backend", "ray"], "--processes is for the local backend"),
        (["--processes", "2", "--policy", "hf:/nowhere"], "hf: models run in one process"),
        (["--processes", "2", "--sandbox", "plain"], "--processes with --sandbox plain"),
        (["--backend", "ray", "--sandbox", "plain"], "use --ray-workers 1"),
        (["--backend", "ray", "--ray-workers", "2", "--sandbox", "plain"], "use --ray-workers 1"),
    ],
)
def test_spreading_over_processes_refused_where_it_cannot_work(
    extra: list[str], message: str, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from subterfuge.cli.main import app

    args = ["run", "--env", "reward_tampering", "-n", "1", "--db", str(tmp_path / "r.sqlite")]
    result = CliRunner().invoke(app, [*args, *extra])
    assert result.exit_code == 2, result.output
    assert message in result.output
