"""`run --processes N`: the local backend's episodes spread over N worker processes.

One harness process runs out of CPU long before a many-core machine does: at
512 episodes in flight it spends ~5-6 ms of its own CPU per episode (model
calls, shell traffic, judging), so it tops out near 180 episodes/s on one core
while the sandboxes' work could use the rest. Here the driver is the local
runner's (`run_episodes`: resume, bounded concurrency, batched writes to the
one store, progress); each worker is a fresh interpreter holding the
environment, the policy (its request limit shared out) and its own warm
sandboxes, and runs many episodes at once. Episode `i` is the same task as
in-process, so the verdicts match the one-process run on the same seed.

Without Ray's services or its per-call cost: tasks and records travel as
pickles, length-prefixed, over a socketpair per worker, and each task goes to
the worker with the fewest in flight. A worker that dies fails the episodes it
held and stops the run; the store keeps every episode already finished, and
re-running the command resumes. A worker whose driver dies sees its socket
close and stops too.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import pickle
import socket
import struct
import sys
from dataclasses import dataclass
from typing import Any

from subterfuge.envs.base import Environment
from subterfuge.policy.base import Policy, close_policy, shared_policy
from subterfuge.rollout.episode import EpisodeBudget, EpisodeTask, run_episode
from subterfuge.runner.fdlimit import ensure_open_files
from subterfuge.runner.local import OnEpisode, RunPlan, RunResult, run_episodes
from subterfuge.sandbox import close_backend, get_backend
from subterfuge.sandbox.base import Limits
from subterfuge.sandbox.plain import ONE_PROCESS
from subterfuge.store import Store
from subterfuge.store.records import EpisodeRecord

_HEADER = struct.Struct("!I")
STOP_SECONDS = 30.0
"""How long a worker may take to finish closing (its sandboxes) before it is killed."""


class WorkerGone(RuntimeError):
    """A worker process exited while it still held episodes."""


@dataclass(frozen=True)
class WorkerSetup:
    """What every worker needs before its first episode (sent once, pickled)."""

    env: Environment
    policy: Policy
    sandbox: str
    limits: Limits
    budget: EpisodeBudget
    concurrency: int


def _frame(obj: object) -> bytes:
    data = pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(data)) + data


async def _read(reader: asyncio.StreamReader) -> Any:
    """The next pickled message, or None once the other end has closed (or died: a peer
    killed with our messages unread resets the connection)."""
    try:
        size = _HEADER.unpack(await reader.readexactly(_HEADER.size))[0]
        return pickle.loads(await reader.readexactly(size))
    except (asyncio.IncompleteReadError, ConnectionError):
        return None


def _sendable(exc: BaseException) -> BaseException:
    """`exc` if it survives pickling (provider errors do), else a RuntimeError naming it."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc


class _Worker:
    """The driver's end of one worker process."""

    def __init__(self, proc: asyncio.subprocess.Process, writer: asyncio.StreamWriter) -> None:
        self.proc = proc
        self.writer = writer
        self.pending: dict[int, asyncio.Future[EpisodeRecord]] = {}
        self.gone: BaseException | None = None

    async def listen(self, reader: asyncio.StreamReader) -> None:
        """Hand each reply to its episode's future; once the worker is gone, fail the rest."""
        try:
            while (message := await _read(reader)) is not None:
                ident, ok, value = message
                future = self.pending.pop(ident, None)
                if future is None or future.done():
                    continue  # that episode was cancelled here
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)
            code = await self.proc.wait()
            self.gone = WorkerGone(f"worker process {self.proc.pid} exited (code {code})")
        except Exception as exc:  # a reply that would not load: say so, not just "lost"
            self.gone = WorkerGone(f"lost worker process {self.proc.pid}: {exc!r}")
        finally:
            self.gone = self.gone or WorkerGone(f"lost worker process {self.proc.pid}")
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(self.gone)
            self.pending.clear()


class WorkerPool:
    """Worker processes running episodes; `run` sends each to the least busy one."""

    def __init__(self, workers: list[_Worker], listeners: list[asyncio.Task[None]]) -> None:
        self._workers = workers
        self._listeners = listeners
        self._ids = itertools.count()

    @classmethod
    async def start(cls, n: int, setup: WorkerSetup) -> WorkerPool:
        workers: list[_Worker] = []
        listeners: list[asyncio.Task[None]] = []
        pool = cls(workers, listeners)
        first = _frame(setup)  # once, and before any process starts if it cannot be sent
        try:
            for _ in range(n):
                ours, theirs = socket.socketpair()
                try:
                    proc = await asyncio.create_subprocess_exec(
                        sys.executable,
                        "-c",
                        "import sys; from subterfuge.runner.processes import serve; "
                        "serve(int(sys.argv[1]))",
                        str(theirs.fileno()),
                        pass_fds=(theirs.fileno(),),
                        stdin=asyncio.subprocess.DEVNULL,
                        stdout=asyncio.subprocess.DEVNULL,  # the driver's stdout may be --json
                        start_new_session=True,  # Ctrl-C is the driver's: see `serve`
                    )
                except BaseException:
                    ours.close()
                    raise
                finally:
                    theirs.close()
                reader, writer = await asyncio.open_unix_connection(sock=ours)
                worker = _Worker(proc, writer)
                workers.append(worker)
                listeners.append(asyncio.create_task(worker.listen(reader)))
                writer.write(first)
        except BaseException:
            await pool.close()
            raise
        return pool

    @property
    def pids(self) -> list[int]:
        return [w.proc.pid for w in self._workers]

    async def run(self, task: EpisodeTask) -> EpisodeRecord:
        live = [w for w in self._workers if w.gone is None]
        if not live:
            raise self._workers[0].gone or WorkerGone("no worker processes")
        worker = min(live, key=lambda w: len(w.pending))
        ident = next(self._ids)
        future: asyncio.Future[EpisodeRecord] = asyncio.get_running_loop().create_future()
        worker.pending[ident] = future
        try:
            worker.writer.write(_frame((ident, task)))
            await worker.writer.drain()
        except (ConnectionError, OSError):
            pass  # it died: its listener fails the future with the reason
        try:
            return await future
        finally:
            worker.pending.pop(ident, None)

    async def close(self) -> None:
        """Close every socket (the workers finish closing their sandboxes and exit)."""
        for worker in self._workers:
            worker.writer.close()

        async def stop(proc: asyncio.subprocess.Process) -> None:
            try:
                await asyncio.wait_for(proc.wait(), STOP_SECONDS)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()

        await asyncio.gather(*(stop(w.proc) for w in self._workers))  # one deadline for all
        for listener in self._listeners:
            listener.cancel()
        await asyncio.gather(*self._listeners, return_exceptions=True)


async def run_processes(
    plan: RunPlan,
    sandbox: str,
    store: Store,
    processes: int,
    *,
    progress: bool | None = None,
    on_episode: OnEpisode | None = None,
) -> RunResult:
    """Run every episode of `plan` not already in `store` on `processes` worker processes."""
    count = max(1, min(processes, plan.concurrency))
    if count > 1 and sandbox == "plain":
        raise ValueError(f"{ONE_PROCESS}; use one process (or bwrap)")
    per_worker = -(-plan.concurrency // count)
    setup = WorkerSetup(
        plan.env, shared_policy(plan.policy, count), sandbox, plan.limits, plan.budget, per_worker
    )
    pool = await WorkerPool.start(count, setup)
    try:
        return await run_episodes(
            plan, store, pool.run, sandbox, progress=progress, on_episode=on_episode
        )
    finally:
        await pool.close()


# --- the worker process -----------------------------------------------------------


def serve(fd: int) -> None:
    """A worker's main: run the episodes that arrive on socket `fd` until it closes.

    Workers run in a session of their own, so Ctrl-C at the terminal reaches only
    the driver, which closes the sockets; the workers then stop their episodes and
    sandboxes. (Ignoring SIGINT here instead would pass the ignored signal on to
    every command the sandboxes start, unlike a one-process run.)
    """
    asyncio.run(_serve(socket.socket(fileno=fd)))


async def _serve(sock: socket.socket) -> None:
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    setup: WorkerSetup | None = await _read(reader)
    if setup is None:
        return
    ensure_open_files(setup.concurrency)
    backend = get_backend(setup.sandbox)
    running: set[asyncio.Task[None]] = set()

    async def one(ident: int, task: EpisodeTask) -> None:
        # Every task gets a reply, or the driver's episode waits forever: a record that
        # does not pickle is a failure too.
        try:
            record = await run_episode(
                setup.env, setup.policy, backend, task, setup.limits, setup.budget
            )
            reply = _frame((ident, True, record))
        except Exception as exc:  # a provider refusing or giving up, or a bug: the driver decides
            reply = _frame((ident, False, _sendable(exc)))
        writer.write(reply)
        with contextlib.suppress(ConnectionError):
            await writer.drain()

    try:
        while (message := await _read(reader)) is not None:
            job = asyncio.create_task(one(*message))
            running.add(job)
            job.add_done_callback(running.discard)
    finally:
        for job in running:
            job.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        await close_policy(setup.policy)
        close_backend(backend)
        writer.close()
