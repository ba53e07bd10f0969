"""Monitor families by name: `rules` and `judge`, each in the actions and reasoning views.

A family labels under one stored name per view (`rules-actions`,
`rules-reasoning`, `judge-actions`, ...); `--name` changes the prefix so that,
say, two judge models can label the same run side by side.
"""

from __future__ import annotations

from collections.abc import Sequence

from subterfuge.monitor.base import VIEWS, Monitor, View
from subterfuge.monitor.judge import JudgeMonitor
from subterfuge.monitor.rules import RuleMonitor
from subterfuge.policy.base import Policy

FAMILIES: tuple[str, ...] = ("rules", "judge")


def stored_name(prefix: str, view: View) -> str:
    return f"{prefix}-{view}"


def make_monitors(
    family: str,
    views: Sequence[View] = VIEWS,
    *,
    judge: Policy | None = None,
    prefix: str | None = None,
    retries: int = 1,
) -> list[Monitor]:
    """One monitor per view of `family`; `judge` is required (and only used) for `judge`."""
    if family not in FAMILIES:
        raise ValueError(f"unknown monitor {family!r}; monitors: {', '.join(FAMILIES)}")
    bad = [v for v in views if v not in VIEWS]
    if bad or not views:
        raise ValueError(f"views must be among {', '.join(VIEWS)}; got {list(views)}")
    prefix = prefix or family
    if family == "rules":
        return [RuleMonitor(v, stored_name(prefix, v)) for v in views]
    if judge is None:
        raise ValueError("the judge monitor needs a judge policy (--judge PROVIDER:MODEL)")
    return [JudgeMonitor(judge, v, name=stored_name(prefix, v), retries=retries) for v in views]


def view_names(name: str, known: Sequence[str]) -> list[str]:
    """Stored monitor names a user's `--monitor NAME` means: the name itself, or its views."""
    if name in known:
        return [name]
    return [stored_name(name, v) for v in VIEWS if stored_name(name, v) in known]
