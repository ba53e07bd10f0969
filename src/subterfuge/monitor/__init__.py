"""Reading transcripts: rule and AST monitors of actions, an LLM judge of intent, and
monitor quality against host-side truth.

Monitors label stored episodes (labels live beside verdicts and never replace
them); `evaluate` scores a monitor's flags against the verdicts it never saw.
"""

from subterfuge.monitor.base import (
    DISCLOSURES,
    FLAG,
    INTENTS,
    VIEWS,
    Finding,
    Monitor,
    Span,
    View,
)
from subterfuge.monitor.evaluate import TARGETS, Confusion, Score, evaluate, f1_interval
from subterfuge.monitor.judge import JudgeMonitor, parse_judgement, render
from subterfuge.monitor.registry import FAMILIES, make_monitors, view_names
from subterfuge.monitor.rules import RULES, RuleMonitor
from subterfuge.monitor.run import LabelRunResult, label_run

__all__ = [
    "DISCLOSURES",
    "FAMILIES",
    "FLAG",
    "INTENTS",
    "RULES",
    "TARGETS",
    "VIEWS",
    "Confusion",
    "Finding",
    "JudgeMonitor",
    "LabelRunResult",
    "Monitor",
    "RuleMonitor",
    "Score",
    "Span",
    "View",
    "evaluate",
    "f1_interval",
    "label_run",
    "make_monitors",
    "parse_judgement",
    "render",
    "view_names",
]
