"""The canonical price row every feed agent produces, its vocabularies and its Arrow schema.

One row is one price of one outcome at one bookmaker at one moment. Agents build batches of rows
column by column (see `PriceColumns`), the ingestion validates them vectorized, and `PriceRow` is
the same contract for code that handles a single row.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, field_validator, model_validator


class Market(StrEnum):
    ONE_X_TWO = "1x2"
    DOUBLE_CHANCE = "double_chance"
    HANDICAP = "handicap"
    TOTAL = "total"
    TEAM_TOTAL_HOME = "team_total_home"
    TEAM_TOTAL_AWAY = "team_total_away"
    BTTS = "btts"
    ASIAN_HANDICAP = "asian_handicap"
    ASIAN_TOTAL = "asian_total"
    MONEYLINE = "moneyline"
    WIN = "win"


class Outcome(StrEnum):
    HOME = "home"
    DRAW = "draw"
    AWAY = "away"
    HOME_DRAW = "home_draw"
    HOME_AWAY = "home_away"
    DRAW_AWAY = "draw_away"
    OVER = "over"
    UNDER = "under"
    YES = "yes"
    NO = "no"


class Status(StrEnum):
    OPEN = "open"
    SUSPENDED = "suspended"


# Markets whose rows need a line (handicap or total); the others must have none.
LINE_MARKETS = frozenset(
    {
        Market.HANDICAP,
        Market.TOTAL,
        Market.TEAM_TOTAL_HOME,
        Market.TEAM_TOTAL_AWAY,
        Market.ASIAN_HANDICAP,
        Market.ASIAN_TOTAL,
    }
)
# Handicap lines are stored from the home side's point of view, so both sides of one line share it.
HANDICAP_MARKETS = frozenset({Market.HANDICAP, Market.ASIAN_HANDICAP})

# A source code the canonical vocabulary does not know is kept under this prefix (e.g. "raw:g136").
RAW_PREFIX = "raw:"

PERIODS = ("ft", "1h", "2h", "ot", "p1", "p2", "p3", "q1", "q2", "q3", "q4", "s1", "s2", "s3", "s4", "s5")

# Bookmakers that stand for many books (a file's market maximum or average, not a price anyone
# quotes): their ticks are kept, but they are never matched to canonical events, so no cross-book
# mart, detector or alert takes them for a book one can bet at.
AGGREGATE_BOOKMAKERS = frozenset({"market_max", "market_avg", "oddsportal_avg"})
MIN_PRICE_EXCLUSIVE = 1.0
# Above this a price is treated as a feed error, not an offer.
MAX_PRICE = 5000.0


PRICE_SCHEMA = pa.schema(
    [
        pa.field("bookmaker", pa.string()),
        pa.field("source_event_id", pa.string()),
        pa.field("sport", pa.string()),
        pa.field("league", pa.string()),
        pa.field("country", pa.string()),
        pa.field("home", pa.string()),
        pa.field("away", pa.string()),
        pa.field("starts_at", pa.timestamp("us", tz="UTC")),
        pa.field("is_live", pa.bool_()),
        pa.field("market", pa.string()),
        pa.field("period", pa.string()),
        pa.field("line", pa.float64()),
        pa.field("outcome", pa.string()),
        pa.field("price", pa.float64()),
        pa.field("status", pa.string()),
        pa.field("source_ts", pa.timestamp("us", tz="UTC")),
        pa.field("observed_at", pa.timestamp("us", tz="UTC")),
        pa.field("feed_run_id", pa.string()),
    ]
)
PRICE_COLUMNS: tuple[str, ...] = tuple(PRICE_SCHEMA.names)
# What identifies one selection at one bookmaker; a tick is one change of its price or status.
SELECTION_KEY: tuple[str, ...] = ("bookmaker", "source_event_id", "market", "period", "line", "outcome")


def utc(ts: datetime) -> datetime:
    """A timezone-aware UTC datetime; naive input is taken to be UTC already."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def from_unix(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=UTC)


def is_known_market(market: str) -> bool:
    return market in Market._value2member_map_ or market.startswith(RAW_PREFIX)


def is_known_outcome(outcome: str) -> bool:
    return outcome in Outcome._value2member_map_ or outcome.startswith(RAW_PREFIX)


class PriceRow(BaseModel):
    """One canonical price row, validated. The batch path (`PriceColumns`) obeys the same rules."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bookmaker: str
    source_event_id: str
    sport: str
    league: str | None = None
    country: str | None = None
    home: str
    away: str
    starts_at: datetime
    is_live: bool = False
    market: str
    period: str = "ft"
    line: float | None = None
    outcome: str
    price: float
    status: Status = Status.OPEN
    source_ts: datetime | None = None
    observed_at: datetime
    feed_run_id: str

    @field_validator("bookmaker", "source_event_id", "sport", "home", "away", "feed_run_id")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("starts_at", "observed_at", "source_ts")
    @classmethod
    def _to_utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else utc(value)

    @field_validator("market")
    @classmethod
    def _market(cls, value: str) -> str:
        if not is_known_market(value):
            raise ValueError(f"unknown market {value!r}; keep source codes as {RAW_PREFIX}<code>")
        return value

    @field_validator("outcome")
    @classmethod
    def _outcome(cls, value: str) -> str:
        if not is_known_outcome(value):
            raise ValueError(f"unknown outcome {value!r}; keep source codes as {RAW_PREFIX}<code>")
        return value

    @field_validator("price")
    @classmethod
    def _price(cls, value: float) -> float:
        reason = price_problem(value)
        if reason:
            raise ValueError(reason)
        return value

    @model_validator(mode="after")
    def _line_matches_market(self) -> PriceRow:
        if self.line is not None and not math.isfinite(self.line):
            raise ValueError("line must be a finite number")
        if self.market in LINE_MARKETS and self.line is None:
            raise ValueError(f"market {self.market} needs a line")
        return self


def price_problem(price: Any) -> str | None:
    """Why a value is not a decimal price, or None when it is one."""
    if price is None or isinstance(price, bool) or not isinstance(price, int | float):
        return f"price {price!r} is not a number"
    if not math.isfinite(price):
        return f"price {price!r} is not finite"
    if price <= MIN_PRICE_EXCLUSIVE:
        return f"price {price:g} is not a decimal odd (must be > 1)"
    if price > MAX_PRICE:
        return f"price {price:g} is absurd (above {MAX_PRICE:g})"
    return None


@dataclass
class Reject:
    """A source record that could not become a price row, with the reason a person can read."""

    reason: str
    record: Any
    bookmaker: str = ""
    source_event_id: str | None = None


# A per-price column: a Python list (agents appending), or an Arrow array (vectorized parsers).
Column: TypeAlias = "list[Any] | pa.Array"

EVENT_FIELDS = (
    "bookmaker",
    "source_event_id",
    "sport",
    "league",
    "country",
    "home",
    "away",
    "starts_at",
    "is_live",
    "period",
    "source_ts",
)
ROW_FIELDS = ("market", "line", "outcome", "price", "status")
_EVENT_DEFAULTS: dict[str, Any] = {
    "league": None,
    "country": None,
    "is_live": False,
    "period": "ft",
    "source_ts": None,
}
_ROW_DEFAULTS: dict[str, Any] = {"line": None, "status": Status.OPEN.value}


@dataclass
class PriceColumns:
    """A batch of price rows held column by column: the fast path agents fill.

    Event-level fields are stored once per event (the first block of lists) and every price row
    points at its event by position, so a payload of 500,000 prices does not repeat team names
    500,000 times in Python. `starts_at` and `source_ts` are unix seconds; `observed_at` and
    `feed_run_id` are the same for the whole batch and set when it becomes a table.
    """

    # one entry per event
    bookmaker: list[str] = field(default_factory=list)
    source_event_id: list[str] = field(default_factory=list)
    sport: list[str] = field(default_factory=list)
    league: list[str | None] = field(default_factory=list)
    country: list[str | None] = field(default_factory=list)
    home: list[str] = field(default_factory=list)
    away: list[str] = field(default_factory=list)
    starts_at: list[float] = field(default_factory=list)
    is_live: list[bool] = field(default_factory=list)
    period: list[str] = field(default_factory=list)
    source_ts: list[float | None] = field(default_factory=list)
    rows_per_event: list[int] = field(default_factory=list)
    # one entry per price: Python lists, or Arrow arrays from a vectorized parser
    market: Column = field(default_factory=list)
    line: Column = field(default_factory=list)
    outcome: Column = field(default_factory=list)
    price: Column = field(default_factory=list)
    status: Column = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.price)

    def add_event(self, rows: int, **event: Any) -> None:
        """Event-level fields for the `rows` price rows appended (or about to be) for it."""
        for name in EVENT_FIELDS:
            getattr(self, name).append(event[name] if name in event else _EVENT_DEFAULTS[name])
        self.rows_per_event.append(rows)

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]]) -> PriceColumns:
        """Columns from row dicts (small agents, imports, tests); optional fields may be left out."""
        columns = cls()
        for record in records:
            columns.add_event(1, **{k: v for k, v in record.items() if k in EVENT_FIELDS})
            for name in ROW_FIELDS:
                getattr(columns, name).append(record[name] if name in record else _ROW_DEFAULTS[name])
        return columns

    def extend(self, other: PriceColumns) -> None:
        for name in (*EVENT_FIELDS, "rows_per_event"):
            getattr(self, name).extend(getattr(other, name))
        for name in ROW_FIELDS:
            dtype = PRICE_SCHEMA.field(name).type
            setattr(self, name, _concat(getattr(self, name), getattr(other, name), dtype))

    def event_index(self) -> np.ndarray:
        """For every price row, the position of its event."""
        counts = np.asarray(self.rows_per_event, dtype=np.int64)
        return np.repeat(np.arange(len(counts), dtype=np.int64), counts)

    def event_table(self) -> pa.Table:
        """The event-level fields, one row per event."""
        ts = pa.timestamp("us", tz="UTC")
        starts = (np.asarray(self.starts_at, dtype=np.float64) * 1e6).astype(np.int64)
        source_ts = pc.multiply(pa.array(self.source_ts, pa.float64()), 1e6).cast(pa.int64()).cast(ts)
        return pa.table(
            {
                "bookmaker": pa.array(self.bookmaker, pa.string()),
                "source_event_id": pa.array(self.source_event_id, pa.string()),
                "sport": pa.array(self.sport, pa.string()),
                "league": pa.array(self.league, pa.string()),
                "country": pa.array(self.country, pa.string()),
                "home": pa.array(self.home, pa.string()),
                "away": pa.array(self.away, pa.string()),
                "starts_at": pa.array(starts, pa.int64()).cast(ts),
                "is_live": pa.array(self.is_live, pa.bool_()),
                "period": pa.array(self.period, pa.string()),
                "source_ts": source_ts,
            }
        )

    def to_table(self, observed_at: datetime, feed_run_id: str) -> pa.Table:
        """Arrow table in PRICE_SCHEMA order. Prices that are not numbers become null (validation
        rejects them with a reason); everything else must already have the right type."""
        n = len(self)
        if sum(self.rows_per_event) != n:
            raise ValueError(
                f"rows_per_event adds up to {sum(self.rows_per_event)}, but there are {n} prices"
            )
        ts = pa.timestamp("us", tz="UTC")
        events = self.event_table()
        take = pa.array(self.event_index())
        rows = {
            "market": _arrow(self.market, pa.string()),
            "line": _arrow(self.line, pa.float64()),
            "outcome": _arrow(self.outcome, pa.string()),
            "price": _arrow(self.price, pa.float64()),
            "status": _arrow(self.status, pa.string()),
            "observed_at": pa.repeat(pa.scalar(utc(observed_at), ts), n),
            "feed_run_id": pa.repeat(pa.scalar(feed_run_id, pa.string()), n),
        }
        arrays = [events[name].take(take) if name in EVENT_FIELDS else rows[name] for name in PRICE_COLUMNS]
        return pa.Table.from_arrays(arrays, schema=PRICE_SCHEMA)

    def raw_record(self, i: int, event_index: np.ndarray | None = None) -> dict[str, Any]:
        """Price row i with its event's fields as a plain dict (for quarantine records); pass
        `event_index()` when asking for many rows."""
        event = int((self.event_index() if event_index is None else event_index)[i])
        record = {name: getattr(self, name)[event] for name in EVENT_FIELDS}
        for name in ROW_FIELDS:
            value = getattr(self, name)[i]
            record[name] = value.as_py() if isinstance(value, pa.Scalar) else value
        return record


def _arrow(values: Column, dtype: pa.DataType) -> pa.Array:
    """A column as Arrow. Values of the wrong type (a price sent as text by a drifting feed)
    become null, for validation to reject with the raw value still in the Python list."""
    if isinstance(values, pa.Array):
        return values if values.type == dtype else values.cast(dtype)
    try:
        return pa.array(values, dtype)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        wanted = (float, int) if pa.types.is_floating(dtype) else (str,)
        return pa.array([v if type(v) in wanted else None for v in values], dtype)


def _concat(a: Column, b: Column, dtype: pa.DataType) -> Column:
    if len(a) == 0 or len(b) == 0:
        return b if len(a) == 0 else a
    if isinstance(a, list) and isinstance(b, list):
        a.extend(b)
        return a
    if isinstance(a, pa.Array) and isinstance(b, pa.Array):
        return pa.concat_arrays([_arrow(a, dtype), _arrow(b, dtype)])
    # one side holds raw Python values (kept for rejects): keep Python values throughout
    return _pylist(a) + _pylist(b)


def _pylist(values: Column) -> list[Any]:
    return values.to_pylist() if isinstance(values, pa.Array) else values


def rows_to_table(rows: list[PriceRow]) -> pa.Table:
    """Arrow table from validated single rows (tests, small imports)."""
    data = {name: [getattr(r, name) for r in rows] for name in PRICE_COLUMNS}
    data["status"] = [str(s) for s in data["status"]]
    return pa.Table.from_pydict(data, schema=PRICE_SCHEMA)


def now_utc() -> datetime:
    return datetime.now(UTC)
