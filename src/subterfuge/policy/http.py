"""The HTTP layer model policies share: pooled sessions, the request limit, retries, SSE.

One `aiohttp` session per event loop per policy (sessions are bound to their
loop), sized for thousands of episodes in flight. `HttpClient.call` posts one
JSON request and turns every transport outcome into a `Reply` or a typed
`ProviderError` (see `subterfuge.policy.errors`): retryable statuses, timeouts,
dropped connections, truncated bodies and unfinished streams are retried with
backoff; the provider's verdict on the run (401/403/404) stops it. Only those
are retried: any other exception a parser raises is a bug in the parser and
propagates at once (the episode records it as an `error` with its traceback)
rather than passing for a flaky provider.

`HttpPolicy` is what every provider's policy shares on top of that (the key,
the client, the conversation in the chosen protocol, closing, splitting the
request limit); a provider adds only its endpoint, headers, body and parsers.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import random
import weakref
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit

import aiohttp

from subterfuge.envs.base import Message
from subterfuge.policy.base import PolicyContext, Reply
from subterfuge.policy.errors import BadRequest, ProviderRejected, ProviderUnavailable
from subterfuge.policy.limiter import limiter_for
from subterfuge.policy.retry import RETRY_STATUSES, RetryPolicy, retry_after
from subterfuge.policy.settings import ModelSettings, ToolProtocol
from subterfuge.policy.tools import with_tool_calls

REJECT_STATUSES = frozenset({401, 402, 403, 404, 405})
"""Statuses that say the run itself is misconfigured (key, billing, model or URL)."""


class MalformedResponse(ValueError):
    """A 200 answer that is not a usable reply (truncated, wrong shape, unfinished stream)."""


_TRANSIENT = (aiohttp.ClientError, TimeoutError, MalformedResponse)
"""Retried: transport errors, timeouts, and answers the parsers found cut short or not in
the protocol's shape. Nothing else: a `KeyError` or `TypeError` out of a parser is a bug."""


def json_object(raw: str | bytes, what: str = "the answer") -> dict[str, Any]:
    """One JSON object from the provider; anything else (a body cut short, not JSON, not an
    object) is a `MalformedResponse`, so it is retried like any other transport fault."""
    try:
        data = json.loads(raw)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise MalformedResponse(f"{what} is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise MalformedResponse(f"{what} is not a JSON object")
    return data


@dataclass(frozen=True)
class SSEEvent:
    event: str
    data: str


async def sse_events(content: aiohttp.StreamReader) -> AsyncIterator[SSEEvent]:
    """Server-sent events from a response body, one per blank-line-terminated block."""
    event, data = "message", list[str]()
    async for raw in content:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if data:
                yield SSEEvent(event, "\n".join(data))
            event, data = "message", []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
    if data:
        yield SSEEvent(event, "\n".join(data))


def is_loopback(url: str | None) -> bool:
    """Whether `url` points at this machine (where a keyless server is normal)."""
    if not url:
        return False
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def api_key(env_var: str, base_url: str) -> str | None:
    """The key from the environment; None is allowed only for a loopback server."""
    key = os.environ.get(env_var) or None
    if key is None and not is_loopback(base_url):
        raise ValueError(
            f"set {env_var} for {base_url} (servers on this machine need no key; "
            "for a keyless remote server set it to any value)"
        )
    return key


Parse = Callable[[dict[str, Any]], Reply]
ParseStream = Callable[[AsyncIterator[SSEEvent]], Awaitable[Reply]]


class HttpClient:
    """Posts JSON to one endpoint with a shared request limit and retries."""

    def __init__(
        self,
        url: str,
        headers: dict[str, str],
        *,
        limit_key: str,
        max_requests: int,
        timeout: float,
        retry: RetryPolicy,
    ) -> None:
        self.url = url
        self.headers = {"Content-Type": "application/json", **headers}
        self.limit_key = limit_key
        self.max_requests = max_requests
        self.timeout = timeout
        self.retry = retry
        self.retries = 0  # retried calls in this process, for reports and tests
        self._rng = random.Random()
        self._sessions: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, aiohttp.ClientSession
        ] = weakref.WeakKeyDictionary()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_sessions"] = None  # sessions belong to a loop in this process
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._sessions = weakref.WeakKeyDictionary()

    def _session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(
                limit=self.max_requests + 16, ttl_dns_cache=300, keepalive_timeout=30
            )
            session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.timeout, sock_connect=30),
                headers=self.headers,
            )
            self._sessions[loop] = session
        return session

    async def aclose(self) -> None:
        """Close this loop's session (the runner calls it when a run ends)."""
        session = self._sessions.pop(asyncio.get_running_loop(), None)
        if session is not None:
            await session.close()

    async def call(
        self, body: dict[str, Any], parse: Parse, parse_stream: ParseStream | None = None
    ) -> Reply:
        """One request, retried until it yields a reply or a non-retryable answer."""
        limiter = limiter_for(self.limit_key, self.max_requests)
        last = "no attempt made"
        payload = json.dumps(body).encode()
        for attempt in range(self.retry.attempts):
            wait_hint: float | None = None
            async with limiter.slot():
                try:
                    async with self._session().post(self.url, data=payload) as response:
                        if response.status == 200:
                            if body.get("stream") and parse_stream is not None:
                                return await parse_stream(sse_events(response.content))
                            return parse(json_object(await response.read()))
                        status, text = response.status, await response.text(errors="replace")
                        wait_hint = retry_after(response.headers)
                except _TRANSIENT as exc:
                    last = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                    status = None
            if status is not None:
                last = f"HTTP {status}: {_message(text)}"
                if status in REJECT_STATUSES:
                    raise ProviderRejected(f"{self.url} refused the request ({last})", status)
                if status not in RETRY_STATUSES:
                    raise BadRequest(f"{self.url}: {last}", status)
                if status == 429 and wait_hint:
                    limiter.pause(wait_hint)
            if attempt + 1 < self.retry.attempts:
                self.retries += 1
                await asyncio.sleep(self.retry.delay(attempt, wait_hint, self._rng))
        raise ProviderUnavailable(
            f"{self.url}: no reply after {self.retry.attempts} attempts (last: {last})"
        )


def _message(text: str) -> str:
    """The provider's error message from an error body, shortened."""
    try:
        data = json.loads(text)
    except ValueError:
        return text[:300]
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and "message" in error:
        return str(error["message"])[:300]
    return text[:300]


class HttpPolicy(ABC):
    """A model behind an HTTP API; subclasses name the provider and speak its format.

    A subclass sets `provider`, `default_base_url` and `key_env`, and defines
    `endpoint`, `headers`, `request` (the JSON body of one turn), `parse` and
    `parse_stream`; everything else is here, once.
    """

    provider: ClassVar[str]
    default_base_url: ClassVar[str]
    key_env: ClassVar[str]
    """The variable the API key is read from unless `settings.api_key_env` names another."""

    def __init__(self, model: str, settings: ModelSettings | None = None) -> None:
        self.model = model
        self.settings = settings or ModelSettings()
        self.base_url = (self.settings.base_url or self.default_base_url).rstrip("/")
        key = api_key(self.settings.api_key_env or self.key_env, self.base_url)
        self.client = HttpClient(
            self.endpoint(self.base_url),
            self.headers(key),
            limit_key=f"{self.provider}|{self.base_url}|{model}",
            max_requests=self.settings.max_requests,
            timeout=self.settings.timeout,
            retry=self.settings.retry,
        )

    @property
    def name(self) -> str:
        return f"{self.provider}:{self.model}"

    @property
    def tools(self) -> bool:
        """Whether the model acts through a native `bash` tool (the tools protocol)."""
        return self.settings.protocol is ToolProtocol.TOOLS

    def conversation(self, context: PolicyContext) -> list[Message]:
        """The turn's messages in the chosen protocol (the prompt's example as tool calls)."""
        return with_tool_calls(context.messages) if self.tools else list(context.messages)

    @abstractmethod
    def endpoint(self, base_url: str) -> str:
        """The URL requests are posted to."""

    @abstractmethod
    def headers(self, key: str | None) -> dict[str, str]:
        """Request headers (authentication, API version)."""

    @abstractmethod
    def request(self, context: PolicyContext) -> dict[str, Any]:
        """The JSON body for this turn."""

    @staticmethod
    @abstractmethod
    def parse(data: dict[str, Any]) -> Reply:
        """A whole answer as a `Reply`."""

    @staticmethod
    @abstractmethod
    async def parse_stream(events: AsyncIterator[SSEEvent]) -> Reply:
        """A streamed answer as a `Reply`; an unfinished stream raises `MalformedResponse`."""

    async def act(self, context: PolicyContext) -> Reply:
        return await self.client.call(self.request(context), self.parse, self.parse_stream)

    async def aclose(self) -> None:
        await self.client.aclose()

    def split(self, parts: int) -> Self:
        """The same model with the request limit shared between `parts` processes."""
        return type(self)(self.model, self.settings.split(parts))
