"""`anthropic:<model>`: the Anthropic Messages API.

The system prompt goes in the top-level `system` field; turns alternate user /
assistant. Extended thinking (`thinking_budget`) comes back as `thinking`
blocks, captured as hidden reasoning and sent back verbatim with their
signatures, as the API requires when tools are in use. The key comes from
`ANTHROPIC_API_KEY`; a loopback server needs none.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

from subterfuge.envs.base import Message
from subterfuge.policy.base import AssistantTurn, PolicyContext, Reply, ToolCall, ToolResult
from subterfuge.policy.http import HttpPolicy, MalformedResponse, SSEEvent, json_object
from subterfuge.policy.tools import (
    BASH_PARAMETERS,
    SKIPPED_NOTE,
    TOOL_DESCRIPTION,
    arguments_object,
)

DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"
BASH_TOOL_SPEC: dict[str, Any] = {
    "name": "bash",
    "description": TOOL_DESCRIPTION,
    "input_schema": BASH_PARAMETERS,
}
EMPTY_TURN = "[empty message]"
"""Sent in place of an empty assistant turn, which the API refuses."""


def _blocks(m: Message) -> list[dict[str, Any]]:
    if isinstance(m, AssistantTurn):
        if isinstance(m.raw, list) and m.raw:
            return list(m.raw)
        blocks: list[dict[str, Any]] = [{"type": "text", "text": m.content}] if m.content else []
        for c in m.tool_calls:
            blocks.append(
                {
                    "type": "tool_use",
                    "id": c.id,
                    "name": c.name,
                    "input": arguments_object(c.arguments),
                }
            )
        return blocks or [{"type": "text", "text": EMPTY_TURN}]
    if isinstance(m, ToolResult) and m.call_id is not None:
        results = [{"type": "tool_result", "tool_use_id": m.call_id, "content": m.content}]
        results += [
            {"type": "tool_result", "tool_use_id": s, "content": SKIPPED_NOTE} for s in m.skipped
        ]
        return results
    return [{"type": "text", "text": m.content or EMPTY_TURN}]


def render_messages(messages: Sequence[Message]) -> tuple[str | None, list[dict[str, Any]]]:
    """(system, messages) in Messages-API form; consecutive same-role turns are merged."""
    system = "\n\n".join(m.content for m in messages if m.role == "system") or None
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system":
            continue
        blocks = _blocks(m)
        if out and out[-1]["role"] == m.role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": m.role, "content": blocks})
    return system, out


def _usage(usage: Any) -> dict[str, int]:
    if not isinstance(usage, dict):
        return {}
    read = int(usage.get("cache_read_input_tokens") or 0)
    write = int(usage.get("cache_creation_input_tokens") or 0)
    out = {"input": int(usage.get("input_tokens") or 0) + read + write}
    out["output"] = int(usage.get("output_tokens") or 0)
    if read:
        out["cache_read"] = read
    if write:
        out["cache_write"] = write
    return out


def _finish(reason: Any) -> str | None:
    if reason == "max_tokens":
        return "length"
    return None if reason in (None, "end_turn", "tool_use", "stop_sequence") else str(reason)


def reply_from_blocks(blocks: list[dict[str, Any]], usage: dict[str, int], stop: Any) -> Reply:
    text, reasoning, calls = [], [], []
    for b in blocks:
        kind = b.get("type")
        if kind == "text":
            text.append(str(b.get("text", "")))
        elif kind == "thinking":
            reasoning.append(str(b.get("thinking", "")))
        elif kind == "redacted_thinking":
            reasoning.append("[redacted thinking]")
        elif kind == "tool_use":
            raw = b.pop("_partial_json", None)
            arguments = raw if raw is not None else json.dumps(b.get("input", {}))
            calls.append(ToolCall(str(b.get("id", "")), str(b.get("name", "")), arguments))
    return Reply(
        "".join(text), "\n".join(r for r in reasoning if r) or None, usage, tuple(calls),
        _finish(stop), raw=blocks,
    )  # fmt: skip


def parse_message(data: dict[str, Any]) -> Reply:
    """A whole Messages answer as a `Reply` (its blocks kept to be sent back verbatim)."""
    content = data.get("content")
    if data.get("type") != "message" or not isinstance(content, list):
        raise MalformedResponse("the answer is not a message with a content list")
    return reply_from_blocks(content, _usage(data.get("usage")), data.get("stop_reason"))


async def parse_stream(events: AsyncIterator[SSEEvent]) -> Reply:
    """A streamed answer, assembled from its events; no `message_stop` is an error, and so
    is an event without the fields its type promises (retried, like a body cut short)."""
    stream = _Stream()
    async for event in events:
        data = json_object(event.data, "a stream event")
        kind = data.get("type")
        if kind == "error":
            raise MalformedResponse(f"error event in stream: {data.get('error')}")
        if kind == "message_stop":
            ordered = [stream.blocks[i] for i in sorted(stream.blocks)]
            return reply_from_blocks(ordered, _usage(stream.usage), stream.stop)
        try:
            stream.apply(kind, data)
        except (LookupError, TypeError, ValueError, AttributeError) as exc:
            shape = f"a {kind} event not in the protocol's shape ({exc!r})"
            raise MalformedResponse(shape) from None
    raise MalformedResponse("the stream ended before message_stop")


class _Stream:
    """What the events of one streamed answer have said so far."""

    def __init__(self) -> None:
        self.blocks: dict[int, dict[str, Any]] = {}
        self.usage: dict[str, Any] = {}
        self.stop: Any = None

    def apply(self, kind: object, data: dict[str, Any]) -> None:
        if kind == "message_start":
            self.usage = dict(data.get("message", {}).get("usage") or {})
        elif kind == "content_block_start":
            self.blocks[int(data["index"])] = dict(data["content_block"])
        elif kind == "content_block_delta":
            block, delta = self.blocks[int(data["index"])], data["delta"]
            dtype = delta.get("type")
            if dtype == "text_delta":
                block["text"] = block.get("text", "") + delta["text"]
            elif dtype == "thinking_delta":
                block["thinking"] = block.get("thinking", "") + delta["thinking"]
            elif dtype == "signature_delta":
                block["signature"] = delta["signature"]
            elif dtype == "input_json_delta":
                block["_partial_json"] = block.get("_partial_json", "") + delta["partial_json"]
        elif kind == "content_block_stop":
            block = self.blocks[int(data["index"])]
            if block.get("type") == "tool_use" and "_partial_json" in block:
                # The raw text stays for the turn's arguments (see `reply_from_blocks`).
                block["input"] = arguments_object(block["_partial_json"] or "{}")
        elif kind == "message_delta":
            self.stop = (data.get("delta") or {}).get("stop_reason", self.stop)
            self.usage.update(data.get("usage") or {})


class AnthropicPolicy(HttpPolicy):
    """A Claude model behind the Messages API."""

    provider = "anthropic"
    default_base_url = DEFAULT_BASE_URL
    key_env = "ANTHROPIC_API_KEY"
    parse = staticmethod(parse_message)
    parse_stream = staticmethod(parse_stream)

    def endpoint(self, base_url: str) -> str:
        return f"{base_url}/messages" if base_url.endswith("/v1") else f"{base_url}/v1/messages"

    def headers(self, key: str | None) -> dict[str, str]:
        headers = {"anthropic-version": API_VERSION}
        if key:
            headers["x-api-key"] = key
        return headers

    def request(self, context: PolicyContext) -> dict[str, Any]:
        """The JSON body for this turn."""
        s = self.settings.sampling
        system, rendered = render_messages(self.conversation(context))
        body: dict[str, Any] = {"model": self.model, "max_tokens": s.max_tokens}
        if system:
            body["system"] = system
        body["messages"] = rendered
        budget = self.settings.thinking_budget
        if budget:
            # Thinking needs temperature 1 (the default) and a budget below max_tokens.
            body["thinking"] = {"type": "enabled", "budget_tokens": budget}
        elif s.temperature is not None:
            body["temperature"] = s.temperature
        if s.top_p is not None:
            body["top_p"] = s.top_p
        if self.tools:
            body["tools"] = [BASH_TOOL_SPEC]
        if self.settings.stream:
            body["stream"] = True
        return body
