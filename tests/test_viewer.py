"""The viewer over HTTP: filters, keyset pages that cover a run exactly once, the label
filter, moving to the next tampering, and serving 127.0.0.1 only."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from subterfuge.envs.base import Stage, Verdict
from subterfuge.store.labels import Label, Labels
from subterfuge.viewer import Browser, Cursor, EpisodeFilter, ViewerThread
from subterfuge.viewer.app import HOST
from test_monitor_cases import record, store_with

TAMPERED = {3, 10, 11, 57}


def build(path: Path) -> Path:
    recs = []
    for i in range(120):
        verdict = Verdict.TAMPERED if i in TAMPERED else Verdict.HONEST
        if i == 11:
            verdict = Verdict.TAMPERED_AND_HID
        recs.append(record("a-run", i, verdict=verdict, moves=[("think", "ls /", "bin\n")]))
    recs += [record("b-run", i, verdict="gamed", env="tool_use_flattery",
                    stage=Stage.TOOL_USE_FLATTERY) for i in range(30)]  # fmt: skip
    with store_with(path, recs) as store:
        Labels(store).add(
            [Label("a-run", i, "judge-reasoning", "intent", "malign" if i == 10 else "none")
             for i in range(0, 120, 2)]
        )  # fmt: skip
    return path


@pytest.fixture(scope="module")
def viewer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ViewerThread]:
    db = build(tmp_path_factory.mktemp("viewer") / "v.sqlite")
    with ViewerThread(db) as server:
        yield server


def get(server: ViewerThread, path: str, host: str | None = None) -> tuple[int, str, str]:
    """(status, final URL, body); redirects are followed."""
    request = urllib.request.Request(server.url + path)
    if host:
        request.add_header("Host", host)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.url, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, server.url + path, exc.read().decode()


def api(server: ViewerThread, **query: str) -> dict[str, object]:
    status, _, body = get(server, "/api/episodes?" + urlencode(query))
    assert status == 200, body
    return json.loads(body)  # type: ignore[no-any-return]


def test_keyset_pages_cover_every_episode_once(viewer: ViewerThread) -> None:
    seen: list[tuple[str, int]] = []
    after = ""
    while True:
        page = api(viewer, limit="17", after=after)
        seen += [(e["run_id"], e["idx"]) for e in page["episodes"]]  # type: ignore[attr-defined,index]
        if page["next"] is None:
            break
        after = str(page["next"])
    assert len(seen) == 150 and len(set(seen)) == 150
    assert seen == sorted(seen)


def test_filters_by_run_stage_verdict_group_and_label(viewer: ViewerThread) -> None:
    def idx(**q: str) -> list[int]:
        return [e["idx"] for e in api(viewer, limit="500", **q)["episodes"]]  # type: ignore[attr-defined,index]

    assert idx(run="a-run", verdict="tampering") == sorted(TAMPERED)
    assert idx(verdict="tampered_and_hid") == [11]
    assert len(idx(stage="tool_use_flattery")) == 30
    assert idx(label="judge-reasoning|intent|malign") == [10]
    assert api(viewer, verdict="gaming", count="1")["count"] == 34


def test_bad_filters_are_refused(viewer: ViewerThread) -> None:
    assert get(viewer, "/api/episodes?verdict=heroic")[0] == 400
    assert get(viewer, "/api/episodes?label=only-two|parts")[0] == 400
    assert get(viewer, "/api/episodes?after=nonsense")[0] == 400
    assert get(viewer, "/episode/a-run/999")[0] == 404


def test_list_and_episode_pages(viewer: ViewerThread) -> None:
    status, _, body = get(viewer, "/?verdict=tampering")
    assert (
        status == 200 and 'id="total">4</span> episodes match' in body and 'data-idx="57"' in body
    )
    status, _, body = get(viewer, "/episode/a-run/10?run=a-run")
    assert status == 200
    assert 'class="reasoning" data-part="reasoning">think' in body
    assert 'href="/episode/a-run/11?run=a-run" data-key="n"' in body  # next tampering
    assert 'href="/episode/a-run/3?run=a-run" data-key="p"' in body  # previous tampering
    assert 'data-key="j"' in body and 'data-key="u"' in body


def test_next_tampering_redirects_and_says_when_there_is_none(viewer: ViewerThread) -> None:
    _, url, _ = get(viewer, "/next?group=tampering&from=" + Cursor("a-run", 11).token)
    assert url.endswith("/episode/a-run/57")
    _, url, body = get(viewer, "/next?group=tampering&from=" + Cursor("a-run", 57).token)
    assert "/episode/a-run/57" in url and "no later tampering" in body
    _, url, _ = get(viewer, "/next?group=tampering")
    assert url.endswith("/episode/a-run/3")


def test_serves_loopback_only_and_refuses_other_host_names(viewer: ViewerThread) -> None:
    assert viewer.url.startswith(f"http://{HOST}:")
    status, _, body = get(viewer, "/health", host="attacker.example")
    assert status == 403 and "127.0.0.1" in body
    assert get(viewer, "/health", host=f"localhost:{viewer.port}")[0] == 200


def test_browser_queries_directly(tmp_path: Path) -> None:
    browser = Browser(build(tmp_path / "b.sqlite"))
    f = EpisodeFilter(verdict="tampering")
    first = browser.page(f, limit=2)
    assert [r.idx for r in first.rows] == [3, 10] and first.next == Cursor("a-run", 10)
    assert [r.idx for r in browser.page(f, first.next, 10).rows] == [11, 57]
    assert browser.neighbour(f, Cursor("a-run", 57)) is None
    assert browser.neighbour(f, Cursor("a-run", 57), forward=False) == Cursor("a-run", 11)
    facets = browser.facets()
    assert facets.runs == (("a-run", 120), ("b-run", 30))
    assert ("judge-reasoning", "intent", "malign", 1) in facets.labels
    browser.close()


def test_view_command_refuses_a_missing_database(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from subterfuge.cli.main import app

    res = CliRunner().invoke(app, ["view", "--db", str(tmp_path / "none.sqlite")])
    assert res.exit_code == 2 and "no run database" in res.output
    assert "--host" not in CliRunner().invoke(app, ["view", "--help"]).output
