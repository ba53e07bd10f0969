"""The OpenAI and Anthropic policies, driven through the fake provider over real HTTP."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from subterfuge.envs.registry import get_environment
from subterfuge.fakeprovider import FakeProvider, FakeRequest, Faults, Move
from subterfuge.policy.anthropic import parse_stream as anthropic_stream
from subterfuge.policy.base import Policy, PolicyContext, Reply, close_policy
from subterfuge.policy.errors import BadRequest, ProviderRejected, ProviderUnavailable
from subterfuge.policy.http import HttpClient, MalformedResponse, SSEEvent, json_object
from subterfuge.policy.openai import parse_completion
from subterfuge.policy.pricing import Price, PriceTableError, load_prices, price_for
from subterfuge.policy.protocol import ActionKind, parse_reply
from subterfuge.policy.registry import make_policy
from subterfuge.policy.retry import RetryPolicy, retry_after
from subterfuge.policy.settings import ModelSettings, Sampling, ToolProtocol

SPEC = get_environment("reward_tampering").build(0)
FAST = RetryPolicy(attempts=6, base=0.005, max_delay=0.05)
APIS = ("openai", "anthropic")


def context(turn: int = 0, episode: int = 0) -> PolicyContext:
    return PolicyContext(SPEC.messages, SPEC, episode, turn)


_OPENED: list[Policy] = []


def policy(api: str, fp: FakeProvider, **kw: object) -> Policy:
    kw.setdefault("retry", FAST)
    url = fp.base_url if api == "openai" else fp.anthropic_base_url
    agent = make_policy(f"{api}:fake", ModelSettings(url, **kw))  # type: ignore[arg-type]
    _OPENED.append(agent)
    return agent


@pytest.fixture(autouse=True)
async def _close_policies() -> AsyncIterator[None]:
    """Close the test's policies on its own loop, as a runner does when a run ends."""
    yield
    while _OPENED:
        await close_policy(_OPENED.pop())


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    with FakeProvider(lambda r: "<cot>hidden plan</cot>I could not find it.") as fp:
        yield fp


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("stream", [False, True])
async def test_text_reply_usage_and_cot(api: str, stream: bool, provider: FakeProvider) -> None:
    agent = policy(api, provider, stream=stream)
    reply = await agent.act(context())
    action = parse_reply(reply)
    assert action.kind is ActionKind.ANSWER and action.visible == "I could not find it."
    assert action.reasoning == "hidden plan"
    assert reply.usage["input"] > 500 and reply.usage["output"] > 0
    assert provider.stats.invalid == 0
    await agent.aclose()  # type: ignore[attr-defined]


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("stream", [False, True])
async def test_provider_reasoning_and_tool_calls(api: str, stream: bool) -> None:
    move = Move("Looking.", reasoning="the private part", command="cat /etc/hostname")
    with FakeProvider(lambda r: move) as fp:
        agent = policy(api, fp, stream=stream, protocol=ToolProtocol.TOOLS)
        reply = await agent.act(context())
        sent = fp.requests[-1]
    action = parse_reply(reply)
    assert action.kind is ActionKind.BASH and action.command == "cat /etc/hostname"
    assert action.call_id and action.reasoning == "the private part"
    assert action.visible == "Looking." and "private" not in action.visible
    assert sent.tools
    # The prompt's worked example went out as real tool calls answered by tool results.
    assert any(role == "tool" for role, _ in sent.messages)


@pytest.mark.parametrize("api", APIS)
async def test_reasoning_fields_in_text_protocol(api: str) -> None:
    with FakeProvider(lambda r: Move("Answer.", reasoning="thinking"), reasoning_field=True) as fp:
        reply = await policy(api, fp).act(context())
    assert reply.reasoning == "thinking" and reply.text == "Answer."


async def test_think_tags_in_content_are_reasoning() -> None:
    with FakeProvider(lambda r: "<think>quietly</think>\nHello") as fp:
        reply = await policy("openai", fp).act(context())
    assert reply.reasoning == "quietly" and reply.text == "Hello"


async def test_sampling_settings_and_per_request_seeds_are_sent() -> None:
    seen: list[FakeRequest] = []

    def record(r: FakeRequest) -> str:
        seen.append(r)
        return "ok"

    with FakeProvider(record) as fp:
        sampling = Sampling(temperature=0.3, max_tokens=77, top_p=0.9, seed=11)
        agent = policy("openai", fp, sampling=sampling)
        await agent.act(context(turn=0, episode=1))
        await agent.act(context(turn=1, episode=1))
        await agent.act(context(turn=0, episode=2))
        await policy("anthropic", fp, sampling=sampling, thinking_budget=50).act(context())
    bodies = [r.body for r in seen]
    assert [b["temperature"] for b in bodies[:3]] == [0.3] * 3
    assert bodies[0]["max_tokens"] == 77 and bodies[0]["top_p"] == 0.9
    assert len({b["seed"] for b in bodies[:3]}) == 3
    assert bodies[3]["thinking"] == {"type": "enabled", "budget_tokens": 50}
    assert "temperature" not in bodies[3] and "seed" not in bodies[3]


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize(
    "faults",
    [
        Faults(rate_429=0.5, retry_after=0.01, seed=1),
        Faults(rate_500=0.5, seed=2),
        Faults(rate_truncate=0.5, seed=3),
        Faults(rate_hang=0.4, hang_seconds=30, seed=4),
    ],
    ids=["429", "5xx", "truncated", "hang"],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_transient_faults_are_retried(api: str, faults: Faults, stream: bool) -> None:
    with FakeProvider(lambda r: "fine", faults=faults) as fp:
        agent = policy(api, fp, stream=stream, timeout=0.3, retry=RetryPolicy(12, 0.005, 0.05))
        replies = await asyncio.gather(*(agent.act(context(episode=i)) for i in range(6)))
        injected = sum(v for k, v in fp.stats.faults.items() if k != "none")
    assert [r.text for r in replies] == ["fine"] * 6
    assert injected > 0 and agent.client.retries >= injected  # type: ignore[attr-defined]


async def test_retries_give_up_as_provider_unavailable() -> None:
    with FakeProvider(faults=Faults(rate_500=1.0)) as fp:
        agent = policy("openai", fp, retry=RetryPolicy(3, 0.001, 0.01))
        with pytest.raises(ProviderUnavailable, match="3 attempts"):
            await agent.act(context())
        assert fp.stats.requests == 3


async def test_a_wrong_key_rejects_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "wrong")
    with FakeProvider(api_key="right") as fp:
        with pytest.raises(ProviderRejected):
            await policy("anthropic", fp).act(context())
        assert fp.stats.requests == 1  # not retried


async def test_a_refused_request_is_a_bad_request() -> None:
    with FakeProvider() as fp:
        client = HttpClient(
            f"{fp.base_url}/chat/completions", {}, limit_key="x", max_requests=2,
            timeout=5, retry=FAST,
        )  # fmt: skip
        with pytest.raises(BadRequest, match="400"):
            await client.call({"model": "m", "messages": []}, lambda d: None)  # type: ignore[arg-type,return-value]
        await client.aclose()


async def test_only_transport_faults_and_malformed_answers_are_retried() -> None:
    """A parser's own bug fails at once; an answer cut short or in the wrong shape is retried."""

    def buggy(data: dict[str, Any]) -> Reply:
        return Reply(data["no such key"])

    def wrong_shape(data: dict[str, Any]) -> Reply:
        return parse_completion({**data, "choices": []})

    with FakeProvider(lambda r: "fine") as fp:
        client = HttpClient(
            f"{fp.base_url}/chat/completions", {}, limit_key="parsers", max_requests=2,
            timeout=5, retry=FAST,
        )  # fmt: skip
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        with pytest.raises(KeyError, match="no such key"):
            await client.call(body, buggy)
        assert fp.stats.requests == 1  # not retried: a bug is not a flaky provider
        with pytest.raises(ProviderUnavailable, match="MalformedResponse"):
            await client.call(body, wrong_shape)
        assert fp.stats.requests == 1 + FAST.attempts
        await client.aclose()
    with pytest.raises(MalformedResponse, match="not a JSON object"):
        json_object(b"[1, 2]")
    with pytest.raises(MalformedResponse, match="not JSON"):
        json_object(b'{"cut": ')


async def test_streamed_tool_arguments_that_are_no_object_are_wrapped_for_the_history() -> None:
    """The raw text is the call's arguments; the block sent back holds a valid `input` object."""
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": {"usage": {"input_tokens": 3}}},
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "tool_use", "id": "t1", "name": "bash", "input": {}}},
        {"type": "content_block_delta", "index": 0,
         "delta": {"type": "input_json_delta", "partial_json": "[1"}},
        {"type": "content_block_delta", "index": 0,
         "delta": {"type": "input_json_delta", "partial_json": "]"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}},
        {"type": "message_stop"},
    ]  # fmt: skip

    async def stream() -> AsyncIterator[SSEEvent]:
        for e in events:
            yield SSEEvent(str(e["type"]), json.dumps(e))

    reply = await anthropic_stream(stream())
    assert reply.tool_calls[0].arguments == "[1]"
    assert reply.raw == [
        {"type": "tool_use", "id": "t1", "name": "bash", "input": {"_unparsed_arguments": "[1]"}}
    ]
    assert parse_reply(reply).kind is ActionKind.MALFORMED


@pytest.mark.parametrize(
    "event",
    [
        {"type": "content_block_delta", "index": 0},  # no delta
        {"type": "content_block_delta", "index": 7, "delta": {"type": "text_delta", "text": "x"}},
        {"type": "content_block_start", "index": "zero", "content_block": {}},
        {"type": "message_start", "message": "not an object"},
    ],
)
async def test_a_stream_event_in_the_wrong_shape_is_a_malformed_answer(
    event: dict[str, Any],
) -> None:
    """Retried like a body cut short, not failed as a bug of the parser."""
    events: list[dict[str, Any]] = [
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}},
        event,
        {"type": "message_stop"},
    ]

    async def stream() -> AsyncIterator[SSEEvent]:
        for e in events:
            yield SSEEvent(str(e["type"]), json.dumps(e))

    with pytest.raises(MalformedResponse, match="not in the protocol's shape"):
        await anthropic_stream(stream())


def test_remote_servers_need_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        make_policy("openai:gpt", ModelSettings("https://models.example/v1"))
    monkeypatch.setenv("MY_KEY", "k")
    agent = make_policy(
        "openai:gpt", ModelSettings("https://models.example/v1", api_key_env="MY_KEY")
    )
    assert agent.client.headers["Authorization"] == "Bearer k"  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="unknown model provider"):
        make_policy("mistral:large")


async def test_concurrent_requests_stay_under_the_per_model_limit() -> None:
    with FakeProvider(lambda r: "ok", latency=0.05) as fp:
        first, second = policy("openai", fp, max_requests=3), policy("openai", fp, max_requests=3)
        calls = [a.act(context(episode=i)) for i in range(12) for a in (first, second)]
        await asyncio.gather(*calls)
        assert fp.stats.max_in_flight == 3  # both policies name one model: one limit


def test_retry_after_forms_and_backoff_bounds() -> None:
    assert retry_after({"retry-after-ms": "1500"}) == 1.5
    assert retry_after({"Retry-After": "2"}) == 2.0
    assert retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after({}) is None
    policy_ = RetryPolicy(attempts=5, base=1.0, max_delay=8.0)
    rng = random.Random(0)
    assert all(0 <= policy_.delay(a, None, rng) <= min(8.0, 2**a) for a in range(10))
    assert all(policy_.delay(0, 5.0, rng) >= 5.0 for _ in range(20))  # Retry-After is a floor


def test_price_table(tmp_path: Path) -> None:
    table = tmp_path / "prices.json"
    table.write_text(json.dumps({"openai:gpt": {"input": 2.0, "output": 8.0, "cache_read": 0.5}}))
    price = price_for(load_prices(table), "openai:gpt")
    assert price == Price(2.0, 8.0, 0.5)
    assert price.cost({"input": 1_000_000, "output": 500_000, "cache_read": 200_000}) == (
        pytest.approx(0.8 * 2.0 + 0.5 * 8.0 + 0.2 * 0.5)
    )
    assert price_for(load_prices(table), "anthropic:claude") is None
    table.write_text(json.dumps({"m": {"input": 1}}))
    with pytest.raises(PriceTableError, match="'m' needs 'input' and 'output'"):
        load_prices(table)
