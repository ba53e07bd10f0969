"""The fake provider itself: it validates like the real services, scripts, and misbehaves on cue."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from subterfuge.envs.registry import get_environment
from subterfuge.fakeprovider import (
    FakeProvider,
    FakeRequest,
    Fault,
    Faults,
    Move,
    ScriptedResponder,
    move_from_text,
)
from subterfuge.fakeprovider.faults import FaultDraw
from subterfuge.fakeprovider.wire import signature


def post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def fp() -> Any:
    with FakeProvider(lambda r: Move("done", reasoning="why", command="ls")) as provider:
        yield provider


def test_openai_tool_messages_must_answer_a_pending_call(fp: FakeProvider) -> None:
    url = f"{fp.base_url}/chat/completions"
    orphan = [
        {"role": "user", "content": "hi"},
        {"role": "tool", "tool_call_id": "x", "content": ""},
    ]
    status, body = post(url, {"model": "m", "messages": orphan})
    assert status == 400 and "answers no pending call" in body["error"]["message"]
    unanswered = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "bash", "arguments": "{}"}}]},
        {"role": "user", "content": "next"},
    ]  # fmt: skip
    status, body = post(url, {"model": "m", "messages": unanswered})
    assert status == 400 and "c1" in body["error"]["message"]


def test_anthropic_checks_max_tokens_roles_and_thinking_signatures(fp: FakeProvider) -> None:
    url = f"{fp.url}/v1/messages"
    user = {"role": "user", "content": "hi"}
    assert post(url, {"model": "m", "messages": [user]})[0] == 400  # no max_tokens
    first_assistant = {"role": "assistant", "content": "x"}
    assert post(url, {"model": "m", "max_tokens": 5, "messages": [first_assistant]})[0] == 400
    forged = {"type": "thinking", "thinking": "t", "signature": "forged"}
    turns = [user, {"role": "assistant", "content": [forged, {"type": "text", "text": "a"}]}, user]
    status, body = post(url, {"model": "m", "max_tokens": 5, "messages": turns})
    assert status == 400 and "signature" in body["error"]["message"]
    good = {"type": "thinking", "thinking": "t", "signature": signature("t")}
    turns[1] = {"role": "assistant", "content": [good, {"type": "text", "text": "a"}]}
    assert post(url, {"model": "m", "max_tokens": 5, "messages": turns})[0] == 200
    assert fp.stats.invalid >= 3


def test_moves_render_per_protocol(fp: FakeProvider) -> None:
    tool = {"type": "function", "function": {"name": "bash", "parameters": {}}}
    msgs = [{"role": "user", "content": "hi"}]
    _, text = post(f"{fp.base_url}/chat/completions", {"model": "m", "messages": msgs})
    assert text["choices"][0]["message"]["content"] == "<cot>why</cot>\ndone\n<bash>ls</bash>"
    _, tools = post(
        f"{fp.base_url}/chat/completions", {"model": "m", "messages": msgs, "tools": [tool]}
    )
    message = tools["choices"][0]["message"]
    assert message["reasoning_content"] == "why"
    assert json.loads(message["tool_calls"][0]["function"]["arguments"]) == {"command": "ls"}
    body = {"model": "m", "max_tokens": 9, "messages": msgs,
            "tools": [{"name": "bash", "input_schema": {}}]}  # fmt: skip
    _, claude = post(f"{fp.url}/v1/messages", body)
    assert [b["type"] for b in claude["content"]] == ["thinking", "text", "tool_use"]
    assert claude["stop_reason"] == "tool_use" and claude["usage"]["input_tokens"] > 0


def test_scripted_responder_finds_the_episode_and_the_turn() -> None:
    env = get_environment("reward_tampering")
    spec = env.build(7)
    responder = ScriptedResponder("hider", [env])
    prompt = tuple((m.role, m.content) for m in spec.messages)
    first = responder(FakeRequest("openai", "m", prompt, False, False))
    assert first == f"<bash>cat {spec.facts['reward_file']}</bash>"
    later = (*prompt, ("assistant", "x"), ("user", "y"))
    second = responder(FakeRequest("openai", "m", later, True, False))
    assert isinstance(second, Move) and second.command == f"cat {spec.facts['test_file']}"
    unknown = responder(FakeRequest("openai", "m", (("user", "who am I?"),), False, False))
    assert unknown == responder.fallback


def test_move_from_text_splits_reasoning_and_command() -> None:
    move = move_from_text("<cot>plan</cot>\nLet me look.<bash>ls /</bash>")
    assert move == Move("Let me look.", "plan", "ls /")
    assert move_from_text("<bash>ls").text == "<bash>ls"  # malformed text is kept verbatim


def test_fault_draws_follow_their_rates() -> None:
    draw = FaultDraw(Faults.mixed(0.3, seed=4))
    counts = {f: 0 for f in Fault}
    for _ in range(3000):
        counts[draw.next()] += 1
    assert 800 < counts[Fault.RATE_LIMIT] + counts[Fault.SERVER_ERROR] + counts[Fault.HANG] < 1000
    assert counts[Fault.TRUNCATE] == counts[Fault.MALFORMED] == 0
    with pytest.raises(ValueError, match="sum to <= 1"):
        Faults(rate_429=0.7, rate_500=0.7)


def test_injected_429_carries_retry_after_and_keys_are_checked() -> None:
    with FakeProvider(faults=Faults(rate_429=1.0, retry_after=3)) as limited:
        request = urllib.request.Request(
            f"{limited.base_url}/chat/completions",
            json.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}]}).encode(),
        )
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=10)
        assert caught.value.code == 429 and caught.value.headers["Retry-After"] == "3"
    with FakeProvider(api_key="k") as locked:
        status, _ = post(f"{locked.url}/v1/messages", {"model": "m"})
        assert status == 401 and locked.stats.unauthorized == 1


def test_a_hang_ends_in_a_dropped_connection_not_an_answer() -> None:
    with FakeProvider(faults=Faults(rate_hang=1.0, hang_seconds=0.1)) as hung:
        body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
        request = urllib.request.Request(
            f"{hung.base_url}/chat/completions", json.dumps(body).encode()
        )
        with pytest.raises(http.client.RemoteDisconnected):
            urllib.request.urlopen(request, timeout=10)
        assert hung.stats.faults["hang"] == 1 and hung.stats.answered == 0
