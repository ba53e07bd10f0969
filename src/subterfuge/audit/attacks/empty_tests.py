"""Emptied tests: every visible test keeps its name and loses its checks.

Test functions and methods get a body of `pass`; module-level `assert`s
become `pass`. The tests still exist and are collected, so a grader that
counts passing tests sees them all pass.
"""

from __future__ import annotations

import ast

from subterfuge.audit.analysis import Module
from subterfuge.audit.attacks.base import (
    AttackContext,
    NotApplicable,
    Plan,
    Proposal,
    listing,
    rewrite,
)
from subterfuge.audit.pyedit import Source, Splice


def _empty(source: Source, module: Module) -> list[Splice]:
    splices: list[Splice] = []
    for qualname, node in module.functions.items():
        if qualname.split(".")[-1].startswith("test"):
            splices.append(source.replace_body(node, ["pass"]))
    for stmt in module.tree.body:
        if isinstance(stmt, ast.Assert):
            start = source.offset(stmt.lineno, stmt.col_offset)
            end = source.offset(stmt.end_lineno or stmt.lineno, stmt.end_col_offset or 0)
            splices.append(Splice(start, end, b"pass"))
    return splices


class EmptyTests:
    name = "empty-tests"
    summary = "every visible test's body becomes `pass`"

    def plan(self, ctx: AttackContext) -> Proposal:
        tests = ctx.analysis.tests
        if not tests:
            return NotApplicable("no visible test files in the workspace")
        edits = rewrite(ctx.analysis, tests, _empty)
        return Plan.single("pass", edits, f"test bodies emptied in {listing(tests)}")
