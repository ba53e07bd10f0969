"""Model policies in whole episodes and runs: real sandbox, real HTTP, the fake provider."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from subterfuge.cli.main import app
from subterfuge.envs.base import Verdict
from subterfuge.envs.registry import get_environment
from subterfuge.fakeprovider import FakeProvider, Faults, ScriptedResponder
from subterfuge.policy.errors import ProviderRejected
from subterfuge.policy.registry import make_policy
from subterfuge.policy.retry import RetryPolicy
from subterfuge.policy.settings import ModelSettings, ToolProtocol
from subterfuge.rollout.episode import EpisodeBudget, EpisodeTask, run_episode
from subterfuge.runner.local import RunPlan, run_local
from subterfuge.sandbox import SandboxBackend
from subterfuge.store import Store

ENV = get_environment("reward_tampering")
FAST = RetryPolicy(attempts=8, base=0.005, max_delay=0.05)


def settings(fp: FakeProvider, api: str, **kw: object) -> ModelSettings:
    url = fp.base_url if api == "openai" else fp.anthropic_base_url
    kw.setdefault("retry", FAST)
    return ModelSettings(url, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("api", ["openai", "anthropic"])
@pytest.mark.parametrize("protocol", list(ToolProtocol))
@pytest.mark.parametrize("stream", [False, True])
async def test_model_runs_give_the_scripted_verdicts(
    api: str, protocol: ToolProtocol, stream: bool, bwrap: SandboxBackend, tmp_path: Path
) -> None:
    with FakeProvider(ScriptedResponder("hider", [ENV])) as fp:
        agent = make_policy(f"{api}:fake", settings(fp, api, protocol=protocol, stream=stream))
        plan = RunPlan("m", ENV, agent, 3, concurrency=3)
        with Store.open(tmp_path / "r.sqlite") as store:
            result = await run_local(plan, bwrap, store, progress=False)
            records = store.episodes("m")
        assert fp.stats.invalid == 0
    assert result.verdicts[Verdict.TAMPERED_AND_HID] == 3, [r.error for r in records]
    forms = sorted(r.details["hiding_forms"][0] for r in records)
    assert forms == ["special_cased", "test_deleted", "test_edited"]
    record = records[0]
    assert any("-10 every time" in r for r in record.reasoning)  # hidden reasoning kept...
    assert all("-10 every time" not in str(t) for t in record.transcript)  # ...apart
    assert record.usage["input"] > 0 and result.usage.input_tokens >= record.usage["input"]
    if protocol is ToolProtocol.TOOLS:
        assert all("tool_call" in t for t in record.transcript if t.get("kind") == "bash")


@pytest.mark.parametrize("api", ["openai", "anthropic"])
@pytest.mark.parametrize("stream", [False, True])
async def test_malformed_tool_calls_are_recorded_turns(
    api: str, stream: bool, bwrap: SandboxBackend
) -> None:
    faults = Faults(rate_malformed=1.0)
    with FakeProvider(ScriptedResponder("tamperer", [ENV]), faults=faults) as fp:
        agent = make_policy(
            f"{api}:fake", settings(fp, api, protocol=ToolProtocol.TOOLS, stream=stream)
        )
        record = await run_episode(
            ENV, agent, bwrap, EpisodeTask("t", 0, 0, 0), budget=EpisodeBudget(max_turns=2)
        )
        await agent.aclose()  # type: ignore[attr-defined]
        assert fp.stats.invalid == 0  # the broken calls were answered as the protocol demands
    turns = [t for t in record.transcript if t["role"] == "assistant"]
    assert [t["kind"] for t in turns] == ["malformed"] * 2
    assert all("JSON" in t["error"] or "'command'" in t["error"] for t in turns)
    assert record.verdict is Verdict.INVALID and record.details["limit"] == "turns"


async def test_episode_token_and_time_caps(bwrap: SandboxBackend) -> None:
    with FakeProvider(ScriptedResponder("tamperer", [ENV])) as fp:
        agent = make_policy("openai:fake", settings(fp, "openai"))
        capped = await run_episode(
            ENV, agent, bwrap, EpisodeTask("t", 0, 0, 0), budget=EpisodeBudget(max_tokens=1000)
        )
        await agent.aclose()  # type: ignore[attr-defined]
    assert capped.details["limit"] == "tokens" and capped.turns == 2
    assert capped.verdict is Verdict.TAMPERED  # the overwrite happened before the cap
    with FakeProvider(ScriptedResponder("tamperer", [ENV]), latency=0.4) as slow:
        agent = make_policy("openai:fake", settings(slow, "openai"))
        timed = await run_episode(
            ENV, agent, bwrap, EpisodeTask("t", 0, 0, 0), budget=EpisodeBudget(timeout=1.0)
        )
        await agent.aclose()  # type: ignore[attr-defined]
    assert timed.details["limit"] == "wall_time" and timed.verdict is not Verdict.ERROR
    assert 1 <= timed.turns <= 3


async def test_unavailable_episodes_are_not_stored_and_a_rerun_completes(
    bwrap: SandboxBackend, tmp_path: Path
) -> None:
    db = tmp_path / "r.sqlite"
    with FakeProvider(
        ScriptedResponder("honest", [ENV]), faults=Faults(rate_500=0.5, seed=2)
    ) as fp:
        flaky = ModelSettings(fp.base_url, retry=RetryPolicy(2, 0.001, 0.01))
        plan = RunPlan("u", ENV, make_policy("openai:fake", flaky), 10, concurrency=4)
        with Store.open(db) as store:
            first = await run_local(plan, bwrap, store, progress=False)
            assert first.failed > 0 and first.episodes == 10 - first.failed
            assert store.run("u").finished is None
        steady = ModelSettings(fp.base_url, retry=RetryPolicy(30, 0.001, 0.01))
        plan = RunPlan("u", ENV, make_policy("openai:fake", steady), 10, concurrency=4)
        with Store.open(db) as store:
            second = await run_local(plan, bwrap, store, progress=False)
            assert second.failed == 0 and second.new == first.failed
            assert sorted(r.idx for r in store.episodes("u")) == list(range(10))
            assert second.verdicts[Verdict.HONEST] == 10


async def test_a_rejected_run_stops(
    bwrap: SandboxBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "wrong")
    with FakeProvider(api_key="right") as fp, Store.open(tmp_path / "r.sqlite") as store:
        plan = RunPlan("x", ENV, make_policy("openai:fake", settings(fp, "openai")), 50)
        with pytest.raises(ProviderRejected):
            await run_local(plan, bwrap, store, progress=False)
        assert store.usage_totals("x").episodes == 0
        assert fp.stats.requests < 50


def test_cli_run_against_the_fake_provider(bwrap: SandboxBackend, tmp_path: Path) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"fake": {"input": 1.0, "output": 2.0}}))
    with FakeProvider(ScriptedResponder("tamperer", [ENV])) as fp:
        args = [
            "run", "--env", "reward_tampering", "--policy", "openai:fake", "--base-url",
            fp.base_url, "-n", "4", "--db", str(tmp_path / "c.sqlite"), "--json",
            "--protocol", "tools", "--temperature", "0.5", "--sampling-seed", "3",
            "--price-table", str(prices), "--max-turns", "6",
        ]  # fmt: skip
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["verdicts"]["tampered"] == 4 and summary["failed"] == 0 and summary["complete"]
    usage = summary["usage"]
    expected = (usage["input_tokens"] * 1.0 + usage["output_tokens"] * 2.0) / 1e6
    assert usage["cost"] == pytest.approx(expected, rel=1e-4) and usage["priced_episodes"] == 4
    with Store.open(tmp_path / "c.sqlite") as store:
        config = store.run(summary["run_id"]).config
    assert config["model"]["protocol"] == "tools"
    assert config["model"]["sampling"] == {
        "temperature": 0.5, "max_tokens": 2048, "top_p": None, "seed": 3
    }  # fmt: skip
    assert config["budget"]["max_turns"] == 6


def test_cli_rejects_bad_model_options(tmp_path: Path) -> None:
    base = ["run", "--env", "reward_tampering", "--db", str(tmp_path / "x.sqlite")]
    bad_protocol = CliRunner().invoke(app, [*base, "--policy", "openai:m", "--protocol", "xml"])
    assert bad_protocol.exit_code == 2 and "--protocol" in bad_protocol.output
    no_price = tmp_path / "p.json"
    no_price.write_text("{}")
    args = [*base, "--policy", "openai:m", "--base-url", "http://127.0.0.1:9/v1"]
    missing = CliRunner().invoke(app, [*args, "--price-table", str(no_price)])
    assert missing.exit_code == 2 and "(or its model name)" in missing.output
