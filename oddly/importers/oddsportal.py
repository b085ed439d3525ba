"""Opening and closing average prices (the oddsportal layout) as ticks of the bookmaker
`oddsportal_avg`, in two observations (opening, closing), with the results for grading.

Layout: `Date (YYYY-MM-DD HH:MM:SS, Central European time), country, league, Season, HomeTeam,
AwayTeam, FTHG, FTAG, HTHG, HTAG`, then `<outcome>_open` / `<outcome>_close` for `home, draw,
away` (1X2), `over_2.5, under_2.5` (total 2.5) and `bts_yes, bts_no` (both teams to score).
Columns are read by name; a market whose columns are absent is skipped and counted. The prices
are averages over several books: `oddsportal_avg` is never mapped to canonical events (like
football-data's Max/Avg, see `oddly.importers.football_data`), so no cross-book mart counts it;
its ticks join `raw.results` on `source_event_id`.

When the opening prices were taken is not in the file: they are stamped a week before kick-off
(`OPENING_LEAD`; oddsportal lists a round's games about that far ahead), the closing ones five
minutes before kick-off, as football-data's. Bad input never raises (see `football_data`).
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from oddly.importers.football_data import (
    CLOSING_LEAD,
    Fixture,
    FootballDataFile,
    ImportReport,
    MarketLayout,
    Observation,
    PriceSet,
    Source,
    _csv_rows,
    _read_quotes,
    decode,
    write_files,
)
from oddly.importers.results import result_of
from oddly.model import Market, Outcome
from oddly.warehouse.store import Warehouse

SOURCE = "oddsportal"
BOOKMAKER = "oddsportal_avg"
CENTRAL_EUROPE = ZoneInfo("Europe/Berlin")
OPENING_LEAD = timedelta(days=7)
SUFFIXES = {Observation.OPENING: "_open", Observation.CLOSING: "_close"}
# market → the column stems of its outcomes, in the layout's order
MARKETS: tuple[tuple[MarketLayout, tuple[str, ...]], ...] = (
    (
        MarketLayout(Market.ONE_X_TWO.value, ("", "", ""), (Outcome.HOME, Outcome.DRAW, Outcome.AWAY)),
        ("home", "draw", "away"),
    ),
    (
        MarketLayout(Market.TOTAL.value, ("", ""), (Outcome.OVER, Outcome.UNDER), line=2.5),
        ("over_2.5", "under_2.5"),
    ),
    (MarketLayout(Market.BTTS.value, ("", ""), (Outcome.YES, Outcome.NO)), ("bts_yes", "bts_no")),
)
REQUIRED = ("Date", "HomeTeam", "AwayTeam")


def observed_at(kick_off: datetime, observation: Observation) -> datetime:
    """Opening prices a week before kick-off, closing ones five minutes before (assumed: see above)."""
    return kick_off - (OPENING_LEAD if observation is Observation.OPENING else CLOSING_LEAD)


ODDSPORTAL = Source(SOURCE, observed_at)


def price_sets(header: Sequence[str], report: ImportReport, name: str) -> list[PriceSet]:
    present = set(header)
    sets = []
    for layout, stems in MARKETS:
        for observation, suffix in SUFFIXES.items():
            columns = tuple(stem + suffix for stem in stems)
            missing = [c for c in columns if c not in present]
            if missing:
                report.skip(f"{layout.market} columns incomplete", f"{name}: no {', '.join(missing)}")
                continue
            sets.append(PriceSet(SOURCE, BOOKMAKER, observation, layout, columns))
    return sets


def parse_bytes(data: bytes, name: str, report: ImportReport) -> FootballDataFile:
    """The matches and sound price sets of one file's bytes (UTF-8, Windows-1252 or latin-1)."""
    text, encoding = decode(data)
    report.files.append(name)
    report.encodings[name] = encoding
    parsed = FootballDataFile(name)
    reader = csv.reader(io.StringIO(text))
    rows = _csv_rows(reader, name, report)
    header = [cell.strip().lstrip("\ufeff") for cell in next(rows, [])]
    missing = [column for column in REQUIRED if column not in header]
    if missing:
        report.skip("file without a required column", f"{name}: no {', '.join(missing)} column")
        return parsed
    sets = price_sets(header, report, name)
    seen: set[str] = set()
    for row in rows:
        where = f"{name}:{reader.line_num}"
        if not any(cell.strip() for cell in row):
            report.skip("blank row", where)
            continue
        report.rows += 1
        record = {key: value.strip() for key, value in zip(header, row, strict=False)}
        fixture = parse_fixture(record, Path(name).stem, where, report)
        if fixture is None:
            continue
        if fixture.source_event_id in seen:
            report.skip("duplicate match row", where)
            continue
        seen.add(fixture.source_event_id)
        parsed.fixtures.append(fixture)
        report.fixtures += 1
        _read_quotes(record, fixture, sets, where, parsed, report)
    return parsed


def parse_fixture(
    record: dict[str, str], default_league: str, where: str, report: ImportReport
) -> Fixture | None:
    home, away = record.get("HomeTeam", ""), record.get("AwayTeam", "")
    if not home or not away:
        report.skip("row without a team name", where)
        return None
    try:
        local = datetime.strptime(record.get("Date", ""), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        report.skip("row without a readable date", f"{where}: {record.get('Date', '')!r}")
        return None
    kick_off = local.replace(tzinfo=CENTRAL_EUROPE).astimezone(UTC)
    country = record.get("country") or None
    league = record.get("league") or default_league
    key = f"{country}|{league}|{kick_off:%Y-%m-%dT%H:%M}|{home}|{away}"
    home_goals, away_goals = _int(record.get("FTHG", "")), _int(record.get("FTAG", ""))
    return Fixture(
        division=league,
        country=country.title() if country else None,
        home=home,
        away=away,
        kick_off=kick_off,
        source_event_id="op_" + hashlib.sha1(key.encode()).hexdigest()[:16],
        home_goals=home_goals,
        away_goals=away_goals,
        result=result_of(home_goals, away_goals),
        home_goals_ht=_int(record.get("HTHG", "")),
        away_goals_ht=_int(record.get("HTAG", "")),
    )


def _int(text: str) -> int | None:
    try:
        return int(float(text))
    except ValueError:
        return None


def read_file(path: Path, report: ImportReport) -> FootballDataFile:
    try:
        data = path.read_bytes()
    except OSError as exc:
        report.skip("file unreadable", f"{path}: {exc.strerror or exc}")
        return FootballDataFile(path.name)
    return parse_bytes(data, path.name, report)


def import_files(
    warehouse: Warehouse,
    paths: Iterable[Path],
    observations: Sequence[Observation] = (Observation.OPENING, Observation.CLOSING),
) -> ImportReport:
    """Read the files, store their results, then one feed run per observation (opening first)."""
    report = ImportReport()
    files = [read_file(Path(p), report) for p in paths]
    return write_files(warehouse, files, report, ODDSPORTAL, observations)
