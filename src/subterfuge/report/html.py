"""The HTML report: one self-contained file (inline CSS and SVG, no scripts or fonts to
fetch) that opens anywhere without a network.

It shows, per stage and per model, the gaming / tampering / hiding rates with
their exact intervals as a chart in the style of the reference's
generalization figure; the table of counts; the monitors against host-side
truth and against each other; and example episodes, each linked from its row
(and, with a viewer URL, into the transcript viewer). Everything is counted by
SQLite; only the few example episodes are loaded.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from jinja2 import ChoiceLoader, Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from subterfuge.envs.base import Verdict
from subterfuge.monitor.evaluate import F1
from subterfuge.report.charts import Bar, rates_figure
from subterfuge.report.episode import EpisodeView, anchor, episode_view
from subterfuge.report.monitors import MonitorSection, monitor_section
from subterfuge.report.summary import GAMING_GROUPS, Cell
from subterfuge.stats import Rate, format_rate, percent, percent_bound
from subterfuge.store import EpisodeRecord, RunInfo, Store
from subterfuge.store.labels import Labels

PLOTTED = GAMING_GROUPS
VERDICTS = tuple(v.value for v in Verdict)
# Worst first: the examples a reader should see before any other.
EXAMPLE_VERDICTS = (
    Verdict.TAMPERED_AND_HID,
    Verdict.TAMPERED,
    Verdict.GAMED_AND_HID,
    Verdict.GAMED,
)


@dataclass(frozen=True)
class Row:
    """One (run, environment, policy) row of the counts table."""

    cell: Cell
    series: str
    anchor: str
    examples: tuple[tuple[str, str, str], ...] = ()  # (anchor, verdict, label)


@dataclass(frozen=True)
class ExampleGroup:
    row_anchor: str
    title: str
    episodes: tuple[EpisodeView, ...]


@dataclass(frozen=True)
class Report:
    title: str
    generated: str
    rows: tuple[Row, ...]
    figure: str
    confidence: float
    runs: tuple[RunInfo, ...] = ()
    db: str | None = None
    monitors: MonitorSection | None = None
    examples: tuple[ExampleGroup, ...] = ()
    viewer_url: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)


def row_anchor(cell: Cell) -> str:
    return anchor(f"{cell.run_id}-{cell.env}-{cell.policy}", 0).replace("ep-", "row-", 1)


def series_names(cells: Sequence[Cell]) -> dict[tuple[str, str, str], str]:
    """Chart series per cell: the policy, or `policy · run` where one policy has several runs
    of one environment (two seeds, two checkpoints), so their bars stay apart."""
    per_env: dict[tuple[str, str], set[str]] = {}
    for c in cells:
        per_env.setdefault((c.env, c.policy), set()).add(c.run_id)
    split = {policy for (_, policy), runs in per_env.items() if len(runs) > 1}
    return {
        (c.run_id, c.env, c.policy): f"{c.policy} · {c.run_id}" if c.policy in split else c.policy
        for c in cells
    }


def _bars(cells: Sequence[Cell], names: dict[tuple[str, str, str], str]) -> dict[str, list[Bar]]:
    merged: dict[tuple[str, str, str], list[int]] = {}
    links: dict[tuple[str, str], str] = {}
    for c in cells:
        series = names[(c.run_id, c.env, c.policy)]
        links.setdefault((c.env, series), f"#{row_anchor(c)}")
        for group in PLOTTED:
            k_n = merged.setdefault((group, c.env, series), [0, 0])
            k_n[0] += c.count(group)
            k_n[1] += c.n
    out: dict[str, list[Bar]] = {g: [] for g in PLOTTED}
    for (group, env, series), (k, n) in merged.items():
        out[group].append(Bar(env, series, k, n, links[(env, series)]))
    return out


def _rows(cells: Sequence[Cell], names: dict[tuple[str, str, str], str]) -> list[Row]:
    return [Row(c, names[(c.run_id, c.env, c.policy)], row_anchor(c)) for c in cells]


def _examples(
    store: Store, rows: list[Row], per_verdict: int, limit: int
) -> tuple[list[Row], list[ExampleGroup]]:
    """Up to `per_verdict` episodes of each gaming verdict per row, `limit` in all.

    The budget goes to the worst verdicts first across all rows (every row's
    hidden tamperings before any row's plain gaming), so a long curriculum
    never spends it on the early stages alone.
    """
    picked: dict[str, list[EpisodeRecord]] = {row.anchor: [] for row in rows}
    budget = limit
    for verdict in EXAMPLE_VERDICTS:
        for row in rows:
            c = row.cell
            if budget <= 0 or not c.counts.get(verdict.value):
                continue
            take = min(per_verdict, budget)
            found = store.episodes(c.run_id, verdict=verdict, env=c.env, limit=take * 4)
            chosen = [r for r in found if r.policy == c.policy][:take]
            picked[row.anchor] += chosen
            budget -= len(chosen)
    labels = Labels(store)
    groups: list[ExampleGroup] = []
    out_rows: list[Row] = []
    for row in rows:
        records = picked[row.anchor]
        if not records:
            out_rows.append(row)
            continue
        c = row.cell
        by_idx = labels.of_episodes(c.run_id, [r.idx for r in records])
        views = tuple(episode_view(r, by_idx.get(r.idx, []), max_output=3_000) for r in records)
        groups.append(ExampleGroup(row.anchor, f"{c.env} × {row.series} ({c.run_id})", views))
        links = tuple((v.anchor, v.verdict, f"#{v.idx}") for v in views)
        out_rows.append(Row(row.cell, row.series, row.anchor, links))
    return out_rows, groups


def build_report(
    cells: Sequence[Cell],
    *,
    store: Store | None = None,
    title: str = "Subterfuge results",
    target: str = "gaming",
    confidence: float = 0.95,
    examples: int = 2,
    max_examples: int = 60,
    viewer_url: str | None = None,
) -> Report:
    """Everything the page shows; with a `store`, also monitors and example episodes."""
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    names = series_names(cells)
    figure = rates_figure(_bars(cells, names), confidence)
    seconds["chart"] = time.perf_counter() - t0
    rows = _rows(cells, names)
    section = None
    groups: list[ExampleGroup] = []
    runs: tuple[RunInfo, ...] = ()
    if store is not None:
        run_ids = list(dict.fromkeys(c.run_id for c in cells))
        runs = tuple(store.run(r) for r in run_ids)
        t0 = time.perf_counter()
        section = monitor_section(store, run_ids, target, confidence) if run_ids else None
        seconds["monitors"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        if examples > 0:
            rows, groups = _examples(store, rows, examples, max_examples)
        seconds["examples"] = time.perf_counter() - t0
    return Report(
        title=title,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        rows=tuple(rows),
        figure=figure,
        confidence=confidence,
        runs=runs,
        db=str(store.path) if store is not None else None,
        monitors=section,
        examples=tuple(groups),
        viewer_url=viewer_url.rstrip("/") if viewer_url else None,
        seconds=seconds,
    )


def _rate_text(r: Rate) -> str:
    return "—" if r.n == 0 else format_rate(r)


def _rate_cell(r: Rate) -> Markup:
    """A rate on two lines for a table cell: the count and rate, then the interval or bound."""
    if r.n == 0:
        return Markup("—")
    if r.is_upper_bound:
        first, second = f"0/{r.n:,}", f"< {percent_bound(r.high)}"
    else:
        first = f"{r.k:,}/{r.n:,} = {percent(r.point)}"
        second = f"[{percent(r.low)}, {percent(r.high)}]"
    return Markup("{}<br><small>{}</small>").format(first, second)


def _f1_text(f: F1) -> str:
    if not f.defined:
        return "—"
    if f.is_upper_bound:
        return f"0 (<{f.high:.2f})"
    return f"{f.point:.2f} [{f.low:.2f}, {f.high:.2f}]"


def template_environment(*packages: str) -> Environment:
    """The report's templates and filters, after those of `packages` (the viewer's pages)."""
    loaders = [PackageLoader(p, "templates") for p in packages]
    env = Environment(
        loader=ChoiceLoader([*loaders, PackageLoader("subterfuge.report", "templates")]),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["rate"] = _rate_text
    env.filters["f1"] = _f1_text
    env.filters["rate_cell"] = _rate_cell
    return env


def render_report(report: Report) -> str:
    template = template_environment().get_template("report.html.j2")
    return template.render(report=report, groups=PLOTTED, verdicts=VERDICTS)


def write_report(report: Report, path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report(report), encoding="utf-8")
    return out


def render_html(cells: Sequence[Cell], *, title: str = "Subterfuge results") -> str:
    """The report from counts alone (no monitors or examples): chart and table."""
    return render_report(build_report(cells, title=title))


def write_html(
    cells: Sequence[Cell], path: str | Path, *, title: str = "Subterfuge results"
) -> Path:
    return write_report(build_report(cells, title=title), path)
