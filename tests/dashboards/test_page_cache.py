"""The app's query cache: a page run is served from the cache while the published snapshot stays
the same, and the first run after a publish reads the new marts — no time-to-live to wait out."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

from oddly.warehouse.reader import MartsReader
from oddly.warehouse.snapshot import INFO_TABLE, snapshot_path

pytestmark = pytest.mark.slow

OpenPage = Callable[..., AppTest]
QUALITY_COLUMNS = (
    "bookmaker, market, is_sharp, selections, ticks, mean_margin, mean_stale_seconds, "
    "median_stale_seconds, sharp_moves_followed, median_lag_seconds, suspension_rate, out_of_line_share"
)


def publish(home: Path, books: list[str]) -> None:
    """A snapshot with a quality row per book, renamed over the published path as a build does."""
    staging = home / ".published.tmp"
    rows = ", ".join(f"('{b}', '1x2', false, 10, 100, 0.05, 10.0, 5.0, 1, 30.0, 0.0, 0.0)" for b in books)
    with duckdb.connect(str(staging)) as con:
        con.execute("create schema marts")
        con.execute(
            f"create table marts.fct_bookmaker_quality as select * from (values {rows}) t({QUALITY_COLUMNS})"
        )
        con.execute(
            f"create table {INFO_TABLE} as select 'marts.fct_bookmaker_quality' as relation, "
            f"{len(books)} as row_count, 1 as load_seq, now() as published_at"
        )
    os.replace(staging, snapshot_path(home))


def quality_books(app: AppTest) -> list[str]:
    [frame] = [d.value for d in app.dataframe if "mean_margin" in d.value.columns]
    return sorted(frame["bookmaker"])


def test_a_new_publish_is_read_by_the_next_page_run(
    open_page: OpenPage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queries: list[str] = []
    query = MartsReader.query

    def counted(self: MartsReader, sql: str, params: dict[str, Any] | None = None) -> Any:
        queries.append(sql)
        return query(self, sql, params)

    monkeypatch.setattr(MartsReader, "query", counted)
    publish(tmp_path, ["pinnacle"])
    app = open_page(tmp_path, "bookmakers")
    assert not app.exception
    assert quality_books(app) == ["pinnacle"]
    read = len(queries)
    assert read > 0

    app.run()  # the same snapshot: every answer from the cache
    assert quality_books(app) == ["pinnacle"] and len(queries) == read

    publish(tmp_path, ["pinnacle", "22bet"])
    app.run()  # the first run after the publish reads it
    assert not app.exception
    assert quality_books(app) == ["22bet", "pinnacle"] and len(queries) > read
