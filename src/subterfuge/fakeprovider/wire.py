"""The two wire formats, as the fake provider reads and writes them.

Requests are checked the way the real services check them (a tool result must
answer a tool call of the message before, Anthropic needs `max_tokens`, ...),
so a client bug shows up as a 400 in tests rather than in a paid run. Replies
are rendered as whole JSON bodies or as server-sent events, with token usage
estimated as one token per four characters.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from subterfuge.fakeprovider.moves import FakeRequest


class InvalidRequest(ValueError):
    """The request breaks the protocol; answered with 400 and this message."""


@dataclass(frozen=True)
class Rendered:
    """The reply to send: text, provider reasoning, and at most one tool call."""

    text: str
    reasoning: str | None = None
    tool_name: str | None = None
    arguments: str | None = None
    call_id: str = ""


def tokens(text: str) -> int:
    return len(text) // 4 + 1


def signature(thinking: str) -> str:
    """What the fake signs thinking blocks with; echoed blocks must carry it unchanged."""
    return hashlib.sha256(b"fake-provider:" + thinking.encode("utf-8", "surrogatepass")).hexdigest()


def _text_of(content: Any, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or "type" not in part:
                raise InvalidRequest(f"{where}: content parts must be objects with a 'type'")
            if part["type"] == "text":
                parts.append(str(part.get("text", "")))
        return "".join(parts)
    raise InvalidRequest(f"{where}: content must be a string or a list of parts")


def _command_text(arguments: str) -> str:
    try:
        value = json.loads(arguments)
    except ValueError:
        return f"<bash>{arguments}</bash>"
    if isinstance(value, dict) and isinstance(value.get("command"), str):
        return f"<bash>{value['command']}</bash>"
    return f"<bash>{arguments}</bash>"


# --- OpenAI chat completions ---------------------------------------------------------------


def read_openai(body: dict[str, Any]) -> FakeRequest:
    """Validate a chat-completions request and normalise its conversation."""
    messages = body.get("messages")
    if not isinstance(body.get("model"), str):
        raise InvalidRequest("'model' must be a string")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty list")
    out: list[tuple[str, str]] = []
    pending: set[str] = set()
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise InvalidRequest(f"{where} must be an object")
        role = m.get("role")
        if role != "tool" and pending:
            raise InvalidRequest(
                f"{where}: tool calls {sorted(pending)} of the previous assistant message "
                "have no tool message answering them"
            )
        if role in ("system", "developer"):
            out.append(("system", _text_of(m.get("content"), where)))
        elif role == "user":
            out.append(("user", _text_of(m.get("content"), where)))
        elif role == "assistant":
            text = _text_of(m.get("content"), where)
            calls = m.get("tool_calls") or []
            if not isinstance(calls, list):
                raise InvalidRequest(f"{where}.tool_calls must be a list")
            for call in calls:
                fn = call.get("function") if isinstance(call, dict) else None
                if not isinstance(fn, dict) or not isinstance(call.get("id"), str):
                    raise InvalidRequest(f"{where}: each tool call needs an 'id' and a 'function'")
                if not isinstance(fn.get("arguments"), str):
                    raise InvalidRequest(f"{where}: function.arguments must be a JSON string")
                pending.add(call["id"])
                text += _command_text(fn["arguments"])
            out.append(("assistant", text))
        elif role == "tool":
            call_id = m.get("tool_call_id")
            if call_id not in pending:
                raise InvalidRequest(f"{where}: tool_call_id {call_id!r} answers no pending call")
            pending.discard(call_id)
            out.append(("tool", _text_of(m.get("content"), where)))
        else:
            raise InvalidRequest(f"{where}: unknown role {role!r}")
    tools = body.get("tools") or []
    if not isinstance(tools, list):
        raise InvalidRequest("'tools' must be a list")
    for t in tools:
        if not (isinstance(t, dict) and t.get("type") == "function" and "function" in t):
            raise InvalidRequest("each tool must be {'type': 'function', 'function': {...}}")
    return FakeRequest(
        "openai", body["model"], tuple(out), bool(tools), bool(body.get("stream")), body
    )


def _openai_usage(request: FakeRequest, r: Rendered) -> dict[str, Any]:
    prompt = sum(tokens(text) for _, text in request.messages)
    reasoning = tokens(r.reasoning) if r.reasoning else 0
    completion = tokens(r.text) + reasoning + (tokens(r.arguments) if r.arguments else 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }


def openai_body(request: FakeRequest, r: Rendered, ident: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": r.text or None}
    if r.reasoning:
        message["reasoning_content"] = r.reasoning
    if r.tool_name is not None:
        message["tool_calls"] = [
            {
                "id": r.call_id,
                "type": "function",
                "function": {"name": r.tool_name, "arguments": r.arguments or ""},
            }
        ]
    return {
        "id": ident,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if r.tool_name else "stop",
                "logprobs": None,
            }
        ],
        "usage": _openai_usage(request, r),
    }


def _pieces(text: str, n: int = 3) -> list[str]:
    if not text:
        return []
    size = max(1, -(-len(text) // n))
    return [text[i : i + size] for i in range(0, len(text), size)]


def openai_chunks(request: FakeRequest, r: Rendered, ident: str) -> Iterator[dict[str, Any]]:
    """The streamed form: role, reasoning and content deltas, tool-call deltas, finish, usage."""
    base = {
        "id": ident,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": request.model,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    yield chunk({"role": "assistant", "content": ""})
    for piece in _pieces(r.reasoning or ""):
        yield chunk({"reasoning_content": piece})
    for piece in _pieces(r.text):
        yield chunk({"content": piece})
    if r.tool_name is not None:
        head = {"index": 0, "id": r.call_id, "type": "function"}
        yield chunk({"tool_calls": [{**head, "function": {"name": r.tool_name, "arguments": ""}}]})
        for piece in _pieces(r.arguments or ""):
            yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
    yield chunk({}, "tool_calls" if r.tool_name else "stop")
    options = request.body.get("stream_options") or {}
    if isinstance(options, dict) and options.get("include_usage"):
        yield {**base, "choices": [], "usage": _openai_usage(request, r)}


def openai_error(kind: str, message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "code": None, "param": None}}


# --- Anthropic messages -----------------------------------------------------------------------


def read_anthropic(body: dict[str, Any]) -> FakeRequest:
    """Validate a Messages request and normalise its conversation."""
    if not isinstance(body.get("model"), str):
        raise InvalidRequest("model: Field required")
    if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
        raise InvalidRequest("max_tokens: Field required (a positive integer)")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages: must be a non-empty list")
    out: list[tuple[str, str]] = []
    system = body.get("system")
    if system is not None:
        out.append(("system", _text_of(system, "system")))
    pending: set[str] = set()
    for i, m in enumerate(messages):
        where = f"messages.{i}"
        role = m.get("role") if isinstance(m, dict) else None
        if role not in ("user", "assistant"):
            raise InvalidRequest(f"{where}.role: must be 'user' or 'assistant'")
        if i == 0 and role != "user":
            raise InvalidRequest("messages.0: the first message must use the 'user' role")
        content = m["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not isinstance(blocks, list):
            raise InvalidRequest(f"{where}.content: must be a string or a list of blocks")
        answered: set[str] = set()
        text = ""
        for j, block in enumerate(blocks):
            kind = block.get("type") if isinstance(block, dict) else None
            if kind == "text":
                text += str(block.get("text", ""))
            elif kind == "tool_use" and role == "assistant":
                if not isinstance(block.get("input"), dict) or not isinstance(block.get("id"), str):
                    raise InvalidRequest(f"{where}.content.{j}: tool_use needs an id and an input")
                pending.add(block["id"])
                command = block["input"].get("command")
                text += f"<bash>{command if isinstance(command, str) else block['input']}</bash>"
            elif kind == "thinking" and role == "assistant":
                if block.get("signature") != signature(str(block.get("thinking", ""))):
                    raise InvalidRequest(
                        f"{where}.content.{j}: invalid signature in thinking block"
                    )
            elif kind == "tool_result" and role == "user":
                if block.get("tool_use_id") not in pending:
                    raise InvalidRequest(
                        f"{where}.content.{j}: tool_result for unknown tool_use_id "
                        f"{block.get('tool_use_id')!r}"
                    )
                answered.add(block["tool_use_id"])
                out.append(("tool", _text_of(block.get("content"), where)))
            else:
                raise InvalidRequest(f"{where}.content.{j}: unexpected block type {kind!r}")
        if role == "user" and pending:
            if answered != pending:
                raise InvalidRequest(
                    f"{where}: tool_use ids {sorted(pending - answered)} were found without "
                    "tool_result blocks immediately after"
                )
            pending = set()
        # A trailing assistant tool call (the last, prefill message) needs no answer.
        if text or role == "assistant" or not answered:
            out.append((role, text))
    tools = body.get("tools") or []
    if not isinstance(tools, list) or any(
        not isinstance(t, dict) or "name" not in t or "input_schema" not in t for t in tools
    ):
        raise InvalidRequest("tools: each tool needs a 'name' and an 'input_schema'")
    return FakeRequest(
        "anthropic", body["model"], tuple(out), bool(tools), bool(body.get("stream")), body
    )


def _anthropic_blocks(r: Rendered) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if r.reasoning:
        blocks.append(
            {"type": "thinking", "thinking": r.reasoning, "signature": signature(r.reasoning)}
        )
    if r.text:
        blocks.append({"type": "text", "text": r.text})
    if r.tool_name is not None:
        try:
            value: Any = json.loads(r.arguments or "{}")
        except ValueError:
            value = None
        if not isinstance(value, dict):
            # A whole (non-streamed) Anthropic reply always carries an object; a broken
            # call arrives as one without the required argument.
            value = {"cmd": r.arguments}
        blocks.append({"type": "tool_use", "id": r.call_id, "name": r.tool_name, "input": value})
    return blocks


def _anthropic_usage(request: FakeRequest, r: Rendered) -> dict[str, int]:
    out = tokens(r.text) + (tokens(r.reasoning) if r.reasoning else 0)
    out += tokens(r.arguments) if r.arguments else 0
    return {
        "input_tokens": sum(tokens(text) for _, text in request.messages),
        "output_tokens": out,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def anthropic_body(request: FakeRequest, r: Rendered, ident: str) -> dict[str, Any]:
    return {
        "id": ident,
        "type": "message",
        "role": "assistant",
        "model": request.model,
        "content": _anthropic_blocks(r),
        "stop_reason": "tool_use" if r.tool_name else "end_turn",
        "stop_sequence": None,
        "usage": _anthropic_usage(request, r),
    }


def anthropic_events(
    request: FakeRequest, r: Rendered, ident: str
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The streamed form: message_start, one start/delta.../stop per block, message_delta/stop."""
    usage = _anthropic_usage(request, r)
    start = anthropic_body(request, Rendered(""), ident)
    start.update(content=[], stop_reason=None, usage={**usage, "output_tokens": 1})
    yield "message_start", {"type": "message_start", "message": start}
    index = 0

    def block(first: dict[str, Any], deltas: list[dict[str, Any]]) -> Iterator[tuple[str, Any]]:
        yield (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": index,
                "content_block": first,
            },
        )
        for d in deltas:
            yield "content_block_delta", {"type": "content_block_delta", "index": index, "delta": d}
        yield "content_block_stop", {"type": "content_block_stop", "index": index}

    if r.reasoning:
        deltas = [{"type": "thinking_delta", "thinking": p} for p in _pieces(r.reasoning)]
        deltas.append({"type": "signature_delta", "signature": signature(r.reasoning)})
        yield from block({"type": "thinking", "thinking": "", "signature": ""}, deltas)
        index += 1
    if r.text:
        deltas = [{"type": "text_delta", "text": p} for p in _pieces(r.text)]
        yield from block({"type": "text", "text": ""}, deltas)
        index += 1
    if r.tool_name is not None:
        first = {"type": "tool_use", "id": r.call_id, "name": r.tool_name, "input": {}}
        parts = _pieces(r.arguments or "")
        yield from block(first, [{"type": "input_json_delta", "partial_json": p} for p in parts])
    yield (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {
                "stop_reason": "tool_use" if r.tool_name else "end_turn",
                "stop_sequence": None,
            },
            "usage": {"output_tokens": usage["output_tokens"]},
        },
    )
    yield "message_stop", {"type": "message_stop"}


def anthropic_error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}
