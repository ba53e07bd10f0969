"""`--backend ray`: the same episodes, verdicts and store as the local backend, on local Ray."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import SameAsOneProcess
from subterfuge.envs.registry import get_environment
from subterfuge.fakeprovider import FakeProvider, Faults, ScriptedResponder
from subterfuge.policy.registry import make_policy
from subterfuge.policy.retry import RetryPolicy
from subterfuge.policy.scripted import scripted_policy
from subterfuge.policy.settings import ModelSettings
from subterfuge.runner.local import RunPlan
from subterfuge.sandbox import SandboxBackend
from subterfuge.store import Store

ray = pytest.importorskip("ray", reason="the ray extra is not installed: pip install '.[ray]'")

from subterfuge.runner.ray import run_ray  # noqa: E402


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


async def test_ray_matches_local_on_the_same_seed(
    local_ray: None, tmp_path: Path, same_as_one_process: SameAsOneProcess
) -> None:
    with Store.open(tmp_path / "runs.sqlite") as store:
        await same_as_one_process(
            store, lambda plan: _in_thread(lambda: run_ray(plan, "bwrap", store, progress=False))
        )


async def test_ray_runs_model_episodes_through_a_flaky_provider(
    local_ray: None, bwrap: SandboxBackend, tmp_path: Path
) -> None:
    faults = Faults(rate_429=0.1, rate_500=0.1, retry_after=0.01, seed=1)
    with FakeProvider(ScriptedResponder("tamperer"), faults=faults) as fp:
        settings = ModelSettings(fp.base_url, retry=RetryPolicy(attempts=20, base=0.01))
        plan = RunPlan(
            "model", get_environment("reward_tampering"), make_policy("openai:fake", settings),
            8, concurrency=4,
        )  # fmt: skip
        with Store.open(tmp_path / "runs.sqlite") as store:
            result = await _in_thread(lambda: run_ray(plan, "bwrap", store, progress=False))
            assert result.verdicts["tampered"] == 8 and result.failed == 0
            assert result.usage.input_tokens > 0
            assert sorted(r.idx for r in store.episodes("model")) == list(range(8))
        assert fp.stats.faults["429"] + fp.stats.faults["500"] > 0, fp.stats


async def _in_thread(fn):  # type: ignore[no-untyped-def]
    """run_ray owns its event loop (asyncio.run); keep it off the test's loop."""
    import asyncio

    return await asyncio.to_thread(fn)


def test_ray_workers_option_reaches_the_runner(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from subterfuge.cli import modelopts
    from subterfuge.runner import ray as ray_runner

    seen: dict[str, object] = {}

    def fake_run_ray(plan: RunPlan, backend: str, store: Store, **kw: object) -> str:
        seen.update(kw)
        return "ran"

    monkeypatch.setattr(ray_runner, "run_ray", fake_run_ray)
    plan = RunPlan("w", get_environment("reward_tampering"), scripted_policy("honest"), 1)
    with Store.open(tmp_path / "runs.sqlite") as store:
        result = modelopts.execute(
            plan, _Named(), store, kind="ray", ray_address="x:1", ray_workers=3
        )
    assert result == "ran" and seen == {"address": "x:1", "workers": 3}


class _Named:
    """A backend as `execute` sees it on the Ray path: only its name travels."""

    name = "bwrap"


def test_plain_sandboxes_are_refused_on_several_actors(tmp_path: Path) -> None:
    """Each actor process has its own plain lock: two on one node would share real paths."""
    plan = RunPlan("plain", get_environment("reward_tampering"), scripted_policy("honest"), 2)
    running = ray.is_initialized()  # another test's module-scoped Ray may be up
    with Store.open(tmp_path / "runs.sqlite") as store, pytest.raises(ValueError, match="plain"):
        run_ray(plan, "plain", store, workers=2)
    assert ray.is_initialized() == running  # refused before starting (or stopping) Ray
