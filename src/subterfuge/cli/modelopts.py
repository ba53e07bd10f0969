"""The `run` command's options for model policies, scale and backends, and their plumbing.

Kept apart from `cli/main.py` so the command there stays a readable list of
options; everything here turns options into `ModelSettings`, a price, and a
finished run on the chosen backend.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer

from subterfuge.cli.common import err, fail
from subterfuge.policy.base import Policy
from subterfuge.policy.errors import ProviderRejected, ProviderUnavailable
from subterfuge.policy.pricing import Price, PriceTableError, load_prices, price_for
from subterfuge.policy.registry import make_policy
from subterfuge.policy.retry import RetryPolicy
from subterfuge.policy.settings import ModelSettings, Sampling, ToolProtocol
from subterfuge.runner.local import RunPlan, RunResult, run_local
from subterfuge.runner.processes import WorkerGone, run_processes
from subterfuge.sandbox.base import SandboxBackend
from subterfuge.sandbox.plain import ONE_PROCESS
from subterfuge.store import Store

_MODEL = "Model policies"
_SCALE = "Limits and scale"

PolicyOption = Annotated[
    str,
    typer.Option(
        "--policy",
        help="A scripted oracle (honest, gamer, tamperer, hider, garbage), or a model: "
        "openai:MODEL (any OpenAI-compatible server), anthropic:MODEL, hf:DIRECTORY.",
    ),
]
BaseUrlOption = Annotated[
    str | None,
    typer.Option(
        help="Server URL, e.g. http://localhost:8000/v1 for vLLM (default: the provider's API). "
        "Keys come from OPENAI_API_KEY / ANTHROPIC_API_KEY; loopback servers need none.",
        rich_help_panel=_MODEL,
    ),
]
ProtocolOption = Annotated[
    str,
    typer.Option(
        help="'text': <cot>/<bash> in the message (the reference's); 'tools': a native bash tool.",
        rich_help_panel=_MODEL,
    ),
]
TemperatureOption = Annotated[
    float | None, typer.Option(help="Sampling temperature.", rich_help_panel=_MODEL)
]
MaxTokensOption = Annotated[
    int, typer.Option(min=1, help="Max tokens per model reply.", rich_help_panel=_MODEL)
]
TopPOption = Annotated[float | None, typer.Option(help="Nucleus sampling.", rich_help_panel=_MODEL)]
SamplingSeedOption = Annotated[
    int | None,
    typer.Option(
        help="Base sampling seed where supported; each request gets one derived from it, "
        "the episode and the turn.",
        rich_help_panel=_MODEL,
    ),
]
StreamOption = Annotated[
    bool, typer.Option(help="Stream replies (server-sent events).", rich_help_panel=_MODEL)
]
ThinkingOption = Annotated[
    int | None,
    typer.Option(help="Anthropic: extended thinking budget in tokens.", rich_help_panel=_MODEL),
]
ApiKeyEnvOption = Annotated[
    str | None,
    typer.Option(help="Read the API key from this variable instead.", rich_help_panel=_MODEL),
]
RequestTimeoutOption = Annotated[
    float,
    typer.Option(min=0.1, help="Seconds per model request before it is retried.",
                 rich_help_panel=_MODEL),
]  # fmt: skip
MaxRequestsOption = Annotated[
    int,
    typer.Option(min=1, help="Concurrent requests per model (this process).",
                 rich_help_panel=_MODEL),
]  # fmt: skip
RetriesOption = Annotated[
    int,
    typer.Option(min=1, help="Attempts per request (429, 5xx, timeouts, dropped connections).",
                 rich_help_panel=_MODEL),
]  # fmt: skip
PriceTableOption = Annotated[
    Path | None,
    typer.Option(help="JSON price table: {MODEL: {input, output}} per million tokens.",
                 rich_help_panel=_MODEL),
]  # fmt: skip
MaxTurnsOption = Annotated[
    int | None,
    typer.Option(min=1, help="Turns per episode (default: the environment's).",
                 rich_help_panel=_SCALE),
]  # fmt: skip
MaxEpisodeTokensOption = Annotated[
    int | None,
    typer.Option(min=1, help="Input + output tokens per episode.", rich_help_panel=_SCALE),
]
EpisodeTimeoutOption = Annotated[
    float | None,
    typer.Option(min=0.1, help="Seconds per episode's turns (grading comes after).",
                 rich_help_panel=_SCALE),
]  # fmt: skip
BackendOption = Annotated[
    str,
    typer.Option("--backend", help="'local' (this process) or 'ray' (a Ray cluster; the "
                 "'ray' extra).", rich_help_panel=_SCALE),
]  # fmt: skip
ProcessesOption = Annotated[
    int,
    typer.Option(min=1, help="Local backend: worker processes running the episodes (default "
                 "1, all in this process). One process's own work tops out near ~180 episodes/s "
                 "(one core); on a many-core machine at high concurrency, more processes use "
                 "the other cores.", rich_help_panel=_SCALE),
]  # fmt: skip
RayAddressOption = Annotated[
    str | None,
    typer.Option(help="Ray cluster address (default: start a local Ray).", rich_help_panel=_SCALE),
]
RayWorkersOption = Annotated[
    int | None,
    typer.Option(min=1, help="Ray actors running episodes (default: one per CPU of the "
                 "cluster); fewer use less memory (512 episodes in flight: ~1.5 GiB with "
                 "16 actors, ~1.3 GiB with 8).", rich_help_panel=_SCALE),
]  # fmt: skip


def model_policy(
    name: str,
    *,
    base_url: str | None,
    protocol: str,
    temperature: float | None,
    max_tokens: int,
    top_p: float | None,
    sampling_seed: int | None,
    stream: bool,
    thinking_budget: int | None,
    api_key_env: str | None,
    request_timeout: float,
    max_requests: int,
    retries: int,
) -> Policy:
    """The policy `--policy` names, with the model options applied; bad input exits 2."""
    if protocol not in ("text", "tools"):
        fail(f"--protocol must be 'text' or 'tools', not {protocol!r}")
    if thinking_budget is not None and thinking_budget >= max_tokens:
        fail(f"--thinking-budget ({thinking_budget}) must be below --max-tokens ({max_tokens})")
    settings = ModelSettings(
        base_url=base_url,
        protocol=ToolProtocol(protocol),
        sampling=Sampling(temperature, max_tokens, top_p, sampling_seed),
        stream=stream,
        timeout=request_timeout,
        max_requests=max_requests,
        retry=RetryPolicy(attempts=retries),
        thinking_budget=thinking_budget,
        api_key_env=api_key_env,
    )
    return policy_named(name, settings)


def policy_named(name: str, settings: ModelSettings, option: str | None = None) -> Policy:
    """`make_policy` for a command line: an unknown name, a missing key or a missing
    extra exits 2 with the reason (prefixed by `option`, e.g. "--judge", when given)."""
    try:
        return make_policy(name, settings)
    except (ValueError, ImportError) as exc:
        fail(f"{option}: {exc}" if option else str(exc))


def price(path: Path | None, policy: str) -> Price | None:
    if path is None:
        return None
    try:
        found = price_for(load_prices(path), policy)
    except PriceTableError as exc:
        fail(str(exc))
    if found is None:
        fail(f"{path}: no price for {policy!r} (or its model name)")
    return found


def check_spread(
    processes: int, kind: str, policy: str, sandbox: str, ray_workers: int | None
) -> None:
    """Spreading episodes over processes where it cannot work exits 2 with what to do."""
    if processes > 1 and kind == "ray":
        fail("--processes is for the local backend; with --backend ray use --ray-workers")
    if processes > 1 and sandbox == "plain":
        fail(f"--processes with --sandbox plain: {ONE_PROCESS}; use one process (or bwrap)")
    if kind == "ray" and sandbox == "plain" and ray_workers != 1:
        fail(f"--backend ray with --sandbox plain: {ONE_PROCESS}; use --ray-workers 1 (or bwrap)")
    if processes > 1 and policy.startswith("hf:"):
        fail("hf: models run in one process (each would load the model); serve the model "
             "(vLLM, SGLang, ...) and use openai:MODEL --base-url to spread episodes")  # fmt: skip


def execute(
    plan: RunPlan,
    backend: SandboxBackend,
    store: Store,
    *,
    kind: str,
    ray_address: str | None,
    ray_workers: int | None = None,
    processes: int = 1,
) -> RunResult:
    """Run `plan` on the chosen backend; a provider refusing the run exits 2."""
    if kind not in ("local", "ray"):
        fail(f"--backend must be 'local' or 'ray', not {kind!r}")
    try:
        if kind == "ray":
            try:
                from subterfuge.runner.ray import run_ray
            except ImportError as exc:
                fail(f"--backend ray needs the 'ray' extra: pip install 'subterfuge[ray]' ({exc})")
            return run_ray(plan, backend.name, store, address=ray_address, workers=ray_workers)
        if processes > 1:
            return asyncio.run(run_processes(plan, backend.name, store, processes))
        return asyncio.run(run_local(plan, backend, store))
    except ProviderRejected as exc:
        fail(f"the provider refused the run: {exc}")
    except ProviderUnavailable as exc:
        err.print(f"[red]stopped:[/red] {exc}")
        raise typer.Exit(1) from None
    except WorkerGone as exc:
        err.print(f"[red]stopped:[/red] {exc} (its error output, if any, is above); "
                  "re-run the same command to resume")  # fmt: skip
        raise typer.Exit(1) from None


def usage_json(result: RunResult) -> dict[str, Any]:
    u = result.usage
    return {
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "tokens_per_second": round(result.tokens_per_second, 1),
        "cost": None if u.cost is None else round(u.cost, 6),
        "priced_episodes": u.priced,
    }
