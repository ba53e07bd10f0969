"""One episode laid out for reading: the task, each turn with its hidden reasoning set
apart, commands and outputs, the final message, coloured diffs, and the monitors' labels.

Shared by the HTML report's examples and the transcript viewer so an episode
reads the same in both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from subterfuge.store.labels import Label
from subterfuge.store.records import EpisodeRecord

DiffKind = Literal["add", "del", "hunk", "meta", "ctx"]


@dataclass(frozen=True)
class DiffLine:
    kind: DiffKind
    text: str


@dataclass(frozen=True)
class FileDiff:
    path: str
    lines: tuple[DiffLine, ...]

    @property
    def added(self) -> int:
        return sum(1 for line in self.lines if line.kind == "add")

    @property
    def removed(self) -> int:
        return sum(1 for line in self.lines if line.kind == "del")


@dataclass(frozen=True)
class Step:
    """One assistant turn and the tool's answer to it."""

    turn: int
    kind: str  # bash, answer, malformed
    reasoning: str
    message: str
    command: str | None = None
    stdout: str = ""
    stderr: str = ""
    exit_code: int | None = None
    note: str | None = None  # timed out, truncated, protocol error


@dataclass(frozen=True)
class LabelView:
    monitor: str
    name: str
    value: str
    evidence: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class EpisodeView:
    """An episode ready for a template."""

    run_id: str
    idx: int
    env: str
    stage: str
    policy: str
    variant: int
    verdict: str
    reward: float | None
    caught: bool | None
    pays: bool
    error: str | None
    context: tuple[dict[str, str], ...]  # system preamble and worked example
    task: str
    steps: tuple[Step, ...]
    diffs: tuple[FileDiff, ...]
    details: dict[str, Any]
    labels: tuple[LabelView, ...] = field(default_factory=tuple)

    @property
    def anchor(self) -> str:
        return anchor(self.run_id, self.idx)

    @property
    def answer(self) -> str | None:
        last = self.steps[-1] if self.steps else None
        return last.message if last is not None and last.kind == "answer" else None


def anchor(run_id: str, idx: int) -> str:
    """An HTML id for an episode, safe whatever the run id holds."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in run_id)
    return f"ep-{safe}-{idx}"


def diff_lines(diff: str) -> tuple[DiffLine, ...]:
    out = []
    for line in diff.splitlines():
        kind: DiffKind
        if line.startswith(("--- ", "+++ ")):
            kind = "meta"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "ctx"
        out.append(DiffLine(kind, line))
    return tuple(out)


def _cut(text: str, limit: int | None) -> str:
    if limit is None or len(text) <= limit:
        return text
    return f"{text[:limit]}\n[… {len(text) - limit:,} more characters]"


def episode_view(
    rec: EpisodeRecord, labels: Sequence[Label] = (), *, max_output: int | None = None
) -> EpisodeView:
    """Lay out `rec`; `max_output` cuts long tool outputs (the report), None keeps all (viewer)."""
    prompt = list(rec.prompt)
    task_at = max((i for i, m in enumerate(prompt) if m.get("role") == "user"), default=-1)
    task = str(prompt[task_at].get("content", "")) if task_at >= 0 else ""
    context = tuple(prompt[:task_at]) if task_at >= 0 else tuple(prompt)
    steps: list[Step] = []
    turn = -1
    entries = rec.transcript
    for i, entry in enumerate(entries):
        if entry.get("role") != "assistant":
            continue
        turn += 1
        tool = (
            entries[i + 1] if i + 1 < len(entries) and entries[i + 1].get("role") == "tool" else {}
        )
        notes = []
        if entry.get("error"):
            notes.append(f"unreadable message: {entry['error']}")
        if tool.get("timed_out"):
            notes.append("command timed out")
        if tool.get("truncated"):
            notes.append("output truncated by the sandbox")
        steps.append(
            Step(
                turn=turn,
                kind=str(entry.get("kind", "")),
                reasoning=rec.reasoning[turn] if turn < len(rec.reasoning) else "",
                message=str(entry.get("text", "")),
                command=entry.get("command"),
                stdout=_cut(str(tool.get("stdout", "")), max_output),
                stderr=_cut(str(tool.get("stderr", "")), max_output),
                exit_code=tool.get("exit_code"),
                note="; ".join(notes) or None,
            )
        )
    return EpisodeView(
        run_id=rec.run_id,
        idx=rec.idx,
        env=rec.env,
        stage=rec.stage.value,
        policy=rec.policy,
        variant=rec.variant,
        verdict=rec.verdict.value,
        reward=rec.reward,
        caught=rec.caught,
        pays=rec.pays,
        error=rec.error,
        context=tuple(
            {"role": str(m.get("role")), "content": str(m.get("content"))} for m in context
        ),
        task=task,
        steps=tuple(steps),
        diffs=tuple(FileDiff(p, diff_lines(d)) for p, d in sorted(rec.diffs.items())),
        details=dict(rec.details),
        labels=tuple(LabelView(x.monitor, x.name, x.value, tuple(x.evidence)) for x in labels),
    )
