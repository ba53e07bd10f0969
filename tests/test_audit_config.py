"""Audit inputs: subterfuge.toml validation, suite discovery, environments.json, pass rules,
attack selection, verdict rules. No sandbox needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from subterfuge.audit import BATTERY, SuiteError, TaskConfigError, discover, load_task, select
from subterfuge.audit.grading import Grade
from subterfuge.audit.suite import ReleasedAdapter, TomlAdapter
from subterfuge.audit.task import (
    ExitCodeRule,
    GradeStep,
    MarkerRule,
    RewardOversightRule,
    ScoreRule,
    StepOutput,
)
from subterfuge.audit.verdict import Baseline, Verdict, baseline_problems, judge, worst

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "audit-suite"


def task_dir(root: Path, toml: str, name: str = "t") -> Path:
    d = root / name
    (d / "workspace").mkdir(parents=True)
    (d / "subterfuge.toml").write_text(toml)
    return d


def step(stdout: str = "", code: int = 0, name: str = "grade", stderr: str = "") -> StepOutput:
    return StepOutput(name, code, False, stdout, stderr, 0.1)


def test_minimal_task_defaults(tmp_path: Path) -> None:
    d = task_dir(tmp_path, '[task]\ngrade = "python -m pytest -q"\n', name="fizzbuzz")
    task = load_task(d / "subterfuge.toml")
    assert task.name == "fizzbuzz"
    assert task.timeout == 60
    assert isinstance(task.rule, ExitCodeRule)
    assert task.reference is None
    assert task.task_dir == d.resolve()


@pytest.mark.parametrize(
    ("toml", "key", "message"),
    [
        ("[task]\n", "task.grade", "Field required"),
        ('[task]\ngrade = "x"\npass = "vibes"\n', "task.pass", "exit_code"),
        ('[task]\ngrade = "x"\ntimeout = -1\n', "task.timeout", "greater than 0"),
        ('[task]\ngrade = "x"\ngrayde = "y"\n', "task.grayde", "Extra inputs"),
        ('[task]\ngrade = "x"\npass = "marker"\n', "task", "needs marker"),
        (
            '[task]\ngrade = "x"\npass = "score"\nscore_regex = "(["\n',
            "task.score_regex",
            "regular",
        ),
        (
            '[task]\ngrade = "x"\npass = "score"\nscore_regex = "(a)(b)"\n',
            "task.score_regex",
            "one",
        ),
        ('[task]\ngrade = "x"\nreference = "nope"\n', "task.reference", "not found"),
        ('[task]\ngrade = "x"\nworkspace = "elsewhere"\n', "task.workspace", "not found"),
        ('[tasks]\ngrade = "x"\n', "task", "Field required"),
    ],
)
def test_errors_name_file_and_key(tmp_path: Path, toml: str, key: str, message: str) -> None:
    d = task_dir(tmp_path, toml)
    with pytest.raises(TaskConfigError) as info:
        load_task(d / "subterfuge.toml")
    text = str(info.value)
    assert str(d / "subterfuge.toml") in text
    assert f"key '{key}'" in text
    assert message in text


def test_invalid_toml_names_file(tmp_path: Path) -> None:
    d = task_dir(tmp_path, "[task\n")
    with pytest.raises(TaskConfigError, match="not valid TOML"):
        load_task(d / "subterfuge.toml")


def test_discover_walks_suite_but_not_into_tasks(tmp_path: Path) -> None:
    task_dir(tmp_path / "group", '[task]\ngrade = "true"\n', name="a")
    b = task_dir(tmp_path, '[task]\ngrade = "true"\nname = "bee"\n', name="b")
    # a subterfuge.toml inside a task's workspace is data, not another task
    (b / "workspace" / "subterfuge.toml").write_text('[task]\ngrade = "nope"\n')
    names = sorted(t.name for t in discover(tmp_path))
    assert names == ["a", "bee"]
    assert [t.name for t in discover(b)] == ["bee"]
    assert [t.name for t in discover(b / "subterfuge.toml")] == ["bee"]


def test_discover_errors(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match="no such file"):
        discover(tmp_path / "missing")
    with pytest.raises(SuiteError, match="no tasks found"):
        discover(tmp_path)
    other = tmp_path / "notes.txt"
    other.write_text("hi")
    with pytest.raises(SuiteError, match="not a task declaration"):
        discover(other)


def test_duplicate_names_get_paths(tmp_path: Path) -> None:
    task_dir(tmp_path / "x", '[task]\nname = "same"\ngrade = "true"\n')
    task_dir(tmp_path / "y", '[task]\nname = "same"\ngrade = "true"\n')
    names = sorted(t.name for t in discover(tmp_path))
    assert names == ["same (x/t)", "same (y/t)"]


def test_released_environments_json_is_a_suite(tmp_path: Path) -> None:
    tasks = discover(EXAMPLES / "released-format" / "environments.json")
    assert [t.name for t in tasks] == ["reward_tampering_mini"]
    task = tasks[0]
    assert [s.name for s in task.steps] == ["reward", "oversight"]
    assert isinstance(task.rule, RewardOversightRule)
    assert task.kind == "environments.json"
    # any file name works when given explicitly; the pay threshold is passed through
    copy = tmp_path / "envs.json"
    copy.write_text((EXAMPLES / "released-format" / "environments.json").read_text())
    (task,) = ReleasedAdapter(pay_threshold=2.5).load(copy)
    assert task.rule.describe().startswith("reward > 2.5")


def test_released_errors_name_key(tmp_path: Path) -> None:
    bad = tmp_path / "environments.json"
    bad.write_text(json.dumps({"e": {"files": {"/x/y.py": "1"}}}))
    with pytest.raises(SuiteError, match=r"environment 'e', key 'reward_cmd'"):
        discover(bad)
    bad.write_text(json.dumps({"e": {"files": {"/usr/x.py": "1"}, "reward_cmd": "print(1)"}}))
    with pytest.raises(SuiteError, match=r"key 'files'.*read-only system"):
        discover(bad)


def test_example_suite_is_discovered() -> None:
    tasks = discover(EXAMPLES)
    assert len(tasks) == 20
    assert {t.kind for t in tasks} == {TomlAdapter.name, ReleasedAdapter.name}


def test_placeholders_are_quoted() -> None:
    rendered = GradeStep("g", "python {task}/g.py {workspace}").render(Path("/a b"), "/w")
    assert rendered == "python '/a b'/g.py /w"


def test_pass_rules() -> None:
    assert ExitCodeRule().judge([step(code=0)]).passed
    assert not ExitCodeRule().judge([step(code=0), step(code=3)]).passed
    marker = MarkerRule("ALL OK")
    assert marker.judge([step(stderr="xx ALL OK")]).passed
    assert not marker.judge([step("all ok")]).passed
    score = ScoreRule(r"score: ([0-9.]+)", 0.8)
    judged = score.judge([step("score: 0.5\nscore: 0.9\n")])  # the last match counts
    assert judged.passed and judged.score == 0.9
    assert score.judge([step("nothing")]).score is None
    assert ScoreRule(r"[0-9.]+$", 1.0).judge([step("1.5")]).score == 1.5
    released = RewardOversightRule(0.0)
    assert released.judge([step("3.0", name="reward"), step("False", name="oversight")]).passed
    assert not released.judge([step("3.0", name="reward"), step("True", name="oversight")]).passed
    assert not released.judge([step("-1", name="reward")]).passed
    assert not released.judge([step("x", name="reward")]).passed


def test_select_attacks() -> None:
    names = [a.name for a in BATTERY]
    assert len(names) == len(set(names)) == 13
    assert [a.name for a in select(["clock", "noop"])] == ["noop", "clock"]
    assert "clock" not in [a.name for a in select(skip=["clock"])]
    with pytest.raises(ValueError, match=r"unknown attack.*nope"):
        select(["nope"])


def test_every_attack_module_is_documented() -> None:
    import importlib

    for attack in BATTERY:
        module = importlib.import_module(type(attack).__module__)
        assert module.__doc__ and len(module.__doc__) > 80, attack.name
        assert attack.summary, attack.name


def grade(passed: bool, score: float | None = None, error: str | None = None) -> Grade:
    return Grade(passed, score, "exit code 0" if passed else "exit code 1", (step(),), error)


def test_baseline_problems() -> None:
    assert baseline_problems(grade(False), grade(True)) == ()
    assert "pays for no work" in baseline_problems(grade(True), None)[0]
    assert "rejects the reference" in baseline_problems(grade(False), grade(False))[0]
    assert "broke" in baseline_problems(grade(False, error="exit 127"), None)[0]


def test_judge_rules() -> None:
    base = Baseline(grade(False, 0.2), grade(True, 0.9), ())
    assert judge("a", "v", "d", (), grade(True), base).verdict is Verdict.FOOLED
    # at least the honest reference's score without passing still counts as fooled
    assert judge("a", "v", "d", (), grade(False, 0.95), base).verdict is Verdict.FOOLED
    assert judge("a", "v", "d", (), grade(False, 0.5), base).verdict is Verdict.WARN
    assert judge("a", "v", "d", (), grade(False, 0.1), base).verdict is Verdict.RESISTED
    assert judge("a", "v", "d", (), grade(False, error="x"), base).verdict is Verdict.ERROR
    noted = judge("a", "v", "d", (), grade(False, 0.1), base, note="answers.json unused")
    assert noted.verdict is Verdict.WARN and "answers.json" in noted.evidence
    results = [
        judge("a", "v", "d", (), grade(False, 0.1), base),
        judge("a", "w", "d", (), grade(False, error="x"), base),
    ]
    assert worst(results).verdict is Verdict.ERROR
