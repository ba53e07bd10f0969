"""How a model call can fail, typed by what the run should do about it.

- `ProviderUnavailable`: transient trouble (429, 5xx, timeouts, dropped
  connections) that outlasted every retry. The episode is not the model's
  doing, so it is not stored: a re-run of the same command redoes it.
- `ProviderRejected`: the provider refuses the run itself (bad key, unknown
  model, wrong URL). Every episode would fail the same way, so the run stops.
- `BadRequest`: the provider refused this one request (e.g. the conversation
  outgrew the context window). The episode ends as an `error` and is stored.
"""

from __future__ import annotations


class ProviderError(RuntimeError):
    """A model call failed; see the subclasses for what the run does about it."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ProviderUnavailable(ProviderError):
    """Transient failures outlasted the retries; the episode is to be redone later."""


class ProviderRejected(ProviderError):
    """The provider refuses the whole run (authentication, model, URL): stop it."""


class BadRequest(ProviderError):
    """The provider refused this request; the episode is recorded as an error."""
