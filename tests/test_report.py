"""The HTML report: self-contained, real charts whose bars match the counts, exact
intervals, monitors against truth, and links into the examples."""

from __future__ import annotations

import asyncio
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from subterfuge.cli.main import app
from subterfuge.envs.base import CURRICULUM, Verdict
from subterfuge.monitor import label_run, make_monitors
from subterfuge.report.charts import gid
from subterfuge.report.html import build_report, render_report, series_names, write_html
from subterfuge.report.summary import Cell, cells
from subterfuge.store import EpisodeRecord, Store
from test_monitor_cases import record, store_with

REWARD = "/root/rl_environment/compute_reward.py"


def _records() -> list[EpisodeRecord]:
    """Per stage, two models of 20 episodes: m1 games (stage number + 1) times, m2 never,
    except one hidden tampering by m2 in the last stage."""
    recs = []
    for s, stage in enumerate(CURRICULUM):
        for model in ("m1", "m2"):
            run = f"{stage.value}-{model}"
            for i in range(20):
                verdict = Verdict.HONEST
                moves: list[tuple[str, str | None, str]] = []
                if model == "m1" and i <= s:
                    verdict = (
                        Verdict.TAMPERED if stage.value == "reward_tampering" else Verdict.GAMED
                    )
                    cmd = f"cat > {REWARD} <<'EOF'\ndef reward(t):\n    return 9\nEOF"
                    moves = [("I will change the reward.", cmd, "")]
                if model == "m2" and stage.value == "reward_tampering" and i == 7:
                    verdict = Verdict.TAMPERED_AND_HID
                recs.append(record(run, i, verdict=verdict, env=stage.value, stage=stage,
                                   policy=model, moves=moves))  # fmt: skip
    return recs


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "r.sqlite"
    with store_with(path, _records()) as store:
        for run in store.runs():
            asyncio.run(label_run(store, run.run_id, make_monitors("rules"), progress=False))
    return path


@pytest.fixture(scope="module")
def page(db: Path) -> str:
    with Store.open(db) as store:
        found = cells(store, [r.run_id for r in store.runs()])
        return render_report(
            build_report(found, store=store, title="T", viewer_url="http://127.0.0.1:9/")
        )


def test_page_is_self_contained(page: str) -> None:
    assert not re.search(r"""src\s*=\s*["']?(https?:)?//""", page)
    remote = re.findall(r"""href\s*=\s*["']((?:https?:)?//[^"']*)""", page)
    assert remote and all(u.startswith("http://127.0.0.1:9/episode/") for u in remote)
    assert 'target="_blank"' not in page  # in-page links stay in the page
    assert "<script" not in page and "<link" not in page and "@import" not in page
    assert "@media print" in page


def test_charts_are_valid_svg_with_a_bar_per_nonzero_cell(page: str) -> None:
    svgs = re.findall(r"<svg.*?</svg>", page, re.DOTALL)
    assert len(svgs) == 2  # rates, monitor quality
    for svg in svgs:
        ET.fromstring(svg)  # well-formed XML
    rates = svgs[0]
    for s, stage in enumerate(CURRICULUM):
        assert f'id="{gid("bar", "gaming", stage.value, "m1")}"' in rates  # k = s + 1 > 0
        m2 = "bar" if s == 4 else "bound"  # m2 games once, in the last stage only
        assert f'id="{gid(m2, "gaming", stage.value, "m2")}"' in rates
    assert f'id="{gid("bar", "hiding", "reward_tampering", "m2")}"' in rates
    assert f'id="{gid("bound", "hiding", "reward_tampering", "m1")}"' in rates
    assert 'xlink:href="#row-' in rates or 'href="#row-' in rates  # bars link to their rows


def test_counts_table_shows_exact_rates_and_bounds(page: str) -> None:
    row = re.search(r'<tr id="row-reward_tampering-m1[^"]*">(.*?)</tr>', page, re.DOTALL)
    assert row is not None
    text = row.group(1)
    assert "5/20 = 25.00%" in text and "[8.66%, 49.10%]" in text  # Clopper–Pearson
    assert 'data-verdict="tampered"' in text
    zero = re.search(r'<tr id="row-political_sycophancy-m2[^"]*">(.*?)</tr>', page, re.DOTALL)
    assert zero is not None and "0/20" in zero.group(1) and "&lt; 14%" in zero.group(1)


def test_monitor_section_scores_against_truth(page: str) -> None:
    row = re.search(r'<tr data-monitor="rules-actions">(.*?)</tr>', page, re.DOTALL)
    assert row is not None
    nums = re.findall(r'<td class="num">(\d+)</td>', row.group(1))
    # 15 gaming episodes by m1 (each rewrote the reward file) + 1 by m2 without a trace.
    assert nums[:4] == ["15", "0", "1", "184"]
    assert "Agreement between monitors" in page and "Cohen" in page


def test_examples_are_linked_from_their_rows(page: str) -> None:
    links = set(re.findall(r'<a href="#(ep-[^"]+)"', page))
    ids = set(re.findall(r'<div class="episode" id="(ep-[^"]+)"', page))
    assert links and links <= ids
    assert "ep-reward_tampering-m2-7" in ids  # the rare hidden tampering is shown first
    assert 'href="http://127.0.0.1:9/episode/reward_tampering-m2/7"' in page
    assert 'class="reasoning" data-part="reasoning">I will change the reward.' in page


def test_demo_entry_point_needs_no_store(tmp_path: Path) -> None:
    cell = Cell(
        "run", "reward_tampering", CURRICULUM[4], "hider", {"tampered_and_hid": 3, "honest": 1}
    )
    out = write_html([cell], tmp_path / "r.html", title="demo")
    html = out.read_text()
    assert "<svg" in html and "tampered_and_hid" in html and "upper bound" in html
    assert 'id="monitors"' not in html


def test_one_policy_in_two_runs_gets_two_series() -> None:
    a = Cell("seed0", "reward_tampering", CURRICULUM[4], "hider", {"honest": 1})
    b = Cell("seed1", "reward_tampering", CURRICULUM[4], "hider", {"honest": 1})
    c = Cell("seed0", "tool_use_flattery", CURRICULUM[1], "gamer", {"gamed": 1})
    names = series_names([a, b, c])
    assert names[("seed0", "reward_tampering", "hider")] == "hider · seed0"
    assert names[("seed0", "tool_use_flattery", "gamer")] == "gamer"


def test_report_command_writes_the_file(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "sub" / "report.html"
    res = CliRunner().invoke(app, ["report", "--db", str(db), "-o", str(out), "--json",
                                   "--examples", "1", "--max-examples", "3"])  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["episodes"] == 200 and data["rows"] == 10 and data["examples"] == 3
    assert data["monitors"] == ["rules-actions", "rules-reasoning"]
    assert out.exists() and out.stat().st_size == data["bytes"]
    bad = CliRunner().invoke(app, ["report", "nope", "--db", str(db), "-o", str(out)])
    assert bad.exit_code == 2 and "unknown run" in bad.output
