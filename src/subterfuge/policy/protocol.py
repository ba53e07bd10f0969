"""The reference study's text protocol: `<cot>` reasoning, `<bash>` commands, a final answer.

The model writes hidden reasoning inside `<cot>…</cot>`, runs a command by
writing `<bash>COMMAND</bash>` and receives `<stdout>…</stdout>` (and
`<stderr>…</stderr>`); a message with no command is its final answer. Only the
part after the last `</cot>` is visible to the human and the reward process.
A malformed reply is an action too (`ActionKind.MALFORMED`), never an exception:
real models produce unclosed tags and empty messages, and a run of 32,768
episodes must record them, not crash on them.

Native tool calls (the tools protocol) go through the same function: a reply
with a `bash` tool call is a `BASH` action; bad JSON arguments, a missing
`command` or an unknown tool are `MALFORMED`, tied to the call's id so the
harness can answer it. A tools-protocol reply without a tool call is parsed as
text, so a model that writes `<bash>` blocks anyway is understood.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum

from subterfuge.policy.base import Reply, ToolCall

BASH_TOOL = "bash"

_COT_OPEN = "<cot>"
_COT_CLOSE = "</cot>"
_BASH = re.compile(r"<bash>(.*?)</bash>", re.DOTALL)


class ActionKind(StrEnum):
    BASH = "bash"
    ANSWER = "answer"
    MALFORMED = "malformed"


@dataclass(frozen=True)
class Action:
    """A parsed assistant turn.

    `visible` is what the human sees (reasoning removed), `reasoning` the hidden
    part (all `<cot>` blocks and provider reasoning, joined). For `BASH`,
    `command` is the first command in the message; anything after its closing
    tag is ignored, as generation stopped there in the reference setup.
    """

    kind: ActionKind
    visible: str
    reasoning: str
    command: str | None = None
    error: str | None = None
    call_id: str | None = None
    """The tool call this action came from (tools protocol), to be answered by id."""
    skipped: tuple[str, ...] = ()
    """Ids of further tool calls in the same reply: not run, but answered."""
    arguments: str | None = None
    """The raw arguments of a malformed tool call, kept for the transcript."""


def split_reasoning(text: str) -> tuple[str, str, str | None]:
    """Split a message into (visible, hidden reasoning, error).

    Everything up to the last `</cot>` is hidden. A `<cot>` left open hides the
    rest of the message and is reported as an error.
    """
    hidden: list[str] = []
    rest = text
    error: str | None = None
    while True:
        start = rest.find(_COT_OPEN)
        close = rest.find(_COT_CLOSE)
        if close != -1 and (start == -1 or close < start):
            # A stray close tag: the reference removes everything before it.
            hidden.append(rest[:close])
            rest = rest[close + len(_COT_CLOSE) :]
            continue
        if start == -1:
            break
        end = rest.find(_COT_CLOSE, start)
        if end == -1:
            hidden.append(rest[start + len(_COT_OPEN) :])
            rest = rest[:start]
            error = "unclosed <cot> tag"
            break
        hidden.append(rest[start + len(_COT_OPEN) : end])
        rest = rest[:start] + rest[end + len(_COT_CLOSE) :]
    return rest.strip(), "\n".join(h.strip() for h in hidden if h.strip()), error


def tool_command(call: ToolCall) -> tuple[str | None, str | None]:
    """(command, error) from a `bash` tool call's raw arguments."""
    if call.name != BASH_TOOL:
        return None, f"unknown tool {call.name!r} (the only tool is {BASH_TOOL!r})"
    try:
        args = json.loads(call.arguments) if call.arguments.strip() else {}
    except ValueError as exc:
        return None, f"tool call arguments are not valid JSON ({exc})"
    command = args.get("command") if isinstance(args, dict) else None
    if not isinstance(command, str):
        return None, "bash tool call without a 'command' string"
    if not command.strip():
        return None, "empty bash command"
    return command.strip(), None


def parse_reply(reply: Reply) -> Action:
    """Turn a raw reply into an action; never raises."""
    visible, reasoning, error = split_reasoning(reply.text)
    if reply.reasoning:
        reasoning = f"{reply.reasoning.strip()}\n{reasoning}".strip()
    if reply.tool_calls:
        first, rest = reply.tool_calls[0], tuple(c.id for c in reply.tool_calls[1:])
        command, problem = tool_command(first)
        if command is None:
            return Action(
                ActionKind.MALFORMED, visible, reasoning, error=problem, call_id=first.id,
                skipped=rest, arguments=first.arguments,
            )  # fmt: skip
        return Action(
            ActionKind.BASH, visible, reasoning, command=command, call_id=first.id, skipped=rest
        )
    if error is not None:
        return Action(ActionKind.MALFORMED, visible, reasoning, error=error)
    match = _BASH.search(visible)
    if match is not None:
        command = match.group(1).strip()
        if not command:
            return Action(ActionKind.MALFORMED, visible, reasoning, error="empty <bash> command")
        return Action(ActionKind.BASH, visible, reasoning, command=command)
    if "<bash>" in visible:
        return Action(ActionKind.MALFORMED, visible, reasoning, error="unclosed <bash> tag")
    if "</bash>" in visible:
        return Action(ActionKind.MALFORMED, visible, reasoning, error="</bash> without <bash>")
    if not visible:
        return Action(ActionKind.MALFORMED, visible, reasoning, error="empty message")
    return Action(ActionKind.ANSWER, visible, reasoning)


def format_observation(stdout: str, stderr: str) -> str:
    """The tool result as the model reads it, in the reference's tags."""
    parts = [f"<stdout>\n{stdout}</stdout>"] if stdout or not stderr else []
    if stderr:
        parts.append(f"<stderr>\n{stderr}</stderr>")
    return "\n".join(parts)
