"""Feed health for the app: one row per feed from raw.feed_runs and raw.quarantine, published with
the marts (embedded) and computed by the same SQL on the warehouse (PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from oddly.views.quality import feed_health
from oddly.warehouse.reader import MartsReader
from oddly.warehouse.schema import feed_runs, quarantine
from oddly.warehouse.snapshot import FEED_HEALTH, publish_snapshot, snapshot_path
from oddly.warehouse.store import Warehouse

NOW = datetime.now(UTC).replace(microsecond=0)


def run(
    feed: str, status: str, minutes_ago: float, error: str | None = None, rejected: int = 0
) -> dict[str, Any]:
    started = NOW - timedelta(minutes=minutes_ago)
    return {
        "feed_run_id": f"{feed}-{minutes_ago}",
        "feed": feed,
        "bookmaker": f"book_{feed}",
        "status": status,
        "started_at": started,
        "finished_at": started + timedelta(seconds=2),
        "requests": 1,
        "prices_seen": 10,
        "ticks_written": 3,
        "rejected": rejected,
        "unmapped": 0,
        "unmapped_codes": "",
        "fetch_seconds": 0.1,
        "parse_seconds": 0.1,
        "write_seconds": 0.1,
        "http_outcome": "200",
        "error": error,
        "load_seq": None,
    }


def seed_feeds(warehouse: Warehouse) -> None:
    warehouse.ensure_schema()
    with warehouse.begin() as conn:
        conn.execute(
            feed_runs.insert(),
            [
                run("alpha", "ok", 60 * 30),  # outside the 24 h window
                run("alpha", "ok", 5, rejected=2),
                run("alpha", "partial", 1, error="2 records quarantined", rejected=2),
                run("beta", "ok", 90),
                run("beta", "failed", 3, error="HTTP 503 after 3 tries"),
                run("beta", "failed", 2, error="HTTP 503 after 3 tries; keeping last prices"),
            ],
        )
        conn.execute(
            quarantine.insert(),
            [
                {
                    "feed_run_id": "alpha-1",
                    "feed": "alpha",
                    "bookmaker": "book_alpha",
                    "source_event_id": "e1",
                    "observed_at": NOW - timedelta(minutes=m),
                    "reason": "price <= 1",
                    "record": "{}",
                }
                for m in (1, 1, 60 * 48)
            ],
        )


def check(frame: Any) -> None:
    rows = frame.set_index("feed")
    assert list(rows.index) == ["alpha", "beta"]
    alpha, beta = rows.loc["alpha"], rows.loc["beta"]
    assert (alpha.last_status, alpha.runs_24h, alpha.failed_runs_24h) == ("partial", 2, 0)
    assert (alpha.rejected_rows_24h, alpha.quarantined_rows_24h) == (4, 2)
    assert (beta.last_status, beta.runs_24h, beta.failed_runs_24h) == ("failed", 3, 2)
    assert beta.last_error == "HTTP 503 after 3 tries; keeping last prices"
    assert beta.quarantined_rows_24h == 0
    assert abs(beta.last_success_at - (NOW - timedelta(minutes=90) + timedelta(seconds=2))) < timedelta(
        seconds=1
    )
    assert beta.health == "down" and alpha.health == "ok"


@pytest.fixture
def duckdb_warehouse(tmp_path: Path) -> Iterator[Warehouse]:
    wh = Warehouse.from_url(f"duckdb:///{tmp_path}/warehouse.duckdb")
    yield wh
    wh.dispose()


def test_the_snapshot_publishes_one_health_row_per_feed(duckdb_warehouse: Warehouse, tmp_path: Path) -> None:
    seed_feeds(duckdb_warehouse)
    with duckdb_warehouse.begin() as conn:
        conn.exec_driver_sql("create schema if not exists marts")
        conn.exec_driver_sql("create table marts.fct_prices_current as select 1 as selection_key")
    published = publish_snapshot(duckdb_warehouse, snapshot_path(tmp_path))
    assert published is not None and published.rows[FEED_HEALTH] == 2
    check(feed_health(MartsReader(warehouse_url=None, home=tmp_path), now=NOW))


@pytest.mark.postgres
def test_server_mode_computes_the_same_rows_on_the_warehouse(pg_url: str, tmp_path: Path) -> None:
    warehouse = Warehouse.from_url(pg_url)
    try:
        seed_feeds(warehouse)
        check(feed_health(MartsReader(warehouse_url=pg_url, home=tmp_path), now=NOW))
    finally:
        warehouse.dispose()
