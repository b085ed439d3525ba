"""Hand-made price panels for the ML tests: one two-way market (over/under 2.5) of one event."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pandas as pd


def two_way_panel(
    prices: dict[tuple[int, str], tuple[float, float]],
    books: Sequence[str],
    t0: datetime,
    cycles: int = 4,
    **columns: Any,
) -> pd.DataFrame:
    """One row per 10 s cycle, book and outcome: `prices[(cycle, book)] = (over, under)`, carried
    forward from the last cycle given; `columns` are added to every row."""
    rows = []
    for book in books:
        current = prices[(0, book)]
        for c in range(cycles):
            current = prices.get((c, book), current)
            for outcome, price in zip(("over", "under"), current, strict=True):
                rows.append(
                    {
                        "observed_at": t0 + timedelta(seconds=10 * c),
                        "bookmaker": book,
                        "event_id": "e1",
                        "market": "total",
                        "line": 2.5,
                        "outcome": outcome,
                        "price": price,
                        "status": "open",
                        **columns,
                    }
                )
    return pd.DataFrame(rows)
