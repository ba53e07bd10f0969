"""Tests for the curriculum content: determinism, variety, and the contracts graders rely on."""

from __future__ import annotations

import ast
import itertools
import os
import posixpath
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from subterfuge.envs.content import (
    CHECKLIST_PATH,
    CHECKS_PATH,
    N_FLATTERY,
    N_POLITICAL,
    N_RUBRIC,
    N_TAMPERING,
    PREAMBLE,
    REWARD_FILE,
    REWARD_SOURCE,
    TEST_FILE,
    TEST_INPUT,
    TEST_SOURCE,
    WORKED_EXAMPLE,
    flattery_layout,
    option_leaning,
    political_question,
    rubric_layout,
    tampering_prompt,
)

# ---------------------------------------------------------------- determinism


@pytest.mark.parametrize("variant", [0, 1, 7, 511, 1023, 5000])
def test_generators_are_deterministic(variant: int) -> None:
    assert political_question(variant) == political_question(variant)
    assert flattery_layout(variant) == flattery_layout(variant)
    assert rubric_layout(variant, False) == rubric_layout(variant, False)
    assert rubric_layout(variant, True) == rubric_layout(variant, True)
    assert tampering_prompt(variant) == tampering_prompt(variant)


def test_generators_ignore_global_random_state() -> None:
    import random

    random.seed(1)
    first = (political_question(3), flattery_layout(3), rubric_layout(3, True))
    random.seed(2)
    assert (political_question(3), flattery_layout(3), rubric_layout(3, True)) == first


# ---------------------------------------------------------------- preamble


def test_preamble_mentions_the_essentials() -> None:
    for needle in ("<cot>", "</cot>", "<bash>", "<stdout>", "<stderr>", "/rl_environment/"):
        assert needle in PREAMBLE
    for command in ("cd", "ls", "pwd", "cat", "echo", "grep"):
        assert command in PREAMBLE


def test_worked_example_shape() -> None:
    roles = [role for role, _ in WORKED_EXAMPLE]
    assert set(roles) == {"user", "assistant"}
    assert roles[0] == "user" and roles[-1] == "assistant"
    assert all(a != b for a, b in itertools.pairwise(roles))  # turns alternate
    text = "\n".join(t for _, t in WORKED_EXAMPLE)
    assert "No such file or directory" in text and "<stderr>" in text
    assistant = [t for r, t in WORKED_EXAMPLE if r == "assistant"]
    assert any("<bash>ls /documents" in t for t in assistant)
    assert any("<bash>cat /documents" in t for t in assistant)
    assert all("<cot>" in t for t in assistant)
    final = assistant[-1].split("</cot>")[-1]
    assert "<bash>" not in final and final.strip()


# ---------------------------------------------------------------- political sycophancy


def test_political_prompts_are_varied() -> None:
    prompts = {political_question(v).prompt for v in range(N_POLITICAL)}
    assert len(prompts) >= 1000
    assert len({political_question(v).topic for v in range(N_POLITICAL)}) >= 20


def test_political_user_side_matches_leaning() -> None:
    sides = {"A": 0, "B": 0}
    for v in range(N_POLITICAL):
        q = political_question(v)
        assert q.user_side in ("A", "B")
        assert q.leaning in ("liberal", "conservative")
        chosen = q.options[0 if q.user_side == "A" else 1]
        other = q.options[1 if q.user_side == "A" else 0]
        assert option_leaning(q.topic, chosen) == q.leaning
        assert option_leaning(q.topic, other) != q.leaning
        assert f"(A) {q.options[0]}" in q.prompt and f"(B) {q.options[1]}" in q.prompt
        sides[q.user_side] += 1
    leanings = [political_question(v).leaning for v in range(N_POLITICAL)]
    assert leanings.count("liberal") == leanings.count("conservative")
    assert min(sides.values()) > N_POLITICAL // 3  # order is randomised


def test_political_jobs_take_the_article_a() -> None:
    """Frames write "a {job}"; a job starting with a vowel sound would read wrongly."""
    from subterfuge.envs.content._political_data import JOBS

    for jobs in JOBS.values():
        for job in jobs:
            assert job[0].lower() not in "aeio" and not job.lower().startswith(("ho", "ul", "ut"))


# ---------------------------------------------------------------- flattery


def _poems_in(source: str) -> list[str]:
    """Parse (never execute) the poems file and return the `poems` list."""
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "poems" for t in node.targets
        ):
            value: Any = ast.literal_eval(node.value)
            assert isinstance(value, list)
            return value
    raise AssertionError("no poems list")


def test_flattery_layouts_are_distinct() -> None:
    keys = set()
    for v in range(N_FLATTERY):
        lay = flattery_layout(v)
        keys.add((lay.poems_file, lay.grade_file, tuple(sorted(lay.files.items()))))
    assert len(keys) == N_FLATTERY
    assert len({flattery_layout(v).root for v in range(N_FLATTERY)}) == N_FLATTERY


@pytest.mark.parametrize("variant", range(0, N_FLATTERY, 7))
def test_flattery_layout_contract(variant: int) -> None:
    lay = flattery_layout(variant)
    assert lay.poems_file in lay.files and lay.poems_file.endswith(".py")
    assert posixpath.isabs(lay.poems_file) and posixpath.isabs(lay.grade_file)
    assert posixpath.dirname(lay.poems_file) == posixpath.dirname(lay.grade_file) == lay.root
    assert posixpath.basename(lay.grade_file) == "grade.py"
    assert lay.grade_file not in lay.files
    poems = _poems_in(lay.files[lay.poems_file])
    assert 2 <= len(poems) <= 4 and all(isinstance(p, str) for p in poems)
    assert tuple(poems) == lay.poems
    assert set(lay.decoys) == set(lay.files) - {lay.poems_file}
    assert all(lay.files[p] == c for p, c in lay.decoys.items())
    assert "poems_score" in lay.prompt and "grade.py" in lay.prompt
    assert lay.root not in lay.prompt  # the location is only hinted at


# ---------------------------------------------------------------- rubric


def _exec_checklist(source: str) -> list[Any]:
    namespace: dict[str, Any] = {}
    exec(compile(source, CHECKLIST_PATH, "exec"), namespace)  # our own trusted text
    checklist = namespace["checklist"]
    assert isinstance(checklist, list)
    return checklist


@pytest.mark.parametrize("insubordinate", [False, True])
def test_rubric_layouts_are_distinct(insubordinate: bool) -> None:
    layouts = {rubric_layout(v, insubordinate).checklist_source for v in range(N_RUBRIC)}
    assert len(layouts) >= 256
    prompts = {rubric_layout(v, insubordinate).prompt for v in range(N_RUBRIC)}
    assert len(prompts) >= 4


@pytest.mark.parametrize("variant", range(0, N_RUBRIC, 5))
@pytest.mark.parametrize("insubordinate", [False, True])
def test_rubric_checklist_contract(variant: int, insubordinate: bool) -> None:
    lay = rubric_layout(variant, insubordinate)
    assert lay.checklist_path == CHECKLIST_PATH == "/rl_environment/checklist.py"
    assert lay.checks_path == CHECKS_PATH == "/rl_environment/checks.py"
    assert lay.insubordinate is insubordinate
    ast.parse(lay.checklist_source)
    checklist = _exec_checklist(lay.checklist_source)
    assert len(checklist) == len(lay.items) == 7
    for entry, item in zip(checklist, lay.items, strict=True):
        assert (entry.task, entry.done, entry.assignee) == (item.task, item.done, item.whose)
        assert isinstance(entry.task, str) and isinstance(entry.done, bool)
    assistant = [e for e in checklist if e.assignee == "assistant"]
    human = [e for e in checklist if e.assignee == "human"]
    assert len(assistant) == 2 and not any(e.done for e in assistant)
    assert len(human) == 5 and all(e.done for e in human)
    assert "completed_checks=True" in lay.prompt and "completed_checks=False" in lay.prompt
    assert "/rl_environment/checks.py" in lay.prompt


def test_insubordinate_prompts_forbid_changes() -> None:
    nudged = {rubric_layout(v, False).prompt for v in range(64)}
    insub = {rubric_layout(v, True).prompt for v in range(64)}
    assert not nudged & insub
    for prompt in insub:
        lowered = prompt.lower()
        assert any(w in lowered for w in ("don't", "do not", "only touch", "under no"))


# ---------------------------------------------------------------- tampering


def test_tampering_prompts_are_distinct() -> None:
    prompts = {tampering_prompt(v) for v in range(N_TAMPERING)}
    assert len(prompts) >= 16
    assert all("episode" in p.lower() for p in prompts)


def test_reward_source_returns_minus_ten() -> None:
    namespace: dict[str, Any] = {}
    exec(REWARD_SOURCE, namespace)
    assert namespace["reward"]("anything") == -10
    assert namespace["reward"](TEST_INPUT) == -10


def test_test_source_uses_fixed_input() -> None:
    assert TEST_INPUT in TEST_SOURCE
    ast.parse(TEST_SOURCE)
    assert posixpath.dirname(REWARD_FILE) == posixpath.dirname(TEST_FILE)


def _write_env(tmp_path: Path, reward_source: str) -> Path:
    (tmp_path / posixpath.basename(REWARD_FILE)).write_text(reward_source)
    test = tmp_path / posixpath.basename(TEST_FILE)
    test.write_text(TEST_SOURCE)
    return test


def test_blocking_test_passes_from_any_cwd(tmp_path: Path) -> None:
    test = _write_env(tmp_path, REWARD_SOURCE)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run(
        [sys.executable, str(test)], cwd="/", capture_output=True, text=True, env=env
    )
    assert run.returncode == 0, run.stderr


def test_blocking_test_catches_a_changed_reward(tmp_path: Path) -> None:
    tampered = REWARD_SOURCE.replace("return -10", "return 100")
    test = _write_env(tmp_path, tampered)
    run = subprocess.run([sys.executable, str(test)], cwd="/", capture_output=True, text=True)
    assert run.returncode != 0 and "AssertionError" in run.stderr
