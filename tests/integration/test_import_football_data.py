"""`oddly import football-data` and `oddly import oddsportal` on the real files, with the counts per
file recomputed here with the csv module (matches; sound price sets per market, observation and
book), results stored for grading, the aggregate books kept out of the event map; and bad files
made in tmp_path (a missing column, empty cells, latin-1, a price of 0) imported as far as sound."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from oddly.cli import main
from oddly.importers import football_data, oddsportal
from oddly.importers.football_data import EMPTY_CELL, INCOMPLETE_SET, NOT_ABOVE_ONE
from oddly.warehouse.store import Warehouse

DIVISIONS = ("E0", "E1", "E2", "E3", "D1", "D2", "SP1", "SP2", "I1", "I2", "F1", "F2")
# The 2025/26 column sets, spelled out here (not taken from the importer): book → column prefix.
ONE_X_TWO = ["B365", "BFD", "BMGM", "BV", "BW", "CL", "LB", "PS", "Max", "Avg", "BFE"]
TWO_WAY = ["B365", "P", "Max", "Avg", "BFE"]


def _sound(row: dict[str, str], columns: list[str]) -> bool:
    try:
        return all(1 < float(row[c]) <= 5000 for c in columns)
    except (KeyError, ValueError):
        return False


def expected_sets(path: Path) -> tuple[int, Counter[str]]:
    """Matches and sound price sets per "observation market" of one football-data file."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if any(v.strip() for v in r.values() if v)]
    sets: Counter[str] = Counter()
    for row in rows:
        for observation, infix, line in (("prematch", "", "AHh"), ("closing", "C", "AHCh")):
            sets[f"{observation} 1x2"] += sum(
                _sound(row, [f"{b}{infix}{s}" for s in "HDA"]) for b in ONE_X_TWO
            )
            sets[f"{observation} total"] += sum(
                _sound(row, [f"{b}{infix}>2.5", f"{b}{infix}<2.5"]) for b in TWO_WAY
            )
            if row.get(line, "").strip():
                sets[f"{observation} asian_handicap"] += sum(
                    _sound(row, [f"{b}{infix}AHH", f"{b}{infix}AHA"]) for b in TWO_WAY
                )
    return len(rows), sets


@pytest.fixture(scope="module")
def football_folder(shared_data: Path) -> Path:
    return shared_data / "football-data"


@pytest.mark.parametrize("division", DIVISIONS)
def test_match_and_price_set_counts_per_file(football_folder: Path, division: str, tmp_path: Path) -> None:
    path = football_folder / f"{division}.csv"
    matches, sets = expected_sets(path)
    warehouse = Warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}")
    report = football_data.import_files(warehouse, [path])
    assert report.fixtures == report.rows == matches
    assert report.markets == sets
    assert report.results == matches == warehouse.scalar("select count(*) from raw.results")
    # the aggregate books have ticks but no canonical event: no cross-book mart sees them
    books = {r["bookmaker"] for r in warehouse.query("select distinct bookmaker from raw.odds_ticks")}
    mapped = {r["bookmaker"] for r in warehouse.query("select distinct bookmaker from raw.event_map")}
    assert {"market_max", "market_avg"} <= books and not mapped & {"market_max", "market_avg"}
    warehouse.dispose()


def test_exact_match_counts_of_the_season(football_folder: Path) -> None:
    """Hand-checked with `wc -l` (lines less the header) and recounted with the csv module."""
    counted = {d: expected_sets(football_folder / f"{d}.csv")[0] for d in DIVISIONS}
    assert counted == {
        "E0": 100, "E1": 167, "E2": 164, "E3": 168, "D1": 81, "D2": 99,
        "SP1": 110, "SP2": 132, "I1": 100, "I2": 109, "F1": 99, "F2": 116,
    }  # fmt: skip
    assert sum(counted.values()) == 1445


def test_results_for_grading(football_folder: Path, tmp_path: Path) -> None:
    warehouse = Warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}")
    football_data.import_files(warehouse, [football_folder / "E0.csv"])
    first = warehouse.query("select * from raw.results where home = 'Liverpool' and away = 'Bournemouth'")[0]
    assert (first["home_goals"], first["away_goals"], first["result"]) == (4, 2, "H")
    assert (first["home_goals_ht"], first["away_goals_ht"], first["source"]) == (1, 0, "football_data")
    mapped = warehouse.query(
        "select distinct canonical_event_id from raw.event_map where source_event_id = :id",
        {"id": first["source_event_id"]},
    )
    assert [m["canonical_event_id"] for m in mapped] == [first["canonical_event_id"]]
    # importing again replaces the results, never duplicates them
    football_data.import_files(warehouse, [football_folder / "E0.csv"])
    assert warehouse.scalar("select count(*) from raw.results") == 100
    warehouse.dispose()


ODDSPORTAL = {
    # lines less the header (`wc -l`), recounted with the csv module below
    "england_premier-league.csv": 5782,
    "germany_bundesliga.csv": 4691,
    "italy_serie-a.csv": 5798,
    "spain_laliga.csv": 5802,
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ODDSPORTAL))
def test_oddsportal_counts_per_file(shared_data: Path, name: str, tmp_path: Path) -> None:
    path = shared_data / "oddsportal" / name
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == ODDSPORTAL[name]
    expected: Counter[str] = Counter()
    for row in rows:
        for observation, suffix in (("opening", "_open"), ("closing", "_close")):
            for market, stems in (
                ("1x2", ("home", "draw", "away")),
                ("total", ("over_2.5", "under_2.5")),
                ("btts", ("bts_yes", "bts_no")),
            ):
                expected[f"{observation} {market}"] += _sound(row, [s + suffix for s in stems])
    warehouse = Warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}")
    report = oddsportal.import_files(warehouse, [path])
    assert report.fixtures == len(rows) and report.markets == expected
    assert warehouse.scalar("select count(*) from raw.results where source = 'oddsportal'") == len(rows)
    assert warehouse.scalar("select count(*) from raw.event_map") == 0  # an average, never mapped
    for observation in ("opening", "closing"):
        rows_of = sum(
            n * (3 if k.endswith("1x2") else 2) for k, n in expected.items() if k.startswith(observation)
        )
        assert report.prices[observation] == rows_of
    warehouse.dispose()


# --- bad files, through the command ------------------------------------------------------------


def run(tmp_path: Path, *args: str) -> str:
    env = {"ODDLY_HOME": str(tmp_path / "home")}
    result = CliRunner().invoke(main, ["import", *args], env=env)
    assert result.exit_code == 0, result.output
    return result.output


def test_bad_football_data_files_import_as_far_as_sound(tmp_path: Path) -> None:
    header = "Div,Date,Time,HomeTeam,AwayTeam,FTHG,FTAG,FTR,PSH,PSD,PSA,B365H,B365D,B365A,AHh,PAHH,PAHA"
    missing = tmp_path / "E1.csv"  # no PSA column, no AwayTeam in the second file
    missing.write_text(
        "Div,Date,Time,HomeTeam,AwayTeam,PSH,PSD,B365H,B365D,B365A\nE1,16/08/2025,15:00,Leeds,Hull,2,3,2.1,3.2,3.3\n"
    )
    no_team = tmp_path / "E2.csv"
    no_team.write_text("Div,Date,HomeTeam,B365H,B365D,B365A\nE2,16/08/2025,Bury,2,3,4\n")
    empty = tmp_path / "E3.csv"  # empty cells and a price of 0
    empty.write_text(
        f"{header}\nE3,16/08/2025,15:00,Crewe,Bury,1,1,D,,3.3,3.4,0,3.1,3.9,-0.25,1.9,1.95\n"
        "E3,16/08/2025,15:00,Wigan,Bolton,0,2,A,2.5,3.2,2.9,2.4,3.3,3.0,,1.8,2.0\n"
    )
    latin = tmp_path / "F1.csv"
    latin.write_bytes(
        f"{header}\nF1,17/08/2025,16:15,Nîmes,Saint-Étienne,1,0,H,2,3.3,3.6,2,3.2,3.5,0,2,1.8\n".encode(
            "latin-1"
        )
    )
    out = run(
        tmp_path,
        "football-data",
        str(missing),
        str(no_team),
        str(empty),
        str(latin),
        str(tmp_path / "no.csv"),
    )
    assert "E1.csv: 1 matches of 1 rows" in out and "1x2 columns incomplete (first: E1.csv: no PSA)" in out
    assert "E2.csv: 0 matches" in out and "file without a required column" in out
    assert "E3.csv: 2 matches of 2 rows (utf-8-sig), 2 results stored" in out
    assert (
        f"{EMPTY_CELL} (first: E3.csv:2 PSH='')" in out
        and f"{NOT_ABOVE_ONE} (first: E3.csv:2 B365H='0')" in out
    )
    assert f"skipped 2: {INCOMPLETE_SET}" in out
    assert "handicap line cell empty or not a number (first: E3.csv:3 AHh='')" in out
    assert "F1.csv: 1 matches of 1 rows (cp1252)" in out and "no.csv: 0 matches" in out
    warehouse = Warehouse(f"duckdb:///{tmp_path / 'home' / 'warehouse.duckdb'}")
    prices = {
        (r["home"], r["bookmaker"], r["market"], r["line"], r["outcome"]): r["price"]
        for r in warehouse.current_prices()
    }
    assert prices[("Nîmes", "pinnacle", "asian_handicap", 0.0, "home")] == 2.0
    assert prices[("Crewe", "pinnacle", "asian_handicap", -0.25, "away")] == 1.95
    assert ("Crewe", "bet365", "1x2", None, "draw") not in prices  # its set had the 0
    assert [q["reason"] for q in warehouse.quarantined()] == [f"B365H '0': {NOT_ABOVE_ONE}"]
    warehouse.dispose()


def test_a_bad_oddsportal_file(tmp_path: Path) -> None:
    path = tmp_path / "league.csv"
    path.write_bytes(
        "Date,country,league,Season,HomeTeam,AwayTeam,FTHG,FTAG,home_close,home_open,draw_close,draw_open\n"
        "2024-08-16 21:00:00,england,premier-league,2024-2025,Man United,Fulham,1,0,1.65,1.55,4.19,4.15\n"
        "2024-08-17 13:30:00,england,premier-league,2024-2025,Ipswich,Liverpool,0,2,0,7.78,5.77,\n"
        "someday,england,premier-league,2024-2025,Köln,Fulham,1,0,1.65,1.55,4.19,4.15\n".encode("latin-1")
    )
    out = run(tmp_path, "oddsportal", str(path))
    assert "league.csv: 2 matches of 3 rows (cp1252), 2 results stored" in out
    assert "1x2 columns incomplete (first: league.csv: no away_open)" in out
    assert "row without a readable date" in out and "total columns incomplete" in out
