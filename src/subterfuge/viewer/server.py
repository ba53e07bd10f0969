"""Serving the viewer on 127.0.0.1: in the foreground (the CLI) or on a background thread
(tests and benchmarks drive it with a real browser or real HTTP requests)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Self

from aiohttp import web

from subterfuge.viewer.app import HOST, create_app


async def _start(db: Path, port: int) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(create_app(db), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, HOST, port)
    await site.start()
    bound = runner.addresses[0][1]
    return runner, int(bound)


def serve(db: str | Path, port: int = 8765, *, ready: threading.Event | None = None) -> None:
    """Serve until interrupted (Ctrl-C)."""

    async def main() -> None:
        runner, _ = await _start(Path(db), port)
        if ready is not None:
            ready.set()
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    asyncio.run(main())


class ViewerThread:
    """The viewer on a daemon thread with its own event loop; `url` once started.

    Port 0 picks a free port, so parallel test workers never collide.
    """

    def __init__(self, db: str | Path, port: int = 0) -> None:
        self.db = Path(db)
        self.port = port
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    def start(self) -> Self:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(_start(self.db, self.port), self._loop)
        self._runner, self.port = future.result(timeout=30)
        self.url = f"http://{HOST}:{self.port}"
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(30)
            self._runner = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
