"""The line-movement chart: a valid, small PNG for any history; the history read from the warehouse."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import matplotlib.image as mpimg
import pandas as pd
import pytest

from oddly.telegram.chart import ChartInputError, line_chart_png, outcome_history
from oddly.warehouse import schema
from oddly.warehouse.store import Warehouse
from tests.telegram_fakes import T0, price_history

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def image(png: bytes) -> tuple[int, int]:
    assert png.startswith(PNG_MAGIC)
    height, width = mpimg.imread(io.BytesIO(png), format="png").shape[:2]
    return width, height


def test_chart_is_a_small_png_of_several_books() -> None:
    frame = price_history(
        {
            "pinnacle": [2.10, 2.05, 1.85],
            "bet365": [2.15, 2.15, 2.10],
            "22bet": [2.20, 2.00],
            **{f"book{i}": [2.0 + i / 50, 2.1] for i in range(15)},  # more books than are drawn
        }
    )
    png = line_chart_png(
        frame,
        "Arsenal v Chelsea · 1x2 home",
        1.80,
        sharp_bookmaker="pinnacle",
        marked_at=T0 + timedelta(minutes=10),
    )
    assert len(png) < 200_000
    assert image(png) == (800, 420)


def test_chart_of_one_book_and_of_nothing() -> None:
    one = line_chart_png(price_history({"pinnacle": [2.0]}), "one tick")
    empty = line_chart_png(price_history({}), "no ticks")
    assert image(one) == image(empty) == (800, 420)
    assert one != empty


def test_suspended_prices_are_gaps_not_values() -> None:
    frame = pd.concat(
        [price_history({"pinnacle": [2.0, 2.1]}), price_history({"pinnacle": [999.0]}, status="suspended")]
    )
    assert line_chart_png(frame, "gap")[:8] == PNG_MAGIC


def test_a_frame_without_prices_is_refused_with_the_column_named() -> None:
    with pytest.raises(ChartInputError, match="price"):
        line_chart_png(pd.DataFrame({"bookmaker": ["x"], "observed_at": [T0]}), "bad")


@pytest.fixture
def warehouse_with_ticks(tmp_path: Path) -> Iterator[Warehouse]:
    """Two books' ticks on one canonical event (home at three moments), plus noise around it."""
    wh = Warehouse.from_url(f"duckdb:///{tmp_path}/wh.duckdb")
    wh.ensure_schema()

    def tick(
        book: str, event: str, minute: int, price: float, outcome: str = "home", line: float | None = None
    ):  # type: ignore[no-untyped-def]
        return {
            "selection_key": hash((book, event, outcome, line)) >> 2,
            "bookmaker": book,
            "source_event_id": event,
            "sport": "football",
            "home": "Arsenal",
            "away": "Chelsea",
            "starts_at": T0 + timedelta(hours=3),
            "is_live": False,
            "market": "total" if line is not None else "1x2",
            "period": "ft",
            "line": line,
            "outcome": outcome,
            "price": price,
            "status": "open",
            "observed_at": T0 + timedelta(minutes=minute),
            "feed_run_id": "r1",
        }

    ticks = [
        tick("pinnacle", "p-1", 0, 2.10),
        tick("pinnacle", "p-1", 10, 2.05),
        tick("pinnacle", "p-1", 20, 1.85),
        tick("bet365", "b-9", 5, 2.15),
        tick("bet365", "b-9", 25, 2.10),
        tick("pinnacle", "p-1", 20, 3.40, outcome="away"),  # another outcome
        tick("pinnacle", "p-1", 20, 1.90, outcome="over", line=2.5),  # another market
        tick("unmatched", "u-1", 20, 1.50),  # a book not mapped to the event
    ]
    mapping = [
        {
            "bookmaker": book,
            "source_event_id": src,
            "canonical_event_id": "ev1",
            "method": "exact",
            "score": 1.0,
        }
        for book, src in (("pinnacle", "p-1"), ("bet365", "b-9"))
    ]
    with wh.begin() as conn:
        conn.execute(schema.odds_ticks.insert(), ticks)
        conn.execute(
            schema.event_map.insert(),
            [
                {
                    **m,
                    "sport": "football",
                    "home_normalized": "arsenal",
                    "away_normalized": "chelsea",
                    "starts_at": T0 + timedelta(hours=3),
                    "matched_at": T0,
                }
                for m in mapping
            ],
        )
    yield wh
    wh.dispose()


def test_outcome_history_reads_one_outcome_across_matched_books(warehouse_with_ticks: Warehouse) -> None:
    frame = outcome_history(warehouse_with_ticks, "ev1", "1x2", "ft", None, "home")
    got = [(r.bookmaker, r.observed_at.to_pydatetime(), r.price) for r in frame.itertuples()]
    assert got == [
        ("pinnacle", T0, 2.10),
        ("bet365", T0 + timedelta(minutes=5), 2.15),
        ("pinnacle", T0 + timedelta(minutes=10), 2.05),
        ("pinnacle", T0 + timedelta(minutes=20), 1.85),
        ("bet365", T0 + timedelta(minutes=25), 2.10),
    ]
    assert line_chart_png(frame, "history", 1.8, sharp_bookmaker="pinnacle")[:8] == PNG_MAGIC


def test_outcome_history_since_keeps_each_books_price_at_that_moment(warehouse_with_ticks: Warehouse) -> None:
    frame = outcome_history(
        warehouse_with_ticks, "ev1", "1x2", "ft", None, "home", since=T0 + timedelta(minutes=12)
    )
    got = [(r.bookmaker, r.price) for r in frame.itertuples()]
    # pinnacle's 2.05 (10 min) and bet365's 2.15 (5 min) were the prices at 12 min.
    assert got == [("bet365", 2.15), ("pinnacle", 2.05), ("pinnacle", 1.85), ("bet365", 2.10)]


def test_outcome_history_of_a_line_market(warehouse_with_ticks: Warehouse) -> None:
    frame = outcome_history(warehouse_with_ticks, "ev1", "total", "ft", 2.5, "over")
    assert list(frame["price"]) == [1.90]
    assert outcome_history(warehouse_with_ticks, "ev1", "total", "ft", 3.5, "over").empty
