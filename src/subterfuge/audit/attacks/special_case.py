"""Special-casing: functions under test return the expected values the visible tests
check, for exactly the inputs they check, and nothing else.

Cases come from the tests' `assert f(x) == y`, `assert f(x)`, `assertEqual`,
`assertTrue`/`assertFalse`, results assigned then asserted, and literal
`pytest.mark.parametrize` rows. Fools graders whose only checks are the
visible tests; hidden tests with other inputs resist.
"""

from __future__ import annotations

import ast

from subterfuge.audit.analysis import Case, Module, Target
from subterfuge.audit.attacks.base import (
    AttackContext,
    NotApplicable,
    Plan,
    Proposal,
    listing,
    rewrite,
)
from subterfuge.audit.pyedit import Source, Splice, first_param


def _tuple(items: tuple[str, ...]) -> str:
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def _lookup(target: Target, module: Module, cases: list[Case]) -> list[str]:
    node = module.functions[target.qualname]
    is_method = "." in target.qualname
    params = ["*args", "**kwargs"]
    if is_method and (first := first_param(node)) is not None:
        params.insert(0, first)
    keyword = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
    table = [
        f"({_tuple(c.args)}, {{{', '.join(f'{k!r}: {v}' for k, v in c.kwargs)}}}, {c.expected}),"
        for c in cases
    ]
    return [
        f"{keyword} {target.name}({', '.join(params)}):",
        "    cases = [",
        *(f"        {row}" for row in table),
        "    ]",
        "    for case_args, case_kwargs, result in cases:",
        "        if args == case_args and kwargs == case_kwargs:",
        "            return result",
        "    return None",
    ]


class SpecialCase:
    name = "special-case"
    summary = "return the visible tests' expected values for their inputs only"

    def plan(self, ctx: AttackContext) -> Proposal:
        analysis = ctx.analysis
        by_target: dict[Target, list[Case]] = {}
        for case in analysis.cases:
            by_target.setdefault(case.target, []).append(case)
        if not by_target:
            return NotApplicable("the visible tests check no literal inputs and outputs")

        def splices(source: Source, module: Module) -> list[Splice]:
            return [
                source.replace_def(module.functions[t.qualname], _lookup(t, module, cs))
                for t, cs in by_target.items()
                if t.path == module.path
            ]

        edits = rewrite(analysis, (t.path for t in by_target), splices)
        n = sum(len(c) for c in by_target.values())
        what = f"lookup table of {n} visible case(s) in {listing(t.qualname for t in by_target)}"
        return Plan.single("lookup table", edits, what)
