"""raw.event_map from ingested ticks, on DuckDB and PostgreSQL, stable from run to run."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from oddly.matching import run as matching_run
from oddly.matching.run import MatchState, refresh_event_map, update_event_map
from oddly.model import PriceColumns, now_utc
from oddly.warehouse.store import FeedRunRecord, Warehouse

KICK_OFF = now_utc().replace(microsecond=0) + timedelta(hours=3)


def ingest(warehouse: Warehouse, run_id: str, *events: tuple[str, str, str, str]) -> None:
    rows = [
        {
            "bookmaker": book,
            "source_event_id": eid,
            "sport": "football",
            "home": home,
            "away": away,
            "starts_at": KICK_OFF.timestamp(),
            "market": "1x2",
            "outcome": "home",
            "price": 2.0,
        }
        for book, eid, home, away in events
    ]
    now = now_utc()
    run = FeedRunRecord(
        run_id, "f", "x", "ok", now, now, 1, len(rows), 0, 0, 0, "{}", 0.0, 0.0, 0.0, "ok", None
    )
    warehouse.write_run(PriceColumns.from_records(rows).to_table(now, run_id), [], run)


def mapped(warehouse: Warehouse) -> dict[tuple[str, str], str]:
    rows = warehouse.query("select bookmaker, source_event_id, canonical_event_id from raw.event_map")
    return {(r["bookmaker"], r["source_event_id"]): r["canonical_event_id"] for r in rows}


def test_event_map_joins_books_and_keeps_ids(warehouse: Warehouse) -> None:
    ingest(
        warehouse,
        "r1",
        ("pinnacle", "1", "Manchester United", "Tottenham Hotspur"),
        ("22bet", "77", "Man Utd", "Spurs"),
        ("22bet", "78", "Chelsea", "Arsenal"),
    )
    report = update_event_map(warehouse)
    assert (report.events, report.canonical_events, report.matched_across_books) == (3, 2, 1)
    first = mapped(warehouse)
    assert first[("pinnacle", "1")] == first[("22bet", "77")] != first[("22bet", "78")]

    ingest(warehouse, "r2", ("melbet", "5", "Manchester United FC", "Tottenham"))
    report = update_event_map(warehouse)
    second = mapped(warehouse)
    assert second[("melbet", "5")] == first[("pinnacle", "1")]
    assert {k: second[k] for k in first} == first  # ids stay
    methods = {r["method"] for r in warehouse.query("select method from raw.event_map")}
    assert methods == {"kept", "exact"}


def test_oddly_match_reports_in_words(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from oddly.cli import main

    wh = Warehouse.from_url(f"duckdb:///{tmp_path}/warehouse.duckdb")
    ingest(
        wh,
        "r1",
        ("pinnacle", "1", "Arsenal", "Chelsea"),
        ("22bet", "9", "Chelsea", "Arsenal"),
        ("melbet", "4", "Arsenal FC", "Chelsea FC"),
    )
    result = CliRunner().invoke(main, ["match"], env={"ODDLY_HOME": str(tmp_path), "ODDLY_WAREHOUSE_URL": ""})
    assert result.exit_code == 0, result.output
    assert (
        "3 bookmaker events → 2 canonical events, 1 listed at more than one book; 1 unmatched"
        in result.output
    )
    assert "unmatched: 22bet 9 Chelsea v Arsenal: home and away swapped against another book" in result.output


def test_a_long_lived_process_matches_again_only_for_new_events_or_when_a_full_pass_is_due(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest(
        warehouse,
        "r1",
        ("pinnacle", "1", "Manchester United", "Tottenham Hotspur"),
        ("22bet", "77", "Man Utd", "Spurs"),
    )
    state = MatchState()
    first = refresh_event_map(warehouse, state)
    assert first is not None and first.matched_across_books == 1 and state.load_seq == 1  # a new process
    assert refresh_event_map(warehouse, state) is None  # nothing arrived

    ingest(warehouse, "r2", ("pinnacle", "1", "Manchester United", "Tottenham Hotspur"))  # a known event
    assert refresh_event_map(warehouse, state) is None and state.load_seq == 2
    ingest(warehouse, "r3", ("melbet", "5", "Manchester United FC", "Tottenham"))  # one the map lacks
    again = refresh_event_map(warehouse, state)
    assert again is not None and state.load_seq == 3
    assert mapped(warehouse)[("melbet", "5")] == mapped(warehouse)[("pinnacle", "1")]

    monkeypatch.setattr(matching_run, "FULL_PASS_SECONDS", 0.0)  # due: a full pass whatever arrived
    assert refresh_event_map(warehouse, state) is not None


def test_aggregates_of_many_books_are_never_matched(warehouse: Warehouse) -> None:
    ingest(
        warehouse,
        "r1",
        ("pinnacle", "1", "Manchester United", "Tottenham Hotspur"),
        ("market_max", "1", "Manchester United", "Tottenham Hotspur"),
        ("market_avg", "1", "Manchester United", "Tottenham Hotspur"),
    )
    report = update_event_map(warehouse)
    assert report.events == 1 and set(mapped(warehouse)) == {("pinnacle", "1")}
