"""The Event page's read model on a hand-made snapshot: one market's rows picked among markets with
and without lines, and a long price history thinned in SQL to what a chart can show without losing
where it started, ended, or how low and high it went."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from oddly.views import market as views
from oddly.warehouse.reader import MartsReader
from oddly.warehouse.snapshot import snapshot_path

START = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
TICKS = 3000


def test_market_rows_tells_a_missing_line_from_a_line() -> None:
    prices = pd.DataFrame(
        {
            "market": ["1x2", "1x2", "total", "total", "total"],
            "period": ["ft", "ft", "ft", "ft", "1h"],
            "line": [None, None, 2.5, 3.5, 2.5],
            "outcome": ["home", "away", "over", "over", "over"],
        }
    )
    prices["line"] = prices["line"].astype(float)  # as a query returns it: NaN beside numbers
    assert views.market_rows(prices, "1x2", "ft", None)["outcome"].tolist() == ["home", "away"]
    assert views.market_rows(prices, "total", "ft", 2.5).index.tolist() == [2]
    assert views.market_rows(prices, "total", "ft", None).empty


def history_reader(home: Path) -> MartsReader:
    """Two books on one outcome: `a` ticks TICKS times (a random walk with one spike), `b` never
    moved in the window (flat at its current price)."""
    rng = np.random.default_rng(3)
    prices = 2.0 + np.cumsum(rng.normal(0, 0.01, TICKS))
    prices[TICKS // 3] = 9.0  # a spike a thinned chart must still show
    ticks = pd.DataFrame(
        {
            "selection_key": 1,
            "observed_at": [START + timedelta(seconds=3 * i) for i in range(TICKS)],
            "price": prices,
        }
    )
    moves = pd.DataFrame(
        {
            "selection_key": [1, 2],
            "canonical_event_id": "e",
            "market": "1x2",
            "period": "ft",
            "line": [None, None],
            "bookmaker": ["a", "b"],
            "outcome": "home",
            "current_price": [prices[-1], 2.2],
            "first_seen_at": START - timedelta(hours=1),
            "last_changed_at": [ticks["observed_at"].iloc[-1], START - timedelta(minutes=30)],
        }
    )
    with duckdb.connect(str(snapshot_path(home))) as con:
        con.execute("create schema marts")
        con.register("ticks", ticks)
        con.register("moves", moves)
        con.execute("create table marts.fct_price_history as select * from ticks")
        con.execute("create table marts.fct_line_movements as select * from moves")
    return MartsReader(warehouse_url=None, home=home)


def test_price_history_is_thinned_to_the_points_a_chart_shows(tmp_path: Path) -> None:
    reader = history_reader(tmp_path)
    full = views.price_history(reader, "e", "1x2", "ft", None, max_points=10 * TICKS)
    thin = views.price_history(reader, "e", "1x2", "ft", None, max_points=200)
    a_full, a_thin = (f[f["bookmaker"] == "a"] for f in (full, thin))
    assert len(a_full) == TICKS + 1  # every tick, and the line held to the newest one
    assert 100 <= len(a_thin) <= 200
    assert a_thin["observed_at"].is_monotonic_increasing
    assert a_thin["price"].min() == a_full["price"].min()
    assert a_thin["price"].max() == a_full["price"].max() == 9.0  # the spike
    assert a_thin["price"].iloc[[0, -1]].tolist() == a_full["price"].iloc[[0, -1]].tolist()
    assert a_thin["observed_at"].iloc[[0, -1]].tolist() == a_full["observed_at"].iloc[[0, -1]].tolist()
    # the book that did not move: flat from the window's start to the newest tick, either way
    b_thin, b_full = (f[f["bookmaker"] == "b"].reset_index(drop=True) for f in (thin, full))
    assert b_thin["price"].tolist() == [2.2, 2.2] and b_thin.equals(b_full)
