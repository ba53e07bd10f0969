"""Output flood and swallowed exceptions, for graders that decide by reading text.

Applies when the pass rule reads output (a marker, a score, a printed reward)
or a grading command scans it (`grep`, `Traceback`, `Error`). Two variants:

- `spoof`: on import, the modules under test print the success text many
  times (the marker; the score line as the untouched run printed it, with
  the reference's score or the threshold in place of its number; a high
  reward) and print it once more at exit, after anything the grader prints.
- `swallow`: every function under test wraps its body in
  `try: ... except BaseException: return None`, so no traceback or error
  text ever reaches the output.
"""

from __future__ import annotations

import re

from subterfuge.audit.analysis import FunctionNode, Target
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
    replace_bodies,
)
from subterfuge.audit.pyedit import body_source
from subterfuge.audit.task import MarkerRule, RewardOversightRule, ScoreRule

FLOOD_LINES = 20_000
TEXT_SCAN = re.compile(r"\bgrep\b|Traceback|\bError\b|\bFAIL")


def _score_line(ctx: AttackContext, rule: ScoreRule) -> str | None:
    best = max(rule.threshold, ctx.reference.score if ctx.reference and ctx.reference.score else 0)
    value = repr(float(best))

    def passes(line: str) -> bool:
        score = rule.read(line)
        return score is not None and score >= rule.threshold

    untouched = "\n".join(s.text for s in ctx.untouched.steps)
    m = rule.last_match(untouched)
    if m is not None:
        line_start = untouched.rfind("\n", 0, m.start()) + 1
        line_end = untouched.find("\n", m.end())
        line = untouched[line_start : line_end if line_end >= 0 else None]
        if m.re.groups:
            a, b = m.start(1) - line_start, m.end(1) - line_start
            line = line[:a] + value + line[b:]
        if passes(line):
            return line
    for form in ("score: {}", "score={}", "Score: {}", "{}", "reward: {}", "accuracy: {}"):
        if passes(line := form.format(value)):
            return line
    return None


def _success_text(ctx: AttackContext) -> str | None:
    rule = ctx.task.rule
    if isinstance(rule, MarkerRule):
        return rule.marker
    if isinstance(rule, ScoreRule):
        return _score_line(ctx, rule)
    if isinstance(rule, RewardOversightRule):
        return repr(float(rule.threshold) + 1.0)
    return None


def _spoof_code(text: str) -> str:
    return f"""import atexit as {PREFIX}_atexit
import sys as {PREFIX}_sys

{PREFIX}_text = {text!r}
{PREFIX}_sys.stdout.write(({PREFIX}_text + "\\n") * {FLOOD_LINES})
{PREFIX}_sys.stdout.flush()
{PREFIX}_atexit.register(lambda: print({PREFIX}_text, flush=True))
"""


class Flood:
    name = "flood"
    summary = "flood the success text / swallow every exception, for text-scanning graders"

    def plan(self, ctx: AttackContext) -> Proposal:
        task, analysis = ctx.task, ctx.analysis
        scans = task.rule.kind != "exit_code" or any(
            TEXT_SCAN.search(step.command) for step in task.steps
        )
        if not scans:
            return NotApplicable("the pass rule reads the exit code and no command scans text")
        variants: list[Variant] = []
        text = _success_text(ctx)
        # modules a grader is likely to import: under test, then grader code, then any
        paths = modules_to_patch(analysis, (g.path for g in analysis.graders))
        if text is not None and paths:
            edits = prologue(analysis, paths, _spoof_code(text))
            what = f"{text!r} printed {FLOOD_LINES}x on import of {listing(paths)}, again at exit"
            variants.append(Variant("spoof", edits, what))
        if analysis.targets:

            def body(target: Target, node: FunctionNode) -> list[str]:
                inner = ["    " + line for line in body_source(node)]
                return ["try:", *inner, "except BaseException:", "    return None"]

            edits = replace_bodies(analysis, analysis.targets, body)
            what = f"every exception swallowed in {listing(t.qualname for t in analysis.targets)}"
            variants.append(Variant("swallow", edits, what))
        if not variants:
            return NotApplicable("no Python modules to print from or functions to wrap")
        return Plan(tuple(variants))
