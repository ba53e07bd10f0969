"""`subterfuge.toml`: one task's declaration, validated so every error names file and key.

    [task]
    name = "fizzbuzz"             # optional; defaults to the directory name
    workspace = "workspace"       # the tree the agent may edit; copied fresh for every attack
    grade = "python -m pytest -q" # run with the workspace copy as working directory
    pass = "exit_code"            # or "marker" (with marker = "...") or "score"
                                  # (with score_regex = "...", threshold = 1.0)
    reference = "solution"        # optional: overlaid on the workspace, solves it honestly
    timeout = 60                  # seconds per grading run
    env = { KEY = "value" }       # optional: extra environment for the grading run

`grade` may use `{task}` (the task directory, read-only, never part of the
workspace: hidden tests and grader code go there) and `{workspace}` (the
absolute path of the attacked copy).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from subterfuge.audit.task import (
    AuditTask,
    DirectoryWorkspace,
    ExitCodeRule,
    GradeStep,
    MarkerRule,
    PassRule,
    ScoreRule,
)

CONFIG_NAME = "subterfuge.toml"


class TaskConfigError(ValueError):
    """A task declaration is malformed; the message names the file and the key."""


class _TaskTable(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str | None = Field(default=None, min_length=1)
    workspace: str = "workspace"
    grade: str = Field(min_length=1)
    pass_rule: Literal["exit_code", "marker", "score"] = Field(default="exit_code", alias="pass")
    marker: str | None = Field(default=None, min_length=1)
    score_regex: str | None = None
    threshold: float = 1.0
    reference: str | None = None
    timeout: float = Field(default=60.0, gt=0, le=86_400)
    env: dict[str, str] = Field(default_factory=dict)

    @field_validator("score_regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            pattern = re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression ({exc})") from None
        if pattern.groups > 1:
            raise ValueError("use at most one capturing group: the score")
        return value

    @model_validator(mode="after")
    def _rule_fields(self) -> _TaskTable:
        if self.pass_rule == "marker" and self.marker is None:
            raise ValueError("pass = 'marker' needs marker = '...'")
        if self.pass_rule == "score" and self.score_regex is None:
            raise ValueError("pass = 'score' needs score_regex = '...'")
        return self


class _ConfigFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: _TaskTable


def _key(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) or "task"


def _rule(table: _TaskTable) -> PassRule:
    if table.pass_rule == "marker":
        assert table.marker is not None
        return MarkerRule(table.marker)
    if table.pass_rule == "score":
        assert table.score_regex is not None
        return ScoreRule(table.score_regex, table.threshold)
    return ExitCodeRule()


def _directory(config: Path, base: Path, key: str, value: str) -> Path:
    path = (base / value).resolve()
    if not path.is_dir():
        raise TaskConfigError(f"{config}: key 'task.{key}': directory not found: {path}")
    return path


def load_task(config: Path) -> AuditTask:
    """Read and validate one `subterfuge.toml`; `TaskConfigError` names file and key."""
    try:
        data = tomllib.loads(config.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TaskConfigError(f"{config}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TaskConfigError(f"{config}: cannot read it ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise TaskConfigError(f"{config}: not valid TOML ({exc})") from None
    try:
        table = _ConfigFile.model_validate(data).task
    except ValidationError as exc:
        first = exc.errors()[0]
        msg = str(first["msg"]).removeprefix("Value error, ")
        raise TaskConfigError(f"{config}: key '{_key(first['loc'])}': {msg}") from None
    task_dir = config.parent.resolve()
    workspace = _directory(config, task_dir, "workspace", table.workspace)
    reference = None
    if table.reference is not None:
        reference = _directory(config, task_dir, "reference", table.reference)
    return AuditTask(
        name=table.name or task_dir.name,
        origin=config.resolve(),
        workspace=DirectoryWorkspace(workspace),
        steps=(GradeStep("grade", table.grade),),
        rule=_rule(table),
        timeout=table.timeout,
        task_dir=task_dir,
        reference=reference,
        env=dict(table.env),
    )
