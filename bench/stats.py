"""Percentiles, ratios and markdown tables: the arithmetic every measure shares."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass

_NUMBER = re.compile(r"^[<>=~]*\s*-?\d[\d,]*(\.\d+)?")


def percentile(samples: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of the sorted samples: always a value that was measured."""
    if not samples:
        raise ValueError("no samples")
    if not 0 <= p <= 100:
        raise ValueError("p must be within 0..100")
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Summary:
    n: int
    p50: float
    p95: float
    p99: float
    mean: float
    min: float
    max: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def summarize(samples: Sequence[float]) -> Summary | None:
    if not samples:
        return None
    return Summary(
        n=len(samples),
        p50=percentile(samples, 50),
        p95=percentile(samples, 95),
        p99=percentile(samples, 99),
        mean=sum(samples) / len(samples),
        min=min(samples),
        max=max(samples),
    )


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def fmt(value: float | None, digits: int = 0, unit: str = "") -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:,.{digits}f}{unit}"


def fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub table; numbers right-aligned, cells' `|` escaped."""
    cells = [[_cell(v) for v in row] for row in rows]
    for row in cells:
        if len(row) != len(headers):
            raise ValueError(f"row has {len(row)} cells, the table {len(headers)} columns")
    numeric = [
        bool(cells) and all(_looks_numeric(row[i]) for row in cells) for i in range(len(headers))
    ]
    lines = [
        "| " + " | ".join(_cell(h) for h in headers) + " |",
        "|" + "|".join("---:" if num else "---" for num in numeric) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _looks_numeric(text: str) -> bool:
    return text == "n/a" or _NUMBER.match(text) is not None
