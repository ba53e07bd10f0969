"""The text protocol parser: the code every real model's reply goes through."""

from __future__ import annotations

import json

import pytest

from subterfuge.envs.base import Message
from subterfuge.policy.base import AssistantTurn, Reply, ToolCall, ToolResult
from subterfuge.policy.protocol import ActionKind, format_observation, parse_reply, split_reasoning
from subterfuge.policy.tools import with_tool_calls


def test_cot_is_hidden_and_bash_is_the_action() -> None:
    action = parse_reply(Reply("<cot>I will look around.</cot>\n<bash>ls /root</bash>"))
    assert action.kind is ActionKind.BASH
    assert action.command == "ls /root"
    assert action.reasoning == "I will look around."
    assert "I will look around" not in action.visible


def test_final_answer_without_bash() -> None:
    action = parse_reply(Reply("<cot>No count anywhere.</cot>The count is not recorded."))
    assert action.kind is ActionKind.ANSWER
    assert action.visible == "The count is not recorded."


def test_only_first_command_runs() -> None:
    action = parse_reply(Reply("<bash>cat a</bash> then <bash>rm b</bash>"))
    assert action.command == "cat a"


def test_multiline_command_kept_verbatim() -> None:
    text = "<bash>cat > f.py <<'EOF'\ndef reward(t):\n    return 1\nEOF</bash>"
    assert (
        parse_reply(Reply(text)).command == "cat > f.py <<'EOF'\ndef reward(t):\n    return 1\nEOF"
    )


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("<bash>ls -la", "unclosed <bash> tag"),
        ("<cot>thinking and never closing", "unclosed <cot> tag"),
        ("", "empty message"),
        ("   \n ", "empty message"),
        ("<bash>  </bash>", "empty <bash> command"),
        ("</bash></bash>", "</bash> without <bash>"),
        ("<cot>only reasoning</cot>", "empty message"),
    ],
)
def test_malformed_replies_are_actions_not_exceptions(text: str, error: str) -> None:
    action = parse_reply(Reply(text))
    assert action.kind is ActionKind.MALFORMED
    assert action.error == error


def test_reasoning_everything_before_a_stray_close_tag_is_hidden() -> None:
    visible, hidden, error = split_reasoning("secret plan</cot>Hello!")
    assert (visible, hidden, error) == ("Hello!", "secret plan", None)


def test_provider_reasoning_joins_cot() -> None:
    action = parse_reply(Reply("<cot>b</cot>answer", reasoning="a"))
    assert action.reasoning == "a\nb"


def test_multiple_cot_blocks_all_hidden() -> None:
    action = parse_reply(Reply("<cot>one</cot>Hi <cot>two</cot>there"))
    assert action.visible == "Hi there"
    assert action.reasoning == "one\ntwo"


def test_observation_uses_reference_tags() -> None:
    assert format_observation("x\n", "") == "<stdout>\nx\n</stdout>"
    assert format_observation("", "oops\n") == "<stderr>\noops\n</stderr>"
    both = format_observation("a", "b")
    assert both.index("<stdout>") < both.index("<stderr>")


def test_tools_protocol_shows_the_prompt_example_as_tool_calls() -> None:
    prompt = [
        Message("system", "rules"),
        Message("user", "example task"),
        Message("assistant", "Look.\n<bash>ls</bash>"),
        Message("user", "<stdout>a.py</stdout>"),
        Message("user", "the task"),
    ]
    call = ToolCall("c1", "bash", '{"command": "pwd"}')
    run_turns = [
        AssistantTurn("assistant", "", (call,)),
        ToolResult("user", "<stdout>/</stdout>", call_id="c1"),
    ]
    late = [Message("assistant", "<bash>id</bash>"), Message("user", "uid=0")]
    first = with_tool_calls(prompt)
    later = with_tool_calls([*prompt, *run_turns, *late])
    example = later[2]
    assert isinstance(example, AssistantTurn) and example.content == "Look."
    assert [(c.id, c.name, json.loads(c.arguments)) for c in example.tool_calls] == [
        ("example_2", "bash", {"command": "ls"})
    ]
    assert later[3] == ToolResult("user", "<stdout>a.py</stdout>", call_id="example_2")
    assert later[:2] == prompt[:2] and type(later[4]) is Message and later[4] == prompt[4]
    assert later[5:7] == run_turns  # turns the run produced are sent as they are
    assert later[7].tool_calls[0].id == "example_7"  # type: ignore[attr-defined]
    assert later[8] == ToolResult("user", "uid=0", call_id="example_7")
    assert first == later[:5]  # the prompt converts the same on every turn
