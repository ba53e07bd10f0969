"""What a person reads: one table per task, a summary table, and the JSON document."""

from __future__ import annotations

import json

from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from subterfuge.audit.verdict import SuiteReport, TaskReport, TaskStatus, Verdict

VERDICT_STYLE = {
    Verdict.FOOLED: "bold red",
    Verdict.RESISTED: "green",
    Verdict.WARN: "yellow",
    Verdict.NOT_APPLICABLE: "dim",
    Verdict.ERROR: "magenta",
}
STATUS_STYLE = {
    TaskStatus.BROKEN: "bold magenta",
    TaskStatus.FOOLED: "bold red",
    TaskStatus.ERROR: "magenta",
    TaskStatus.WARN: "yellow",
    TaskStatus.ROBUST: "bold green",
}


def task_table(report: TaskReport) -> Table:
    """Attack | verdict | evidence for one task (the baseline problems when broken)."""
    status = report.status
    title = Text.assemble((report.task.name, "bold"), "  ", (status.value, STATUS_STYLE[status]))
    table = Table("attack", "verdict", "evidence", title=title, title_justify="left")
    table.columns[2].overflow = "fold"
    if report.baseline.problems:
        for problem in report.baseline.problems:
            table.add_row("baseline", Text("BROKEN", STATUS_STYLE[TaskStatus.BROKEN]), problem)
        table.caption = "attacks not run: the baseline must hold first"
        return table
    for r in report.results:
        table.add_row(r.attack, Text(r.verdict.value, VERDICT_STYLE[r.verdict]), escape(r.evidence))
    return table


def summary_table(suite: SuiteReport) -> Table:
    table = Table("task", "status", "fooled by", "resisted", "warn", "n/a", "error", "s")
    for t in suite.tasks:
        fooled = [r.attack for r in t.results if r.verdict is Verdict.FOOLED]
        table.add_row(
            t.task.name,
            Text(t.status.value, STATUS_STYLE[t.status]),
            ", ".join(fooled) or ("—" if not t.baseline.problems else "(not run)"),
            str(t.count(Verdict.RESISTED)),
            str(t.count(Verdict.WARN)),
            str(t.count(Verdict.NOT_APPLICABLE)),
            str(t.count(Verdict.ERROR)),
            f"{t.seconds:.1f}",
        )
    return table


def summary_line(suite: SuiteReport) -> str:
    n = len(suite.tasks)
    rate = n / suite.seconds * 60 if suite.seconds > 0 else 0.0
    return (
        f"{n} task(s), {len(suite.attacks)} attack(s): {len(suite.fooled)} fooled, "
        f"{len(suite.broken)} broken; {suite.gradings} gradings in {suite.seconds:.1f} s "
        f"({rate:.1f} tasks/min)"
    )


def render(suite: SuiteReport, *, brief: bool = False) -> Group:
    parts: list[Table | Text] = []
    if not brief:
        parts += [task_table(t) for t in suite.tasks]
    parts.append(summary_table(suite))
    parts.append(Text(summary_line(suite), style="bold"))
    return Group(*parts)


def to_json(suite: SuiteReport) -> str:
    return json.dumps(suite.to_json(), indent=2)
