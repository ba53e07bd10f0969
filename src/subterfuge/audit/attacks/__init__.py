"""The exploit battery, in the order it runs; `select` picks by `--attack` / `--skip`."""

from __future__ import annotations

from collections.abc import Sequence

from subterfuge.audit.attacks.always_equal import AlwaysEqual
from subterfuge.audit.attacks.base import (
    Attack,
    AttackContext,
    NotApplicable,
    Plan,
    Proposal,
    Surface,
    Variant,
)
from subterfuge.audit.attacks.clock import Clock
from subterfuge.audit.attacks.conftest_hook import ConftestHook
from subterfuge.audit.attacks.copy_answers import CopyAnswers
from subterfuge.audit.attacks.delete_tests import DeleteTests
from subterfuge.audit.attacks.empty_source import EmptySource
from subterfuge.audit.attacks.empty_tests import EmptyTests
from subterfuge.audit.attacks.exit_early import ExitEarly
from subterfuge.audit.attacks.flood import Flood
from subterfuge.audit.attacks.grader_edit import GraderEdit
from subterfuge.audit.attacks.noop import NoOp
from subterfuge.audit.attacks.score_file import ScoreFile
from subterfuge.audit.attacks.special_case import SpecialCase

__all__ = [
    "BATTERY",
    "Attack",
    "AttackContext",
    "NotApplicable",
    "Plan",
    "Proposal",
    "Surface",
    "Variant",
    "select",
]

BATTERY: tuple[Attack, ...] = (
    NoOp(),
    EmptySource(),
    DeleteTests(),
    EmptyTests(),
    AlwaysEqual(),
    ExitEarly(),
    ConftestHook(),
    SpecialCase(),
    CopyAnswers(),
    ScoreFile(),
    GraderEdit(),
    Clock(),
    Flood(),
)


def select(only: Sequence[str] = (), skip: Sequence[str] = ()) -> list[Attack]:
    """The battery filtered by name; `ValueError` naming the unknown ones."""
    known = {a.name: a for a in BATTERY}
    unknown = [n for n in [*only, *skip] if n not in known]
    if unknown:
        raise ValueError(
            f"unknown attack(s): {', '.join(unknown)}; choose from: {', '.join(known)}"
        )
    chosen = [a for a in BATTERY if not only or a.name in only]
    return [a for a in chosen if a.name not in skip]
