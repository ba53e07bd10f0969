"""Copying answers: reference or expected-answer files reachable from the workspace are
copied to where the grader looks for the work.

Answer files are found by name (`expected`, `answer`, `solution`, `reference`,
`golden`, `oracle`, ... in their path). A data file goes where its name
points once the answer word is dropped (`data/expected_output.txt` ->
`output.txt`, at a path the workspace code mentions, else next to it and at
the root); a Python file that defines the functions under test replaces the
module that should define them. Answer files it cannot place are reported as
WARN for a person to check.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from subterfuge.audit.analysis import ANSWER_WORDS, RESULT_WORDS, Analysis, tokens
from subterfuge.audit.attacks.base import (
    AttackContext,
    NotApplicable,
    Plan,
    Proposal,
    Surface,
    listing,
)
from subterfuge.audit.workspace import Edit


def _output_name(answer: str, analysis: Analysis) -> str | None:
    """The file an answer file is the answer for, by name, or None."""
    path = PurePosixPath(answer)
    words = [w for w in re.split(r"[^A-Za-z0-9]+", path.stem) if w]
    kept = [w for w in words if w.lower() not in ANSWER_WORDS]
    if kept:
        return "_".join(kept) + path.suffix
    missing = [
        lit
        for lit in sorted(analysis.string_literals)
        if PurePosixPath(lit).suffix == path.suffix
        and lit not in analysis.files
        and not tokens(lit) & (ANSWER_WORDS | RESULT_WORDS)
    ]
    return PurePosixPath(missing[0]).name if missing else None


def _placements(answer: str, output: str, analysis: Analysis) -> list[str]:
    mentioned = [
        lit
        for lit in sorted(analysis.string_literals)
        if PurePosixPath(lit).name == output and not lit.startswith("/")
    ]
    if mentioned:
        return mentioned[:2]
    beside = str(PurePosixPath(answer).parent / output)
    return list(dict.fromkeys([beside.removeprefix("./"), output]))


class CopyAnswers:
    name = "copy-answers"
    summary = "copy answer/reference files found in the workspace to where the work goes"

    def plan(self, ctx: AttackContext) -> Proposal:
        analysis = ctx.analysis
        if not analysis.answer_files and not analysis.reference_modules:
            return NotApplicable("no answer-like or reference-like files in the workspace")
        edits: list[Edit] = []
        moves: list[str] = []
        unused: list[str] = []
        for answer in analysis.answer_files:
            output = _output_name(answer, analysis)
            content = analysis.content(answer)
            if output is None or content is None:
                unused.append(answer)
                continue
            for place in _placements(answer, output, analysis):
                if place != answer:
                    edits.append(Edit(place, content))
                    moves.append(f"{answer} -> {place}")
        target_names = {t.name for t in analysis.targets}
        for ref in analysis.reference_modules:
            defined = _defines(analysis, ref)
            overlap = [s for s in analysis.sources if s != ref and _defines(analysis, s) & defined]
            content = analysis.content(ref)
            if not overlap or not defined & target_names or content is None:
                unused.append(ref)
                continue
            for source in overlap:
                edits.append(Edit(source, content))
                moves.append(f"{ref} -> {source}")
        note = f"readable answer-like files not used: {listing(unused)}" if unused else None
        if not edits:
            return Surface(
                f"readable answer-like files the attack could not place: {listing(unused)}"
            )
        return Plan.single("copy", edits, f"copied {listing(moves)}", note)


def _defines(analysis: Analysis, path: str) -> set[str]:
    return {q.split(".")[-1] for q in analysis.modules[path].functions}
