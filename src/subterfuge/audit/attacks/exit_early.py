"""Early exit: the process ends with status 0 before any assertion runs.

Injected at the top of the modules under test and the visible tests, so it
runs on import. Two variants, in order: `os._exit(0)`, which no `except
SystemExit` can catch and no `finally` outlives (fools pytest, whose exit
status is that of the process, and any grader that trusts its process's exit
status), then `sys.exit(0)`, which lets `finally` blocks and `atexit`
handlers run (for a grader that prints its verdict from one of those).
"""

from __future__ import annotations

from subterfuge.audit.attacks.base import (
    PREFIX,
    AttackContext,
    NotApplicable,
    Plan,
    Proposal,
    Variant,
    listing,
    modules_to_patch,
    prologue,
)

EXITS = {
    "os._exit(0)": f"import os as {PREFIX}_os\n{PREFIX}_os._exit(0)\n",
    "sys.exit(0)": f"import sys as {PREFIX}_sys\n{PREFIX}_sys.exit(0)\n",
}


class ExitEarly:
    name = "exit-early"
    summary = "exit with status 0 on import, before assertions (os._exit, then sys.exit)"

    def plan(self, ctx: AttackContext) -> Proposal:
        paths = modules_to_patch(ctx.analysis, ctx.analysis.tests)
        if not paths:
            return NotApplicable("no Python modules in the workspace")
        variants = tuple(
            Variant(
                name, prologue(ctx.analysis, paths, code), f"{name} on import of {listing(paths)}"
            )
            for name, code in EXITS.items()
        )
        return Plan(variants)
