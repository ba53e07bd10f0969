"""A fake model provider on loopback, for tests and benchmarks of the real client code.

It is a real HTTP server (aiohttp) on 127.0.0.1 that speaks the OpenAI
chat-completions protocol (`POST /v1/chat/completions`, tool calls, streaming)
and the Anthropic Messages protocol (`POST /v1/messages`, tool use, thinking
blocks, streaming), answers with scripted moves, waits a configurable latency,
and injects faults at configurable rates. Requests are validated as the real
services validate them, so wire-format bugs fail loudly.

API::

    from subterfuge.fakeprovider import FakeProvider, Faults, Move, FakeRequest, ScriptedResponder

    with FakeProvider(                      # or: async with FakeProvider(...) as fp
        responder=ScriptedResponder("hider"),   # default: ScriptedResponder("honest")
        latency=0.2, jitter=0.0,            # seconds added to every call
        faults=Faults(rate_429=0.02, rate_500=0.02, rate_hang=0.01, rate_truncate=0.0,
                      rate_malformed=0.0, retry_after=0.2, hang_seconds=3600, seed=0),
        reasoning_field=False,              # True: <cot> text goes to reasoning_content / thinking
        api_key=None,                       # set: requests without this key get 401
    ) as fp:
        fp.base_url            # "http://127.0.0.1:PORT/v1"  (OpenAI clients, `--base-url`)
        fp.anthropic_base_url  # "http://127.0.0.1:PORT"     (Anthropic clients; /v1 also works
                               #  with Subterfuge's client)
        fp.stats               # FakeStats: requests, answered, invalid, faults, max_in_flight
        fp.requests            # the last `keep_requests` FakeRequest objects, oldest first

`GET /stats` returns the counters as JSON (for a server in another process).
A responder is any callable `FakeRequest -> Move | str` (it may also be async).
`FakeRequest` has `api` ("openai"/"anthropic"), `model`, `messages` ((role,
text) pairs, system first, tool results as role "tool"), `tools` (whether tools
were offered), `stream`, `body` (the JSON as sent). A `str` reply is sent as
the message text verbatim. `Move(text, reasoning=None, command=None,
arguments=None)` is sent as text plus provider reasoning plus, when the
request offered tools, a `bash` tool call (`arguments` overrides the JSON sent,
e.g. to send malformed JSON); without tools the command is appended as
`<bash>…</bash>`. `Faults.mixed(0.05)` splits 5% of calls evenly between 429,
500 and hangs. The same server runs from the command line:
`subterfuge fake-provider --port 8000 --policy hider --latency 0.2 --fail-rate 0.05`.
"""

from subterfuge.fakeprovider.faults import Fault, Faults
from subterfuge.fakeprovider.moves import (
    FakeRequest,
    Move,
    Responder,
    ScriptedResponder,
    move_from_text,
)
from subterfuge.fakeprovider.server import FakeProvider, FakeStats

__all__ = [
    "FakeProvider",
    "FakeRequest",
    "FakeStats",
    "Fault",
    "Faults",
    "Move",
    "Responder",
    "ScriptedResponder",
    "move_from_text",
]
