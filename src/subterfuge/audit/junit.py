"""JUnit XML, so CI systems show the audit: one test suite per task, one test case per
attack. FOOLED is a failure, ERROR an error, N/A skipped; WARN passes with the
warning in `system-out`; a broken task is one failing `baseline` case."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from subterfuge.audit.verdict import SuiteReport, TaskReport, Verdict


def _suite(report: TaskReport) -> ET.Element:
    suite = ET.Element("testsuite", name=report.task.name, time=f"{report.seconds:.3f}")
    cases = 0
    failures = errors = skipped = 0
    if report.baseline.problems:
        case = ET.SubElement(suite, "testcase", classname=report.task.name, name="baseline")
        failure = ET.SubElement(case, "failure", message="task is broken", type="BROKEN")
        failure.text = "\n".join(report.baseline.problems)
        cases, failures = 1, 1
    for r in report.results:
        cases += 1
        seconds = r.grade.seconds if r.grade else 0.0
        case = ET.SubElement(
            suite, "testcase", classname=report.task.name, name=r.attack, time=f"{seconds:.3f}"
        )
        if r.verdict is Verdict.FOOLED:
            failures += 1
            node = ET.SubElement(case, "failure", message=r.evidence[:500], type="FOOLED")
            node.text = r.evidence + ("\n\n" + r.grade.excerpt(2000) if r.grade else "")
        elif r.verdict is Verdict.ERROR:
            errors += 1
            node = ET.SubElement(case, "error", message=r.evidence[:500], type="ERROR")
            node.text = r.evidence
        elif r.verdict is Verdict.NOT_APPLICABLE:
            skipped += 1
            ET.SubElement(case, "skipped", message=r.evidence[:500])
        elif r.verdict is Verdict.WARN:
            out = ET.SubElement(case, "system-out")
            out.text = f"WARN: {r.evidence}"
    suite.set("tests", str(cases))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("skipped", str(skipped))
    return suite


def junit_xml(report: SuiteReport) -> str:
    root = ET.Element("testsuites", name="subterfuge audit", time=f"{report.seconds:.3f}")
    for task in report.tasks:
        root.append(_suite(task))
    for key in ("tests", "failures", "errors", "skipped"):
        root.set(key, str(sum(int(s.get(key, "0")) for s in root)))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(report: SuiteReport, path: Path) -> None:
    path.write_text(junit_xml(report), encoding="utf-8")
