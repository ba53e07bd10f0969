"""`subterfuge fake-provider`: the loopback fake model provider as a foreground server."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from typing import Annotated

import typer

from subterfuge.cli.common import err, fail
from subterfuge.envs.registry import all_environments
from subterfuge.fakeprovider import FakeProvider, Faults, ScriptedResponder
from subterfuge.policy.scripted import SCRIPTED_POLICIES


def fake_provider(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free port).")] = 8000,
    policy: Annotated[
        str, typer.Option(help=f"Scripted policy to replay: {', '.join(SCRIPTED_POLICIES)}.")
    ] = "honest",
    env: Annotated[
        list[str] | None,
        typer.Option("--env", help="Only index these environments' prompts (default: all)."),
    ] = None,
    latency: Annotated[float, typer.Option(min=0, help="Seconds added to every call.")] = 0.0,
    jitter: Annotated[float, typer.Option(min=0, help="Extra random seconds, 0..jitter.")] = 0.0,
    fail_rate: Annotated[
        float, typer.Option(min=0, max=1, help="Calls failing, split evenly: 429 / 500 / hang.")
    ] = 0.0,
    truncate_rate: Annotated[
        float, typer.Option(min=0, max=1, help="Calls cut off mid-body (or mid-stream).")
    ] = 0.0,
    malformed_rate: Annotated[
        float, typer.Option(min=0, max=1, help="Replies with broken tool JSON or unclosed tags.")
    ] = 0.0,
    retry_after: Annotated[float, typer.Option(help="Seconds sent in Retry-After on 429.")] = 0.2,
    reasoning_field: Annotated[
        bool, typer.Option(help="Return <cot> reasoning in the provider's reasoning field.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the fault draws.")] = 0,
) -> None:
    """Serve the OpenAI and Anthropic protocols on 127.0.0.1, replaying a scripted policy.

    For manual runs and benchmarks: point `subterfuge run --policy openai:fake
    --base-url http://127.0.0.1:PORT/v1` (or `anthropic:fake`) at it. Stop with Ctrl-C.
    """
    if policy not in SCRIPTED_POLICIES:
        fail(f"unknown scripted policy {policy!r}; known: {', '.join(SCRIPTED_POLICIES)}")
    known = all_environments()
    chosen = None
    if env:
        missing = [e for e in env if e not in known]
        if missing:
            fail(f"unknown environment(s) {', '.join(missing)}; known: {', '.join(known)}")
        chosen = [known[e] for e in env]
    try:
        faults = replace(
            Faults.mixed(fail_rate, seed=seed, retry_after=retry_after),
            rate_truncate=truncate_rate,
            rate_malformed=malformed_rate,
        )
    except ValueError as exc:
        fail(str(exc))
    provider = FakeProvider(
        ScriptedResponder(policy, chosen),
        latency=latency,
        jitter=jitter,
        faults=faults,
        reasoning_field=reasoning_field,
        port=port,
    )

    async def serve() -> None:
        async with provider:
            err.print(
                f"fake provider on {provider.url} (OpenAI: {provider.base_url})", highlight=False
            )
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
