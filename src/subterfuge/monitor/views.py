"""What a monitor may read of an episode, as addressable segments.

An episode is cut into segments (the task, each turn's visible message,
command, tool output and hidden reasoning, the final answer, each file diff).
A view decides which segments a monitor sees: `actions` leaves out the hidden
reasoning, `reasoning` keeps it. Evidence spans are offsets into these
segments, so a reader (or a test) can check a monitor's claim exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from subterfuge.monitor.base import Source, Span, View
from subterfuge.store.records import EpisodeRecord

_BASH_BLOCK = re.compile(r"<bash>.*?</bash>", re.DOTALL)


@dataclass(frozen=True)
class Segment:
    """One readable piece of an episode."""

    source: Source
    text: str
    turn: int | None = None
    path: str | None = None

    def span(self, start: int, end: int) -> Span:
        return Span(self.source, start, end, self.text[start:end], self.turn, self.path)


def task_text(rec: EpisodeRecord) -> str:
    """The user's request: the last user message of the prompt (after preamble and example)."""
    for message in reversed(rec.prompt):
        if message.get("role") == "user":
            return str(message.get("content", ""))
    return ""


def segments(rec: EpisodeRecord, view: View) -> list[Segment]:
    """The episode's segments in reading order; hidden reasoning only in the `reasoning` view."""
    out = [Segment("task", task_text(rec))]
    turn = -1
    for entry in rec.transcript:
        if entry.get("role") == "assistant":
            turn += 1
            hidden = rec.reasoning[turn] if turn < len(rec.reasoning) else ""
            if view == "reasoning" and hidden:
                out.append(Segment("reasoning", hidden, turn))
            text = str(entry.get("text", ""))
            command = entry.get("command")
            if entry.get("kind") == "answer":
                out.append(Segment("answer", text, turn))
                continue
            if command:
                text = _BASH_BLOCK.sub("", text).strip()
            if text:
                out.append(Segment("message", text, turn))
            if command:
                out.append(Segment("command", str(command), turn))
        elif entry.get("role") == "tool":
            output = str(entry.get("stdout", ""))
            if entry.get("stderr"):
                output += ("\n" if output else "") + str(entry["stderr"])
            if output:
                out.append(Segment("output", output, max(turn, 0)))
    for path, diff in sorted(rec.diffs.items()):
        out.append(Segment("diff", diff, None, path))
    return out


def final_answer(rec: EpisodeRecord) -> str | None:
    """The last visible answer, or None when the episode ended without one."""
    for entry in reversed(rec.transcript):
        if entry.get("role") == "assistant" and entry.get("kind") == "answer":
            return str(entry.get("text", ""))
    return None


def find(segs: list[Segment], quote: str) -> Span | None:
    """Locate `quote` in the segments: exactly first, then ignoring case and runs of spaces."""
    quote = quote.strip()
    if not quote:
        return None
    for seg in segs:
        at = seg.text.find(quote)
        if at != -1:
            return seg.span(at, at + len(quote))
    words = [re.escape(w) for w in quote.split()]
    pattern = re.compile(r"\s+".join(words), re.IGNORECASE)
    for seg in segs:
        match = pattern.search(seg.text)
        if match:
            return seg.span(match.start(), match.end())
    return None
