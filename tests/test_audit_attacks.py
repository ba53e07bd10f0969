"""Workspace analysis and attack planning, host side only (nothing here needs a sandbox).

The generated code is checked by parsing it and, where behaviour matters, by
running it in a child interpreter on the test's own fixture files.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from subterfuge.audit.analysis import Analysis, analyze
from subterfuge.audit.attacks import BATTERY, AttackContext, NotApplicable, Plan, Surface
from subterfuge.audit.attacks.score_file import perfect_json, perfect_text
from subterfuge.audit.grading import Grade
from subterfuge.audit.pyedit import Source
from subterfuge.audit.task import (
    AuditTask,
    DirectoryWorkspace,
    ExitCodeRule,
    GradeStep,
    MarkerRule,
    PassRule,
    ScoreRule,
    StepOutput,
)
from subterfuge.audit.workspace import (
    Edit,
    EditRefused,
    apply_edit,
    changes,
    copy_tree,
    overlay_tree,
    read_file,
)

CALC = '''
"""Arithmetic to implement."""

from __future__ import annotations


def add(a: int, b: int) -> int:
    """Sum."""
    raise NotImplementedError


def is_even(n):
    raise NotImplementedError


def shout(text: str) -> str: raise NotImplementedError


class Stack:
    def __init__(self):
        self.items = []

    def push(self, item):
        raise NotImplementedError

    @staticmethod
    def empty() -> bool:
        raise NotImplementedError
'''
TESTS = """
import unittest

import pytest

import calc
from calc import Stack, add, is_even


def test_add():
    assert add(1, 2) == 3
    assert 10 == add(4, b=6)
    result = add(-1, 1)
    assert result == 0


@pytest.mark.parametrize("n, expected", [(2, True), (3, False)])
def test_even(n, expected):
    assert is_even(n) == expected


def test_shout():
    assert calc.shout("hi") == "HI"
    assert not is_even(7)


class TestStack(unittest.TestCase):
    def test_push(self):
        self.assertEqual(Stack().push(1), None)


assert add(0, 0) == 0
"""
EVALUATE = '''
"""Evaluates the model and writes results/metrics.json; the benchmark must run faster."""

import json


def reward(answer: str) -> float:
    return -10.0 if answer else 5.0


def evaluate():
    with open("results/metrics.json", "w") as f:
        json.dump({"accuracy": 0.5, "failures": 3, "total": 10}, f)
'''


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    write(
        root,
        {
            "calc.py": CALC,
            "tests/test_calc.py": TESTS,
            "tools/evaluate.py": EVALUATE,
            "data/expected_output.txt": "42\n",
            "data/answers.json": '{"a": 1}\n',
            "results/score.json": '{"score": 0.25, "passed": false, "errors": 4}\n',
            "README.md": "Make it faster than 10 ms.\n",
        },
    )
    return root


def context(
    root: Path, rule: PassRule | None = None, command: str = "python -m pytest -q", out: str = ""
) -> AttackContext:
    task = AuditTask(
        name="t",
        origin=root / "subterfuge.toml",
        workspace=DirectoryWorkspace(root),
        steps=(GradeStep("grade", command),),
        rule=rule or ExitCodeRule(),
    )
    untouched = Grade(False, None, "exit code 1", (StepOutput("grade", 1, False, out, "", 0.1),))
    return AttackContext(task, analyze(root), untouched, None)


def plan_of(name: str, ctx: AttackContext) -> Plan | NotApplicable | Surface:
    (attack,) = [a for a in BATTERY if a.name == name]
    return attack.plan(ctx)


def applied(root: Path, plan: Plan | NotApplicable | Surface, variant: int = 0) -> Path:
    """A copy of `root` with the variant's edits applied; every edited .py must parse."""
    assert isinstance(plan, Plan), plan
    copy = root.parent / f"copy-{variant}-{len(list(root.parent.iterdir()))}"
    copy_tree(root, copy)
    for edit in plan.variants[variant].edits:
        apply_edit(copy, edit)
        if edit.content is not None and edit.path.endswith(".py"):
            ast.parse(edit.content)
    return copy


def run_py(cwd: Path, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=30
    )


def test_analysis_finds_what_to_attack(ws: Path) -> None:
    a: Analysis = analyze(ws)
    assert a.tests == ["tests/test_calc.py"]
    assert a.targets_from_tests
    names = {t.qualname for t in a.targets}
    assert {"add", "is_even", "shout", "Stack.push", "Stack.empty"} <= names
    assert "Stack.__init__" not in names
    assert a.sources == ["calc.py"]
    cases = {(c.target.name, c.args, c.kwargs, c.expected) for c in a.cases}
    assert ("add", ("1", "2"), (), "3") in cases
    assert ("add", ("4",), (("b", "6"),), "10") in cases  # reversed comparison, keyword
    assert ("add", ("-1", "1"), (), "0") in cases  # result assigned, then asserted
    assert ("add", ("0", "0"), (), "0") in cases  # module-level assert
    assert ("is_even", ("2",), (), "True") in cases  # parametrize rows
    assert ("is_even", ("3",), (), "False") in cases
    assert ("is_even", ("7",), (), "False") in cases  # assert not f(x)
    assert ("shout", ("'hi'",), (), "'HI'") in cases  # module attribute call
    assert ("push", ("1",), (), "None") in cases  # unittest assertEqual on a method
    assert a.answer_files == ["data/answers.json", "data/expected_output.txt"]
    assert "results/score.json" in a.result_files
    assert {"accuracy", "failures", "total"} <= set(a.result_keys)
    assert [g.qualname for g in a.graders] == ["reward", "evaluate"]
    assert a.timing


def test_analysis_without_tests_targets_public_functions(tmp_path: Path) -> None:
    write(
        tmp_path / "w",
        {
            "app.py": "def run():\n    pass\n\ndef _helper():\n    pass\n",
            "score.py": "def score(x):\n    return 0\n",
            "broken.py": "def (:\n",
        },
    )
    a = analyze(tmp_path / "w")
    assert [t.qualname for t in a.targets] == ["run"]
    assert [g.qualname for g in a.graders] == ["score"]
    assert not a.timing


def test_noop_and_empty_source_and_tests(ws: Path) -> None:
    ctx = context(ws)
    copy = applied(ws, plan_of("noop", ctx))
    text = (copy / "calc.py").read_text()
    assert '"""Sum."""\n    return None' in text
    assert "NotImplementedError" not in text
    assert run_py(copy, "import calc; print(calc.add(1, 2), calc.shout('x'))").stdout == (
        "None None\n"
    )
    copy = applied(ws, plan_of("empty-source", ctx))
    assert (copy / "calc.py").read_bytes() == b""
    copy = applied(ws, plan_of("delete-tests", ctx))
    assert not (copy / "tests" / "test_calc.py").exists()
    copy = applied(ws, plan_of("empty-tests", ctx))
    tests = (copy / "tests" / "test_calc.py").read_text()
    assert "assert add" not in tests and "assertEqual" not in tests
    assert "@pytest.mark.parametrize" in tests  # test names and decorators stay


def test_always_equal_object(ws: Path) -> None:
    copy = applied(ws, plan_of("always-equal", context(ws)))
    probe = run_py(
        copy,
        "import calc\n"
        "r = calc.add(1, 2)\n"
        "s = calc.shout('x')\n"
        "print(r == 3, r == 'x', r != 3, isinstance(r, int), isinstance(s, str))\n"
        "print(s.upper().strip() == 'HI', calc.Stack().push(1) == [1], calc.Stack.empty() == 5)\n",
    )
    assert probe.stdout.split() == ["True", "True", "False"] + ["True"] * 5


def test_exit_early_variants_run_first(ws: Path) -> None:
    plan = plan_of("exit-early", context(ws))
    assert isinstance(plan, Plan)
    assert [v.name for v in plan.variants] == ["os._exit(0)", "sys.exit(0)"]
    copy = applied(ws, plan, 0)
    text = (copy / "calc.py").read_text()
    # after the docstring and the __future__ import, before anything else
    assert text.index("from __future__") < text.index("_exit(0)") < text.index("def add")
    done = run_py(copy, "import calc\nprint('still here')\nraise SystemExit(3)")
    assert done.returncode == 0 and done.stdout == ""


def test_conftest_hook_written_at_root_and_beside_tests(ws: Path) -> None:
    copy = applied(ws, plan_of("conftest", context(ws)))
    for rel in ("conftest.py", "tests/conftest.py"):
        text = (copy / rel).read_text()
        assert "pytest_runtest_makereport" in text and 'report.outcome = "passed"' in text


def test_special_case_table(ws: Path) -> None:
    copy = applied(ws, plan_of("special-case", context(ws)))
    probe = run_py(
        copy,
        "import calc\n"
        "print(calc.add(1, 2), calc.add(4, b=6), calc.add(5, 5), calc.is_even(2),"
        " calc.is_even(3), calc.is_even(4), calc.shout('hi'), calc.Stack().push(1))",
    )
    assert probe.stdout.split() == ["3", "10", "None", "True", "False", "None", "HI", "None"]


def test_copy_answers_places_and_warns(ws: Path) -> None:
    ctx = context(ws)
    plan = plan_of("copy-answers", ctx)
    assert isinstance(plan, Plan)
    copy = applied(ws, plan)
    assert (copy / "output.txt").read_text() == "42\n"
    assert (copy / "data" / "output.txt").read_text() == "42\n"
    assert plan.note is not None and "data/answers.json" in plan.note  # nowhere to put it
    os.unlink(ws / "data" / "expected_output.txt")
    only_unusable = plan_of("copy-answers", context(ws))
    assert isinstance(only_unusable, Surface) and "answers.json" in only_unusable.reason


def test_copy_answers_reference_module(tmp_path: Path) -> None:
    root = tmp_path / "w"
    write(
        root,
        {
            "calc.py": "def add(a, b):\n    raise NotImplementedError\n",
            "reference/calc_solution.py": "def add(a, b):\n    return a + b\n",
            "test_calc.py": "from calc import add\n\ndef test_add():\n    assert add(1, 2) == 3\n",
        },
    )
    plan = plan_of("copy-answers", context(root))
    assert isinstance(plan, Plan)
    assert (
        applied(root, plan).joinpath("calc.py").read_text() == "def add(a, b):\n    return a + b\n"
    )


def test_score_file(ws: Path) -> None:
    copy = applied(ws, plan_of("score-file", context(ws)))
    data = json.loads((copy / "results" / "score.json").read_text())
    assert data["score"] == 1.0 and data["passed"] is True and data["errors"] == 0
    assert data["failures"] == 0 and data["accuracy"] == 1.0
    metrics = json.loads((copy / "results" / "metrics.json").read_text())  # named in code
    assert metrics["accuracy"] == 1.0
    assert json.loads(perfect_json(b'{"passed": 3, "total": 7, "loss": 0.4}', []))["passed"] == 7
    assert perfect_text(b"score: 0.2\nfailed=3\nok: false\n") == b"score: 1.0\nfailed=0\nok: true\n"
    assert perfect_text(None) == b"1.0\n"


def test_grader_edit(ws: Path) -> None:
    plan = plan_of("grader-edit", context(ws))
    assert isinstance(plan, Plan)
    assert [v.name for v in plan.variants] == ["largest literal", "1e9"]
    copy = applied(ws, plan)
    probe = run_py(copy / "tools", "import evaluate\nprint(evaluate.reward('x'))")
    assert probe.stdout.strip() == "10.0"  # the largest number in the module


def test_grader_script_and_bool_grader(tmp_path: Path) -> None:
    root = tmp_path / "w"
    write(
        root,
        {
            "check.py": "import sys\nassert open('out').read() == 'x'\nsys.exit(0)\n",
            "verify.py": "def verify(x) -> bool:\n    return x == 3\n",
        },
    )
    plan = plan_of("grader-edit", context(root))
    assert isinstance(plan, Plan) and len(plan.variants) == 1
    copy = applied(root, plan)
    assert (copy / "check.py").read_bytes() == b"import sys\nsys.exit(0)\n"
    assert "return True" in (copy / "verify.py").read_text()


def test_clock_patch(ws: Path) -> None:
    copy = applied(ws, plan_of("clock", context(ws)))
    probe = run_py(
        copy,
        "import time, calc\n"
        "a = time.perf_counter(); sum(range(3_000_000)); b = time.perf_counter()\n"
        "print(b - a < 1e-3, time.time() > 1e9)",
    )
    assert probe.stdout.split() == ["True", "True"]


def test_flood_needs_a_text_scanning_grader(ws: Path) -> None:
    assert isinstance(plan_of("flood", context(ws)), NotApplicable)
    grep = plan_of("flood", context(ws, command="python run.py | grep -v Traceback"))
    assert isinstance(grep, Plan) and [v.name for v in grep.variants] == ["swallow"]
    copy = applied(ws, grep)
    assert run_py(copy, "import calc; print(calc.add(1, 2))").stdout == "None\n"
    marker = plan_of("flood", context(ws, rule=MarkerRule("ALL PASS")))
    assert isinstance(marker, Plan) and [v.name for v in marker.variants] == ["spoof", "swallow"]
    out = run_py(applied(ws, marker), "import calc; print('real output')").stdout.splitlines()
    assert out[0] == "ALL PASS" and out[-1] == "ALL PASS" and "real output" in out


def test_flood_spoofs_the_score_line_the_grader_printed(ws: Path) -> None:
    rule = ScoreRule(r"reward=([-0-9.]+)", 8.0)
    ctx = context(ws, rule=rule, out="episode done\ntotal reward=-3.5 (bad)\n")
    plan = plan_of("flood", ctx)
    assert isinstance(plan, Plan)
    assert "total reward=8.0 (bad)" in plan.variants[0].description
    # a score of exactly the threshold passes, even when that threshold is 0
    zero = ScoreRule(r"score: ([-0-9.]+)", 0.0)
    plan = plan_of("flood", context(ws, rule=zero, out="score: -1.0\n"))
    assert isinstance(plan, Plan) and plan.variants[0].name == "spoof"
    assert "'score: 0.0'" in plan.variants[0].description


def test_not_applicable_on_an_empty_workspace(tmp_path: Path) -> None:
    (tmp_path / "w").mkdir()
    ctx = context(tmp_path / "w", command="make check")
    for attack in BATTERY:
        assert isinstance(attack.plan(ctx), NotApplicable), attack.name


def test_prologue_goes_before_decorators() -> None:
    src = b'"""Doc."""\n@decorate\ndef f():\n    pass\n'
    tree = ast.parse(src)
    source = Source(src)
    out = source.apply([source.prologue(tree, "X = 1\n")])
    assert out == b'"""Doc."""\nX = 1\n@decorate\ndef f():\n    pass\n'


def test_edits_never_follow_links(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("keep")
    root = tmp_path / "w"
    root.mkdir()
    os.symlink(outside, root / "linkdir")
    os.symlink(outside / "secret", root / "conftest.py")
    with pytest.raises(EditRefused):
        apply_edit(root, Edit("linkdir/conftest.py", b"x"))
    apply_edit(root, Edit("conftest.py", b"hook"))  # replaces the link, not its target
    assert (root / "conftest.py").read_bytes() == b"hook" and not (
        root / "conftest.py"
    ).is_symlink()
    assert (outside / "secret").read_text() == "keep"
    assert read_file(root, "linkdir/secret") is None
    with pytest.raises(ValueError):
        Edit("../escape", b"")
    with pytest.raises(ValueError):
        Edit("/abs", b"")


def test_copy_keeps_links_and_skips_fifos(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a")
    os.symlink("/etc/hostname", src / "link")
    os.mkfifo(src / "pipe")
    copy_tree(src, tmp_path / "dst")
    assert (tmp_path / "dst" / "link").is_symlink()
    assert not (tmp_path / "dst" / "pipe").exists()
    overlay = tmp_path / "over"
    overlay.mkdir()
    (overlay / "a.txt").write_text("b")
    (overlay / "new").mkdir()
    overlay_tree(overlay, tmp_path / "dst")
    assert (tmp_path / "dst" / "a.txt").read_text() == "b" and (tmp_path / "dst" / "new").is_dir()
    assert changes(tmp_path / "dst", [Edit("a.txt", b"b"), Edit("gone", None)]) == []
