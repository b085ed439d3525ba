"""The fast detectors inside the ingestion run: fresh ticks handed back by the write, state read
from raw.event_map and raw.latest_prices by selection key (DuckDB and PostgreSQL), and a detector
failure that costs no tick."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from oddly import ingest
from oddly.config import FeedConfig
from oddly.detect.pipeline import FAST_DETECTORS, detect_ingested
from oddly.detect.rules import Rules, parse_rules
from oddly.feeds.base import FetchOutcome, Payload
from oddly.matching.run import update_event_map
from oddly.model import PriceColumns, now_utc
from oddly.simulator.config import SimConfig
from oddly.simulator.market import Market
from oddly.warehouse.store import FeedRunRecord, Warehouse

RULES = parse_rules({"version": "it-1"})
T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
# Matching looks at events kicking off from six hours before the wall clock on.
KICK_OFF = now_utc().replace(microsecond=0) + timedelta(hours=3)
# Margin-free prices, so no-vig probabilities are the implied ones.
IN_LINE = {("1x2", None, "home"): 2.0, ("1x2", None, "draw"): 4.0, ("1x2", None, "away"): 4.0}
IN_LINE |= {("total", 2.5, "over"): 2.0, ("total", 2.5, "under"): 2.0}


def run_record(run_id: str, book: str, at: datetime) -> FeedRunRecord:
    return FeedRunRecord(
        run_id, f"f_{book}", book, "ok", at, at, 1, 0, 0, 0, 0, "{}", 0.0, 0.0, 0.0, "ok", None
    )


def book_prices(
    book: str, prices: dict[tuple[str, float | None, str], float], at: datetime, run_id: str
) -> tuple[pa.Table, FeedRunRecord]:
    rows = [
        {
            "bookmaker": book,
            "source_event_id": f"{book}-77",
            "sport": "football",
            "home": "Manta",
            "away": "9 de Octubre",
            "starts_at": KICK_OFF.timestamp(),
            "market": market,
            "line": line,
            "outcome": outcome,
            "price": price,
        }
        for (market, line, outcome), price in prices.items()
    ]
    return PriceColumns.from_records(rows).to_table(at, run_id), run_record(run_id, book, at)


def test_fresh_ticks_are_judged_against_every_books_latest_prices(warehouse: Warehouse) -> None:
    for book in ("a", "b", "c", "x"):
        table, record = book_prices(book, IN_LINE, T0, f"{book}-1")
        warehouse.write_run(table, [], record)
    update_event_map(warehouse)
    canonical = warehouse.scalar("select canonical_event_id from raw.event_map where bookmaker = 'x'")

    # x shortens its home 2.0 → 1.6 and drifts its over 2.5 to 2.6; the rest is unchanged.
    moved = {**IN_LINE, ("1x2", None, "home"): 1.6, ("total", 2.5, "over"): 2.6}
    table, record = book_prices("x", moved, T0 + timedelta(seconds=10), "x-2")
    ticks = warehouse.write_run_ticks(table, [], record)
    assert ticks.num_rows == 2 and sorted(ticks["previous_price"].to_pylist()) == [2.0, 2.0]
    assert warehouse.count_ticks("x-2") == 2  # committed before anything is detected

    found = detect_ingested(warehouse, ticks, RULES)
    # x's over 2.6 with the others' under 2.0 imply 88.5 %: an arbitrage, opened by x.
    assert sorted((d.type, d.market, d.outcome, d.bookmaker) for d in found) == [
        ("arbitrage", "total", "over", "x"),
        ("out_of_line", "1x2", "home", "x"),
        ("out_of_line", "total", "over", "x"),
        ("sharp_drop", "1x2", "home", "x"),
    ]
    assert {d.canonical_event_id for d in found} == {canonical}
    assert {d.detected_at for d in found} == {T0 + timedelta(seconds=10)}
    total = next(d for d in found if d.type == "out_of_line" and d.market == "total")
    # Its other outcome came from the state (x's unchanged under), the others' from three books.
    assert (total.line, total.reasons["other_books"], total.reasons["price"]) == (2.5, 3, 2.6)


def test_nothing_written_nothing_detected(warehouse: Warehouse) -> None:
    table, record = book_prices("a", IN_LINE, T0, "a-1")
    warehouse.write_run(table, [], record)
    again, record = book_prices("a", IN_LINE, T0 + timedelta(seconds=10), "a-2")
    ticks = warehouse.write_run_ticks(again, [], record)
    assert ticks.num_rows == 0 and "previous_price" in ticks.column_names
    assert detect_ingested(warehouse, ticks, RULES) == []


def sim_feed(book: str) -> FeedConfig:
    return FeedConfig(
        name=f"sim_{book}", agent="linefeed", bookmaker=book, base_url=f"http://127.0.0.1:9/{book}"
    )


def ingest_cycle(
    market: Market, warehouse: Warehouse, at: datetime, rules: Rules | None = None
) -> list[ingest.IngestReport]:
    reports = []
    for book in ("pinnacle", "22bet", "1xbet", "melbet", "betwinner"):
        payload = Payload(url="sim", body=market.linefeed_payload(book), received_at=at, kind="prematch")
        outcome = FetchOutcome(payloads=[payload], requests=1)
        feed = sim_feed(book)
        reports.append(
            ingest.process_fetched(feed, warehouse, ingest.start_report(feed), outcome, rules=rules)
        )
    return reports


def test_ingestion_runs_report_the_fast_detections(tmp_path: Path) -> None:
    warehouse = Warehouse.from_url(f"duckdb:///{tmp_path}/wh.duckdb")
    market = Market(
        SimConfig(seed=3, n_events=6, markets_per_event=4, manual_clock=True, scenarios_per_hour=3000)
    )
    ingest_cycle(market, warehouse, T0)
    update_event_map(warehouse)
    found = []
    for cycle in range(1, 7):
        market.advance(60)
        at = T0 + timedelta(minutes=cycle)
        for report in ingest_cycle(market, warehouse, at, rules=RULES):
            assert report.status == "ok" and report.detection_error is None
            assert report.as_metadata()["detections"] == len(report.detections)
            assert all(d.detected_at == at and d.rules_version == "it-1" for d in report.detections)
            found += report.detections
    assert found, "six minutes of a busy simulated market gave no detection at all"
    assert {d.type for d in found} <= set(FAST_DETECTORS)
    assert any(d.canonical_event_id is not None for d in found)
    warehouse.dispose()


def test_a_detector_failure_costs_no_tick(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> list[object]:
        raise RuntimeError("boom")

    monkeypatch.setattr(ingest, "detect_ingested", broken)
    warehouse = Warehouse.from_url(f"duckdb:///{tmp_path}/wh.duckdb")
    market = Market(SimConfig(seed=3, n_events=3, markets_per_event=2, manual_clock=True))
    [report, *_] = ingest_cycle(market, warehouse, T0, rules=RULES)
    assert report.status == "ok" and report.error is None
    assert report.ticks_written > 0 and warehouse.count_ticks(report.feed_run_id) == report.ticks_written
    assert report.detections == []
    assert report.detection_error == (
        f"feed sim_pinnacle: detectors failed (RuntimeError: boom); the run's {report.ticks_written} "
        "ticks are committed, its detections are lost"
    )
    assert report.as_metadata()["detection_error"] == report.detection_error
    warehouse.dispose()
