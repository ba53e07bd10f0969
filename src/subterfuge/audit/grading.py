"""Grading one workspace state: a fresh copy, the task's commands in a one-shot sandbox,
the pass rule's reading.

Each call copies the tree it is given, applies the edits, mounts the copy
writable (and the task directory read-only), runs every grading command, and
deletes the copy: attacks never share a workspace and nothing an attack
writes survives it.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from subterfuge.audit.task import AuditTask, StepOutput
from subterfuge.audit.workspace import Edit, apply_edit, copy_tree
from subterfuge.sandbox.base import Limits, SandboxError
from subterfuge.sandbox.oneshot import Mount, OneShotRunner
from subterfuge.sandbox.procs import rmtree

AUDIT_LIMITS = Limits(
    output_bytes=1 << 20,
    memory_bytes=4 << 30,
    processes=256,
    file_bytes=256 << 20,
)
"""Per grading run: 1 MiB kept of each stream's head and tail, 4 GiB address space
(numpy, torch-free test suites), 256 processes/threads, 256 MiB per file."""
NOT_RUNNABLE = (126, 127)
"""Shell exit codes for a command that could not be found or executed."""


@dataclass(frozen=True)
class Grade:
    """A grader's reading of one workspace state."""

    passed: bool
    score: float | None
    summary: str
    steps: tuple[StepOutput, ...] = ()
    error: str | None = None
    """Set when the grader itself broke (sandbox failure, command not runnable)."""
    seconds: float = 0.0

    def excerpt(self, chars: int = 300) -> str:
        """The end of the grader's output, for evidence."""
        text = "\n".join(s.text.strip() for s in self.steps if s.text.strip())
        text = text.strip()
        return text if len(text) <= chars else "…" + text[-chars:]

    def last_line(self, chars: int = 120) -> str:
        """The last non-empty line the grader printed on stdout (else stderr), shortened:
        one line of evidence."""
        for streams in ([s.stdout for s in self.steps], [s.stderr for s in self.steps]):
            for text in reversed(streams):
                lines = [line.strip() for line in text.splitlines() if line.strip()]
                if lines:
                    line = lines[-1]
                    return line if len(line) <= chars else line[: chars - 1] + "…"
        return ""

    def to_json(self) -> dict[str, object]:
        return {
            "passed": self.passed,
            "score": self.score,
            "summary": self.summary,
            "error": self.error,
            "seconds": round(self.seconds, 3),
            "steps": [
                {
                    "name": s.name,
                    "exit_code": s.exit_code,
                    "timed_out": s.timed_out,
                    "output_tail": s.text[-2000:],
                }
                for s in self.steps
            ],
        }


class Grader:
    """Grades workspace states of many tasks, at most `jobs` at a time."""

    def __init__(
        self,
        runner: OneShotRunner,
        work_dir: Path,
        jobs: int,
        limits: Limits = AUDIT_LIMITS,
        on_done: Callable[[], None] | None = None,
    ) -> None:
        self.runner = runner
        self.work_dir = work_dir
        self.limits = limits
        self.gradings = 0
        self._slots = asyncio.Semaphore(max(1, jobs))
        self._on_done = on_done

    async def grade(
        self,
        task: AuditTask,
        tree: Path,
        edits: Sequence[Edit] = (),
        task_view: Path | None = None,
    ) -> Grade:
        """Grade a copy of `tree` with `edits` applied. `task_view` is what to show at the
        task directory's path (a readable copy of it, when the sandbox user needs one)."""
        async with self._slots:
            run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=self.work_dir))
            try:
                os.chmod(run_dir, 0o711)
                return await self._grade(task, tree, edits, task_view, run_dir)
            finally:
                await asyncio.to_thread(rmtree, run_dir)
                self.gradings += 1
                if self._on_done is not None:
                    self._on_done()

    async def _grade(
        self,
        task: AuditTask,
        tree: Path,
        edits: Sequence[Edit],
        task_view: Path | None,
        run_dir: Path,
    ) -> Grade:
        copy = run_dir / task.workspace.copy_name
        await asyncio.to_thread(_prepare, tree, copy, edits)
        layout = task.workspace.layout(copy)
        mounts = [Mount(copy / rel, dest, writable=True) for rel, dest in layout.mounts]
        if task.task_dir is not None:
            mounts.append(Mount(task_view or task.task_dir, str(task.task_dir)))
        steps: list[StepOutput] = []
        start = time.monotonic()
        try:
            for step in task.steps:
                result = await self.runner.run(
                    step.render(task.task_dir, layout.workspace),
                    mounts=mounts,
                    cwd=layout.cwd,
                    env=task.env,
                    timeout=task.timeout,
                    limits=self.limits,
                )
                steps.append(
                    StepOutput(
                        step.name,
                        result.exit_code,
                        result.timed_out,
                        result.stdout,
                        result.stderr,
                        result.seconds,
                    )
                )
        except SandboxError as exc:
            return Grade(False, None, "the sandbox failed", tuple(steps), str(exc))
        seconds = time.monotonic() - start
        judged = task.rule.judge(steps)
        error = None
        for s in steps:
            if s.exit_code in NOT_RUNNABLE:
                tail = s.stderr.strip()[-300:]
                error = f"the '{s.name}' command could not run (exit {s.exit_code}): {tail}"
        return Grade(judged.passed, judged.score, judged.summary, tuple(steps), error, seconds)


def _prepare(tree: Path, copy: Path, edits: Sequence[Edit]) -> None:
    copy_tree(tree, copy)
    for edit in edits:
        apply_edit(copy, edit)
