"""Cost of a run from its token counts and a price table the user supplies.

Prices change and differ by contract, so none are built in. A price table is a
JSON object mapping a model (as named in `--policy`, e.g. `openai:gpt-4o`, or
the bare model name) to prices per million tokens:
`{"openai:gpt-4o": {"input": 2.5, "output": 10.0, "cache_read": 1.25}}`.
`cache_read` / `cache_write` default to the input price.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Price:
    """Currency units per million tokens."""

    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None

    def cost(self, usage: dict[str, int]) -> float:
        """The cost of `usage` (input counts include cached tokens, as stored)."""
        read, write = usage.get("cache_read", 0), usage.get("cache_write", 0)
        fresh = max(0, usage.get("input", 0) - read - write)
        total = fresh * self.input + usage.get("output", 0) * self.output
        total += read * (self.input if self.cache_read is None else self.cache_read)
        total += write * (self.input if self.cache_write is None else self.cache_write)
        return total / 1_000_000


class PriceTableError(ValueError):
    """The price table file is unreadable or malformed; the message names the file and key."""


def load_prices(path: Path) -> dict[str, Price]:
    """Read a price table; errors name the file and the offending key."""
    try:
        data: Any = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PriceTableError(f"{path}: cannot read a JSON price table ({exc})") from None
    if not isinstance(data, dict):
        raise PriceTableError(f"{path}: expected an object mapping model names to prices")
    table: dict[str, Price] = {}
    for model, entry in data.items():
        if not isinstance(entry, dict) or not {"input", "output"} <= entry.keys():
            raise PriceTableError(f"{path}: {model!r} needs 'input' and 'output' prices")
        unknown = set(entry) - {"input", "output", "cache_read", "cache_write"}
        if unknown:
            raise PriceTableError(f"{path}: {model!r} has unknown keys {sorted(unknown)}")
        try:
            table[model] = Price(**{k: float(v) for k, v in entry.items()})
        except (TypeError, ValueError):
            raise PriceTableError(f"{path}: {model!r} prices must be numbers") from None
    return table


def price_for(table: dict[str, Price], policy: str) -> Price | None:
    """The price of `policy` (`provider:model`), looked up whole, then by model name."""
    return table.get(policy) or table.get(policy.partition(":")[2])
