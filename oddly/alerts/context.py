"""What an alert needs beyond its detection: the event's name, sport, league, kick-off and live flag,
every book's current price on the selection (for old → new and the best prices elsewhere) and the
fair price, read for a whole batch at once.

Two reads per batch, each one query: the raw warehouse (raw.event_map → raw.latest_prices → the
tick at that price) and the marts' consensus (marts.fct_consensus). Tolerant on purpose: an alert
that cannot be enriched is still decided and sent with fewer fields, so a missing mart (dbt has not
built it yet), an unmatched event or an unreachable store costs context, never the alert.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol, TypeAlias

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

from oddly.detect.frames import COMPLETE_OUTCOMES, NO_LINE
from oddly.model import utc
from oddly.warehouse.reader import MartsNotReadyError, MartsReader
from oddly.warehouse.store import Warehouse

log = logging.getLogger(__name__)

# The selections a batch looks up (typed, so all-null columns still have a type on PostgreSQL).
_WANTED = pa.schema(
    [
        *[
            (name, pa.string())
            for name in ("event_ref", "canonical_event_id", "bookmaker", "source_event_id")
        ],
        ("market", pa.string()),
        ("period", pa.string()),
        ("line", pa.float64()),
        ("outcome", pa.string()),
    ]
)
# (event reference, market, period, line, outcome): one selection across books.
SelectionRef: TypeAlias = tuple[str, str, str, float | None, str | None]


class _Selection(Protocol):
    @property
    def canonical_event_id(self) -> str | None: ...
    @property
    def source_event_id(self) -> str | None: ...
    @property
    def bookmaker(self) -> str | None: ...
    @property
    def market(self) -> str: ...
    @property
    def period(self) -> str: ...
    @property
    def line(self) -> float | None: ...
    @property
    def outcome(self) -> str | None: ...


@dataclass(frozen=True)
class BookQuote:
    bookmaker: str
    price: float
    previous_price: float | None
    status: str
    observed_at: datetime | None

    @property
    def is_open(self) -> bool:
        return self.status == "open"


@dataclass(frozen=True)
class SelectionContext:
    event_name: str | None = None
    sport: str | None = None
    league: str | None = None
    starts_at: datetime | None = None
    is_live: bool | None = None
    prices: dict[str, BookQuote] = field(default_factory=dict)  # by bookmaker
    fair_probability: float | None = None  # no-vig: the sharp books' where they price it, else all books'


def event_ref(s: _Selection) -> str:
    """The canonical event, or the bookmaker's own event while it is not matched yet."""
    if s.canonical_event_id:
        return s.canonical_event_id
    return f"{s.bookmaker or '?'}:{s.source_event_id or '?'}"


def enrich(
    candidates: Iterable[Any], warehouse: Warehouse | None, marts: MartsReader | None = None
) -> dict[SelectionRef, SelectionContext]:
    """Context per selection of the candidates (`oddly.alerts.decide.Candidate`; anything else in
    the list, such as a rejected input, is skipped). Missing sources give fewer fields, no error."""
    selections = [c for c in candidates if hasattr(c, "market") and hasattr(c, "outcome")]
    if not selections:
        return {}
    quotes = _read_prices(warehouse, selections) if warehouse is not None else pd.DataFrame()
    fair = _read_fair(marts, selections) if marts is not None else {}
    events, books = _index(quotes)
    out: dict[SelectionRef, SelectionContext] = {}
    for s in selections:
        ref: SelectionRef = (event_ref(s), s.market, s.period, s.line, s.outcome)
        if ref not in out:
            out[ref] = _context(ref, events, books, fair.get(ref))
    return out


def _wanted(selections: Sequence[_Selection]) -> pa.Table:
    """One row per selection to look up; a candidate without an outcome (an arbitrage set) wants
    every outcome of its market."""
    rows = []
    for s in selections:
        for outcome in [s.outcome] if s.outcome else COMPLETE_OUTCOMES.get(s.market, ()):
            rows.append(
                {
                    "event_ref": event_ref(s),
                    "canonical_event_id": s.canonical_event_id,
                    "bookmaker": s.bookmaker,
                    "source_event_id": s.source_event_id,
                    "market": s.market,
                    "period": s.period,
                    "line": s.line,
                    "outcome": outcome,
                }
            )
    return pa.Table.from_pylist(rows, schema=_WANTED)


def _read_prices(warehouse: Warehouse, selections: Sequence[_Selection]) -> pd.DataFrame:
    wanted = _wanted(selections)
    if wanted.num_rows == 0:
        return pd.DataFrame()
    key = warehouse.selection_key_sql
    sql = f"""
        with books as (
            select w.event_ref, m.bookmaker, m.source_event_id, w.market, w.period, w.line, w.outcome
            from _wanted w
            join raw.event_map m on m.canonical_event_id = w.canonical_event_id
            union
            select w.event_ref, w.bookmaker, w.source_event_id, w.market, w.period, w.line, w.outcome
            from _wanted w
            where w.canonical_event_id is null and w.source_event_id is not null
        ),
        keyed as (
            select {key} as selection_key, books.* from books
        )
        select k.event_ref, k.market, k.period, k.line, k.outcome, t.bookmaker,
            t.price, t.previous_price, t.status, t.observed_at,
            t.sport, t.league, t.home, t.away, t.starts_at, t.is_live
        from keyed k
        join raw.latest_prices l on l.selection_key = k.selection_key
        join raw.odds_ticks t on t.selection_key = l.selection_key and t.observed_at = l.observed_at
        order by k.event_ref, t.bookmaker
    """
    try:
        (table,) = warehouse.arrow_with([sql], {"_wanted": wanted})
    except (sa.exc.SQLAlchemyError, pd.errors.DatabaseError) as exc:
        log.warning("alert context: warehouse prices unavailable (%s); alerts go out without them", exc)
        return pd.DataFrame()
    return table.to_pandas()


def _read_fair(marts: MartsReader, selections: Sequence[_Selection]) -> dict[SelectionRef, float]:
    events = sorted({s.canonical_event_id for s in selections if s.canonical_event_id})
    if not events:
        return {}
    params = {f"e{i}": event for i, event in enumerate(events)}
    sql = (
        "select canonical_event_id, market, period, line, outcome, "
        "coalesce(fair_probability_sharp_multiplicative, fair_probability_all_multiplicative) as fair "
        f"from marts.fct_consensus where canonical_event_id in ({', '.join(':' + p for p in params)})"
    )
    try:
        rows = marts.query(sql, params)
    except (MartsNotReadyError, sa.exc.SQLAlchemyError, pd.errors.DatabaseError) as exc:
        log.warning(
            "alert context: no fair prices (marts.fct_consensus: %s); alerts go out without them", exc
        )
        return {}
    return {
        (r.canonical_event_id, r.market, r.period, _line(r.line), r.outcome): float(r.fair)
        for r in rows.itertuples()
        if pd.notna(r.fair) and r.fair > 0
    }


def _index(quotes: pd.DataFrame) -> tuple[dict[str, SelectionContext], dict[tuple[Any, ...], pd.DataFrame]]:
    """The quotes grouped once: each event's own fields, and each selection's quotes by book."""
    if quotes.empty:
        return {}, {}
    quotes = quotes.assign(line_key=pd.to_numeric(quotes["line"]).fillna(NO_LINE))
    events = {
        str(ref): SelectionContext(
            event_name=f"{rows['home'].iloc[0]} v {rows['away'].iloc[0]}",
            sport=_text(rows["sport"].iloc[0]),
            league=_text(rows["league"].iloc[0]),
            starts_at=_time(rows["starts_at"].iloc[0]),
            is_live=bool(rows["is_live"].fillna(False).astype(bool).any()),
        )
        for ref, rows in quotes.groupby("event_ref", sort=False)
    }
    keys = ["event_ref", "market", "period", "line_key", "outcome"]
    books = {tuple(key): rows for key, rows in quotes.groupby(keys, sort=False)}
    return events, books


def _context(
    ref: SelectionRef,
    events: dict[str, SelectionContext],
    books: dict[tuple[Any, ...], pd.DataFrame],
    fair: float | None,
) -> SelectionContext:
    event_ref_, market, period, line, outcome = ref
    event = events.get(event_ref_)
    if event is None:
        return SelectionContext(fair_probability=fair)
    mine = books.get((event_ref_, market, period, NO_LINE if line is None else line, outcome))
    prices = {
        str(r.bookmaker): BookQuote(
            str(r.bookmaker),
            float(r.price),
            None if pd.isna(r.previous_price) else float(r.previous_price),
            str(r.status),
            _time(r.observed_at),
        )
        for r in (mine.itertuples() if mine is not None else ())
    }
    return replace(event, prices=prices, fair_probability=fair)


def _line(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _text(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else str(value)


def _time(value: Any) -> datetime | None:
    if value is None or pd.isna(value):
        return None
    return utc(pd.Timestamp(value).to_pydatetime())
