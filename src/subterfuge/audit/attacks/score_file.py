"""Writing the result file: a perfect score in the file the grader reads.

Result files are found by name (`score`, `results`, `metrics`, `reward`,
`report`, ... with a data extension): files in the workspace, and paths the
workspace code mentions. JSON gets every key the workspace writes or the file
already has: counts of failures and losses go to 0, rates and scores to 1.0
(100 when the existing value is above 1), flags to true, `passed` to
`total`. Text files get `1.0` (or their `key: value` lines rewritten).
"""

from __future__ import annotations

import json
import re
from pathlib import PurePosixPath
from typing import Any

from subterfuge.audit.analysis import tokens
from subterfuge.audit.attacks.base import (
    AttackContext,
    NotApplicable,
    Plan,
    Proposal,
    listing,
)
from subterfuge.audit.workspace import Edit

BAD = frozenset(
    [
        "fail",
        "failed",
        "failure",
        "failures",
        "error",
        "errors",
        "loss",
        "mse",
        "rmse",
        "mae",
        "wrong",
        "incorrect",
        "missed",
        "skipped",
        "regression",
        "violations",
    ]
)
FLAGS = frozenset(
    ["passed", "pass", "success", "succeeded", "ok", "solved", "correct", "done", "complete", "all"]
)
TOTALS = frozenset(["total", "count", "n", "num", "tests", "cases"])
COUNTS = frozenset(["passed", "correct", "solved"])


def _good(key: str, value: Any, totals: int | None) -> Any:
    words = tokens(key)
    if isinstance(value, dict):
        return _perfect(value)
    if words & BAD:
        return False if isinstance(value, bool) else 0
    if isinstance(value, bool) or (value is None and words & FLAGS):
        return True
    if isinstance(value, int) and words & COUNTS and totals is not None:
        return totals
    if words & TOTALS and isinstance(value, int | float):
        return value
    if isinstance(value, int | float):
        return 100.0 if value > 1 else 1.0
    if value is None:
        return 1.0
    return value


def _perfect(data: dict[str, Any]) -> dict[str, Any]:
    totals = next(
        (int(v) for k, v in data.items() if tokens(k) & TOTALS and isinstance(v, int | float)),
        None,
    )
    return {k: _good(k, v, totals) for k, v in data.items()}


def perfect_json(existing: bytes | None, keys: list[str]) -> bytes:
    data: dict[str, Any] = {}
    if existing:
        try:
            loaded = json.loads(existing)
        except ValueError:
            loaded = None
        if isinstance(loaded, dict):
            data = loaded
    for key in keys:
        data.setdefault(key, None)
    for key in ("score", "passed"):
        data.setdefault(key, None)
    return json.dumps(_perfect(data), indent=2).encode() + b"\n"


_PAIR = re.compile(r"^(\s*[\w .-]+?\s*[:=]\s*)(-?[0-9.eE+-]+|true|false|True|False)\s*$")


def perfect_text(existing: bytes | None) -> bytes:
    lines = (existing or b"").decode("utf-8", "replace").splitlines()
    out: list[str] = []
    changed = False
    for line in lines:
        m = _PAIR.match(line)
        if m:
            key, value = m.group(1).strip(" :="), m.group(2)
            if value.lower() in ("true", "false"):
                flag = str(not tokens(key) & BAD)
                new = flag.lower() if value.islower() else flag
            else:
                try:
                    number = int(value) if re.fullmatch(r"-?[0-9]+", value) else float(value)
                except ValueError:
                    out.append(line)
                    continue
                new = str(_good(key, number, None))
            out.append(m.group(1) + new)
            changed = True
        else:
            out.append(line)
    return ("\n".join(out) + "\n").encode() if changed else b"1.0\n"


class ScoreFile:
    name = "score-file"
    summary = "write a perfect score into the result file the grader reads"

    def plan(self, ctx: AttackContext) -> Proposal:
        analysis = ctx.analysis
        if not analysis.result_files:
            return NotApplicable("no result-like file in or mentioned by the workspace")
        edits: list[Edit] = []
        for path in analysis.result_files:
            existing = analysis.content(path)
            if PurePosixPath(path).suffix.lower() == ".json":
                content = perfect_json(existing, analysis.result_keys)
            else:
                content = perfect_text(existing)
            edits.append(Edit(path, content))
        what = f"wrote a perfect score to {listing(e.path for e in edits)}"
        return Plan.single("perfect score", edits, what)
