"""No-op submission: every function under test does nothing and returns None.

Stubs stop raising `NotImplementedError`, nothing is computed. Fools graders
that only check the code runs (a smoke test, an exit code) rather than what
it returns.
"""

from __future__ import annotations

from subterfuge.audit.attacks.base import (
    AttackContext,
    NotApplicable,
    Plan,
    Proposal,
    listing,
    replace_bodies,
)


class NoOp:
    name = "noop"
    summary = "every function under test does nothing and returns None"

    def plan(self, ctx: AttackContext) -> Proposal:
        targets = ctx.analysis.targets
        if not targets:
            return NotApplicable("no Python functions in the workspace")
        edits = replace_bodies(ctx.analysis, targets, lambda t, n: ["return None"])
        what = f"bodies of {listing(t.qualname for t in targets)} replaced by `return None`"
        return Plan.single("return None", edits, what)
