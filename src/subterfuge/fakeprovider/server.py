"""The loopback HTTP server behind `FakeProvider` (aiohttp).

One handler per API route. Each call: parse and validate the body (400 on a
protocol error), draw a fault, wait the configured latency, ask the responder
for a move, and answer as JSON or as server-sent events. Faults are real
transport behaviour: a 429 carries `Retry-After`, a hang holds the connection
open, a truncation closes the socket mid-body.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import itertools
import json
import random
import threading
from dataclasses import asdict, dataclass, field
from typing import Self

from aiohttp import web

from subterfuge.fakeprovider.faults import Fault, FaultDraw, Faults
from subterfuge.fakeprovider.moves import FakeRequest, Move, Responder, ScriptedResponder
from subterfuge.fakeprovider.wire import (
    InvalidRequest,
    Rendered,
    anthropic_body,
    anthropic_error,
    anthropic_events,
    openai_body,
    openai_chunks,
    openai_error,
    read_anthropic,
    read_openai,
)

_MALFORMED_TEXT = ("<bash>ls -la", "", "<cot>I should think about")


@dataclass
class FakeStats:
    """Counters a test or benchmark can read while the server runs."""

    requests: int = 0
    answered: int = 0
    invalid: int = 0
    unauthorized: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    faults: dict[str, int] = field(default_factory=lambda: {f.value: 0 for f in Fault})
    by_api: dict[str, int] = field(default_factory=lambda: {"openai": 0, "anthropic": 0})


class FakeServer:
    """The aiohttp application and its state; `FakeProvider` runs it on a loop."""

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        latency: float = 0.0,
        jitter: float = 0.0,
        faults: Faults | None = None,
        reasoning_field: bool = False,
        api_key: str | None = None,
        keep_requests: int = 1000,
        seed: int = 0,
    ) -> None:
        self.responder: Responder = responder or ScriptedResponder()
        self.latency = latency
        self.jitter = jitter
        self.faults = faults or Faults()
        self.reasoning_field = reasoning_field
        self.api_key = api_key
        self.stats = FakeStats()
        self.requests: collections.deque[FakeRequest] = collections.deque(maxlen=keep_requests)
        self._draw = FaultDraw(self.faults)
        self._rng = random.Random(seed)
        self._ids = itertools.count(1)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 << 20)
        app.router.add_post("/v1/chat/completions", self._openai)
        app.router.add_post("/chat/completions", self._openai)
        app.router.add_post("/v1/messages", self._anthropic)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/health", self._health)
        app.router.add_get("/stats", self._stats)
        return app

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(asdict(self.stats))

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "fake", "object": "model"}]})

    # --- one call ---------------------------------------------------------------------------

    def _authorized(self, request: web.Request) -> bool:
        if self.api_key is None:
            return True
        bearer = request.headers.get("Authorization", "")
        return bearer == f"Bearer {self.api_key}" or request.headers.get("x-api-key") == (
            self.api_key
        )

    async def _openai(self, request: web.Request) -> web.StreamResponse:
        return await self._call(request, "openai")

    async def _anthropic(self, request: web.Request) -> web.StreamResponse:
        return await self._call(request, "anthropic")

    async def _call(self, request: web.Request, api: str) -> web.StreamResponse:
        stats = self.stats
        stats.requests += 1
        stats.by_api[api] += 1
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            return await self._answer(request, api)
        finally:
            stats.in_flight -= 1

    def _error(
        self, api: str, status: int, kind: str, message: str, **headers: str
    ) -> web.Response:
        body = openai_error(kind, message) if api == "openai" else anthropic_error(kind, message)
        return web.json_response(body, status=status, headers=headers)

    async def _answer(self, request: web.Request, api: str) -> web.StreamResponse:
        if not self._authorized(request):
            self.stats.unauthorized += 1
            kind = "invalid_request_error" if api == "openai" else "authentication_error"
            return self._error(api, 401, kind, "invalid x-api-key / Authorization header")
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise InvalidRequest("the body must be a JSON object")
            parsed = read_openai(body) if api == "openai" else read_anthropic(body)
        except (ValueError, InvalidRequest) as exc:
            self.stats.invalid += 1
            return self._error(api, 400, "invalid_request_error", str(exc))
        self.requests.append(parsed)
        fault = self._draw.next()
        self.stats.faults[fault.value] += 1
        delay = self.latency + (self._rng.uniform(0, self.jitter) if self.jitter else 0.0)
        if delay > 0:
            await asyncio.sleep(delay)
        if fault is Fault.RATE_LIMIT:
            wait = self.faults.retry_after
            kind = "rate_limit_exceeded" if api == "openai" else "rate_limit_error"
            return self._error(
                api, 429, kind, "rate limited (injected)",
                **{"Retry-After": f"{wait:g}", "retry-after-ms": str(int(wait * 1000))},
            )  # fmt: skip
        if fault is Fault.SERVER_ERROR:
            if api == "anthropic":
                return self._error(api, 529, "overloaded_error", "overloaded (injected)")
            return self._error(api, 500, "server_error", "internal error (injected)")
        if fault is Fault.HANG:
            await asyncio.sleep(self.faults.hang_seconds)
            _drop(request)  # close without an answer (raising here would send a 500)
            return web.Response()
        reply = self.responder(parsed)
        if inspect.isawaitable(reply):
            reply = await reply
        rendered = self._render(parsed, reply, api, malformed=fault is Fault.MALFORMED)
        ident = f"{'chatcmpl' if api == 'openai' else 'msg'}-fake{next(self._ids)}"
        truncate = fault is Fault.TRUNCATE
        if parsed.stream:
            return await self._stream(request, parsed, rendered, ident, api, truncate)
        data = (openai_body if api == "openai" else anthropic_body)(parsed, rendered, ident)
        raw = json.dumps(data).encode()
        if truncate:
            return await self._cut(request, raw)
        self.stats.answered += 1
        return web.Response(body=raw, content_type="application/json")

    def _render(self, req: FakeRequest, reply: Move | str, api: str, malformed: bool) -> Rendered:
        n = next(self._ids)
        call_id = f"call_fake{n}" if api == "openai" else f"toolu_fake{n}"
        if isinstance(reply, str):
            rendered = Rendered(reply)
        elif req.tools and (reply.command is not None or reply.arguments is not None):
            args = reply.arguments
            if args is None:
                args = json.dumps({"command": reply.command})
            rendered = Rendered(reply.text, reply.reasoning, reply.tool, args, call_id)
        elif self.reasoning_field:
            text = Move(reply.text, None, reply.command).as_text()
            rendered = Rendered(text, reply.reasoning)
        else:
            rendered = Rendered(reply.as_text())
        if not malformed:
            return rendered
        if rendered.tool_name is not None:
            args = rendered.arguments or ""
            broken = args[: max(1, len(args) // 2)]
            return Rendered(rendered.text, rendered.reasoning, rendered.tool_name, broken, call_id)
        return Rendered(_MALFORMED_TEXT[n % len(_MALFORMED_TEXT)], rendered.reasoning)

    async def _cut(self, request: web.Request, raw: bytes) -> web.StreamResponse:
        """Promise the whole body, send half of it, drop the connection."""
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = len(raw)
        await response.prepare(request)
        await response.write(raw[: len(raw) // 2])
        _drop(request)
        return response

    async def _stream(
        self,
        request: web.Request,
        parsed: FakeRequest,
        rendered: Rendered,
        ident: str,
        api: str,
        truncate: bool,
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        if api == "openai":
            events = [f"data: {json.dumps(c)}\n\n" for c in openai_chunks(parsed, rendered, ident)]
            events.append("data: [DONE]\n\n")
        else:
            events = [
                f"event: {name}\ndata: {json.dumps(data)}\n\n"
                for name, data in anthropic_events(parsed, rendered, ident)
            ]
        if truncate:
            await response.write("".join(events[: max(1, len(events) // 2)]).encode())
            _drop(request)
            return response
        await response.write("".join(events).encode())
        await response.write_eof()
        self.stats.answered += 1
        return response


def _drop(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


class FakeProvider:
    """A fake model provider on 127.0.0.1 speaking the OpenAI and Anthropic wire formats.

    Use as `with FakeProvider(...) as fp:` (server on its own thread, for sync
    and async callers alike) or `async with` (server on the running loop).
    See the package docstring for the options.
    """

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        latency: float = 0.0,
        jitter: float = 0.0,
        faults: Faults | None = None,
        reasoning_field: bool = False,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        keep_requests: int = 1000,
    ) -> None:
        self.server = FakeServer(
            responder,
            latency=latency,
            jitter=jitter,
            faults=faults,
            reasoning_field=reasoning_field,
            api_key=api_key,
            keep_requests=keep_requests,
        )
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- addresses ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The `--base-url` for OpenAI-compatible clients (ends in /v1)."""
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """The base URL for Anthropic clients (the SDK convention: no /v1)."""
        return self.url

    @property
    def stats(self) -> FakeStats:
        return self.server.stats

    @property
    def requests(self) -> list[FakeRequest]:
        """The most recent requests (up to `keep_requests`), oldest first."""
        return list(self.server.requests)

    # --- running on the current loop -------------------------------------------------------------

    async def start_async(self) -> None:
        runner = web.AppRunner(self.server.app(), access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, backlog=4096, reuse_address=True)
        await site.start()
        if self.port == 0 and runner.addresses:
            self.port = int(runner.addresses[0][1])
        self._runner = runner

    async def stop_async(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start_async()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_async()

    # --- running on a thread of its own ----------------------------------------------------------

    def start(self) -> Self:
        """Start the server on a background thread; returns when it accepts connections."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def main() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                loop.run_until_complete(self.start_async())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.stop_async())
            # Handlers still running (hangs) are cancelled, so none is left pending.
            leftover = asyncio.all_tasks(loop)
            for task in leftover:
                task.cancel()
            if leftover:
                loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))
            loop.close()

        self._thread = threading.Thread(target=main, name="fake-provider", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
        self._loop = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
