"""Turning a `--policy` string into a policy.

Scripted oracles are named plainly (`honest`, `hider`, ...). Models are named
`provider:model`: `openai:<model>` (any OpenAI-compatible server),
`anthropic:<model>` (the Messages API) and `hf:<directory>` (a local
Hugging Face model, with the `hf` extra installed).
"""

from __future__ import annotations

from subterfuge.policy.base import Policy
from subterfuge.policy.scripted import SCRIPTED_POLICIES, scripted_policy
from subterfuge.policy.settings import ModelSettings

PROVIDERS: tuple[str, ...] = ("openai", "anthropic", "hf")


def make_policy(name: str, settings: ModelSettings | None = None) -> Policy:
    """The policy a `--policy` value names; unknown names raise ValueError listing choices.

    `settings` applies to model policies (endpoint, protocol, sampling, limits);
    scripted policies ignore it.
    """
    if name in SCRIPTED_POLICIES:
        return scripted_policy(name)
    provider, sep, model = name.partition(":")
    if sep and model:
        if provider == "openai":
            from subterfuge.policy.openai import OpenAIPolicy

            return OpenAIPolicy(model, settings)
        if provider == "anthropic":
            from subterfuge.policy.anthropic import AnthropicPolicy

            return AnthropicPolicy(model, settings)
        if provider == "hf":
            from subterfuge.policy.hf import HFPolicy

            return HFPolicy(model, settings)
        raise ValueError(
            f"unknown model provider {provider!r} in {name!r}; providers: {', '.join(PROVIDERS)}"
        )
    raise ValueError(
        f"unknown policy {name!r}; scripted policies: {', '.join(SCRIPTED_POLICIES)}; "
        f"models: {', '.join(p + ':MODEL' for p in PROVIDERS)}"
    )


def policy_settings(policy: Policy) -> dict[str, object] | None:
    """The sampling settings a model policy records with its run (None for scripted ones)."""
    settings = getattr(policy, "settings", None)
    return settings.record() if isinstance(settings, ModelSettings) else None
