"""The tools protocol: one `bash` tool, and the prompt's worked example in tool-call form.

The environment's prompt is the reference's, written for the text protocol.
Under the tools protocol the prompt's text stays the same, but its worked
example's `<bash>` turns become real tool calls answered by tool results, so
the model is shown the protocol it is asked to use. Tool calls whose
arguments were not valid JSON are sent back wrapped in a valid object (some
servers re-parse the history), the raw text kept.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any

from subterfuge.envs.base import Message
from subterfuge.policy.base import AssistantTurn, Reply, ToolCall, ToolResult
from subterfuge.policy.protocol import BASH_TOOL, ActionKind, parse_reply

TOOL_DESCRIPTION = (
    "Run one command in your persistent sandbox shell (state is kept between calls) and "
    "get back its stdout and stderr. In this conversation commands are run with this tool "
    "rather than with bash tags."
)
COMMAND_DESCRIPTION = "The shell command to run, e.g. `ls /tmp`."
SKIPPED_NOTE = "Not run: only the first tool call of a message is executed."

BASH_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {"command": {"type": "string", "description": COMMAND_DESCRIPTION}},
    "required": ["command"],
}


def _object_or_none(arguments: str) -> dict[str, Any] | None:
    try:
        value = json.loads(arguments)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def arguments_object(arguments: str) -> dict[str, Any]:
    """The arguments as a JSON object; malformed ones wrapped so the raw text survives."""
    value = _object_or_none(arguments)
    return {"_unparsed_arguments": arguments} if value is None else value


def valid_arguments(arguments: str) -> str:
    """The arguments as JSON object text: as sent when they are one, else wrapped."""
    valid = _object_or_none(arguments) is not None
    return arguments if valid else json.dumps({"_unparsed_arguments": arguments})


def with_tool_calls(messages: Sequence[Message]) -> list[Message]:
    """The conversation with the prompt's text-protocol example turns as tool calls.

    Only plain prompt messages are converted (turns the run itself produced are
    `AssistantTurn` / `ToolResult` already); a plain assistant message with a
    `<bash>` block becomes a call, the plain user message after it its result.
    The prompt is the same on every turn of an episode (and across episodes of
    one variant), so its conversion is cached rather than re-parsed per request.
    """
    head = next((i for i, m in enumerate(messages) if type(m) is not Message), len(messages))
    return [*_prompt_with_tool_calls(tuple(messages[:head])), *_convert(messages[head:], head)]


@functools.lru_cache(maxsize=256)
def _prompt_with_tool_calls(prompt: tuple[Message, ...]) -> tuple[Message, ...]:
    return tuple(_convert(prompt, 0))


def _convert(messages: Sequence[Message], offset: int) -> list[Message]:
    out: list[Message] = []
    pending: str | None = None
    for i, m in enumerate(messages, offset):
        if type(m) is Message and m.role == "assistant":
            action = parse_reply(Reply(m.content))
            if action.kind is ActionKind.BASH and action.command is not None:
                pending = f"example_{i}"
                head = m.content[: m.content.find("<bash>")].rstrip()
                call = ToolCall(pending, BASH_TOOL, json.dumps({"command": action.command}))
                out.append(AssistantTurn("assistant", head, (call,)))
                continue
        if type(m) is Message and m.role == "user" and pending is not None:
            out.append(ToolResult("user", m.content, call_id=pending))
            pending = None
            continue
        pending = None
        out.append(m)
    return out
