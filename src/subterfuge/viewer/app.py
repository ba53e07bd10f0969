"""The transcript viewer: a small local web app over a run database.

Filter episodes by run, stage, verdict (or group) and monitor label; open one
to read the prompt, each turn with its hidden reasoning set apart, every
command and output, the coloured diffs and the monitors' labels; move with
single keys (`n` / `p`: next / previous tampering, `j` / `k`: next / previous
episode in the list, `u`: back to the list). It serves 127.0.0.1 only and
refuses requests addressed to any other host name (a guard against DNS
rebinding: a web page elsewhere cannot read your transcripts through it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from urllib.parse import quote, urlencode

from aiohttp import web

from subterfuge.report.episode import episode_view
from subterfuge.report.html import VERDICTS, template_environment
from subterfuge.store import Store
from subterfuge.store.labels import Labels
from subterfuge.viewer.queries import (
    GROUP_FILTERS,
    PAGE_SIZE,
    Browser,
    Cursor,
    EpisodeFilter,
)

HOST = "127.0.0.1"
_ALLOWED_HOSTS = ("127.0.0.1", "localhost", "[::1]")
STORE_KEY = web.AppKey("store", Store)
BROWSER_KEY = web.AppKey("browser", Browser)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_templates = template_environment("subterfuge.viewer")


def _filter(request: web.Request) -> EpisodeFilter:
    q = request.query
    f = EpisodeFilter(
        run=q.get("run") or None,
        stage=q.get("stage") or None,
        verdict=q.get("verdict") or None,
        label=q.get("label") or None,
    )
    try:
        f.verdicts()
        f.label_parts()
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    return f


def _cursor(token: str | None) -> Cursor | None:
    if not token:
        return None
    try:
        return Cursor.parse(token)
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None


def episode_url(cursor: Cursor, f: EpisodeFilter, **extra: str) -> str:
    query = urlencode({**f.query(), **extra})
    return f"/episode/{quote(cursor.run_id, safe='')}/{cursor.idx}" + (f"?{query}" if query else "")


def _page(template: str, **context: object) -> web.Response:
    html = _templates.get_template(template).render(**context)
    return web.Response(text=html, content_type="text/html")


@web.middleware
async def _local_only(request: web.Request, handler: Handler) -> web.StreamResponse:
    host = request.host.rsplit(":", 1)[0] if not request.host.startswith("[") else "[::1]"
    if host not in _ALLOWED_HOSTS:
        raise web.HTTPForbidden(text=f"the viewer answers only {HOST}; got Host: {request.host}")
    return await handler(request)


async def list_page(request: web.Request) -> web.Response:
    browser = request.app[BROWSER_KEY]
    f = _filter(request)
    after = _cursor(request.query.get("after"))
    started = time.perf_counter()
    page = browser.page(f, after)
    total = browser.count(f)
    ms = 1000 * (time.perf_counter() - started)
    return _page(
        "list.html.j2",
        f=f,
        page=page,
        total=total,
        facets=browser.facets(),
        verdicts=VERDICTS,
        groups=GROUP_FILTERS,
        after=after,
        ms=ms,
        episode_url=episode_url,
        query=f.query(),
        first=page.rows[0].cursor if page.rows else None,
        notice=request.query.get("notice"),
    )


async def api_episodes(request: web.Request) -> web.Response:
    """One page as JSON: {"episodes": [...], "next": cursor or null, "count": n}."""
    browser = request.app[BROWSER_KEY]
    f = _filter(request)
    try:
        limit = min(500, max(1, int(request.query.get("limit", PAGE_SIZE))))
    except ValueError:
        raise web.HTTPBadRequest(text="limit must be a number") from None
    page = browser.page(f, _cursor(request.query.get("after")), limit)
    body: dict[str, object] = {
        "episodes": [asdict(r) for r in page.rows],
        "next": page.next.token if page.next else None,
    }
    if request.query.get("count") == "1":
        body["count"] = browser.count(f)
    return web.json_response(body, dumps=lambda o: json.dumps(o, ensure_ascii=False))


async def episode_page(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    browser = request.app[BROWSER_KEY]
    run_id = request.match_info["run_id"]
    idx = int(request.match_info["idx"])
    try:
        rec = store.episode(run_id, idx)
    except KeyError as exc:
        raise web.HTTPNotFound(text=str(exc.args[0])) from None
    f = _filter(request)
    at = Cursor(run_id, idx)
    tamper = EpisodeFilter(f.run, f.stage, "tampering", f.label)
    links = {
        "n": browser.neighbour(tamper, at),
        "p": browser.neighbour(tamper, at, forward=False),
        "j": browser.neighbour(f, at),
        "k": browser.neighbour(f, at, forward=False),
    }
    view = episode_view(rec, Labels(store).of_episode(run_id, idx))
    moves: dict[str, tuple[str, bool]] = {}
    for key, found in links.items():
        if found is not None:
            moves[key] = (episode_url(found, f), True)
        else:  # the key still works: the viewer stays here and says there is none
            query = {**f.query(), "from": at.token, "dir": "prev" if key in "pk" else "next"}
            query["group"] = "tampering" if key in "np" else "any"
            moves[key] = ("/next?" + urlencode(query), False)
    return _page(
        "episode.html.j2",
        ep=view,
        f=f,
        moves=moves,
        back="/?" + urlencode({**f.query(), "after": _before(browser, f, at)}),
        notice=request.query.get("notice"),
    )


def _before(browser: Browser, f: EpisodeFilter, at: Cursor) -> str:
    """The cursor that makes the list page start at this episode."""
    previous = browser.neighbour(f, at, forward=False)
    return previous.token if previous is not None else ""


async def next_match(request: web.Request) -> web.Response:
    """Redirect to the next (or previous) tampering, or episode, from a position in the list."""
    browser = request.app[BROWSER_KEY]
    f = _filter(request)
    at = _cursor(request.query.get("from"))
    forward = request.query.get("dir", "next") != "prev"
    group = request.query.get("group", "tampering")
    wanted = EpisodeFilter(f.run, f.stage, group, f.label) if group in GROUP_FILTERS else f
    if at is None:
        found = browser.page(wanted, None, 1).rows
        target = found[0].cursor if found else None
    else:
        target = browser.neighbour(wanted, at, forward=forward)
    if target is None:
        what = group if group in GROUP_FILTERS else "episode"
        if at is None:
            raise web.HTTPFound("/?" + urlencode({**f.query(), "notice": f"no {what} episode"}))
        where = "later" if forward else "earlier"
        raise web.HTTPFound(episode_url(at, f, notice=f"no {where} {what}"))
    raise web.HTTPFound(episode_url(target, f))


async def health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def create_app(db: str | Path) -> web.Application:
    """The viewer over `db` (opened once to bring its schema up to date, then read-only)."""
    path = Path(db)
    if not path.exists():
        raise FileNotFoundError(f"no run database at {path}")
    store = Store.open(path)
    app = web.Application(middlewares=[_local_only])
    app[STORE_KEY] = store
    app[BROWSER_KEY] = Browser(path)
    app.router.add_get("/", list_page)
    app.router.add_get("/api/episodes", api_episodes)
    app.router.add_get(r"/episode/{run_id:.+}/{idx:\d+}", episode_page)
    app.router.add_get("/next", next_match)
    app.router.add_get("/health", health)

    async def close(app: web.Application) -> None:
        app[BROWSER_KEY].close()
        app[STORE_KEY].close()

    app.on_cleanup.append(close)
    return app
