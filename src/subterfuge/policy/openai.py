"""`openai:<model>`: any server speaking the OpenAI chat-completions protocol.

OpenAI itself, and the servers researchers run their own models on (vLLM,
SGLang, llama.cpp, Ollama, TGI) at `--base-url`. The key comes from
`OPENAI_API_KEY` (or the variable `api_key_env` names); a loopback server needs
none. Reasoning is read from wherever the server puts it: `reasoning_content`
(vLLM, DeepSeek, SGLang), `reasoning` (OpenRouter, Ollama) or a leading
`<think>` block in the content (servers without a reasoning parser).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from typing import Any

from subterfuge.envs.base import Message
from subterfuge.policy.base import AssistantTurn, PolicyContext, Reply, ToolCall, ToolResult
from subterfuge.policy.http import HttpPolicy, MalformedResponse, SSEEvent, json_object
from subterfuge.policy.settings import ModelSettings
from subterfuge.policy.tools import BASH_PARAMETERS, SKIPPED_NOTE, TOOL_DESCRIPTION, valid_arguments

DEFAULT_BASE_URL = "https://api.openai.com/v1"
BASH_TOOL_SPEC: dict[str, Any] = {
    "type": "function",
    "function": {"name": "bash", "description": TOOL_DESCRIPTION, "parameters": BASH_PARAMETERS},
}
_THINK = re.compile(r"^\s*<think>(.*?)</think>\s*", re.DOTALL)


def render_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """The conversation in chat-completions form (tool calls and tool messages kept native)."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if isinstance(m, AssistantTurn) and m.tool_calls:
            calls = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": valid_arguments(c.arguments)},
                }
                for c in m.tool_calls
            ]
            out.append({"role": "assistant", "content": m.content or None, "tool_calls": calls})
        elif isinstance(m, ToolResult) and m.call_id is not None:
            out.append({"role": "tool", "tool_call_id": m.call_id, "content": m.content})
            for skipped in m.skipped:
                out.append({"role": "tool", "tool_call_id": skipped, "content": SKIPPED_NOTE})
        else:
            out.append({"role": m.role, "content": m.content})
    return out


def _usage(usage: Any) -> dict[str, int]:
    if not isinstance(usage, dict):
        return {}
    out = {"input": int(usage.get("prompt_tokens") or 0)}
    out["output"] = int(usage.get("completion_tokens") or 0)
    details = usage.get("completion_tokens_details") or {}
    if isinstance(details, dict) and details.get("reasoning_tokens"):
        out["reasoning"] = int(details["reasoning_tokens"])
    cached = usage.get("prompt_tokens_details") or {}
    if isinstance(cached, dict) and cached.get("cached_tokens"):
        out["cache_read"] = int(cached["cached_tokens"])
    return out


def _split_think(text: str, reasoning: str | None) -> tuple[str, str | None]:
    match = _THINK.match(text)
    if match is None:
        return text, reasoning
    inner = match.group(1).strip()
    return text[match.end() :], "\n".join(r for r in (reasoning, inner) if r) or None


def _finish(reason: Any) -> str | None:
    return None if reason in (None, "stop", "tool_calls", "function_call") else str(reason)


def parse_completion(data: dict[str, Any]) -> Reply:
    """A whole chat-completions answer as a `Reply`."""
    choices = data.get("choices")
    choice: Any = choices[0] if isinstance(choices, list) and choices else None
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise MalformedResponse("no choices[0].message object in the answer")
    content = message.get("content") or ""
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    reasoning = message.get("reasoning_content") or message.get("reasoning") or None
    text, reasoning = _split_think(str(content), reasoning)
    calls = tuple(
        ToolCall(
            str(c.get("id") or f"call_{i}"),
            str(c.get("function", {}).get("name", "")),
            str(c.get("function", {}).get("arguments") or ""),
        )
        for i, c in enumerate(message.get("tool_calls") or [])
        if isinstance(c, dict)
    )
    return Reply(
        text, reasoning, _usage(data.get("usage")), calls, _finish(choice.get("finish_reason"))
    )


async def parse_stream(events: AsyncIterator[SSEEvent]) -> Reply:
    """A streamed answer, assembled from its chunks; an unfinished stream is an error."""
    text: list[str] = []
    reasoning: list[str] = []
    calls: dict[int, dict[str, str]] = {}
    usage: dict[str, int] = {}
    finish: Any = None
    done = False
    async for event in events:
        if event.data.strip() == "[DONE]":
            done = True
            break
        chunk = json_object(event.data, "a stream chunk")
        if isinstance(chunk.get("error"), dict):
            raise MalformedResponse(f"error in stream: {chunk['error'].get('message')}")
        if chunk.get("usage"):
            usage = _usage(chunk["usage"])
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            text.append(delta.get("content") or "")
            reasoning.append(delta.get("reasoning_content") or delta.get("reasoning") or "")
            for call in delta.get("tool_calls") or []:
                slot = calls.setdefault(
                    int(call.get("index", 0)), {"id": "", "name": "", "args": ""}
                )
                slot["id"] = call.get("id") or slot["id"]
                fn = call.get("function") or {}
                slot["name"] = fn.get("name") or slot["name"]
                slot["args"] += fn.get("arguments") or ""
            finish = choice.get("finish_reason") or finish
    if not done:
        raise MalformedResponse("the stream ended before [DONE]")
    joined, thought = _split_think("".join(text), "".join(reasoning) or None)
    tool_calls = tuple(
        ToolCall(c["id"] or f"call_{i}", c["name"], c["args"]) for i, c in sorted(calls.items())
    )
    return Reply(joined, thought, usage, tool_calls, _finish(finish))


class OpenAIPolicy(HttpPolicy):
    """A model behind an OpenAI-compatible chat-completions endpoint."""

    provider = "openai"
    default_base_url = DEFAULT_BASE_URL
    key_env = "OPENAI_API_KEY"
    parse = staticmethod(parse_completion)
    parse_stream = staticmethod(parse_stream)

    def __init__(self, model: str, settings: ModelSettings | None = None) -> None:
        super().__init__(model, settings)
        # OpenAI's own API renamed the token limit; compatible servers know the old name.
        self._official = "api.openai.com" in self.base_url

    def endpoint(self, base_url: str) -> str:
        return f"{base_url}/chat/completions"

    def headers(self, key: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"} if key else {}

    def request(self, context: PolicyContext) -> dict[str, Any]:
        """The JSON body for this turn."""
        s = self.settings.sampling
        messages = render_messages(self.conversation(context))
        body: dict[str, Any] = {"model": self.model, "messages": messages}
        body["max_completion_tokens" if self._official else "max_tokens"] = s.max_tokens
        if s.temperature is not None:
            body["temperature"] = s.temperature
        if s.top_p is not None:
            body["top_p"] = s.top_p
        seed = s.request_seed(context.episode, context.turn)
        if seed is not None:
            body["seed"] = seed
        if self.tools:
            body["tools"] = [BASH_TOOL_SPEC]
        if self.settings.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body
