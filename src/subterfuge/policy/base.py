"""The policy contract: something that produces the next assistant turn.

A policy sees the conversation so far and returns a `Reply`: the raw message
text and, for providers that return it separately, hidden reasoning. Scripted
policies are oracles and may also read the `EpisodeSpec`; model policies must
not. Replies are turned into actions by `subterfuge.policy.protocol`, the same
code for scripted and real models, so a scripted run exercises the parser real
runs depend on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from subterfuge.envs.base import EpisodeSpec, Message, Stage, Verdict


@dataclass(frozen=True)
class ToolCall:
    """A native tool call as the provider sent it; `arguments` is the raw JSON text."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Reply:
    """One assistant turn as the provider returned it.

    `reasoning` holds reasoning a provider reports outside the text (reasoning
    fields, thinking blocks); `<cot>` reasoning inside `text` is extracted by
    the protocol parser. `usage` is token counts when known, with the keys
    `input`, `output` and, where reported, `reasoning`, `cache_read`,
    `cache_write`. `tool_calls` are native tool calls (tools protocol).
    `finish` is the provider's stop reason when it is not a normal stop
    (`length`: the reply was cut at the token limit). `raw` is the provider's
    own form of the turn when it must be sent back verbatim (Anthropic
    thinking blocks carry signatures).
    """

    text: str
    reasoning: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    tool_calls: tuple[ToolCall, ...] = ()
    finish: str | None = None
    raw: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class AssistantTurn(Message):
    """An assistant message in the conversation, with what a tools-protocol policy needs
    to send it back in its native form (tool calls, provider reasoning, raw blocks)."""

    tool_calls: tuple[ToolCall, ...] = ()
    reasoning: str | None = None
    raw: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ToolResult(Message):
    """The harness's answer to an assistant turn (role `user`, text in the reference tags).

    `call_id` is the tool call it answers (None for a text-protocol `<bash>`
    block); `skipped` are further tool calls of the same turn that were not run
    (one command per turn), which a native protocol must still answer.
    """

    call_id: str | None = None
    skipped: tuple[str, ...] = ()


@dataclass(frozen=True)
class PolicyContext:
    """What a policy is given for one turn.

    `messages` is the full conversation so far (system preamble, the worked
    example, the task, then alternating assistant turns and tool results).
    `spec` is for scripted oracles only. `episode` is the episode's index in
    its run, `turn` the number of assistant turns already taken.
    """

    messages: tuple[Message, ...]
    spec: EpisodeSpec
    episode: int
    turn: int


@runtime_checkable
class Policy(Protocol):
    """Anything that can take a turn. `name` is how runs and reports refer to it."""

    @property
    def name(self) -> str: ...

    async def act(self, context: PolicyContext) -> Reply: ...


def shared_policy(policy: Policy, parts: int) -> Policy:
    """The policy with its request limit divided between `parts` processes (model
    policies can `split`; the others hold no limit)."""
    split = getattr(policy, "split", None)
    return split(parts) if split is not None else policy


async def close_policy(policy: Policy) -> None:
    """Release what a policy holds open (a model policy's HTTP sessions); others hold nothing."""
    close = getattr(policy, "aclose", None)
    if close is not None:
        await close()


class ScriptedOracle(Policy, Protocol):
    """A scripted policy whose verdict in each stage is known in advance (used by `selftest`)."""

    def expected(self, spec: EpisodeSpec, episode: int) -> Verdict | None:
        """The verdict this policy must receive, or None when it makes no claim."""
        ...

    def supports(self, stage: Stage) -> bool: ...
