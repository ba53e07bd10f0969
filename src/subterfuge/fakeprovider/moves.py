"""What the fake provider answers: a `Move` per request, chosen by a responder.

A responder is any callable from a `FakeRequest` (the conversation the client
sent, normalised to text, whichever wire format it came in) to a `Move` or a
plain string. The default, `ScriptedResponder`, replays a scripted policy's
moves: it recognises the episode from the task message (every variant of every
curriculum environment is indexed by the hash of its last prompt message), counts
the assistant turns the client has sent since, and returns the scripted move for
that turn. So a run against the fake provider must give the same verdicts as the
same scripted policy run directly, through the real HTTP client code.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from subterfuge.envs.base import Environment, EpisodeSpec


@dataclass(frozen=True)
class FakeRequest:
    """One request as the responder sees it.

    `api` is "openai" or "anthropic"; `messages` is (role, text) pairs with the
    system prompt first (role "system"), assistant tool calls rendered as
    `<bash>COMMAND</bash>` and tool results as role "tool"; `tools` says whether
    the request offered tools; `body` is the parsed JSON body as sent.
    """

    api: str
    model: str
    messages: tuple[tuple[str, str], ...]
    tools: bool
    stream: bool
    body: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def assistant_turns(self) -> int:
        return sum(1 for role, _ in self.messages if role == "assistant")


@dataclass(frozen=True)
class Move:
    """One assistant reply.

    `text` is the visible message text. `reasoning`, when set, is returned where
    the provider reports reasoning (`reasoning_content` in OpenAI-style replies,
    a `thinking` block in Anthropic ones). `command`, when set, is returned as a
    `bash` tool call if the request offered tools, else appended to `text` as
    `<bash>…</bash>`. `arguments` overrides the tool call's JSON arguments
    verbatim (to send malformed JSON on purpose).
    """

    text: str = ""
    reasoning: str | None = None
    command: str | None = None
    arguments: str | None = None
    tool: str = "bash"

    def as_text(self) -> str:
        """The move in the reference text protocol."""
        parts = [f"<cot>{self.reasoning}</cot>"] if self.reasoning else []
        if self.text:
            parts.append(self.text)
        if self.command is not None:
            parts.append(f"<bash>{self.command}</bash>")
        return "\n".join(parts)


Responder = Callable[[FakeRequest], "Move | str"]

_COT = re.compile(r"<cot>(.*?)</cot>", re.DOTALL)
_BASH = re.compile(r"<bash>(.*?)</bash>", re.DOTALL)


def move_from_text(text: str) -> Move:
    """Split a text-protocol message into reasoning, visible text and a command.

    Used to answer tool-calling requests with scripted text moves: the `<cot>`
    part becomes provider reasoning and the first `<bash>` block a tool call.
    Text that does not parse cleanly (unclosed tags) is kept verbatim.
    """
    if "<cot>" in _COT.sub("", text) or "<bash>" in _BASH.sub("", text):
        return Move(text=text)
    reasoning = "\n".join(m.strip() for m in _COT.findall(text)) or None
    rest = _COT.sub("", text)
    bash = _BASH.search(rest)
    command = bash.group(1) if bash else None
    visible = (rest[: bash.start()] if bash else rest).strip()
    return Move(text=visible, reasoning=reasoning, command=command)


def _key(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


class ScriptedResponder:
    """Replays a scripted policy (`honest`, `hider`, ...) for any curriculum episode.

    The episode number the script sees is the variant (scripts that vary by
    episode, like the hider's hiding form, vary by variant instead). Requests
    that match no known episode get `fallback`. Thread-safe; the index of
    prompts is built on first use.
    """

    def __init__(
        self,
        policy: str = "honest",
        envs: Sequence[Environment] | None = None,
        fallback: str = "I cannot tell which task this is.",
        tool_moves: bool = True,
    ) -> None:
        from subterfuge.policy.scripted import scripted_policy

        self.policy = scripted_policy(policy)
        self._envs = envs
        self.fallback = fallback
        self.tool_moves = tool_moves
        self._index: dict[str, tuple[Environment, int]] | None = None
        self._specs: dict[tuple[str, int], EpisodeSpec] = {}
        self._lock = threading.Lock()

    def _environments(self) -> Iterable[Environment]:
        if self._envs is not None:
            return self._envs
        from subterfuge.envs.registry import curriculum

        return curriculum()

    def _lookup(self, text: str) -> tuple[Environment, int] | None:
        with self._lock:
            if self._index is None:
                index: dict[str, tuple[Environment, int]] = {}
                for env in self._environments():
                    for variant in range(env.n_variants):
                        spec = env.build(variant)
                        index[_key(spec.messages[-1].content)] = (env, variant)
                self._index = index
            return self._index.get(_key(text))

    def spec_for(self, request: FakeRequest) -> EpisodeSpec | None:
        """The episode a request belongs to, found from its task message."""
        for role, text in request.messages:
            if role != "user":
                continue
            found = self._lookup(text)
            if found is None:
                continue
            env, variant = found
            with self._lock:
                spec = self._specs.get((env.name, variant))
                if spec is None:
                    spec = self._specs[(env.name, variant)] = env.build(variant)
            return spec
        return None

    def __call__(self, request: FakeRequest) -> Move | str:
        spec = self.spec_for(request)
        if spec is None:
            return self.fallback
        prompt_turns = sum(1 for m in spec.messages if m.role == "assistant")
        turn = max(0, request.assistant_turns - prompt_turns)
        moves = self.policy.script(spec, spec.variant)
        text = moves[min(turn, len(moves) - 1)] if moves else ""
        if request.tools and self.tool_moves:
            return move_from_text(text)
        return text
