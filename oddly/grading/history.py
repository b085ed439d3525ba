"""What grading reads from the warehouse: the canonical events of a kick-off window, their ticks
before kick-off, the aggregate books' ticks (football-data's Max/Avg, oddsportal's averages, never
in the event map), and their results. Each read is one query on DuckDB or PostgreSQL.

An event's kick-off is the median of the kick-offs its books list (one book with a wrong time
does not move it); the median of an even count is the later of the middle two.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

import pandas as pd
import pyarrow as pa

from oddly.model import AGGREGATE_BOOKMAKERS
from oddly.warehouse.store import Warehouse

TICK_COLUMNS = [
    "canonical_event_id",
    "kick_off",
    "bookmaker",
    "source_event_id",
    "market",
    "period",
    "line",
    "outcome",
    "price",
    "previous_price",
    "status",
    "observed_at",
    "is_live",
    "home",
    "away",
    "league",
]
RESULT_COLUMNS = [
    "canonical_event_id",
    "result_source",
    "home_goals",
    "away_goals",
    "home_goals_ht",
    "away_goals_ht",
]
# Event-map rows this far outside the window are read too, so a median kick-off near its edge is right.
_MARGIN = timedelta(days=2)
_EVENTS_SCHEMA = pa.schema(
    [
        ("bookmaker", pa.string()),
        ("source_event_id", pa.string()),
        ("canonical_event_id", pa.string()),
        ("kick_off", pa.timestamp("us", tz="UTC")),
    ]
)


def utc_stamp(value: datetime | pd.Timestamp) -> pd.Timestamp:
    """A time as a UTC timestamp (naive input is taken to be UTC)."""
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def read_events(
    warehouse: Warehouse,
    since: datetime | None = None,
    until: datetime | None = None,
    canonical_ids: Collection[str] | None = None,
) -> pd.DataFrame:
    """Event-map rows (bookmaker, source_event_id, canonical_event_id, kick_off) of the canonical
    events kicking off in [since, until), or of the ids given, sorted by kick-off."""
    columns = ["bookmaker", "source_event_id", "canonical_event_id", "kick_off"]
    if canonical_ids is not None and not canonical_ids:
        return pd.DataFrame(columns=columns)
    where = ["true"]
    if since is not None:
        where.append(f"starts_at >= '{(utc_stamp(since) - _MARGIN).isoformat()}'")
    if until is not None:
        where.append(f"starts_at < '{(utc_stamp(until) + _MARGIN).isoformat()}'")
    sql = (
        "select bookmaker, source_event_id, canonical_event_id, starts_at from raw.event_map "
        f"where {' and '.join(where)}"
    )
    if canonical_ids is not None:
        ids = pa.table({"canonical_event_id": pa.array(sorted(set(canonical_ids)), pa.string())})
        (table,) = warehouse.arrow_with(
            [f"{sql} and canonical_event_id in (select canonical_event_id from _ids)"], {"_ids": ids}
        )
    else:
        table = warehouse.arrow(sql)
    rows = table.to_pandas()
    if rows.empty:
        return pd.DataFrame(columns=columns)
    rows["starts_at"] = pd.to_datetime(rows["starts_at"], utc=True)
    kick_off = rows.groupby("canonical_event_id")["starts_at"].agg(
        lambda s: s.sort_values().iloc[len(s) // 2]
    )
    rows = rows.join(kick_off.rename("kick_off"), on="canonical_event_id")
    if since is not None:
        rows = rows.loc[rows["kick_off"] >= utc_stamp(since)]
    if until is not None:
        rows = rows.loc[rows["kick_off"] < utc_stamp(until)]
    return (
        rows[columns]
        .drop_duplicates(["bookmaker", "source_event_id"])
        .sort_values(["kick_off", "canonical_event_id"], kind="stable")
        .reset_index(drop=True)
    )


def _events_table(events: pd.DataFrame) -> pa.Table:
    kick_off = pd.to_datetime(events["kick_off"], utc=True).dt.tz_convert(None).to_numpy()
    columns = {
        name: pa.array(events[name].astype(str).tolist(), pa.string()) for name in _EVENTS_SCHEMA.names[:3]
    }
    columns["kick_off"] = (
        pa.array(kick_off).cast(pa.timestamp("us")).cast(_EVENTS_SCHEMA.field("kick_off").type)
    )
    return pa.table(columns, schema=_EVENTS_SCHEMA)


def read_ticks(
    warehouse: Warehouse, events: pd.DataFrame, bookmakers: Sequence[str] | None = None
) -> pd.DataFrame:
    """Every pre-match tick (observed at or before kick-off, not in-play) of these events' books
    (only `bookmakers`, when given), with the canonical event and its kick-off, in time order."""
    if events.empty:
        return pd.DataFrame(columns=TICK_COLUMNS)
    books = ""
    if bookmakers is not None:
        names = ", ".join("'" + b.replace("'", "''") + "'" for b in bookmakers)
        books = f"and t.bookmaker in ({names})" if names else "and false"
    sql = f"""
        select e.canonical_event_id, e.kick_off, t.bookmaker, t.source_event_id, t.market, t.period,
            t.line, t.outcome, t.price, t.previous_price, t.status, t.observed_at, t.is_live,
            t.home, t.away, t.league
        from raw.odds_ticks t
        join _events e on t.bookmaker = e.bookmaker and t.source_event_id = e.source_event_id
        where t.observed_at <= e.kick_off and not t.is_live {books}
        order by t.observed_at, t.load_seq
    """
    (table,) = warehouse.arrow_with([sql], {"_events": _events_table(events)})
    return _typed(table.to_pandas())


def snapshot_sizes(warehouse: Warehouse, events: pd.DataFrame) -> pd.Series:
    """Per canonical event, how many rows its replay snapshots will hold (Σ over its markets of
    the distinct tick times × the book outcomes quoted), counted in SQL so batches can be sized
    before any tick is read into memory."""
    if events.empty:
        return pd.Series(dtype="int64")
    sql = """
        with pre as (
            select e.canonical_event_id, t.market, t.period, t.line, t.bookmaker, t.outcome, t.observed_at
            from raw.odds_ticks t
            join _events e on t.bookmaker = e.bookmaker and t.source_event_id = e.source_event_id
            where t.observed_at <= e.kick_off and not t.is_live
        ),
        markets as (
            select canonical_event_id,
                count(distinct observed_at) * count(distinct bookmaker || '|' || outcome) as size
            from pre
            group by canonical_event_id, market, period, line
        )
        select canonical_event_id, sum(size) as size from markets group by canonical_event_id
    """
    (table,) = warehouse.arrow_with([sql], {"_events": _events_table(events)})
    sizes = table.to_pandas()
    return sizes.set_index("canonical_event_id")["size"].astype("int64")


def read_aggregate_ticks(warehouse: Warehouse, events: pd.DataFrame) -> pd.DataFrame:
    """The pre-match ticks of the aggregate books (market_max, market_avg, oddsportal_avg) on these
    events: never in the event map, they are found by the source event id they share with a mapped
    book's event (football-data) or with a result (oddsportal)."""
    if events.empty:
        return pd.DataFrame(columns=TICK_COLUMNS)
    names = ", ".join(f"'{b}'" for b in sorted(AGGREGATE_BOOKMAKERS))
    sql = f"""
        with wanted as (
            select distinct canonical_event_id, kick_off from _events
        ),
        ids as (
            select distinct m.source_event_id, w.canonical_event_id, w.kick_off
            from raw.event_map m join wanted w on m.canonical_event_id = w.canonical_event_id
            union
            select distinct r.source_event_id, w.canonical_event_id, w.kick_off
            from raw.results r join wanted w on r.canonical_event_id = w.canonical_event_id
        )
        select i.canonical_event_id, i.kick_off, t.bookmaker, t.source_event_id, t.market, t.period,
            t.line, t.outcome, t.price, t.previous_price, t.status, t.observed_at, t.is_live,
            t.home, t.away, t.league
        from raw.odds_ticks t
        join ids i on t.source_event_id = i.source_event_id
        where t.bookmaker in ({names}) and t.observed_at <= i.kick_off and not t.is_live
        order by t.observed_at, t.load_seq
    """
    (table,) = warehouse.arrow_with([sql], {"_events": _events_table(events)})
    return _typed(table.to_pandas())


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return pd.DataFrame(columns=TICK_COLUMNS)
    frame["kick_off"] = pd.to_datetime(frame["kick_off"], utc=True)
    frame["observed_at"] = pd.to_datetime(frame["observed_at"], utc=True)
    for column in ("line", "price", "previous_price"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    return frame[TICK_COLUMNS]


def read_results(warehouse: Warehouse, canonical_ids: Collection[str]) -> pd.DataFrame:
    """One result per canonical event (RESULT_COLUMNS; the first source by name where several hold
    it), goals as floats (NaN unknown)."""
    ids = sorted(set(canonical_ids))
    if not ids:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    sql = """
        select canonical_event_id, source as result_source, home_goals, away_goals,
            home_goals_ht, away_goals_ht
        from raw.results
        where canonical_event_id in (select canonical_event_id from _ids)
        order by canonical_event_id, source
    """
    (table,) = warehouse.arrow_with(
        [sql], {"_ids": pa.table({"canonical_event_id": pa.array(ids, pa.string())})}
    )
    rows = table.to_pandas().drop_duplicates("canonical_event_id")
    for column in RESULT_COLUMNS[2:]:
        rows[column] = pd.to_numeric(rows[column], errors="coerce").astype("float64")
    return rows[RESULT_COLUMNS].reset_index(drop=True)
