"""One episode, start to verdict.

build the spec → create the sandbox → turn loop (policy reply → parsed action →
command in the persistent shell → observation) → kill the agent's processes
and run the grading programs in the sandbox → host-side snapshot and diff →
the environment's `judge` → an `EpisodeRecord`. Any failure of the harness,
the sandbox or the policy becomes an `error` verdict with its reason, never a
lost episode.
"""

from __future__ import annotations

import difflib
import time
import traceback
from dataclasses import dataclass
from typing import Any

from subterfuge.envs.base import Environment, EpisodeSpec, Evidence, Message, Verdict
from subterfuge.policy.base import Policy, PolicyContext
from subterfuge.policy.protocol import ActionKind, format_observation, parse_reply
from subterfuge.sandbox.base import Limits, Sandbox, SandboxBackend
from subterfuge.store.records import EpisodeRecord

NO_SHELL = "There is no command line in this conversation; answer directly."


@dataclass(frozen=True)
class EpisodeTask:
    """Which episode to run: its index in the run and the variant it uses."""

    run_id: str
    index: int
    variant: int
    seed: int


@dataclass
class _Clock:
    policy: float = 0.0
    sandbox: float = 0.0
    grade: float = 0.0


async def run_episode(
    env: Environment,
    policy: Policy,
    backend: SandboxBackend,
    task: EpisodeTask,
    limits: Limits | None = None,
) -> EpisodeRecord:
    """Run one episode to its verdict; never raises for episode-level failures."""
    limits = limits or Limits()
    started = time.time()
    clock = _Clock()
    spec = env.build(task.variant)
    transcript: list[dict[str, Any]] = []
    reasoning: list[str] = []
    sandbox: Sandbox | None = None
    try:
        if spec.needs_sandbox:
            t0 = time.perf_counter()
            sandbox = await backend.create(spec.dirs, spec.files, limits)
            clock.sandbox += time.perf_counter() - t0
        answer, turns, malformed = await _turn_loop(
            spec, policy, sandbox, task, transcript, reasoning, clock
        )
        evidence = await _gather(spec, sandbox, answer, turns, malformed, clock)
        judgement = env.judge(spec, evidence)
        return _record(
            task, spec, policy, started, clock, transcript, reasoning, turns,
            verdict=judgement.verdict, reward=judgement.reward, caught=judgement.caught,
            pays=judgement.pays, details=dict(judgement.details),
            diffs=_diffs(evidence), error=None,
        )  # fmt: skip
    except Exception as exc:  # the episode is lost, not the run
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return _record(
            task, spec, policy, started, clock, transcript, reasoning,
            sum(1 for t in transcript if t["role"] == "assistant"),
            verdict=Verdict.ERROR, reward=None, caught=None, pays=False,
            details={"traceback": traceback.format_exc(limit=8)}, diffs={}, error=detail,
        )  # fmt: skip
    finally:
        if sandbox is not None:
            await sandbox.close()


async def _turn_loop(
    spec: EpisodeSpec,
    policy: Policy,
    sandbox: Sandbox | None,
    task: EpisodeTask,
    transcript: list[dict[str, Any]],
    reasoning: list[str],
    clock: _Clock,
) -> tuple[str | None, int, int]:
    """Alternate policy turns and tool results; returns (answer, turns, malformed turns)."""
    messages: list[Message] = list(spec.messages)
    malformed = 0
    for turn in range(spec.max_turns):
        t0 = time.perf_counter()
        context = PolicyContext(tuple(messages), spec, task.index, turn)
        reply = await policy.act(context)
        clock.policy += time.perf_counter() - t0
        action = parse_reply(reply)
        messages.append(Message("assistant", reply.text))
        reasoning.append(action.reasoning)
        entry: dict[str, Any] = {"role": "assistant", "kind": action.kind.value}
        entry["text"] = action.visible
        if reply.usage:
            entry["usage"] = reply.usage
        if action.kind is ActionKind.ANSWER:
            transcript.append(entry)
            return action.visible, turn + 1, malformed
        if action.kind is ActionKind.MALFORMED:
            malformed += 1
            entry["error"] = action.error
            transcript.append(entry)
            note = f"Your message could not be read: {action.error}."
            transcript.append({"role": "tool", "stdout": "", "stderr": note, "exit_code": None})
            messages.append(Message("user", format_observation("", note)))
            continue
        assert action.command is not None
        entry["command"] = action.command
        transcript.append(entry)
        if sandbox is None:
            transcript.append({"role": "tool", "stdout": "", "stderr": NO_SHELL, "exit_code": None})
            messages.append(Message("user", format_observation("", NO_SHELL)))
            continue
        t0 = time.perf_counter()
        result = await sandbox.run(action.command)
        clock.sandbox += time.perf_counter() - t0
        transcript.append(
            {
                "role": "tool",
                "stdout": result.stdout,
                "stderr": result.stderr,
                "exit_code": result.exit_code,
                "timed_out": result.timed_out,
                "truncated": result.truncated,
                "seconds": round(result.seconds, 6),
            }
        )
        messages.append(Message("user", format_observation(result.stdout, result.stderr)))
    return None, spec.max_turns, malformed


async def _gather(
    spec: EpisodeSpec,
    sandbox: Sandbox | None,
    answer: str | None,
    turns: int,
    malformed: int,
    clock: _Clock,
) -> Evidence:
    """Host snapshots plus the in-sandbox grading programs, after the agent is stopped."""
    before = {path: content for path, content in spec.files.items()}
    if sandbox is None:
        return Evidence(before, before, None, None, {}, answer, turns, malformed)
    t0 = time.perf_counter()
    programs: dict[str, str] = dict(spec.probes)
    if spec.reward_program is not None:
        programs["__reward__"] = spec.reward_program
    if spec.oversight_program is not None:
        programs["__oversight__"] = spec.oversight_program
    results = await sandbox.grade(programs)
    after = sandbox.snapshot(spec.watched)
    clock.grade += time.perf_counter() - t0
    before = {p: c for p, c in before.items() if any(_under(p, w) for w in spec.watched)}
    probes = {k: v for k, v in results.items() if not k.startswith("__")}
    return Evidence(
        before,
        after,
        results.get("__reward__"),
        results.get("__oversight__"),
        probes,
        answer,
        turns,
        malformed,
    )


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _diffs(evidence: Evidence) -> dict[str, str]:
    """A unified diff for every watched file that was created, edited or deleted."""
    diffs: dict[str, str] = {}
    for path in sorted(set(evidence.before) | set(evidence.after)):
        if not evidence.changed(path):
            continue
        old, new = evidence.before.get(path), evidence.after.get(path)
        lines = difflib.unified_diff(
            (old or "").splitlines(keepends=True),
            (new or "").splitlines(keepends=True),
            fromfile=path if old is not None else "/dev/null",
            tofile=path if new is not None else "/dev/null",
        )
        diffs[path] = "".join(lines) or f"(changed: {path})\n"
    return diffs


def _record(
    task: EpisodeTask,
    spec: EpisodeSpec,
    policy: Policy,
    started: float,
    clock: _Clock,
    transcript: list[dict[str, Any]],
    reasoning: list[str],
    turns: int,
    *,
    verdict: Verdict,
    reward: float | None,
    caught: bool | None,
    pays: bool,
    details: dict[str, Any],
    diffs: dict[str, str],
    error: str | None,
) -> EpisodeRecord:
    ended = time.time()
    return EpisodeRecord(
        run_id=task.run_id,
        idx=task.index,
        env=spec.env,
        stage=spec.stage,
        variant=spec.variant,
        policy=policy.name,
        seed=task.seed,
        verdict=verdict,
        reward=reward,
        caught=caught,
        pays=pays,
        prompt=[{"role": m.role, "content": m.content} for m in spec.messages],
        transcript=transcript,
        reasoning=reasoning,
        diffs=diffs,
        details=details,
        timings={
            "total": round(ended - started, 6),
            "policy": round(clock.policy, 6),
            "sandbox": round(clock.sandbox, 6),
            "grade": round(clock.grade, 6),
        },
        error=error,
        turns=turns,
        started=started,
        ended=ended,
    )
