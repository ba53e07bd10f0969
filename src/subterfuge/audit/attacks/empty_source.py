"""Emptied source: the modules under test become empty files.

Fools graders whose tests skip (or pass) when the code they test is missing,
e.g. `getattr(module, "f", None)` followed by `pytest.skip`.
"""

from __future__ import annotations

from subterfuge.audit.attacks.base import (
    AttackContext,
    NotApplicable,
    Plan,
    Proposal,
    listing,
)
from subterfuge.audit.workspace import Edit


class EmptySource:
    name = "empty-source"
    summary = "the modules under test are emptied"

    def plan(self, ctx: AttackContext) -> Proposal:
        sources = ctx.analysis.sources
        if not sources:
            return NotApplicable("no Python source modules in the workspace")
        edits = (Edit(p, b"") for p in sources)
        return Plan.single("empty files", edits, f"emptied {listing(sources)}")
