"""The attack contract: read the workspace analysis, propose edits; the runner grades them.

An attack never runs anything. `plan` returns what to write or delete in a
fresh copy of the workspace (one or more variants, tried in order until one
fools the grader), or says why it does not apply (`NotApplicable`), or that it
found exploit surface it cannot use by itself (`Surface`, reported as WARN).
Injected code only ever executes inside the grading sandbox.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from subterfuge.audit.analysis import Analysis, FunctionNode, Module, Target
from subterfuge.audit.grading import Grade
from subterfuge.audit.pyedit import Source, Splice
from subterfuge.audit.task import AuditTask
from subterfuge.audit.workspace import Edit

PREFIX = "_subterfuge"
"""Names the injected code defines start with this, so they collide with nothing."""


@dataclass(frozen=True)
class Variant:
    """One way to carry out the attack: edits to a fresh copy, and what they do."""

    name: str
    edits: tuple[Edit, ...]
    description: str


@dataclass(frozen=True)
class Plan:
    variants: tuple[Variant, ...]
    note: str | None = None
    """Exploit surface left unused; turns RESISTED into WARN."""

    @classmethod
    def single(
        cls, name: str, edits: Iterable[Edit], description: str, note: str | None = None
    ) -> Plan:
        """The common case: one way to carry out the attack."""
        return cls((Variant(name, tuple(edits), description),), note)


@dataclass(frozen=True)
class NotApplicable:
    reason: str


@dataclass(frozen=True)
class Surface:
    """Something a person should look at, which the attack cannot exercise itself."""

    reason: str


Proposal = Plan | NotApplicable | Surface


@dataclass(frozen=True)
class AttackContext:
    """What an attack may look at: the task, the workspace analysis, the baseline runs."""

    task: AuditTask
    analysis: Analysis
    untouched: Grade
    reference: Grade | None


class Attack(Protocol):
    """One exploit. `name` is what `--attack` / `--skip` select."""

    name: str
    summary: str

    def plan(self, ctx: AttackContext) -> Proposal: ...


def rewrite(
    analysis: Analysis,
    paths: Iterable[str],
    splices: Callable[[Source, Module], list[Splice]],
) -> tuple[Edit, ...]:
    """One edit per module: the splices `splices(source, module)` returns, applied."""
    edits: list[Edit] = []
    for path in dict.fromkeys(paths):
        module = analysis.modules.get(path)
        if module is None:
            continue
        source = Source(module.source)
        found = splices(source, module)
        if found:
            edits.append(Edit(path, source.apply(found)))
    return tuple(edits)


def replace_bodies(
    analysis: Analysis,
    targets: Iterable[Target],
    body: Callable[[Target, FunctionNode], list[str] | None],
    first: str | None = None,
) -> tuple[Edit, ...]:
    """Give each target the body `body(target, node)` returns (docstring kept; None skips);
    `first` is code to run first when each changed module is imported."""
    by_path: dict[str, list[Target]] = {}
    for target in targets:
        by_path.setdefault(target.path, []).append(target)

    def splices(source: Source, module: Module) -> list[Splice]:
        out: list[Splice] = []
        for target in by_path[module.path]:
            node = module.functions[target.qualname]
            lines = body(target, node)
            if lines is not None:
                out.append(source.replace_body(node, lines))
        if out and first is not None:
            out.append(source.prologue(module.tree, first))
        return out

    return rewrite(analysis, by_path, splices)


def prologue(analysis: Analysis, paths: Iterable[str], code: str) -> tuple[Edit, ...]:
    """Run `code` first whenever each module is imported."""
    return rewrite(analysis, paths, lambda s, m: [s.prologue(m.tree, code)])


def listing(items: Iterable[str], limit: int = 4) -> str:
    """`a, b, c, d and 2 more`: short lists for evidence lines."""
    unique = list(dict.fromkeys(items))
    shown = ", ".join(unique[:limit])
    return shown + (f" and {len(unique) - limit} more" if len(unique) > limit else "")


def modules_to_patch(analysis: Analysis, also: Iterable[str] = ()) -> list[str]:
    """Where code must go to run before the grader's checks: the modules under test and
    `also` (the visible tests, the grader code), or every non-test module when neither
    was found."""
    found = [*analysis.sources, *also]
    if not found:
        found = [p for p, m in analysis.modules.items() if not m.is_test]
    return list(dict.fromkeys(found))
