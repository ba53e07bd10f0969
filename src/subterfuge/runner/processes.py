"""`run --processes N`: the local backend's episodes spread over N worker processes.

One harness process runs out of CPU long before a many-core machine does: at
512 episodes in flight it spends ~5-6 ms of its own CPU per episode (model
calls, shell traffic, judging), so it tops out near 180 episodes/s on one core
while the sandboxes' work could use the rest. Here the driver is the local
runner's (`run_episodes`: resume, bounded concurrency, batched writes to the
one store, progress); each worker is a process holding the
environment, the policy (its request limit shared out) and its own warm
sandboxes, and runs many episodes at once. Episode `i` is the same task as
in-process, so the verdicts match the one-process run on the same seed.

Without Ray's services or its per-call cost: tasks and records travel as
pickles, length-prefixed, over a socketpair per worker, and each task goes to
the worker with the fewest in flight. A worker that dies fails the episodes it
held and stops the run; the store keeps every episode already finished, and
re-running the command resumes. A worker whose driver dies sees its socket
close and stops too.

Workers are forks of one template process (`template`) that has imported what a
worker runs: the ~26 MiB that a fresh interpreter allocates for those imports is
shared by all of them, not held by each, and a worker starts in milliseconds.
The template exits once the workers are forked, and the driver, a child
subreaper until then, adopts them: they are its children, as if it had started
them, and stay in the template's session, apart from the terminal's Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
import traceback
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
from subterfuge.sandbox.procs import set_subreaper, wait_gone
from subterfuge.store import Store
from subterfuge.store.records import EpisodeRecord

_HEADER = struct.Struct("!I")
STOP_SECONDS = 30.0
"""How long a worker may take to finish closing (its sandboxes) before it is killed."""
TEMPLATE = (
    "import sys; from subterfuge.runner.processes import template; template(int(sys.argv[1]))"
)
"""The template's main (its command line is every worker's: `ps` shows what they are)."""
START_SECONDS = 120.0
"""How long the template may take to import and fork (a second or two, usually)."""


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
    """The driver's end of one worker process (our child, adopted from the template)."""

    def __init__(self, pid: int, writer: asyncio.StreamWriter) -> None:
        self.pid = pid
        self.pidfd = os.pidfd_open(pid)  # (our child, not yet reaped: the pid is its own)
        self.writer = writer
        self.pending: dict[int, asyncio.Future[EpisodeRecord]] = {}
        self.gone: BaseException | None = None
        self._exit = asyncio.create_task(self._reap())

    async def _reap(self) -> int:
        try:
            await wait_gone(self.pidfd, None)
        except BaseException:  # cancelled (the run's loop is ending): end it here, now
            self.kill()
            raise
        finally:
            try:
                status = os.waitid(os.P_PIDFD, self.pidfd, os.WEXITED)
            except ChildProcessError:  # (reaped already, by start's clean-up)
                status = None
            finally:
                os.close(self.pidfd)
        if status is None:
            return -signal.SIGKILL
        return status.si_status if status.si_code == os.CLD_EXITED else -status.si_status

    async def wait(self) -> int:
        """Its exit code, once it has exited (negative: the signal that ended it)."""
        return await asyncio.shield(self._exit)

    def kill(self) -> None:
        if not self._exit.done():
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)

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
            code = await self.wait()
            self.gone = WorkerGone(f"worker process {self.pid} exited (code {code})")
        except Exception as exc:  # a reply that would not load: say so, not just "lost"
            self.gone = WorkerGone(f"lost worker process {self.pid}: {exc!r}")
        finally:
            self.gone = self.gone or WorkerGone(f"lost worker process {self.pid}")
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(self.gone)
            self.pending.clear()


def _fork_workers(n: int) -> list[tuple[int, socket.socket]]:
    """(pid, the driver's socket) of `n` workers that a template process forked, and that
    are this process's children once it returns (adopted: see the module docstring).

    Blocking (a second or so, the template's imports, once per run), so that no
    cancellation lands between a fork and the driver learning its pid. Should anything
    fail, every worker forked is killed and reaped: they are all in the template's
    process group, whose id outlives the template while they do.
    """
    control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sockets: list[socket.socket] = []
    template: subprocess.Popen[bytes] | None = None
    forked: list[tuple[int | None, socket.socket]] = []
    was = None
    try:
        was = set_subreaper(True)
        if was is None:
            raise RuntimeError("worker processes need Linux's child subreapers (prctl)")
        template = subprocess.Popen(
            [sys.executable, "-c", TEMPLATE, str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # the driver's stdout may be --json
            start_new_session=True,  # Ctrl-C is the driver's (see `serve`), and one group
        )
        theirs.close()
        control.settimeout(START_SECONDS)
        for _ in range(n):
            ours, worker_end = socket.socketpair()
            sockets.append(ours)
            with worker_end:
                try:
                    socket.send_fds(control, [b"fork"], [worker_end.fileno()])
                except (BrokenPipeError, ConnectionError):
                    break  # the template is gone: its exit code says why
        control.close()  # the template forks what it was sent, then exits
        code = _wait(template)
        # Each worker's socket starts with its pid, which the template wrote there.
        forked = [(_pid_of(ours), ours) for ours in sockets]
        if code != 0 or any(pid is None for pid, _ in forked):
            raise RuntimeError(f"could not start the worker processes (template: exit code {code})")
    except BaseException:
        if template is not None:
            _end_group(template)
        for ours in sockets:
            ours.close()
        raise
    finally:
        theirs.close()
        control.close()
        if was is False:
            set_subreaper(False)  # (the workers are ours by now)
    return [(pid, ours) for pid, ours in forked if pid is not None]


def _wait(template: subprocess.Popen[bytes]) -> int:
    try:
        return template.wait(START_SECONDS)
    except subprocess.TimeoutExpired:
        template.kill()
        return template.wait()


def _end_group(template: subprocess.Popen[bytes]) -> None:
    """Kill and reap the template and every worker it forked (our children by then, known
    or not: one that the template had no time to name is in its group too)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(template.pid, signal.SIGKILL)
    _wait(template)
    while True:
        try:
            os.waitpid(-template.pid, 0)
        except ChildProcessError:
            return


def _pid_of(sock: socket.socket) -> int | None:
    """The pid at the start of a worker's socket; None if the template never forked it."""
    try:  # (the template has exited: what it wrote is there, in one piece)
        got = sock.recv(_HEADER.size, socket.MSG_DONTWAIT)
    except BlockingIOError:  # forked, but the template died before it said the pid
        return None
    if len(got) < _HEADER.size:
        return None
    pid: int = _HEADER.unpack(got)[0]
    return pid


def _end(pid: int) -> None:
    """Kill and reap a worker that never ran (our child: not left a zombie)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


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
        forked = _fork_workers(n)
        try:
            for pid, ours in forked:
                reader, writer = await asyncio.open_unix_connection(sock=ours)
                worker = _Worker(pid, writer)
                workers.append(worker)
                listeners.append(asyncio.create_task(worker.listen(reader)))
                writer.write(first)
        except BaseException:
            for pid, ours in forked[len(workers) :]:
                ours.close()
                _end(pid)
            await pool.close()
            raise
        return pool

    @property
    def pids(self) -> list[int]:
        return [w.pid for w in self._workers]

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

        async def stop(worker: _Worker) -> None:
            try:
                await asyncio.wait_for(worker.wait(), STOP_SECONDS)
            except TimeoutError:
                worker.kill()
                await worker.wait()

        await asyncio.gather(*(stop(w) for w in self._workers))  # one deadline for all
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


def template(fd: int) -> None:
    """The template's main: import what a worker runs, then fork a worker for each socket
    that comes on `fd` (and write its pid at the start of that socket), until `fd` closes."""
    # What a worker would import as it goes (the providers' HTTP stack, the environments).
    import subterfuge.envs.registry
    import subterfuge.policy.anthropic
    import subterfuge.policy.openai  # noqa: F401

    gc.collect()
    gc.freeze()  # the collector of a worker never writes to these pages: they stay shared
    control = socket.socket(fileno=fd)
    while True:
        _, fds, _, _ = socket.recv_fds(control, 64, 1)
        if not fds:
            return
        sys.stdout.flush()
        sys.stderr.flush()  # (nothing buffered that each fork would write again)
        pid = os.fork()
        if pid == 0:
            control.close()
            raise SystemExit(_worker_main(fds[0]))  # (exits as any interpreter does)
        try:  # its pid first, before anything the worker sends
            os.write(fds[0], _HEADER.pack(pid))
        finally:
            os.close(fds[0])


def _worker_main(fd: int) -> int | str | None:
    """A forked worker's life: its exit status, for SystemExit. (It stays in the template's
    session and process group: away from the terminal's Ctrl-C, see `serve`.)"""
    try:
        serve(fd)
    except SystemExit as stop:
        return stop.code
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


def serve(fd: int) -> None:
    """A worker's main: run the episodes that arrive on socket `fd` until it closes.

    Workers run in a session apart from the driver's, so Ctrl-C at the terminal reaches only
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
