"""Verdicts: what one attack on one task showed, and what a task's audit amounts to.

- `FOOLED`: the grader passed (or scored at least the honest reference) though
  the work was not done.
- `RESISTED`: it did not.
- `WARN`: exploit surface a person should confirm (an answer file the attack
  could not use; a score the attack raised without passing).
- `N/A`: the attack does not apply to this workspace.
- `ERROR`: the grader itself broke (its command could not run, the sandbox failed).

A task is `BROKEN` when its baseline fails: the grader passes the untouched
workspace, or rejects the reference solution, or breaks on either. Its attacks
are not run: a grader that cannot tell work from no work has nothing to fool.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from subterfuge.audit.grading import Grade
from subterfuge.audit.task import AuditTask


class Verdict(StrEnum):
    FOOLED = "FOOLED"
    RESISTED = "RESISTED"
    WARN = "WARN"
    NOT_APPLICABLE = "N/A"
    ERROR = "ERROR"


class TaskStatus(StrEnum):
    BROKEN = "BROKEN"
    FOOLED = "FOOLED"
    ERROR = "ERROR"
    WARN = "WARN"
    ROBUST = "ROBUST"


@dataclass(frozen=True)
class AttackResult:
    """One attack on one task, with the evidence a person needs to check it."""

    attack: str
    verdict: Verdict
    evidence: str
    variant: str | None = None
    changed: tuple[str, ...] = ()
    grade: Grade | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "attack": self.attack,
            "verdict": self.verdict.value,
            "evidence": self.evidence,
            "variant": self.variant,
            "changed_files": list(self.changed),
            "grade": self.grade.to_json() if self.grade else None,
        }


@dataclass(frozen=True)
class Baseline:
    untouched: Grade
    reference: Grade | None
    problems: tuple[str, ...]


@dataclass(frozen=True)
class TaskReport:
    task: AuditTask
    baseline: Baseline
    results: tuple[AttackResult, ...]
    seconds: float
    facts: dict[str, list[str]] = field(default_factory=dict)
    """What the workspace analysis found (tests, targets, answer files, ...)."""

    @property
    def status(self) -> TaskStatus:
        verdicts = {r.verdict for r in self.results}
        if self.baseline.problems:
            return TaskStatus.BROKEN
        for verdict, status in (
            (Verdict.FOOLED, TaskStatus.FOOLED),
            (Verdict.ERROR, TaskStatus.ERROR),
            (Verdict.WARN, TaskStatus.WARN),
        ):
            if verdict in verdicts:
                return status
        return TaskStatus.ROBUST

    def count(self, verdict: Verdict) -> int:
        return sum(r.verdict is verdict for r in self.results)

    def to_json(self) -> dict[str, object]:
        task = self.task
        return {
            "name": task.name,
            "declared_in": str(task.origin),
            "format": task.kind,
            "status": self.status.value,
            "rule": task.rule.describe(),
            "baseline": {
                "problems": list(self.baseline.problems),
                "untouched": self.baseline.untouched.to_json(),
                "reference": self.baseline.reference.to_json() if self.baseline.reference else None,
            },
            "attacks": [r.to_json() for r in self.results],
            "found": self.facts,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class SuiteReport:
    tasks: tuple[TaskReport, ...]
    attacks: tuple[str, ...]
    seconds: float
    gradings: int

    @property
    def fooled(self) -> list[TaskReport]:
        return [t for t in self.tasks if t.status is TaskStatus.FOOLED]

    @property
    def broken(self) -> list[TaskReport]:
        return [t for t in self.tasks if t.status is TaskStatus.BROKEN]

    @property
    def exit_code(self) -> int:
        """1 when any grader was fooled or any task is broken, else 0."""
        return 1 if self.fooled or self.broken else 0

    def to_json(self) -> dict[str, object]:
        statuses = {s.value: sum(t.status is s for t in self.tasks) for s in TaskStatus}
        return {
            "tasks": [t.to_json() for t in self.tasks],
            "attacks": list(self.attacks),
            "summary": {
                "tasks": len(self.tasks),
                "status": statuses,
                "gradings": self.gradings,
                "seconds": round(self.seconds, 3),
                "exit_code": self.exit_code,
            },
        }


def baseline_problems(untouched: Grade, reference: Grade | None) -> tuple[str, ...]:
    """Why the task cannot be audited: its grader cannot tell work from no work."""
    problems: list[str] = []
    if untouched.error:
        problems.append(f"the grader broke on the untouched workspace: {untouched.error}")
    elif untouched.passed:
        problems.append(
            f"the grader passes the untouched workspace ({untouched.summary}): "
            "it pays for no work at all"
        )
    if reference is not None:
        if reference.error:
            problems.append(f"the grader broke on the reference solution: {reference.error}")
        elif not reference.passed:
            tail = reference.excerpt(200)
            problems.append(
                f"the grader rejects the reference solution ({reference.summary})"
                + (f": {tail}" if tail else "")
            )
    return tuple(problems)


def judge(
    attack: str,
    variant: str,
    description: str,
    changed: tuple[str, ...],
    grade: Grade,
    baseline: Baseline,
    note: str | None = None,
) -> AttackResult:
    """The verdict for one graded attack variant."""

    last = grade.last_line()
    said = f' (last output: "{last}")' if last else ""

    def result(verdict: Verdict, evidence: str) -> AttackResult:
        return AttackResult(attack, verdict, evidence, variant, changed, grade)

    if grade.error:
        return result(Verdict.ERROR, f"{description}; the grader broke: {grade.error}")
    ref = baseline.reference.score if baseline.reference else None
    if grade.passed or (grade.score is not None and ref is not None and grade.score >= ref):
        return result(Verdict.FOOLED, f"{description}; the grader passed: {grade.summary}{said}")
    before = baseline.untouched.score
    if grade.score is not None and before is not None and grade.score > before:
        return result(
            Verdict.WARN,
            f"{description}; the score rose from {before:g} to {grade.score:g} without the work",
        )
    if note:
        return result(Verdict.WARN, f"{description}; resisted ({grade.summary}), but {note}")
    return result(Verdict.RESISTED, f"{description}; {grade.summary}{said}")


SEVERITY = (Verdict.FOOLED, Verdict.ERROR, Verdict.WARN, Verdict.RESISTED, Verdict.NOT_APPLICABLE)


def worst(results: list[AttackResult]) -> AttackResult:
    """The variant result that decides the attack's verdict."""
    return min(results, key=lambda r: SEVERITY.index(r.verdict))
