"""football-data.co.uk CSV files as canonical price rows, in two observations per book (pre-match and
closing), written to the warehouse as two feed runs plus the event map that joins every book's event.

Layout (season 2025/26; older seasons have other books and columns, so columns are read by name,
never by position): `Div, Date (dd/mm/yyyy or dd/mm/yy), Time (UK local time), HomeTeam, AwayTeam,
FTHG, FTAG, FTR, HTHG, HTAG`, then per book `<BOOK>H/D/A` (pre-match 1X2) and `<BOOK>CH/CD/CA`
(closing 1X2), `<BOOK>>2.5`/`<BOOK><2.5` (over/under 2.5 goals; closing `<BOOK>C>2.5`) and
`<BOOK>AHH`/`<BOOK>AHA` (Asian handicap at the row's line `AHh`, the home side's handicap;
closing `<BOOK>CAHH` at `AHCh`; Betbrain's line `BbAHh` in old seasons). Pinnacle is `PS` in
1X2 and `P` elsewhere; `BFE` is Betfair Exchange (`betfair_ex`, back prices before commission).

`Max`/`Avg` (and Betbrain's `BbMx`/`BbAv` in old seasons) are the best and the mean price over
many books, not a book one can bet with: they are kept as bookmakers `market_max` and
`market_avg` (queryable like any book's ticks) but never joined to canonical events in
`raw.event_map`, so the cross-book marts (consensus, divergence, value, arbitrage, steam,
bookmaker quality) leave them out: the maximum over books the warehouse does not hold would
show arbitrage that no one could place, and the average would count the other books twice.

When a price was taken is not in the file. football-data collects its "pre-match" odds on Tuesday
afternoons for midweek games and on Friday afternoons for weekend games, and its closing odds as
close to kick-off as it can: `observed_at` follows that schedule (see `observed_at` below).

Bad input never raises: an empty cell, a price of 1 or less, a missing column, a row without a
date, a latin-1 file — the unsound part is skipped and counted with its reason in `ImportReport`;
cells holding a wrong value also go to `raw.quarantine` with the run that skipped them.

Results (`FTHG`, `FTAG`, `FTR`, half-time goals) go to `raw.results` for grading
(`oddly.importers.results`). `oddly import football-data FILE…` (`oddly.importers.cli`) runs this.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time as clock
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from oddly.importers.results import write_results
from oddly.matching.aliases import canonical_team, load_aliases
from oddly.matching.matcher import canonical_event_id
from oddly.model import (
    AGGREGATE_BOOKMAKERS,
    MAX_PRICE,
    MIN_PRICE_EXCLUSIVE,
    SELECTION_KEY,
    Market,
    Outcome,
    PriceColumns,
    Reject,
    Status,
    now_utc,
)
from oddly.validate import validate_batch
from oddly.warehouse import schema
from oddly.warehouse.store import FeedRunRecord, Warehouse

SOURCE = "football_data"
SPORT = "football"
UK_TIME = ZoneInfo("Europe/London")


class Observation(StrEnum):
    OPENING = "opening"
    PREMATCH = "prematch"
    CLOSING = "closing"


# The infix between book code and outcome suffix that marks closing prices (`PSCH`, `B365CA`).
CLOSING_INFIX = "C"
# Pre-match odds are collected on Tuesday (midweek games) and Friday (weekend games) afternoons.
PREMATCH_WEEKDAYS = frozenset({1, 4})
PREMATCH_TIME = time(14, 0)
# A collection this close to kick-off is too late to be the game's pre-match one; the one before is.
PREMATCH_MIN_LEAD = timedelta(hours=2)
# Closing odds are taken as close to kick-off as football-data can; a few minutes before it.
CLOSING_LEAD = timedelta(minutes=5)
# Stands for "no line" when selections are compared in pandas, where a null would not match itself.
_NO_LINE = -1e9
# Seasons before 2019/20 have no Time column: the traditional 3 pm kick-off is assumed (and counted).
DEFAULT_KICK_OFF = time(15, 0)

# football-data book codes → the bookmaker names the warehouse uses (sharp books as in dbt's
# `sharp_books`); a code not listed here is kept under its lower-cased code and reported.
BOOKMAKERS: dict[str, str] = {
    "B365": "bet365",
    "BFD": "betfred",
    "BMGM": "betmgm",
    "BV": "betvictor",
    "BW": "bwin",
    "CL": "coral",
    "LB": "ladbrokes",
    "PS": "pinnacle",
    "P": "pinnacle",
    "BFE": "betfair_ex",
    "WH": "william_hill",
    "VC": "vc_bet",
    "IW": "interwetten",
    "1XB": "1xbet",
    "GB": "gamebookers",
    "BS": "blue_square",
    "SB": "sportingbet",
    "SJ": "stan_james",
    "SO": "sporting_odds",
    "SY": "stanleybet",
}
# Columns that aggregate many books (market maximum and average): kept as these bookmakers, which
# are never mapped to canonical events (see the module docstring).
AGGREGATES: dict[str, str] = {
    "Max": "market_max",
    "Avg": "market_avg",
    "BbMx": "market_max",
    "BbAv": "market_avg",
}
assert set(AGGREGATES.values()) <= AGGREGATE_BOOKMAKERS
# Division code letters → country (E0 Premier League … EC National League, SC0 Scottish Premiership).
COUNTRIES: dict[str, str] = {
    "E": "England",
    "EC": "England",
    "SC": "Scotland",
    "D": "Germany",
    "SP": "Spain",
    "I": "Italy",
    "F": "France",
    "N": "Netherlands",
    "B": "Belgium",
    "P": "Portugal",
    "T": "Turkey",
    "G": "Greece",
}
# Column names per role, first present wins (the "extra leagues" files say Home/Away/HG/AG/Res).
ROLES: dict[str, tuple[str, ...]] = {
    "division": ("Div", "League"),
    "country": ("Country",),
    "date": ("Date",),
    "time": ("Time",),
    "home": ("HomeTeam", "Home", "HT"),
    "away": ("AwayTeam", "Away", "AT"),
    "home_goals": ("FTHG", "HG"),
    "away_goals": ("FTAG", "AG"),
    "result": ("FTR", "Res"),
    "home_goals_ht": ("HTHG",),
    "away_goals_ht": ("HTAG",),
}
REQUIRED_ROLES = ("date", "home", "away")

# Reasons counted in the report (stable texts, so counts of alike problems add up).
EMPTY_CELL = "empty price cell"
NOT_A_NUMBER = "price cell not a number"
NOT_ABOVE_ONE = "price not above 1"
ABSURD = f"price above {MAX_PRICE:g}"
INCOMPLETE_SET = "incomplete price set skipped"
OLDER_THAN_STORED = "price older than the one stored for its selection (re-import), not written"
NOT_QUOTED = "price set not quoted (all cells empty)"
NO_LINE = "handicap line cell empty or not a number"


@dataclass(frozen=True)
class MarketLayout:
    """Where one market's prices are: after the book code (and the closing infix), one column
    suffix per outcome, in the same order as `outcomes`."""

    market: str
    suffixes: tuple[str, ...]
    outcomes: tuple[str, ...]
    line: float | None = None
    # the row's line column per observation, first present wins (Asian handicap)
    line_columns: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def line_columns_of(self, observation: str) -> tuple[str, ...]:
        return next((columns for obs, columns in self.line_columns if obs == observation), ())


ONE_X_TWO = MarketLayout(
    Market.ONE_X_TWO.value, ("H", "D", "A"), (Outcome.HOME.value, Outcome.DRAW.value, Outcome.AWAY.value)
)
OVER_UNDER_25 = MarketLayout(
    Market.TOTAL.value, (">2.5", "<2.5"), (Outcome.OVER.value, Outcome.UNDER.value), 2.5
)
ASIAN_HANDICAP = MarketLayout(
    Market.ASIAN_HANDICAP.value,
    ("AHH", "AHA"),
    (Outcome.HOME.value, Outcome.AWAY.value),
    line_columns=((Observation.PREMATCH, ("AHh", "BbAHh")), (Observation.CLOSING, ("AHCh",))),
)
LAYOUTS: tuple[MarketLayout, ...] = (ONE_X_TWO, OVER_UNDER_25, ASIAN_HANDICAP)


@dataclass(frozen=True)
class PriceSet:
    """The columns of one book's prices of one market at one observation, in layout order."""

    code: str
    bookmaker: str
    observation: Observation
    layout: MarketLayout
    columns: tuple[str, ...]
    line_column: str | None = None
    known: bool = True  # a book code of BOOKMAKERS or AGGREGATES (else kept lower-cased, reported)


@dataclass(frozen=True)
class Fixture:
    """One match row: what every book's prices of it share, and its result (kept for grading)."""

    division: str
    country: str | None
    home: str
    away: str
    kick_off: datetime
    source_event_id: str
    home_goals: int | None = None
    away_goals: int | None = None
    result: str | None = None
    home_goals_ht: int | None = None
    away_goals_ht: int | None = None
    sport: str = "football"


@dataclass(frozen=True)
class Quote:
    """One book's complete, sound prices of one market for one fixture at one observation."""

    fixture: Fixture
    price_set: PriceSet
    prices: tuple[float, ...]
    line: float | None = None  # the row's own line (Asian handicap), else the layout's


@dataclass
class FootballDataFile:
    """What one file held that can become prices, and the bad cells to quarantine."""

    name: str
    fixtures: list[Fixture] = field(default_factory=list)
    quotes: list[Quote] = field(default_factory=list)
    rejects: list[tuple[Observation, Reject]] = field(default_factory=list)


@dataclass
class ImportReport:
    """What an import read, wrote and skipped, in counts and with a first example of each problem."""

    files: list[str] = field(default_factory=list)
    encodings: dict[str, str] = field(default_factory=dict)
    rows: int = 0
    fixtures: int = 0
    quotes: Counter[str] = field(default_factory=Counter)  # observation → book price sets read
    markets: Counter[str] = field(default_factory=Counter)  # "observation market" → price sets read
    results: int = 0  # rows written to raw.results
    prices: Counter[str] = field(default_factory=Counter)  # observation → prices written
    ticks: Counter[str] = field(default_factory=Counter)  # observation → ticks written
    unknown_codes: Counter[str] = field(default_factory=Counter)  # book code → price sets kept
    skipped: Counter[str] = field(default_factory=Counter)  # reason → count
    examples: dict[str, str] = field(default_factory=dict)  # reason → where it was first seen
    event_map_rows: int = 0
    feed_runs: list[str] = field(default_factory=list)

    def skip(self, reason: str, where: str, count: int = 1) -> None:
        self.skipped[reason] += count
        self.examples.setdefault(reason, where)

    def summary(self) -> str:
        skipped = ", ".join(f"{reason} ×{n}" for reason, n in self.skipped.most_common()) or "nothing"
        return (
            f"{len(self.files)} files, {self.rows} rows, {self.fixtures} matches; price sets read "
            f"{_plain(self.quotes)}, prices {_plain(self.prices)}, ticks written {_plain(self.ticks)}, "
            f"results {self.results}; skipped: {skipped}"
        )


def _plain(counts: Counter[str]) -> str:
    return ", ".join(f"{key} {n:,}" for key, n in counts.items()) or "none"


# --- reading ---------------------------------------------------------------------------------


def read_file(
    path: Path, report: ImportReport, layouts: Sequence[MarketLayout] = LAYOUTS, aggregates: bool = True
) -> FootballDataFile:
    """One CSV file; an unreadable file is counted and comes back empty."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        report.skip("file unreadable", f"{path}: {exc.strerror or exc}")
        return FootballDataFile(path.name)
    return parse_bytes(data, path.name, report, layouts, aggregates)


def parse_bytes(
    data: bytes,
    name: str,
    report: ImportReport,
    layouts: Sequence[MarketLayout] = LAYOUTS,
    aggregates: bool = True,
) -> FootballDataFile:
    """The fixtures and sound price sets of one file's bytes (UTF-8 with or without BOM, or latin-1)."""
    text, encoding = decode(data)
    report.files.append(name)
    report.encodings[name] = encoding
    parsed = FootballDataFile(name)
    reader = csv.reader(io.StringIO(text))
    rows = _csv_rows(reader, name, report)
    header = [cell.strip().lstrip("\ufeff") for cell in next(rows, [])]
    roles = _roles(header)
    missing = [role for role in REQUIRED_ROLES if role not in roles]
    if missing:
        report.skip("file without a required column", f"{name}: no {'/'.join(ROLES[missing[0]])} column")
        return parsed
    sets = [s for layout in layouts for s in find_price_sets(header, layout, report, name, aggregates)]
    default_division = Path(name).stem
    seen: set[str] = set()
    for row in rows:
        where = f"{name}:{reader.line_num}"
        record = dict(zip(header, row, strict=False))
        if not any(cell.strip() for cell in row):
            report.skip("blank row", where)
            continue
        report.rows += 1
        fixture = parse_fixture(record, roles, default_division, where, report)
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


def _csv_rows(reader: Iterator[list[str]], name: str, report: ImportReport) -> Iterator[list[str]]:
    """The rows of a CSV reader until the end or the first row it cannot read (counted)."""
    line = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            report.skip("rest of file unreadable as CSV", f"{name}: after line {line}: {exc}")
            return
        line += 1
        yield row


def decode(data: bytes) -> tuple[str, str]:
    """Text and the encoding it was read with: UTF-8 (a BOM dropped), else Windows-1252, else latin-1
    (which reads any bytes), since older football-data files are not UTF-8."""
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "latin-1"


def _roles(header: Sequence[str]) -> dict[str, str]:
    present = set(header)
    return {
        role: next(name for name in names if name in present)
        for role, names in ROLES.items()
        if any(name in present for name in names)
    }


def find_price_sets(
    header: Sequence[str], layout: MarketLayout, report: ImportReport, where: str, aggregates: bool = True
) -> list[PriceSet]:
    """Every book's column set of one market, by column name: a prefix followed by all of the
    layout's suffixes is a book (with the closing infix stripped); aggregates become the
    `market_max`/`market_avg` books, or are left out with `aggregates=False`. A market whose
    line is a column of its own needs that column for the observation (else counted)."""
    found: dict[str, set[str]] = {}
    for name in header:
        for suffix in layout.suffixes:
            if name.endswith(suffix) and len(name) > len(suffix):
                found.setdefault(name[: -len(suffix)], set()).add(suffix)
    complete = {prefix for prefix, suffixes in found.items() if len(suffixes) == len(layout.suffixes)}
    sets: list[PriceSet] = []
    taken: set[tuple[str, Observation]] = set()
    for prefix, suffixes in found.items():
        code, observation = split_prefix(prefix, complete)
        if code in AGGREGATES and not aggregates:
            continue
        if prefix not in complete:
            # a known book with a column missing; an unknown partial prefix is another market's
            if code in BOOKMAKERS or code in AGGREGATES:
                absent = ", ".join(prefix + s for s in layout.suffixes if s not in suffixes)
                report.skip(f"{layout.market} columns incomplete", f"{where}: no {absent}")
            continue
        bookmaker = AGGREGATES.get(code) or BOOKMAKERS.get(code, code.lower())
        if (bookmaker, observation) in taken:
            report.skip("second column set of one bookmaker", f"{where}: {prefix}")
            continue
        line_column = None
        if layout.line_columns:
            present = [c for c in layout.line_columns_of(observation) if c in header]
            if not present:
                wanted = "/".join(layout.line_columns_of(observation)) or "line"
                report.skip(f"{layout.market} line column missing", f"{where}: no {wanted} for {prefix}")
                continue
            line_column = present[0]
        taken.add((bookmaker, observation))
        columns = tuple(prefix + s for s in layout.suffixes)
        sets.append(PriceSet(code, bookmaker, observation, layout, columns, line_column, is_known_code(code)))
    return sets


def is_known_code(code: str) -> bool:
    return code in BOOKMAKERS or code in AGGREGATES


def split_prefix(prefix: str, complete: set[str]) -> tuple[str, Observation]:
    """`PSC` → (`PS`, closing) when `PS` is a book (known, or with columns of its own); `VC` stays VC
    Bet's pre-match prefix, since no `V` book exists."""
    base = prefix[: -len(CLOSING_INFIX)]
    if (
        prefix.endswith(CLOSING_INFIX)
        and base
        and (base in BOOKMAKERS or base in AGGREGATES or base in complete)
    ):
        return base, Observation.CLOSING
    return prefix, Observation.PREMATCH


def parse_fixture(
    record: dict[str, str], roles: dict[str, str], default_division: str, where: str, report: ImportReport
) -> Fixture | None:
    """The match of one row, or None (counted) when its date or a team is missing."""
    cell = {role: record.get(column, "").strip() for role, column in roles.items()}
    home, away = cell.get("home", ""), cell.get("away", "")
    if not home or not away:
        report.skip("row without a team name", where)
        return None
    day = parse_date(cell.get("date", ""))
    if day is None:
        report.skip("row without a readable date", f"{where}: {cell.get('date', '')!r}")
        return None
    division = cell.get("division") or default_division
    return Fixture(
        division=division,
        country=cell.get("country") or country_of(division),
        home=home,
        away=away,
        kick_off=kick_off_utc(day, _kick_off_time(cell.get("time", ""), where, report)),
        source_event_id=source_event_id(division, day, home, away),
        home_goals=_int(cell.get("home_goals", "")),
        away_goals=_int(cell.get("away_goals", "")),
        result=cell.get("result") if cell.get("result") in ("H", "D", "A") else None,
        home_goals_ht=_int(cell.get("home_goals_ht", "")),
        away_goals_ht=_int(cell.get("away_goals_ht", "")),
    )


def parse_date(text: str) -> date | None:
    for fmt in ("%d/%m/%Y", "%d/%m/%y"):
        try:
            return datetime.strptime(text.strip(), fmt).date()
        except ValueError:
            continue
    return None


def _kick_off_time(text: str, where: str, report: ImportReport) -> time:
    if not text:
        report.skip("kick-off time missing, 15:00 UK assumed", where)
        return DEFAULT_KICK_OFF
    try:
        return datetime.strptime(text, "%H:%M").time()
    except ValueError:
        report.skip("kick-off time unreadable, 15:00 UK assumed", f"{where}: {text!r}")
        return DEFAULT_KICK_OFF


def kick_off_utc(day: date, local_time: time) -> datetime:
    """football-data gives UK local kick-off times (for every country's games): BST or GMT → UTC."""
    return datetime.combine(day, local_time, tzinfo=UK_TIME).astimezone(UTC)


def country_of(division: str) -> str | None:
    letters = division.rstrip("0123456789")
    return COUNTRIES.get(letters)


def source_event_id(division: str, day: date, home: str, away: str) -> str:
    """Stable id of a match row, the same for every book's prices of it (and on every re-import)."""
    key = f"{division}|{day.isoformat()}|{home}|{away}"
    return "fd_" + hashlib.sha1(key.encode()).hexdigest()[:16]


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def parse_price(text: str) -> tuple[float | None, str | None]:
    """A decimal price, or None and why it is not one."""
    if not text:
        return None, EMPTY_CELL
    try:
        value = float(text)
    except ValueError:
        return None, NOT_A_NUMBER
    if not np.isfinite(value):
        return None, NOT_A_NUMBER
    if value <= MIN_PRICE_EXCLUSIVE:
        return None, NOT_ABOVE_ONE
    if value > MAX_PRICE:
        return None, ABSURD
    return value, None


def _read_quotes(
    record: dict[str, str],
    fixture: Fixture,
    sets: Sequence[PriceSet],
    where: str,
    parsed: FootballDataFile,
    report: ImportReport,
) -> None:
    for price_set in sets:
        cells = [record.get(column, "").strip() for column in price_set.columns]
        if not any(cells):
            report.skip(NOT_QUOTED, f"{where} {price_set.code}")
            continue
        prices: list[float] = []
        for column, text in zip(price_set.columns, cells, strict=True):
            value, problem = parse_price(text)
            if problem is None and value is not None:
                prices.append(value)
                continue
            report.skip(problem or NOT_A_NUMBER, f"{where} {column}={text!r}")
            if problem != EMPTY_CELL:
                parsed.rejects.append(
                    (price_set.observation, _reject(price_set, fixture, column, text, where))
                )
        if len(prices) < len(price_set.columns):
            # a partial 1X2 set would give a false overround and false arbitrage: all or nothing
            report.skip(INCOMPLETE_SET, f"{where} {price_set.code}")
            continue
        line = price_set.layout.line
        if price_set.line_column is not None:
            line = _line(record.get(price_set.line_column, ""))
            if line is None:
                report.skip(NO_LINE, f"{where} {price_set.line_column}={record.get(price_set.line_column)!r}")
                continue
        parsed.quotes.append(Quote(fixture, price_set, tuple(prices), line))
        report.quotes[price_set.observation] += 1
        report.markets[f"{price_set.observation} {price_set.layout.market}"] += 1
        if not price_set.known:
            report.unknown_codes[price_set.code] += 1


def _line(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value + 0.0 if np.isfinite(value) else None  # + 0.0: -0.0 is the 0 line


def _reject(price_set: PriceSet, fixture: Fixture, column: str, text: str, where: str) -> Reject:
    reason = f"{column} {text!r}: {parse_price(text)[1]}"
    record = {
        "where": where,
        "column": column,
        "value": text,
        "division": fixture.division,
        "home": fixture.home,
        "away": fixture.away,
        "kick_off": fixture.kick_off.isoformat(),
    }
    return Reject(reason, record, price_set.bookmaker, fixture.source_event_id)


# --- observation times -----------------------------------------------------------------------


def observed_at(kick_off: datetime, observation: Observation) -> datetime:
    """When football-data took a price: the closing one a few minutes before kick-off; the pre-match
    one at the last Tuesday or Friday 14:00 UK collection at least two hours before kick-off."""
    if observation is Observation.CLOSING:
        return kick_off - CLOSING_LEAD
    latest = (kick_off - PREMATCH_MIN_LEAD).astimezone(UK_TIME)
    for days_back in range(8):
        day = latest.date() - timedelta(days=days_back)
        collected = datetime.combine(day, PREMATCH_TIME, tzinfo=UK_TIME)
        if day.weekday() in PREMATCH_WEEKDAYS and collected <= latest:
            return collected.astimezone(UTC)
    raise AssertionError("a Tuesday or Friday lies within any eight days")


# --- canonical rows and writing --------------------------------------------------------------


def price_columns(quotes: Sequence[Quote]) -> PriceColumns:
    """Canonical rows, one event entry per quote (a book's set of one fixture)."""
    columns = PriceColumns()
    markets: list[str] = []
    lines: list[float | None] = []
    outcomes: list[str] = []
    prices: list[float] = []
    for quote in quotes:
        fixture, layout = quote.fixture, quote.price_set.layout
        columns.add_event(
            len(quote.prices),
            bookmaker=quote.price_set.bookmaker,
            source_event_id=fixture.source_event_id,
            sport=fixture.sport,
            league=fixture.division,
            country=fixture.country,
            home=fixture.home,
            away=fixture.away,
            starts_at=fixture.kick_off.timestamp(),
        )
        markets += [layout.market] * len(quote.prices)
        lines += [quote.line] * len(quote.prices)
        outcomes += layout.outcomes
        prices += quote.prices
    columns.market, columns.line, columns.outcome, columns.price = markets, lines, outcomes, prices
    columns.status = [Status.OPEN.value] * len(prices)
    return columns


@dataclass(frozen=True)
class Source:
    """A historic source: its name (feed runs are `<name>_<observation>`, results are keyed by it)
    and when it took each observation's prices."""

    name: str
    observed_at: Callable[[datetime, Observation], datetime]


def price_table(
    quotes: Sequence[Quote], feed_run_id: str, source: Source | None = None
) -> tuple[pa.Table, PriceColumns]:
    """The quotes as a PRICE_SCHEMA table whose `observed_at` is each quote's own observation time."""
    when = (source or FOOTBALL_DATA).observed_at
    columns = price_columns(quotes)
    table = columns.to_table(now_utc(), feed_run_id)
    micros = [round(when(q.fixture.kick_off, q.price_set.observation).timestamp() * 1e6) for q in quotes]
    per_row = np.repeat(
        np.asarray(micros, dtype=np.int64), np.asarray(columns.rows_per_event, dtype=np.int64)
    )
    ts = table.schema.field("observed_at").type
    observed = pa.array(per_row, pa.int64()).cast(ts)
    return table.set_column(table.schema.get_field_index("observed_at"), "observed_at", observed), columns


def write_observation(
    warehouse: Warehouse,
    files: Sequence[FootballDataFile],
    observation: Observation,
    report: ImportReport | None = None,
    source: Source | None = None,
) -> FeedRunRecord:
    """One feed run of one observation of the files: change-only ticks (a closing price equal to the
    pre-match one writes nothing), bad cells quarantined, the run logged."""
    source = source or FOOTBALL_DATA
    started, t0 = now_utc(), clock.perf_counter()
    run_id = f"{source.name}_{observation}-{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    quotes = [q for f in files for q in f.quotes if q.price_set.observation is observation]
    table, columns = price_table(quotes, run_id, source)
    validated = validate_batch(table, columns)
    validated.table, stale = drop_older_than_stored(warehouse, validated.table)
    if stale and report is not None:
        report.skip(OLDER_THAN_STORED, f"{observation}: {stale} prices", stale)
    rejects = [r for f in files for o, r in f.rejects if o is observation] + validated.rejects
    unknown = Counter(q.price_set.code for q in quotes if not q.price_set.known)
    record = FeedRunRecord(
        feed_run_id=run_id,
        feed=f"{source.name}_{observation}",
        bookmaker=source.name,
        status="ok" if validated.table.num_rows or not quotes else "failed",
        started_at=started,
        finished_at=now_utc(),
        requests=len(files),
        prices_seen=len(columns),
        ticks_written=0,
        rejected=len(rejects),
        unmapped=sum(unknown.values()),
        unmapped_codes=json.dumps(dict(unknown), sort_keys=True),
        fetch_seconds=0.0,
        parse_seconds=clock.perf_counter() - t0,
        write_seconds=0.0,
        http_outcome=f"{len(files)} files read",
        error=f"{len(rejects)} price cells quarantined, see raw.quarantine" if rejects else None,
    )
    warehouse.write_run(validated.table, rejects, record)
    return record


def drop_older_than_stored(warehouse: Warehouse, table: pa.Table) -> tuple[pa.Table, int]:
    """The rows not observed before the last tick already stored for their selection, and how many
    were dropped: re-importing a file (football-data updates its files twice a week) must not make
    a pre-match price current again after its closing price, nor write the move back and forth."""
    if table.num_rows == 0:
        return table, 0
    warehouse.ensure_schema()
    stored = pd.DataFrame(
        warehouse.query(
            "select bookmaker, source_event_id, market, period, coalesce(line, :no_line) as line, "
            "outcome, max(observed_at) as last_seen from raw.odds_ticks "
            "where starts_at between :first and :last "
            "group by bookmaker, source_event_id, market, period, coalesce(line, :no_line), outcome",
            {
                "no_line": _NO_LINE,
                "first": pc.min(table["starts_at"]).as_py(),
                "last": pc.max(table["starts_at"]).as_py(),
            },
        ),
        columns=[*SELECTION_KEY, "last_seen"],
    )
    if stored.empty:
        return table, 0
    incoming = table.select([*SELECTION_KEY, "observed_at"]).to_pandas()
    incoming["line"] = incoming["line"].fillna(_NO_LINE)
    stored["last_seen"] = pd.to_datetime(stored["last_seen"], utc=True)
    merged = incoming.merge(stored, on=list(SELECTION_KEY), how="left", validate="many_to_one")
    older = (merged["observed_at"] < merged["last_seen"]).to_numpy()
    return table.filter(pa.array(~older)), int(older.sum())


def canonical_names(fixture: Fixture, aliases: dict[str, str]) -> tuple[str, str, str]:
    """The matcher's canonical home and away names and event id of a fixture."""
    home, away = canonical_team(fixture.home, aliases), canonical_team(fixture.away, aliases)
    return home, away, canonical_event_id(fixture.sport, home, away, pd.Timestamp(fixture.kick_off))


def event_map_table(files: Iterable[FootballDataFile], matched_at: datetime) -> pa.Table:
    """One `raw.event_map` row per book event: all books' events of one row are the same match, so
    the match is exact (score 100, the matcher's scale) and its id is the matcher's own. The
    aggregate books (`AGGREGATE_BOOKMAKERS`) are left out, which keeps them out of the marts."""
    aliases = load_aliases()
    rows: list[dict[str, object]] = []
    for parsed in files:
        books: dict[str, set[str]] = {}
        for quote in parsed.quotes:
            if quote.price_set.bookmaker not in AGGREGATE_BOOKMAKERS:
                books.setdefault(quote.fixture.source_event_id, set()).add(quote.price_set.bookmaker)
        for fixture in parsed.fixtures:
            home, away, canonical = canonical_names(fixture, aliases)
            rows += [
                {
                    "bookmaker": book,
                    "source_event_id": fixture.source_event_id,
                    "canonical_event_id": canonical,
                    "method": "exact",
                    "score": 100.0,
                    "sport": fixture.sport,
                    "home_normalized": home,
                    "away_normalized": away,
                    "starts_at": fixture.kick_off,
                    "matched_at": matched_at,
                }
                for book in sorted(books.get(fixture.source_event_id, ()))
            ]
    names = [c.name for c in schema.event_map.columns]
    return pa.Table.from_pylist(rows, schema=_event_map_schema()).select(names)


def _event_map_schema() -> pa.Schema:
    ts = pa.timestamp("us", tz="UTC")
    text = ("bookmaker", "source_event_id", "canonical_event_id", "method", "sport")
    return pa.schema(
        [pa.field(n, pa.string()) for n in text]
        + [pa.field("score", pa.float64())]
        + [pa.field(n, pa.string()) for n in ("home_normalized", "away_normalized")]
        + [pa.field("starts_at", ts), pa.field("matched_at", ts)]
    )


def write_event_map(warehouse: Warehouse, files: Sequence[FootballDataFile]) -> int:
    """Replace the event-map rows of these files' events in one transaction (re-imports rewrite
    the same rows). `oddly.matching.run.update_event_map` only looks at recent events, so historic
    files are mapped here, where which events are one match is known for certain."""
    table = event_map_table(files, now_utc())
    ids = sorted({f.source_event_id for parsed in files for f in parsed.fixtures})
    warehouse.ensure_schema()
    with warehouse.begin() as conn:
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            conn.execute(sa.delete(schema.event_map).where(schema.event_map.c.source_event_id.in_(chunk)))
        if table.num_rows:
            warehouse.bulk_insert(conn, "raw.event_map", table)
    return table.num_rows


FOOTBALL_DATA = Source(SOURCE, observed_at)


def import_files(
    warehouse: Warehouse,
    paths: Iterable[Path],
    observations: Sequence[Observation] = (Observation.PREMATCH, Observation.CLOSING),
    layouts: Sequence[MarketLayout] = LAYOUTS,
    aggregates: bool = True,
) -> ImportReport:
    """Read the files, map their events, store their results, then write one feed run per
    observation, in the order given (pre-match before closing, so the closing run's ticks are
    the moves)."""
    report = ImportReport()
    files = [read_file(Path(p), report, layouts, aggregates) for p in paths]
    return write_files(warehouse, files, report, FOOTBALL_DATA, observations)


def write_files(
    warehouse: Warehouse,
    files: Sequence[FootballDataFile],
    report: ImportReport,
    source: Source,
    observations: Sequence[Observation],
) -> ImportReport:
    """The event map, the results and one feed run per observation of parsed files."""
    report.event_map_rows = write_event_map(warehouse, files)
    report.results = write_results(warehouse, files, source.name)
    for observation in observations:
        record = write_observation(warehouse, files, observation, report, source)
        report.prices[observation] += record.prices_seen
        report.ticks[observation] += record.ticks_written
        report.feed_runs.append(record.feed_run_id)
    return report
