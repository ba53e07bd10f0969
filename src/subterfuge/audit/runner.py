"""Auditing a suite: baselines, then every attack, every task in parallel.

Per task: materialise a pristine workspace (and the reference overlaid on a
second copy), analyse it, grade both baselines; if the baseline holds, plan
every attack and grade its variants, each in its own fresh copy. Gradings of
all tasks share one bound (`jobs`); tasks start as slots free up.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from subterfuge.audit.analysis import Analysis, Case, analyze
from subterfuge.audit.attacks import Attack, AttackContext, NotApplicable, Surface
from subterfuge.audit.grading import AUDIT_LIMITS, Grade, Grader
from subterfuge.audit.task import AuditTask
from subterfuge.audit.verdict import (
    AttackResult,
    Baseline,
    SuiteReport,
    TaskReport,
    Verdict,
    baseline_problems,
    judge,
    worst,
)
from subterfuge.audit.workspace import (
    changes,
    copy_tree,
    make_world_readable,
    overlay_tree,
    tree_readable_by_others,
)
from subterfuge.sandbox.base import Limits
from subterfuge.sandbox.bwrap import default_base_dir, prepare_base_dir
from subterfuge.sandbox.oneshot import OneShotRunner
from subterfuge.sandbox.procs import rmtree

OnGrade = Callable[[], None]
OnTask = Callable[[TaskReport], None]


async def run_audit(
    tasks: Sequence[AuditTask],
    attacks: Sequence[Attack],
    *,
    jobs: int | None = None,
    limits: Limits = AUDIT_LIMITS,
    runner: OneShotRunner | None = None,
    base_dir: Path | None = None,
    on_grade: OnGrade | None = None,
    on_task: OnTask | None = None,
) -> SuiteReport:
    """Audit `tasks` with `attacks`; at most `jobs` gradings at once (default: CPU count)."""
    jobs = jobs or os.cpu_count() or 1
    own_runner = runner is None
    runner = runner or OneShotRunner()
    base = base_dir or default_base_dir()
    prepare_base_dir(base)
    work = Path(tempfile.mkdtemp(prefix="audit-", dir=base))
    os.chmod(work, 0o711)
    grader = Grader(runner, work, jobs, limits, on_grade)
    task_slots = asyncio.Semaphore(max(2 * jobs, 4))
    start = time.monotonic()

    async def one(index: int, task: AuditTask) -> TaskReport:
        async with task_slots:
            report = await _audit_task(task, attacks, grader, work / f"task-{index}")
        if on_task is not None:
            on_task(report)
        return report

    try:
        reports = await asyncio.gather(*(one(i, t) for i, t in enumerate(tasks)))
    finally:
        await asyncio.to_thread(rmtree, work)
        if own_runner:
            runner.close()
    return SuiteReport(
        tasks=tuple(reports),
        attacks=tuple(a.name for a in attacks),
        seconds=time.monotonic() - start,
        gradings=grader.gradings,
    )


def _prepare(task: AuditTask, here: Path) -> tuple[Path, Path | None, Path | None, Analysis]:
    """Pristine workspace, reference tree, readable task view, analysis (in a thread)."""
    here.mkdir(mode=0o711)
    pristine = here / "pristine"
    task.workspace.materialize(pristine)
    reference = None
    if task.reference is not None:
        reference = here / "reference"
        copy_tree(pristine, reference)
        overlay_tree(task.reference, reference)
    view = None
    root = os.geteuid() == 0
    if root and task.task_dir is not None and not tree_readable_by_others(task.task_dir):
        view = here / "task"  # the sandbox's pool uid must be able to read it
        copy_tree(task.task_dir, view)
        make_world_readable(view)
    return pristine, reference, view, analyze(pristine)


def _facts(analysis: Analysis) -> dict[str, list[str]]:
    def call(case: Case) -> str:
        args = [*case.args, *(f"{k}={v}" for k, v in case.kwargs)]
        return f"{case.target.qualname}({', '.join(args)}) == {case.expected}"

    return {
        "tests": analysis.tests,
        "targets": [f"{t.path}:{t.qualname}" for t in analysis.targets],
        "literal_cases": [call(c) for c in analysis.cases[:20]],
        "answer_files": [*analysis.answer_files, *analysis.reference_modules],
        "result_files": analysis.result_files,
        "graders": [f"{g.path}:{g.qualname}" for g in analysis.graders] + analysis.grader_scripts,
    }


async def _audit_task(
    task: AuditTask, attacks: Sequence[Attack], grader: Grader, here: Path
) -> TaskReport:
    start = time.monotonic()
    try:
        try:
            pristine, reference_tree, view, analysis = await asyncio.to_thread(_prepare, task, here)
        except OSError as exc:
            failed = Grade(False, None, "not graded", error=f"could not copy the task: {exc}")
            baseline = Baseline(failed, None, (f"the audit could not prepare the task: {exc}",))
            return TaskReport(task, baseline, (), time.monotonic() - start)
        runs = [grader.grade(task, pristine, (), view)]
        if reference_tree is not None:
            runs.append(grader.grade(task, reference_tree, (), view))
        graded = await asyncio.gather(*runs)
        untouched, reference = graded[0], (graded[1] if len(graded) > 1 else None)
        baseline = Baseline(untouched, reference, baseline_problems(untouched, reference))
        if baseline.problems:
            return TaskReport(task, baseline, (), time.monotonic() - start, _facts(analysis))
        ctx = AttackContext(task, analysis, untouched, reference)
        results = await asyncio.gather(
            *(_attack(a, ctx, baseline, grader, pristine, view) for a in attacks)
        )
        return TaskReport(
            task, baseline, tuple(results), time.monotonic() - start, _facts(analysis)
        )
    finally:
        await asyncio.to_thread(rmtree, here)


async def _attack(
    attack: Attack,
    ctx: AttackContext,
    baseline: Baseline,
    grader: Grader,
    pristine: Path,
    view: Path | None,
) -> AttackResult:
    try:
        proposal = attack.plan(ctx)
    except Exception as exc:  # a bug in an attack must not sink the other attacks
        return AttackResult(attack.name, Verdict.ERROR, f"the attack failed to plan: {exc!r}")
    if isinstance(proposal, NotApplicable):
        return AttackResult(attack.name, Verdict.NOT_APPLICABLE, proposal.reason)
    if isinstance(proposal, Surface):
        return AttackResult(attack.name, Verdict.WARN, proposal.reason)
    results: list[AttackResult] = []
    for variant in proposal.variants:
        effective = changes(pristine, variant.edits)
        if not effective:
            continue
        grade = await grader.grade(ctx.task, pristine, effective, view)
        changed = tuple(e.path for e in effective)
        result = judge(
            attack.name, variant.name, variant.description, changed, grade, baseline, proposal.note
        )
        results.append(result)
        if result.verdict is Verdict.FOOLED:
            break
    if not results:
        return AttackResult(
            attack.name, Verdict.NOT_APPLICABLE, "the attack would change nothing here"
        )
    return worst(results)
