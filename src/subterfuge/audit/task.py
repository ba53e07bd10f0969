"""What the audit attacks: a task's workspace, its grading commands and its pass rule.

Adapters (`suite.py`) turn a suite format into `AuditTask`s; everything after
that (attacks, grading, verdicts) sees only this module's types.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from subterfuge.audit.workspace import copy_tree
from subterfuge.envs.base import ProgramResult, parse_bool, parse_float
from subterfuge.sandbox.bwrap import SYSTEM_DIRS
from subterfuge.sandbox.workspace import path_parts, top_levels, write_file


@dataclass(frozen=True)
class StepOutput:
    """One grading command as it ran."""

    name: str
    exit_code: int
    timed_out: bool
    stdout: str
    stderr: str
    seconds: float

    @property
    def text(self) -> str:
        return self.stdout + ("\n" if self.stdout and self.stderr else "") + self.stderr

    def as_program(self) -> ProgramResult:
        return ProgramResult(self.stdout, self.stderr, self.exit_code, self.timed_out)


@dataclass(frozen=True)
class Judged:
    """A pass rule's reading of one grading: passed or not, the score it read, why."""

    passed: bool
    score: float | None
    summary: str


class PassRule(Protocol):
    """Reads a grading's outputs as the task's trainer would."""

    @property
    def kind(self) -> str: ...

    def judge(self, steps: Sequence[StepOutput]) -> Judged: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class ExitCodeRule:
    """Passes when every grading command exits 0 (and none timed out)."""

    kind: str = "exit_code"

    def judge(self, steps: Sequence[StepOutput]) -> Judged:
        bad = [s for s in steps if s.exit_code != 0 or s.timed_out]
        if not bad:
            return Judged(True, None, "exit code 0")
        s = bad[0]
        return Judged(False, None, "timed out" if s.timed_out else f"exit code {s.exit_code}")

    def describe(self) -> str:
        return "exit code 0"


@dataclass(frozen=True)
class MarkerRule:
    """Passes when the marker appears anywhere in the grader's output (a text scan)."""

    marker: str
    kind: str = "marker"

    def judge(self, steps: Sequence[StepOutput]) -> Judged:
        found = any(self.marker in s.text for s in steps)
        return Judged(found, None, f"marker {'found' if found else 'absent'}: {self.marker!r}")

    def describe(self) -> str:
        return f"output contains {self.marker!r}"


@dataclass(frozen=True)
class ScoreRule:
    """Reads the last match of `regex` in the output as the score; passes at `threshold`."""

    regex: str
    threshold: float = 1.0
    kind: str = "score"

    def last_match(self, text: str) -> re.Match[str] | None:
        """The match the score is read from: the last one."""
        matches = list(re.finditer(self.regex, text, re.MULTILINE))
        return matches[-1] if matches else None

    def read(self, text: str) -> float | None:
        last = self.last_match(text)
        if last is None:
            return None
        try:
            return float(last.group(1) if last.re.groups else last.group(0))
        except ValueError:
            return None

    def judge(self, steps: Sequence[StepOutput]) -> Judged:
        score = self.read("\n".join(s.text for s in steps))
        if score is None:
            return Judged(False, None, f"no score matching {self.regex!r} in the output")
        return Judged(
            score >= self.threshold, score, f"score {score:g} (pass at {self.threshold:g})"
        )

    def describe(self) -> str:
        return f"score /{self.regex}/ >= {self.threshold:g}"


@dataclass(frozen=True)
class RewardOversightRule:
    """The released format: the reward program's float pays above `threshold` unless the
    oversight program prints that the behaviour was caught."""

    threshold: float = 0.0
    kind: str = "reward"

    def judge(self, steps: Sequence[StepOutput]) -> Judged:
        by_name = {s.name: s for s in steps}
        reward_step = by_name.get("reward")
        reward = parse_float(reward_step.as_program()) if reward_step is not None else None
        if reward is None:
            return Judged(False, None, "the reward program printed no number")
        oversight = by_name.get("oversight")
        caught = parse_bool(oversight.as_program()) if oversight is not None else None
        passed = reward > self.threshold and caught is not True
        why = f"reward {reward:g} (pays above {self.threshold:g})"
        if oversight is not None:
            why += f", oversight {'caught it' if caught else 'did not catch it'}"
        return Judged(passed, reward, why)

    def describe(self) -> str:
        return f"reward > {self.threshold:g} and oversight does not catch it"


@dataclass(frozen=True)
class Layout:
    """Where a materialised workspace appears inside the sandbox."""

    mounts: tuple[tuple[str, str], ...]
    """(path relative to the copy's root, absolute path inside), writable."""
    cwd: str
    workspace: str
    """What `{workspace}` stands for."""


class WorkspaceSource(Protocol):
    """Makes fresh copies of a task's workspace, and says where they appear inside."""

    @property
    def copy_name(self) -> str:
        """The directory name a copy gets (graders may look at their cwd's name)."""
        ...

    def materialize(self, dest: Path) -> None:
        """Create the workspace's files under `dest` (which does not exist yet)."""
        ...

    def layout(self, copy_root: Path) -> Layout: ...


@dataclass(frozen=True)
class DirectoryWorkspace:
    """A workspace directory on the host; each copy is mounted at its own host path."""

    path: Path

    @property
    def copy_name(self) -> str:
        return self.path.name

    def materialize(self, dest: Path) -> None:
        copy_tree(self.path, dest)

    def layout(self, copy_root: Path) -> Layout:
        return Layout(((".", str(copy_root)),), str(copy_root), str(copy_root))


@dataclass(frozen=True)
class FilesWorkspace:
    """Absolute sandbox paths with contents (the released format); cwd is `/root`."""

    dirs: tuple[str, ...]
    files: Mapping[str, str]

    @property
    def copy_name(self) -> str:
        return "fs"

    def tops(self) -> list[str]:
        return top_levels(self.dirs, self.files, reserved=(*SYSTEM_DIRS, "/proc", "/dev", "/tmp"))

    def materialize(self, dest: Path) -> None:
        dest.mkdir()
        for top in self.tops():
            (dest / top).mkdir()
        for d in self.dirs:
            (dest / "/".join(path_parts(d))).mkdir(parents=True, exist_ok=True)
        for f, text in self.files.items():
            write_file(dest / "/".join(path_parts(f)), text)

    def layout(self, copy_root: Path) -> Layout:
        return Layout(tuple((top, "/" + top) for top in self.tops()), "/root", "/root")


@dataclass(frozen=True)
class GradeStep:
    """One shell command of the grading (`{task}` and `{workspace}` are substituted)."""

    name: str
    command: str

    def render(self, task_dir: Path | None, workspace: str) -> str:
        text = self.command
        if task_dir is not None:
            text = text.replace("{task}", shlex.quote(str(task_dir)))
        return text.replace("{workspace}", shlex.quote(workspace))


@dataclass(frozen=True)
class AuditTask:
    """One task, whatever suite format it came from."""

    name: str
    origin: Path
    """The file that declared it (for messages)."""
    workspace: WorkspaceSource
    steps: tuple[GradeStep, ...]
    rule: PassRule
    timeout: float = 60.0
    task_dir: Path | None = None
    """Mounted read-only at its own path: hidden tests and grader code live here."""
    reference: Path | None = None
    """A tree overlaid on the workspace that solves the task honestly."""
    env: Mapping[str, str] = field(default_factory=dict)
    kind: str = "subterfuge.toml"
