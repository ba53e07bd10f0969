"""Turning a `--policy` string into a policy.

Scripted oracles are named plainly (`honest`, `hider`, ...). Model backends
will use a `provider:model` form (`openai:...`, `anthropic:...`, `hf:...`).
"""

from __future__ import annotations

from subterfuge.policy.base import Policy
from subterfuge.policy.scripted import SCRIPTED_POLICIES, scripted_policy


def make_policy(name: str) -> Policy:
    """The policy a `--policy` value names; unknown names raise ValueError listing choices."""
    if name in SCRIPTED_POLICIES:
        return scripted_policy(name)
    provider = name.split(":", 1)[0] if ":" in name else None
    if provider is not None:
        raise ValueError(
            f"model provider {provider!r} is not available in this version; "
            f"scripted policies: {', '.join(SCRIPTED_POLICIES)}"
        )
    raise ValueError(f"unknown policy {name!r}; scripted policies: {', '.join(SCRIPTED_POLICIES)}")
