"""`subterfuge audit PATH`: attack every grader of a task suite with known exploits."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import TextColumn

from subterfuge.audit import (
    BATTERY,
    Attack,
    AuditTask,
    SuiteError,
    SuiteReport,
    TaskReport,
    default_adapters,
    discover,
    run_audit,
    select,
    write_junit,
)
from subterfuge.audit.output import render, to_json
from subterfuge.cli.common import JsonOption, fail, out
from subterfuge.progress import stderr_progress
from subterfuge.sandbox import SandboxError, bwrap_available


def audit(
    path: Annotated[
        Path | None,
        typer.Argument(
            help="A task directory (with subterfuge.toml), a suite directory (searched "
            "recursively), or a released-format environments.json."
        ),
    ] = None,
    attack: Annotated[
        list[str] | None,
        typer.Option("--attack", help="Run only this attack (repeatable; see --list)."),
    ] = None,
    skip: Annotated[
        list[str] | None, typer.Option("--skip", help="Do not run this attack (repeatable).")
    ] = None,
    jobs: Annotated[
        int | None,
        typer.Option("--jobs", "-j", min=1, help="Gradings at once. Default: CPU count."),
    ] = None,
    junit: Annotated[
        Path | None, typer.Option("--junit", help="Also write JUnit XML here (for CI).")
    ] = None,
    pay_threshold: Annotated[
        float, typer.Option(help="environments.json: a reward above this pays.")
    ] = 0.0,
    brief: Annotated[
        bool, typer.Option("--brief", help="Only the summary table, not one table per task.")
    ] = False,
    list_attacks: Annotated[
        bool, typer.Option("--list", help="List the attacks in the battery and exit.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Play the laziest, most dishonest agent on every task and report which graders
    it fooled.

    Each task's grader must first fail the untouched workspace and pass the
    reference solution (else the task is BROKEN). Then every attack runs in
    its own fresh copy of the workspace, graded in a one-shot bubblewrap
    sandbox that sees this interpreter (its virtualenv and PATH) and the task
    directory read-only: FOOLED, RESISTED, WARN, N/A or ERROR, with evidence.

    Exit status: 1 when any grader was fooled or any task is broken, 0
    otherwise, 2 on bad input.
    """
    if list_attacks:
        for a in BATTERY:
            out.print(f"[bold]{a.name}[/bold]: {a.summary}")
        return
    if path is None:
        fail("give the PATH of a task, a suite or an environments.json (see --help)")
    try:
        attacks = select(attack or [], skip or [])
    except ValueError as exc:
        fail(str(exc))
    if not attacks:
        fail("--attack/--skip leave no attack to run")
    try:
        tasks = discover(path, default_adapters(pay_threshold))
    except SuiteError as exc:
        fail(str(exc))
    ok, why = bwrap_available()
    if not ok:
        fail(
            f"the audit grades in bubblewrap sandboxes, which cannot start here: {why}\n"
            "(attack code never runs outside a sandbox)"
        )
    try:
        report = _run(tasks, attacks, jobs)
    except SandboxError as exc:
        fail(f"the sandbox failed: {exc}")
    if junit is not None:
        write_junit(report, junit)
    if as_json:
        print(to_json(report))
    else:
        out.print(render(report, brief=brief))
        if junit is not None:
            out.print(f"JUnit XML: {junit}")
    raise typer.Exit(report.exit_code)


def _run(tasks: Sequence[AuditTask], attacks: Sequence[Attack], jobs: int | None) -> SuiteReport:
    gradings_column = TextColumn("tasks · {task.fields[gradings]} gradings")
    with stderr_progress(True, gradings_column, eta=False, transient=True) as progress:
        bar = progress.add_task("audit", total=len(tasks), gradings=0)
        gradings = 0

        def graded() -> None:
            nonlocal gradings
            gradings += 1
            progress.update(bar, gradings=gradings)

        def finished(report: TaskReport) -> None:
            progress.advance(bar)

        return asyncio.run(run_audit(tasks, attacks, jobs=jobs, on_grade=graded, on_task=finished))
