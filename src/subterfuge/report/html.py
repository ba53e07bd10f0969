"""A small self-contained HTML page of the rates: opens anywhere, no network needed.

Each rate is drawn as a point with its exact interval on a log-free linear
axis, so a reader sees at a glance which differences the data can support.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from subterfuge.report.summary import Cell
from subterfuge.stats import format_rate

PLOTTED = ("gaming", "tampering", "hiding")


def _bar(low: float, high: float, point: float, zero: bool, width: int = 220) -> str:
    """An inline SVG interval bar on [0, 100%]."""

    def x(v: float) -> float:
        return 4 + v * (width - 8)

    mark = (
        f'<line x1="{x(point):.1f}" y1="3" x2="{x(point):.1f}" y2="15" stroke="#b40426" '
        'stroke-width="2"/>'
        if not zero
        else ""
    )
    return (
        f'<svg width="{width}" height="18" role="img" aria-label="interval">'
        f'<line x1="4" y1="9" x2="{width - 4}" y2="9" stroke="#ddd"/>'
        f'<rect x="{x(low):.1f}" y="5" width="{max(1.5, x(high) - x(low)):.1f}" height="8" '
        f'fill="#3b4cc0" opacity="0.45"/>{mark}</svg>'
    )


def render_html(cells: Sequence[Cell], *, title: str = "Subterfuge results") -> str:
    env = Environment(
        loader=PackageLoader("subterfuge.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
    )
    rows = []
    for cell in cells:
        entries = []
        for group in PLOTTED:
            r = cell.rate(group)
            entries.append(
                {
                    "group": group,
                    "text": format_rate(r),
                    "svg": _bar(r.low, r.high, r.point, r.k == 0),
                }
            )
        rows.append(
            {
                "run_id": cell.run_id,
                "env": cell.env,
                "stage": cell.stage.value,
                "policy": cell.policy,
                "n": cell.n,
                "verdicts": sorted(cell.counts.items()),
                "entries": entries,
            }
        )
    template = env.get_template("rates.html.j2")
    return template.render(
        title=html.escape(title),
        rows=rows,
        groups=PLOTTED,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )


def write_html(
    cells: Sequence[Cell], path: str | Path, *, title: str = "Subterfuge results"
) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(cells, title=title), encoding="utf-8")
    return out
