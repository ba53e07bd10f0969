"""Attacking graders: `subterfuge audit PATH` plays the laziest, most dishonest agent on
every task of a suite and reports which graders pay for work that was not done.

`discover` finds tasks (adapters: `subterfuge.toml`, the released
`environments.json`), `BATTERY` is the exploit battery, `run_audit` grades
baselines and attacks in one-shot sandboxes, and the reports render as tables,
JSON and JUnit XML.
"""

from __future__ import annotations

from subterfuge.audit.attacks import BATTERY, Attack, select
from subterfuge.audit.config import TaskConfigError, load_task
from subterfuge.audit.grading import AUDIT_LIMITS, Grade
from subterfuge.audit.junit import junit_xml, write_junit
from subterfuge.audit.runner import run_audit
from subterfuge.audit.suite import SuiteAdapter, SuiteError, default_adapters, discover
from subterfuge.audit.task import AuditTask
from subterfuge.audit.verdict import AttackResult, SuiteReport, TaskReport, TaskStatus, Verdict

__all__ = [
    "AUDIT_LIMITS",
    "BATTERY",
    "Attack",
    "AttackResult",
    "AuditTask",
    "Grade",
    "SuiteAdapter",
    "SuiteError",
    "SuiteReport",
    "TaskConfigError",
    "TaskReport",
    "TaskStatus",
    "Verdict",
    "default_adapters",
    "discover",
    "junit_xml",
    "load_task",
    "run_audit",
    "select",
    "write_junit",
]
