"""How a model policy talks to its model: endpoint, protocol, sampling, limits.

`ModelSettings.record()` is what a run stores in its config, so a reader of the
database knows the temperature, token limit and seed every episode was sampled
with (never the API key).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

from subterfuge.policy.retry import RetryPolicy


class ToolProtocol(StrEnum):
    """How the model acts: `<bash>` blocks in its text, or native calls of a `bash` tool."""

    TEXT = "text"
    TOOLS = "tools"


@dataclass(frozen=True)
class Sampling:
    """Sampling settings sent with every request.

    `seed`, where the provider supports it (OpenAI-compatible servers, local
    models), is a base: each request gets a seed derived from it, the episode
    index and the turn, so episodes sharing a prompt do not sample alike while a
    re-run samples the same.
    """

    temperature: float | None = 1.0
    max_tokens: int = 2048
    top_p: float | None = None
    seed: int | None = None

    def request_seed(self, episode: int, turn: int) -> int | None:
        if self.seed is None:
            return None
        return (self.seed * 1_000_003 + episode * 1_009 + turn) % (1 << 31)


@dataclass(frozen=True)
class ModelSettings:
    """Everything but the model name that a model policy needs.

    `max_requests` caps concurrent requests to this model from this process;
    `timeout` is seconds per HTTP request (a hang is retried after it);
    `thinking_budget` turns on Anthropic extended thinking with that many tokens.
    """

    base_url: str | None = None
    protocol: ToolProtocol = ToolProtocol.TEXT
    sampling: Sampling = field(default_factory=Sampling)
    stream: bool = False
    timeout: float = 600.0
    max_requests: int = 64
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    thinking_budget: int | None = None
    api_key_env: str | None = None

    def record(self) -> dict[str, Any]:
        """The settings that define how episodes were sampled (stored with the run).

        The endpoint is left out: the same model served at another address (a
        restarted server, a new port) must still resume the run.
        """
        return {
            "protocol": self.protocol.value,
            "sampling": asdict(self.sampling),
            "stream": self.stream,
            "thinking_budget": self.thinking_budget,
        }

    def split(self, parts: int) -> ModelSettings:
        """The same settings with the request limit shared between `parts` processes."""
        return replace(self, max_requests=max(1, -(-self.max_requests // max(1, parts))))
