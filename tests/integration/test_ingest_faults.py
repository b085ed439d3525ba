"""Ingestion over real HTTP from the simulator, one test per kind of bad input: the cycle never
crashes, other feeds carry on, bad rows land in quarantine with a reason, the feed-run log says
what happened in words, and nothing is half written."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from oddly.config import FeedConfig, HttpPolicy
from oddly.ingest import IngestReport, ingest_feed, ingest_feeds
from oddly.ports import free_port
from oddly.simulator.config import SimConfig
from oddly.simulator.server import RunningSimulator, start_in_thread
from oddly.warehouse.store import Warehouse

pytestmark = pytest.mark.slow

FAST_HTTP = HttpPolicy(
    timeout_seconds=1.0,
    connect_timeout_seconds=1.0,
    retries=2,
    backoff_seconds=0.01,
    backoff_max_seconds=0.05,
    requests_per_second=200,
    max_retry_after_seconds=5,
)


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    with start_in_thread(SimConfig(seed=11, n_events=12, markets_per_event=4, manual_clock=True)) as running:
        yield running


@pytest.fixture(autouse=True)
def clear_faults(sim: RunningSimulator) -> Iterator[None]:
    yield
    httpx.delete(f"{sim.url}/_sim/fault")


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    return Warehouse.from_url(f"duckdb:///{tmp_path}/wh.duckdb")


def feed(sim: RunningSimulator, book: str = "22bet", **kw: object) -> FeedConfig:
    return FeedConfig(
        name=f"sim_{book}",
        agent="linefeed",
        bookmaker=book,
        base_url=sim.book_url(book),
        http=FAST_HTTP,
        options={"sports": [1], "count": 100, "prematch": True, "live": True},
        **kw,
    )


def fault(sim: RunningSimulator, book: str, kind: str, count: int = 0, **extra: object) -> None:
    httpx.post(
        f"{sim.url}/_sim/fault", json={"book": book, "kind": kind, "count": count, **extra}
    ).raise_for_status()


def logged(warehouse: Warehouse, report: IngestReport) -> dict:
    rows = warehouse.query("select * from raw.feed_runs where feed_run_id = :r", {"r": report.feed_run_id})
    assert len(rows) == 1
    return rows[0]


def test_a_clean_cycle_writes_ticks_then_nothing_twice(sim: RunningSimulator, warehouse: Warehouse) -> None:
    first = ingest_feed(feed(sim), warehouse)
    assert first.status == "ok" and first.error is None
    assert first.prices_seen > 0 and first.ticks_written == first.prices_seen - first.rejected
    assert warehouse.count_ticks(first.feed_run_id) == first.ticks_written
    again = ingest_feed(feed(sim), warehouse)  # the market has not moved: nothing new
    assert again.status == "ok" and again.ticks_written == 0
    assert logged(warehouse, again)["prices_seen"] == again.prices_seen


def test_a_server_error_for_good_keeps_last_prices_and_says_so(
    sim: RunningSimulator, warehouse: Warehouse
) -> None:
    ingest_feed(feed(sim), warehouse)
    before = warehouse.count_ticks()
    fault(sim, "22bet", "http_500")
    report = ingest_feed(feed(sim), warehouse)
    assert report.status == "failed"
    assert "HTTP 500" in report.error and "keeping last prices" in report.error
    assert warehouse.count_ticks() == before
    row = logged(warehouse, report)
    assert row["status"] == "failed" and "HTTP 500" in row["error"]


def test_a_transient_503_is_retried(sim: RunningSimulator, warehouse: Warehouse) -> None:
    fault(sim, "22bet", "http_503", count=1)
    report = ingest_feed(feed(sim), warehouse)
    assert report.status == "ok" and report.ticks_written > 0


def test_429_retry_after_is_honoured(sim: RunningSimulator, warehouse: Warehouse) -> None:
    fault(sim, "22bet", "http_429", count=1, seconds=1)
    report = ingest_feed(feed(sim), warehouse)
    assert report.status == "ok" and report.ticks_written > 0
    assert report.fetch_seconds >= 0.9


def test_a_timeout_fails_the_feed_with_a_clear_message(sim: RunningSimulator, warehouse: Warehouse) -> None:
    fault(sim, "22bet", "timeout", seconds=3)
    report = ingest_feed(feed(sim), warehouse)
    assert report.status == "failed" and "timed out" in report.error
    assert warehouse.count_ticks() == 0


def test_truncated_json_is_quarantined_not_crashed(sim: RunningSimulator, warehouse: Warehouse) -> None:
    fault(sim, "22bet", "truncated_json")
    report = ingest_feed(feed(sim), warehouse)
    assert report.status == "failed" and "unreadable" in report.error
    reasons = [q["reason"] for q in warehouse.quarantined(report.feed_run_id)]
    assert reasons and all("JSON" in r for r in reasons)
    assert warehouse.count_ticks() == 0


def test_schema_drift_rejects_what_it_cannot_read(sim: RunningSimulator, warehouse: Warehouse) -> None:
    fault(sim, "22bet", "schema_drift")
    report = ingest_feed(feed(sim), warehouse)
    # every main price is renamed or a string here, so nothing usable is left
    assert report.status == "failed" and report.ticks_written == 0
    assert "100% of records rejected" in report.error and "schema drift?" in report.error
    assert report.rejected > 0
    assert report.rejected == len(warehouse.quarantined(report.feed_run_id))
    assert warehouse.count_bad_prices() == 0


@pytest.mark.parametrize("kind", ["zero_prices", "absurd_prices"])
def test_bad_prices_go_to_quarantine_and_the_rest_is_ingested(
    sim: RunningSimulator, warehouse: Warehouse, kind: str
) -> None:
    fault(sim, "22bet", kind)
    report = ingest_feed(feed(sim), warehouse)
    # one price in seven is broken: more than the 10 % a healthy feed sends, so the run is partial
    assert report.status == "partial" and report.error.endswith("the rest was ingested")
    assert 0 < report.rejected < report.prices_seen
    assert report.ticks_written == report.prices_seen - report.rejected
    quarantined = warehouse.quarantined(report.feed_run_id)
    assert len(quarantined) == report.rejected
    assert all("price" in q["reason"] for q in quarantined)
    assert warehouse.count_bad_prices() == 0


def test_an_empty_answer_is_not_an_error(sim: RunningSimulator, warehouse: Warehouse) -> None:
    fault(sim, "22bet", "empty")
    report = ingest_feed(feed(sim), warehouse)
    assert report.status == "ok" and report.prices_seen == 0 and report.ticks_written == 0


def test_a_feed_down_for_good_does_not_stop_the_others(sim: RunningSimulator, warehouse: Warehouse) -> None:
    down = FeedConfig(
        name="down",
        agent="linefeed",
        bookmaker="nowhere",
        base_url=f"http://127.0.0.1:{free_port()}",
        http=FAST_HTTP,
    )
    fault(sim, "melbet", "http_503")
    reports = {r.feed: r for r in ingest_feeds([down, feed(sim, "22bet"), feed(sim, "melbet")], warehouse)}
    assert reports["down"].status == "failed" and "refused" in reports["down"].error.lower()
    assert reports["sim_melbet"].status == "failed" and "HTTP 503" in reports["sim_melbet"].error
    assert reports["sim_22bet"].status == "ok" and reports["sim_22bet"].ticks_written > 0
    statuses = {r["feed"]: r["status"] for r in warehouse.feed_runs()}
    assert statuses == {"down": "failed", "sim_melbet": "failed", "sim_22bet": "ok"}
