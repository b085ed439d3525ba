"""The football-data.co.uk importer on small hand-written CSV snippets: columns read by name, bad
cells skipped and counted with their reasons, UK kick-off times to UTC, unknown books kept, other
encodings, and the two observations written as change-only ticks with one canonical event."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from oddly.importers.football_data import (
    ABSURD,
    EMPTY_CELL,
    INCOMPLETE_SET,
    NOT_A_NUMBER,
    NOT_ABOVE_ONE,
    NOT_QUOTED,
    OLDER_THAN_STORED,
    FootballDataFile,
    ImportReport,
    Observation,
    Quote,
    import_files,
    observed_at,
    parse_bytes,
    read_file,
)
from oddly.matching.matcher import canonical_event_id
from oddly.warehouse.store import Warehouse

# Columns in an order of their own, two aggregates, and Pinnacle's closing set before its pre-match one.
HEADER = ",".join(
    [
        "Time,Div,HomeTeam,AwayTeam,Date,FTHG,FTAG,FTR",
        "PSCH,PSCD,PSCA,MaxH,MaxD,MaxA,PSH,PSD,PSA,AvgCH,AvgCD,AvgCA",
    ]
)


def parse(text: str, name: str = "E0.csv") -> tuple[FootballDataFile, ImportReport]:
    report = ImportReport()
    return parse_bytes(text.encode(), name, report), report


def prices(parsed: FootballDataFile) -> dict[tuple[str, str, str], tuple[float, ...]]:
    """(home team, bookmaker, observation) → prices."""
    return {(q.fixture.home, q.price_set.bookmaker, q.price_set.observation): q.prices for q in parsed.quotes}


def test_columns_are_read_by_name_and_aggregates_are_their_own_books() -> None:
    """Max and Avg are kept as the books market_max and market_avg (never mapped to canonical
    events: see tests/integration/test_import_football_data.py), or left out with aggregates=False."""
    row = (
        "20:00,E0,Liverpool,Bournemouth,15/08/2025,4,2,H,1.29,6.55,9.75,1.34,6.6,9.5,1.28,6.56,9.07,1.3,6,8.6"
    )
    parsed, report = parse(f"{HEADER}\n{row}\n")
    assert prices(parsed) == {
        ("Liverpool", "pinnacle", "prematch"): (1.28, 6.56, 9.07),
        ("Liverpool", "pinnacle", "closing"): (1.29, 6.55, 9.75),
        ("Liverpool", "market_max", "prematch"): (1.34, 6.6, 9.5),
        ("Liverpool", "market_avg", "closing"): (1.3, 6.0, 8.6),
    }
    books_only = parse_bytes(f"{HEADER}\n{row}\n".encode(), "E0.csv", ImportReport(), aggregates=False)
    assert {q.price_set.bookmaker for q in books_only.quotes} == {"pinnacle"}
    fixture = parsed.fixtures[0]
    assert (fixture.division, fixture.country, fixture.home_goals, fixture.away_goals, fixture.result) == (
        "E0",
        "England",
        4,
        2,
        "H",
    )
    assert not report.skipped and not report.unknown_codes
    assert report.quotes == {"prematch": 2, "closing": 2}


def test_older_books_and_a_code_ending_in_c() -> None:
    """VC (VC Bet) is a pre-match prefix, not the closing prices of a book "V"; VCC is its closing."""
    parsed, _ = parse(
        "Div,Date,HomeTeam,AwayTeam,WHH,WHD,WHA,VCH,VCD,VCA,VCCH,VCCD,VCCA,1XBH,1XBD,1XBA\n"
        "SC0,12/08/17,Celtic,Hearts,1.2,6.5,13,1.22,6.5,15,1.2,7,17,1.21,7.1,16\n"
    )
    assert prices(parsed) == {
        ("Celtic", "william_hill", "prematch"): (1.2, 6.5, 13.0),
        ("Celtic", "vc_bet", "prematch"): (1.22, 6.5, 15.0),
        ("Celtic", "vc_bet", "closing"): (1.2, 7.0, 17.0),
        ("Celtic", "1xbet", "prematch"): (1.21, 7.1, 16.0),
    }
    assert parsed.fixtures[0].country == "Scotland"


def test_an_unknown_book_code_is_kept_lower_cased_and_reported() -> None:
    parsed, report = parse(
        "Div,Date,Time,HomeTeam,AwayTeam,XYZH,XYZD,XYZA\nI1,23/08/2025,17:30,Genoa,Lecce,2,3.2,4\n"
    )
    assert prices(parsed) == {("Genoa", "xyz", "prematch"): (2.0, 3.2, 4.0)}
    assert report.unknown_codes == {"XYZ": 1}


def test_bad_cells_are_skipped_and_counted_with_reasons() -> None:
    parsed, report = parse(
        "Div,Date,Time,HomeTeam,AwayTeam,B365H,B365D,B365A,PSH,PSD,PSA,BWH,BWD,BWA\n"
        "E0,16/08/2025,15:00,Arsenal,Leeds,,4,5,1.00,3.9,5.2,abc,3.5,9999\n"
        "E0,16/08/2025,15:00,Everton,Fulham,2.1,3.3,3.6,,,,2,3.4,3.5\n"
    )
    assert prices(parsed) == {
        ("Everton", "bet365", "prematch"): (2.1, 3.3, 3.6),
        ("Everton", "bwin", "prematch"): (2.0, 3.4, 3.5),
    }
    assert report.skipped == {
        EMPTY_CELL: 1,
        NOT_ABOVE_ONE: 1,
        NOT_A_NUMBER: 1,
        ABSURD: 1,
        INCOMPLETE_SET: 3,  # a 1X2 set with one bad cell is dropped whole
        NOT_QUOTED: 1,  # Pinnacle did not price Everton v Fulham
    }
    assert report.examples[NOT_ABOVE_ONE] == "E0.csv:2 PSH='1.00'"
    # wrong values (not empty ones) go to the quarantine, with the book and the event
    quarantined = [(o, r.bookmaker, r.reason) for o, r in parsed.rejects]
    assert quarantined == [
        ("prematch", "pinnacle", f"PSH '1.00': {NOT_ABOVE_ONE}"),
        ("prematch", "bwin", f"BWH 'abc': {NOT_A_NUMBER}"),
        ("prematch", "bwin", f"BWA '9999': {ABSURD}"),
    ]


def test_a_missing_column() -> None:
    """Without Pinnacle's away column its set is skipped (and said so); without a team column the
    file has no matches, and the report says which column."""
    parsed, report = parse(
        "Div,Date,Time,HomeTeam,AwayTeam,PSH,PSD,B365H,B365D,B365A\nE0,16/08/2025,15:00,Arsenal,Leeds,1.5,4,1.5,4,6\n"
    )
    assert prices(parsed) == {("Arsenal", "bet365", "prematch"): (1.5, 4.0, 6.0)}
    assert report.skipped == {"1x2 columns incomplete": 1}
    assert report.examples["1x2 columns incomplete"] == "E0.csv: no PSA"

    parsed, report = parse("Div,Date,Time,HomeTeam,B365H,B365D,B365A\nE0,16/08/2025,15:00,Arsenal,1.5,4,6\n")
    assert parsed.fixtures == [] and parsed.quotes == []
    assert report.skipped == {"file without a required column": 1}
    assert "AwayTeam" in report.examples["file without a required column"]


def test_rows_without_date_or_team_blank_rows_and_duplicates() -> None:
    parsed, report = parse(
        "Div,Date,Time,HomeTeam,AwayTeam,PSH,PSD,PSA\n"
        "E0,16/08/2025,15:00,Arsenal,Leeds,1.5,4,6\n"
        "E0,16/08/2025,15:00,Arsenal,Leeds,1.5,4,6\n"
        "E0,someday,15:00,Everton,Fulham,2,3.4,3.5\n"
        "E0,16/08/2025,15:00,,Fulham,2,3.4,3.5\n"
        ",,,,,,,\n"
    )
    assert [f.home for f in parsed.fixtures] == ["Arsenal"] and len(parsed.quotes) == 1
    assert report.rows == 4 and report.fixtures == 1
    assert report.skipped == {
        "duplicate match row": 1,
        "row without a readable date": 1,
        "row without a team name": 1,
        "blank row": 1,
    }


def test_a_row_the_csv_reader_cannot_read_ends_the_file_without_raising() -> None:
    huge = "x" * 200_000  # above the csv module's field size limit
    parsed, report = parse(
        "Div,Date,Time,HomeTeam,AwayTeam,PSH,PSD,PSA\n"
        "E0,16/08/2025,15:00,Arsenal,Leeds,1.5,4,6\n"
        f"E0,16/08/2025,15:00,{huge},Fulham,2,3.4,3.5\n"
    )
    assert [f.home for f in parsed.fixtures] == ["Arsenal"]
    assert report.skipped == {"rest of file unreadable as CSV": 1}


@pytest.mark.parametrize(
    ("day", "clock", "utc"),
    [
        ("15/08/2025", "20:00", datetime(2025, 8, 15, 19, 0, tzinfo=UTC)),  # BST: UTC+1
        ("27/12/2025", "15:00", datetime(2025, 12, 27, 15, 0, tzinfo=UTC)),  # GMT: UTC
        ("25/10/2025", "12:30", datetime(2025, 10, 25, 11, 30, tzinfo=UTC)),  # last BST Saturday
        ("26/10/2025", "14:00", datetime(2025, 10, 26, 14, 0, tzinfo=UTC)),  # clocks went back at 02:00
        ("30/03/2025", "16:30", datetime(2025, 3, 30, 15, 30, tzinfo=UTC)),  # clocks went forward at 01:00
        ("12/08/17", "15:00", datetime(2017, 8, 12, 14, 0, tzinfo=UTC)),  # two-digit year
    ],
)
def test_uk_kick_off_times_become_utc(day: str, clock: str, utc: datetime) -> None:
    parsed, _ = parse(f"Div,Date,Time,HomeTeam,AwayTeam\nD1,{day},{clock},Bayern Munich,RB Leipzig\n")
    assert parsed.fixtures[0].kick_off == utc


def test_without_a_time_column_3pm_uk_is_assumed_and_counted() -> None:
    parsed, report = parse("Div,Date,HomeTeam,AwayTeam\nE0,12/08/17,Watford,Liverpool\n")
    assert parsed.fixtures[0].kick_off == datetime(2017, 8, 12, 14, 0, tzinfo=UTC)
    assert report.skipped == {"kick-off time missing, 15:00 UK assumed": 1}


@pytest.mark.parametrize(
    ("kick_off", "prematch"),
    [
        # Saturday 15:00 UK → Friday's 14:00 UK collection
        (datetime(2025, 8, 16, 14, 0, tzinfo=UTC), datetime(2025, 8, 15, 13, 0, tzinfo=UTC)),
        # Monday 20:00 UK → the Friday before
        (datetime(2025, 8, 18, 19, 0, tzinfo=UTC), datetime(2025, 8, 15, 13, 0, tzinfo=UTC)),
        # Tuesday 19:45 UK → that Tuesday's collection; Wednesday → Tuesday's
        (datetime(2025, 8, 19, 18, 45, tzinfo=UTC), datetime(2025, 8, 19, 13, 0, tzinfo=UTC)),
        (datetime(2025, 8, 20, 18, 45, tzinfo=UTC), datetime(2025, 8, 19, 13, 0, tzinfo=UTC)),
        # Friday 12:30 UK, before that day's collection → the Tuesday before (GMT in December)
        (datetime(2025, 12, 26, 12, 30, tzinfo=UTC), datetime(2025, 12, 23, 14, 0, tzinfo=UTC)),
    ],
)
def test_observation_times(kick_off: datetime, prematch: datetime) -> None:
    assert observed_at(kick_off, Observation.PREMATCH) == prematch
    assert observed_at(kick_off, Observation.CLOSING) == datetime.fromtimestamp(
        kick_off.timestamp() - 300, UTC
    )


def test_utf8_bom_and_latin1_files(tmp_path: Path) -> None:
    row = "F1,17/08/2025,16:15,Saint-Étienne,Nîmes,2.1,3.3,3.6\n"
    header = "Div,Date,Time,HomeTeam,AwayTeam,PSH,PSD,PSA\n"
    (tmp_path / "F1.csv").write_bytes((header + row).encode("latin-1"))
    (tmp_path / "F2.csv").write_bytes((header + row.replace("F1", "F2")).encode("utf-8-sig"))
    report = ImportReport()
    latin, bom = read_file(tmp_path / "F1.csv", report), read_file(tmp_path / "F2.csv", report)
    for parsed in (latin, bom):
        assert (parsed.fixtures[0].home, parsed.fixtures[0].away) == ("Saint-Étienne", "Nîmes")
        assert parsed.fixtures[0].country == "France" and len(parsed.quotes) == 1
    assert report.encodings == {"F1.csv": "cp1252", "F2.csv": "utf-8-sig"}
    missing = read_file(tmp_path / "nope.csv", report)
    assert missing.fixtures == [] and report.skipped == {"file unreadable": 1}


def test_two_observations_as_change_only_ticks_and_one_canonical_event(tmp_path: Path) -> None:
    """Pre-match then closing: a closing price equal to the pre-match one writes no tick; every
    book's event of the row maps to the matcher's canonical id of the match."""
    path = tmp_path / "E0.csv"
    path.write_text(
        "Div,Date,Time,HomeTeam,AwayTeam,PSH,PSD,PSA,PSCH,PSCD,PSCA,B365H,B365D,B365A,B365CH,B365CD,B365CA\n"
        "E0,16/08/2025,15:00,Man Utd,Arsenal,3.1,3.6,2.3,3.1,3.7,2.3,2.9,3.5,2.3,3.0,3.5,2.25\n"
        "E0,16/08/2025,15:00,Chelsea,Spurs,1.00,3.6,2.3,,,,2.0,3.5,3.6,2.0,3.5,3.6\n"
    )
    warehouse = Warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}")
    pre = import_files(warehouse, [path], [Observation.PREMATCH])
    close = import_files(warehouse, [path], [Observation.CLOSING])
    assert pre.ticks == {"prematch": 9} and close.ticks == {"closing": 3}  # PSCD, B365CH, B365CA moved
    quarantined = warehouse.quarantined()
    assert [(q["bookmaker"], q["reason"]) for q in quarantined] == [
        ("pinnacle", f"PSH '1.00': {NOT_ABOVE_ONE}")
    ]
    current = {
        (r["bookmaker"], r["home"], r["outcome"]): (r["price"], r["observed_at"])
        for r in warehouse.current_prices()
    }
    kick_off = pd.Timestamp("2025-08-16 14:00", tz="UTC")
    assert current["pinnacle", "Man Utd", "home"] == (3.1, observed_at(kick_off, Observation.PREMATCH))
    assert current["pinnacle", "Man Utd", "draw"] == (3.7, observed_at(kick_off, Observation.CLOSING))
    runs = warehouse.feed_runs()
    assert sorted(r["feed"] for r in runs) == ["football_data_closing", "football_data_prematch"]
    mapping = warehouse.query("select * from raw.event_map order by bookmaker, home_normalized")
    united = canonical_event_id("football", "manchester united", "arsenal", kick_off)
    assert [(m["bookmaker"], m["canonical_event_id"], m["method"]) for m in mapping] == [
        ("bet365", canonical_event_id("football", "chelsea", "tottenham hotspur", kick_off), "exact"),
        ("bet365", united, "exact"),
        ("pinnacle", united, "exact"),
    ]
    # importing again writes the same map and no tick
    again = import_files(warehouse, [path])
    assert again.ticks == {"prematch": 0, "closing": 0} and again.event_map_rows == 3
    # the three pre-match prices that moved at close are older than the stored closing ticks
    assert again.skipped[OLDER_THAN_STORED] == 3
    assert warehouse.scalar("select count(*) from raw.event_map") == 3
    warehouse.dispose()


def test_quote_keeps_results_for_grading() -> None:
    parsed, _ = parse(
        "Div,Date,Time,HomeTeam,AwayTeam,FTHG,FTAG,FTR,PSH,PSD,PSA\nE0,16/08/2025,15:00,A,B,0,0,D,2,3,4\n"
    )
    quote: Quote = parsed.quotes[0]
    assert (quote.fixture.home_goals, quote.fixture.away_goals, quote.fixture.result) == (0, 0, "D")
