"""The audit's one-shot sandbox and grading isolation (skipped where bubblewrap cannot run)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from subterfuge.audit import discover, run_audit, select
from subterfuge.audit.grading import AUDIT_LIMITS, Grader
from subterfuge.audit.verdict import TaskStatus, Verdict
from subterfuge.sandbox import Limits, bwrap_available
from subterfuge.sandbox.oneshot import Mount, OneShotResult, OneShotRunner

OK, WHY = bwrap_available()
pytestmark = pytest.mark.skipif(not OK, reason=f"bubblewrap unavailable: {WHY}")


@pytest.fixture
def runner() -> Iterator[OneShotRunner]:
    with OneShotRunner() as r:
        yield r


@pytest.fixture
def box(tmp_path: Path) -> tuple[Path, Path]:
    """(a writable workspace, a read-only task directory) under pytest's private (0700)
    tmp directory: as root, the sandbox's pool uid reaches them only through the view."""
    ws, task = tmp_path / "ws", tmp_path / "task"
    ws.mkdir()
    task.mkdir()
    (task / "hidden.txt").write_text("hidden\n")
    return ws, task


async def sh(
    runner: OneShotRunner, box: tuple[Path, Path], command: str, timeout: float = 20
) -> OneShotResult:
    ws, task = box
    mounts = [Mount(ws, str(ws), writable=True), Mount(task, str(task))]
    return await runner.run(
        command, mounts=mounts, cwd=str(ws), env={}, timeout=timeout, limits=AUDIT_LIMITS
    )


async def test_interpreter_and_paths_visible(runner: OneShotRunner, box: tuple[Path, Path]) -> None:
    ws, task = box
    r = await sh(
        runner,
        box,
        f"python -c 'import sys, pytest; print(sys.prefix)'; pwd; cat {task}/hidden.txt; hostname",
    )
    assert r.exit_code == 0, r.stderr
    assert r.stdout.split() == [sys.prefix, str(ws), "hidden", "sandbox"]


async def test_writes_only_where_allowed(runner: OneShotRunner, box: tuple[Path, Path]) -> None:
    ws, task = box
    r = await sh(
        runner,
        box,
        f"echo x > mine; echo y > /tmp/t && echo tmp-ok; touch {task}/evil || echo task-ro; "
        "touch /usr/evil || echo usr-ro",
    )
    assert r.stdout.split() == ["tmp-ok", "task-ro", "usr-ro"]
    assert (ws / "mine").read_text() == "x\n"
    assert not (task / "evil").exists()
    again = await sh(runner, box, "test -e /tmp/t && echo kept || echo fresh")
    assert again.stdout.strip() == "fresh"  # a fresh /tmp every run


async def test_no_network(runner: OneShotRunner, box: tuple[Path, Path]) -> None:
    code = (
        "import socket\n"
        "try:\n"
        "    socket.create_connection(('1.1.1.1', 53), timeout=2)\n"
        "    print('connected')\n"
        "except OSError:\n"
        "    print('offline')\n"
    )
    (box[0] / "net.py").write_text(code)
    r = await sh(runner, box, "python net.py")
    assert r.stdout.strip() == "offline"


async def test_timeout_kills_everything(runner: OneShotRunner, box: tuple[Path, Path]) -> None:
    ws = box[0]
    r = await sh(runner, box, "(while true; do date +%s%N > tick; sleep 0.02; done) & sleep 60", 1)
    assert r.timed_out and r.exit_code == -9
    first = (ws / "tick").read_text()
    time.sleep(0.3)
    assert (ws / "tick").read_text() == first  # the background loop died with the sandbox


async def test_output_flood_keeps_head_and_tail(
    runner: OneShotRunner, box: tuple[Path, Path]
) -> None:
    ws = box[0]
    limits = Limits(output_bytes=1000)
    r = await runner.run(
        "echo FIRST; yes | head -c 5000000; echo; echo LAST",
        mounts=[Mount(ws, str(ws), writable=True)],
        cwd=str(ws),
        env={},
        timeout=20,
        limits=limits,
    )
    assert r.truncated and r.stdout.startswith("FIRST") and r.stdout.rstrip().endswith("LAST")
    assert len(r.stdout) < 2100


async def test_process_limit_applies(runner: OneShotRunner, box: tuple[Path, Path]) -> None:
    ws, _ = box
    r = await runner.run(
        "bash -c 'ulimit -u'",
        mounts=[Mount(ws, str(ws), writable=True)],
        cwd=str(ws),
        env={"EXTRA": "1"},
        timeout=20,
        limits=Limits(processes=17),
    )
    assert r.stdout.strip() == "17"


async def test_nothing_an_attack_writes_survives(tmp_path: Path, runner: OneShotRunner) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "keep.txt").write_text("original\n")
    suite = tmp_path / "suite"
    (suite / "workspace").mkdir(parents=True)
    (suite / "subterfuge.toml").write_text(
        '[task]\ngrade = "test ! -e leak && echo changed > keep.txt && touch leak /tmp/leak"\n'
    )
    (task,) = discover(suite)
    work = tmp_path / "work"
    work.mkdir()
    grader = Grader(runner, work, jobs=2)
    first = await grader.grade(task, tree)
    second = await grader.grade(task, tree)
    assert first.passed and second.passed  # `leak` never carried over to the second copy
    assert (tree / "keep.txt").read_text() == "original\n"
    assert list(work.iterdir()) == []  # each grading's copy is deleted
    assert grader.gradings == 2


async def test_attack_code_never_runs_in_the_harness(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    task = tmp_path / "suite" / "t"
    (task / "workspace").mkdir(parents=True)
    (task / "workspace" / "app.py").write_text(
        f"open({str(canary)!r}, 'w').write('ran')\n\ndef run():\n    raise NotImplementedError\n"
    )
    (task / "subterfuge.toml").write_text("[task]\ngrade = \"python -c 'import app; app.run()'\"\n")
    report = await run_audit(discover(task), select(), jobs=2)
    (result,) = report.tasks
    assert result.status is TaskStatus.FOOLED  # noop: run() no longer raises
    assert {r.attack for r in result.results if r.verdict is Verdict.FOOLED} >= {"noop"}
    assert not canary.exists()  # imported only inside sandboxes, where this path is private
