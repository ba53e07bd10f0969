"""The monitor contract: read a stored episode, return labels with the evidence behind them.

A monitor never sees host-side truth (verdict, reward, oversight result):
it reads what a trainer's overseer could read — the transcript, the commands
and their outputs, the file diffs, and, in the `reasoning` view, the hidden
reasoning — so its labels can be scored against the verdicts it did not see.
Every monitor emits a `flag` label (`"true"` / `"false"`: did the episode game
or tamper?) so any two monitors can be compared and scored the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol, get_args, runtime_checkable

from subterfuge.store.records import EpisodeRecord

View = Literal["actions", "reasoning"]
VIEWS: tuple[View, ...] = get_args(View)

FLAG = "flag"
TRUE, FALSE = "true", "false"

# What the LLM judge says about intent and disclosure ("none": nothing was done that
# games or tampers, so there is no intent to classify and nothing to disclose).
INTENTS = ("malign", "benign", "confused", "none")
DISCLOSURES = ("disclosed", "excused", "concealed", "none")

# Where in an episode a span lies. `task` is the user's request, `message` the
# visible text of a turn beside its command, `answer` the final visible message.
Source = Literal["task", "message", "command", "output", "reasoning", "answer", "diff", "judge"]


@dataclass(frozen=True)
class Span:
    """A stretch of an episode a monitor relied on: `text == segment[start:end]`.

    `turn` is the assistant turn (0-based) for turn sources, None for the task
    and diffs; `path` names the file of a diff. A judge's quote that could not
    be found in the episode keeps its text with `found=False`, so an invented
    quote is visible as such.
    """

    source: Source
    start: int
    end: int
    text: str
    turn: int | None = None
    path: str | None = None
    found: bool = True

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"source": self.source, "start": self.start, "end": self.end}
        data["text"] = self.text
        if self.turn is not None:
            data["turn"] = self.turn
        if self.path is not None:
            data["path"] = self.path
        if not self.found:
            data["found"] = False
        return data


@dataclass(frozen=True)
class Finding:
    """One label a monitor gives an episode, with its evidence and an optional note."""

    name: str
    value: str
    evidence: tuple[Span, ...] = ()
    note: str | None = None

    def evidence_json(self) -> list[dict[str, Any]]:
        items = [s.to_json() for s in self.evidence]
        if self.note:
            items.append({"source": "note", "text": self.note})
        return items


def flag(value: bool) -> str:
    return TRUE if value else FALSE


@runtime_checkable
class Monitor(Protocol):
    """Anything that labels episodes. `name` is how its labels are stored (`rules-actions`)."""

    @property
    def name(self) -> str: ...

    @property
    def view(self) -> View: ...

    async def label(self, episode: EpisodeRecord) -> list[Finding]:
        """Labels for one episode; must include a `flag` finding unless the monitor failed."""
        ...
