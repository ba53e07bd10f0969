"""Number formatting shared by the stats reports.

Rare-event rates live far below 1%, where fixed decimals would print "0.00%";
significant digits keep them readable.
"""

from __future__ import annotations

import math


def significant(x: float, sig: int = 2) -> str:
    """Format `x` with `sig` significant digits, never in scientific notation."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    decimals = max(0, sig - 1 - math.floor(math.log10(abs(x))))
    rounded = round(x, decimals)
    # Rounding can carry into a new leading digit (0.0996 -> 0.100); drop the spare digit.
    if rounded != 0 and math.floor(math.log10(abs(rounded))) > math.floor(math.log10(abs(x))):
        decimals = max(0, decimals - 1)
    return f"{x:.{decimals}f}"


def percent(x: float, digits: int = 2) -> str:
    """Proportion as a percentage: 2 significant digits below 1%, else `digits` decimals."""
    pct = 100.0 * x
    if pct == 0:
        return "0%"
    if abs(pct) < 1:
        return f"{significant(pct, 2)}%"
    return f"{pct:.{digits}f}%"


def percent_bound(x: float) -> str:
    """An upper bound as a percentage, rounded *up* to 2 significant digits.

    Rounding outward keeps the printed bound true: 1.487% prints as "1.5%", never "1.4%".
    """
    pct = 100.0 * x
    if pct <= 0 or not math.isfinite(pct):
        return f"{pct:g}%"
    decimals = 1 - math.floor(math.log10(pct))
    scale = 10.0**decimals
    up = math.ceil(pct * scale * (1 - 1e-12)) / scale
    if math.floor(math.log10(up)) > math.floor(math.log10(pct)):
        decimals -= 1
    return f"{up:.{max(0, decimals)}f}%"


def confidence_label(confidence: float) -> str:
    """`0.95` -> `"95%"`, `0.999` -> `"99.9%"`."""
    return f"{round(100.0 * confidence, 6):g}%"
