"""The market queries the Streamlit pages (Scanner, Event, Divergence) and the Telegram bot (/top,
/event, its menus) share: plain functions over a `MartsReader` (or the app database) returning
DataFrames, with the aggregation in SQL that runs on DuckDB and PostgreSQL alike.

Also the words for a selection ("Total 2.5: Over 2.5") and the Scanner's saved filter presets.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from oddly.alerts.audit import search_decisions
from oddly.appdb import metadata
from oddly.telegram.message import MARKET_NAMES, PERIOD_NAMES
from oddly.warehouse.reader import MartsReader

OUTCOME_ORDER = ("home", "draw", "away", "over", "under", "yes", "no")
MAIN_MARKETS = (("1x2", "ft"), ("moneyline", "ft"), ("win", "ft"))  # the market an event opens on
OPPORTUNITY_TYPES = ("drop", "steam", "value", "arbitrage", "out_of_line")
# A book is out of line from this many no-vig probability points off the others (dbt var
# out_of_line_points, the mart's own flag, and the rules' default).
OUT_OF_LINE_POINTS = 3.0
SCANNER_LIMIT = 500


# --- catalog -------------------------------------------------------------------------------------


def sports_and_leagues(reader: MartsReader) -> pd.DataFrame:
    """Columns sport, league of the current events (league may be null)."""
    return reader.query(
        "select distinct sport, league from marts.dim_events where sport is not null order by 1, 2"
    )


def bookmakers(reader: MartsReader) -> pd.DataFrame:
    """Columns bookmaker, is_sharp."""
    return reader.query("select bookmaker, is_sharp from marts.dim_bookmakers order by bookmaker")


def sharp_bookmaker(reader: MartsReader) -> str | None:
    """The first sharp reference book by name, or None when no sharp book quotes."""
    books = bookmakers(reader)
    sharp = books.loc[books["is_sharp"].astype(bool), "bookmaker"]
    return None if sharp.empty else str(sharp.iloc[0])


def newest_price_at(reader: MartsReader) -> pd.DataFrame:
    """One row, column at: when the newest price in the marts was seen (null before any)."""
    return reader.query("select max(last_changed_at) as at from marts.fct_line_movements")


# --- /top ----------------------------------------------------------------------------------------


def top_drops(reader: MartsReader, limit: int) -> pd.DataFrame:
    """The biggest open price drops of the last 30 minutes, largest first."""
    return reader.query(
        """
        select m.canonical_event_id, m.bookmaker, m.market, m.period, m.line, m.outcome,
            m.current_price, m.change_30m, e.home_team, e.away_team
        from marts.fct_line_movements m
        join marts.dim_events e on e.canonical_event_id = m.canonical_event_id
        where m.change_30m < 0 and m.current_status = 'open'
        order by m.change_30m, m.canonical_event_id, m.bookmaker
        limit :limit
        """,
        {"limit": limit},
    )


def top_value_bets(reader: MartsReader, limit: int) -> pd.DataFrame:
    """The value bets with the largest edge against the sharp fair price."""
    return reader.query(
        """
        select v.canonical_event_id, v.bookmaker, v.market, v.period, v.line, v.outcome,
            v.price, v.fair_price, v.edge, e.home_team, e.away_team
        from marts.fct_value_bets v
        join marts.dim_events e on e.canonical_event_id = v.canonical_event_id
        order by v.edge desc, v.canonical_event_id, v.bookmaker
        limit :limit
        """,
        {"limit": limit},
    )


# --- one event -----------------------------------------------------------------------------------


def events(reader: MartsReader) -> pd.DataFrame:
    """The current events for a picker, soonest kick-off first."""
    return reader.query(
        "select canonical_event_id, sport, league, home_team, away_team, starts_at, is_live, "
        "bookmaker_count from marts.dim_events order by starts_at, home_team, canonical_event_id"
    )


def event(reader: MartsReader, event_id: str) -> pd.Series | None:
    """The event's dim_events row, or None when it is not a current event."""
    rows = reader.query("select * from marts.dim_events where canonical_event_id = :e", {"e": event_id})
    return None if rows.empty else rows.iloc[0]


def event_prices(reader: MartsReader, event_id: str) -> pd.DataFrame:
    """Every open price of the event (bookmaker, market, period, line, outcome, price, last_changed_at)."""
    return reader.query(
        "select bookmaker, market, period, line, outcome, price, last_changed_at "
        "from marts.fct_prices_current where canonical_event_id = :e and not is_suspended "
        "order by market, period, line, outcome, bookmaker",
        {"e": event_id},
    )


def event_markets(reader: MartsReader, event_id: str) -> pd.DataFrame:
    """The event's markets (market, period, line) with how many books quote each, busiest first."""
    return reader.query(
        """
        select market, period, line, count(distinct bookmaker) as books
        from marts.fct_prices_current
        where canonical_event_id = :e
        group by market, period, line
        order by books desc, market, period, line
        """,
        {"e": event_id},
    )


def main_market(prices: pd.DataFrame) -> tuple[str, str, float | None]:
    """The market an event opens on: match result if quoted, else the one most rows quote."""
    for market, period in MAIN_MARKETS:
        chosen = prices[(prices["market"] == market) & (prices["period"] == period)]
        if not chosen.empty:
            return market, period, number(chosen["line"].iloc[0])
    counts = (
        prices.astype({"line": object}).fillna({"line": "-"}).groupby(["market", "period", "line"]).size()
    )
    market, period, line = counts.sort_values(ascending=False).index[0]
    return str(market), str(period), None if line == "-" else float(line)


def market_rows(frame: pd.DataFrame, market: str, period: str, line: float | None) -> pd.DataFrame:
    """The rows of `frame` (columns market, period, line) on one market; a null line matches None."""
    same_line = frame["line"].isna() if line is None else frame["line"].eq(line)
    return frame[frame["market"].eq(market) & frame["period"].eq(period) & same_line]


def fair_prices(
    reader: MartsReader, event_id: str, market: str, period: str, line: float | None
) -> pd.DataFrame:
    """Per outcome the no-vig fair price: the sharp book's (power method) where it quotes, else the
    mean of all books'; columns outcome, fair_price, source ('sharp' or 'all books')."""
    return reader.query(
        f"""
        select outcome,
            1.0 / coalesce(fair_probability_sharp_power, fair_probability_all_power) as fair_price,
            case when fair_probability_sharp_power is not null then 'sharp' else 'all books' end as source
        from marts.fct_consensus
        where canonical_event_id = :e and market = :m and period = :p and {_line_sql("line", line)}
        order by outcome
        """,
        {"e": event_id, "m": market, "p": period, **_line_param(line)},
    )


def sharp_fair_price(
    reader: MartsReader, event_id: str, market: str, period: str, line: float | None, outcome: str
) -> float | None:
    """The sharp reference's power-method fair price of one outcome, None without a sharp quote."""
    fair = reader.query(
        "select fair_probability_sharp_power as p from marts.fct_consensus where canonical_event_id = :e "
        f"and market = :m and period = :p and outcome = :o and {_line_sql('line', line)}",
        {"e": event_id, "m": market, "p": period, "o": outcome, **_line_param(line)},
    )
    probability = number(fair["p"].iloc[0]) if not fair.empty else None
    return 1 / probability if probability else None


# Points per book and outcome a line-movement chart draws at most: a series with more ticks is
# thinned in SQL to the first, last, lowest and highest price of each of a quarter as many time
# buckets, which keeps every move a chart this size can show.
CHART_POINTS = 400


def price_history(
    reader: MartsReader,
    event_id: str,
    market: str,
    period: str,
    line: float | None,
    max_points: int = CHART_POINTS,
) -> pd.DataFrame:
    """Each book's price of each outcome of one market over time: the recent ticks published in
    fct_price_history, and every line held to the newest tick (a selection that did not move in
    the window is flat from the window's start); at most about `max_points` per book and outcome
    (see CHART_POINTS). Columns outcome, bookmaker, observed_at, price."""
    return reader.query(
        f"""
        with selections as (
            select selection_key, bookmaker, outcome, current_price, first_seen_at
            from marts.fct_line_movements
            where canonical_event_id = :e and market = :m and period = :p and {_line_sql("line", line)}
        ),
        clock as (
            select max(last_changed_at) as as_of from marts.fct_line_movements
        ),
        ticks as (
            select s.outcome, s.bookmaker, h.observed_at, h.price
            from marts.fct_price_history h
            join selections s on s.selection_key = h.selection_key
        ),
        window_start as (
            select min(observed_at) as observed_at from marts.fct_price_history
        ),
        flat as (
            select s.outcome, s.bookmaker,
                case when s.first_seen_at > w.observed_at or w.observed_at is null
                    then s.first_seen_at else w.observed_at end as observed_at,
                s.current_price as price
            from selections s
            cross join window_start w
            where not exists (select 1 from ticks t where t.bookmaker = s.bookmaker and t.outcome = s.outcome)
        ),
        now_points as (
            select s.outcome, s.bookmaker, c.as_of as observed_at, s.current_price as price
            from selections s
            cross join clock c
        ),
        points as (
            select * from ticks
            union all select * from flat
            union all select * from now_points
        ),
        series as (
            select outcome, bookmaker, count(*) as points,
                extract(epoch from min(observed_at)) as first_s,
                extract(epoch from max(observed_at)) - extract(epoch from min(observed_at)) as span_s
            from points
            group by outcome, bookmaker
        ),
        bucketed as (
            select p.outcome, p.bookmaker, p.observed_at, p.price, s.points,
                floor(:buckets * (extract(epoch from p.observed_at) - s.first_s) / nullif(s.span_s, 0))
                    as bucket
            from points p
            join series s on s.outcome = p.outcome and s.bookmaker = p.bookmaker
        ),
        ranked as (
            select outcome, bookmaker, observed_at, price, points,
                row_number() over (partition by outcome, bookmaker, bucket order by observed_at)
                    as first_rank,
                row_number() over (partition by outcome, bookmaker, bucket order by observed_at desc)
                    as last_rank,
                row_number() over (partition by outcome, bookmaker, bucket order by price, observed_at)
                    as low_rank,
                row_number() over (partition by outcome, bookmaker, bucket order by price desc, observed_at)
                    as high_rank
            from bucketed
        )
        select outcome, bookmaker, observed_at, price
        from ranked
        where points <= :max_points or first_rank = 1 or last_rank = 1 or low_rank = 1 or high_rank = 1
        order by outcome, bookmaker, observed_at
        """,
        {
            "e": event_id,
            "m": market,
            "p": period,
            "max_points": max_points,
            "buckets": max(1, max_points // 4 - 1),
            **_line_param(line),
        },
    )


def alert_markers(
    engine: sa.Engine, event_id: str, market: str, period: str, line: float | None, limit: int = 200
) -> pd.DataFrame:
    """The audit trail's decisions on one market of the event (not the rejected ones), newest first:
    decided_at, type, severity, action, bookmaker, outcome, decision_reason."""
    columns = ["decided_at", "type", "severity", "action", "bookmaker", "outcome", "decision_reason"]
    with engine.connect() as conn:
        rows = search_decisions(conn, canonical_event_id=event_id, limit=limit)
    frame = pd.DataFrame(rows, columns=[*columns, "market", "period", "line"])
    same_line = frame["line"].isna() if line is None else frame["line"].eq(line)
    keep = frame["market"].eq(market) & frame["period"].eq(period) & same_line
    keep &= frame["action"].ne("rejected")
    return frame.loc[keep, columns].reset_index(drop=True)


# --- scanner -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScannerFilters:
    """What the Scanner shows; empty tuples mean "any"."""

    sports: tuple[str, ...] = ()
    leagues: tuple[str, ...] = ()
    bookmakers: tuple[str, ...] = ()
    types: tuple[str, ...] = OPPORTUNITY_TYPES
    min_size_pct: float = 0.0
    max_hours_to_kick_off: float | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ScannerFilters:
        """Filters from a stored preset; fields it lacks (an older preset) keep their defaults."""
        stored = json.loads(text)
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in stored.items() if k in known
        }
        return cls(**values)


def scanner(reader: MartsReader, filters: ScannerFilters, limit: int = SCANNER_LIMIT) -> pd.DataFrame:
    """The current opportunities of every type in one table, largest first.

    size_pct is the opportunity's size in percent: a drop's fall over 30 minutes, a value bet's or
    an out-of-line price's edge against the fair price, an arbitrage's guaranteed margin, and a
    steam move's mean move in implied-probability points. reference_price is what the price is read
    against (the price 30 minutes ago, the fair price, the others' consensus price)."""
    params: dict[str, Any] = {"ool": OUT_OF_LINE_POINTS, "min_size": filters.min_size_pct, "limit": limit}
    types = [t for t in filters.types if t in OPPORTUNITY_TYPES]
    if not types:
        return pd.DataFrame(columns=SCANNER_COLUMNS)
    books = _in("b", filters.bookmakers, params)
    branches = {
        "drop": f"""
            select 'drop' as type, m.canonical_event_id, m.bookmaker, m.market, m.period, m.line,
                m.outcome, m.current_price as price, m.current_price / (1 + m.change_30m) as reference_price,
                -100 * m.change_30m as size_pct, 1 as books, m.last_changed_at as seen_at
            from marts.fct_line_movements m
            where m.change_30m < 0 and m.current_status = 'open' {books.where("m.bookmaker")}""",
        "steam": f"""
            select 'steam', s.canonical_event_id, s.first_bookmaker, s.market, s.period, s.line,
                s.outcome, cast(null as double precision), cast(null as double precision),
                abs(s.mean_probability_points), s.books, s.last_moved_at
            from marts.fct_steam_moves s
            where true {books.where("s.first_bookmaker")}""",
        "value": f"""
            select 'value', v.canonical_event_id, v.bookmaker, v.market, v.period, v.line, v.outcome,
                v.price, v.fair_price, 100 * v.edge, 1, cast(null as timestamp with time zone)
            from marts.fct_value_bets v
            where true {books.where("v.bookmaker")}""",
        "arbitrage": f"""
            select 'arbitrage', a.canonical_event_id, string_agg(distinct a.best_bookmaker, ', '),
                a.market, a.period, a.line, cast(null as varchar), cast(null as double precision),
                cast(null as double precision), 100 * max(a.margin), count(distinct a.best_bookmaker),
                cast(null as timestamp with time zone)
            from marts.fct_arbitrage a
            where a.is_arbitrage
            group by a.canonical_event_id, a.market, a.period, a.line
            {books.having("a.best_bookmaker")}""",
        "out_of_line": f"""
            select 'out_of_line', d.canonical_event_id, d.bookmaker, d.market, d.period, d.line,
                d.outcome, d.price, 1.0 / d.consensus_probability, 100 * d.edge, d.other_books + 1,
                cast(null as timestamp with time zone)
            from marts.fct_divergence d
            where d.edge > 0 and abs(d.probability_points) >= :ool and d.other_books >= 2
                {books.where("d.bookmaker")}""",
    }
    event_filters = [
        _in("s", filters.sports, params).where("e.sport"),
        _in("l", filters.leagues, params).where("e.league"),
    ]
    if filters.max_hours_to_kick_off is not None:
        params["max_minutes"] = 60 * filters.max_hours_to_kick_off
        event_filters.append(f"and {MINUTES_TO_KICK_OFF} <= :max_minutes")
    union = "\n union all ".join(branches[t] for t in types)
    frame = reader.query(
        f"""
        with opportunities (
            type, canonical_event_id, bookmaker, market, period, line, outcome, price,
            reference_price, size_pct, books, seen_at
        ) as ({union})
        select o.type, e.home_team || ' v ' || e.away_team as event, e.sport, e.league, e.starts_at,
            {MINUTES_TO_KICK_OFF} as minutes_to_kick_off, e.is_live, o.bookmaker, o.market, o.period,
            o.line, o.outcome, o.price, o.reference_price, o.size_pct, o.books, o.seen_at,
            o.canonical_event_id, e.home_team, e.away_team
        from opportunities o
        join marts.dim_events e on e.canonical_event_id = o.canonical_event_id
        where o.size_pct >= :min_size {" ".join(event_filters)}
        order by o.size_pct desc, o.type, event, o.bookmaker, o.outcome
        limit :limit
        """,
        params,
    )
    frame.insert(
        frame.columns.get_loc("market"),
        "selection",
        [
            selection_words(r.market, r.period, r.line, r.outcome, r.home_team, r.away_team)
            for r in frame.itertuples()
        ],
    )
    return frame[SCANNER_COLUMNS]


SCANNER_COLUMNS = [
    "type",
    "event",
    "sport",
    "league",
    "starts_at",
    "minutes_to_kick_off",
    "is_live",
    "bookmaker",
    "selection",
    "market",
    "period",
    "line",
    "outcome",
    "price",
    "reference_price",
    "size_pct",
    "books",
    "seen_at",
    "canonical_event_id",
]
MINUTES_TO_KICK_OFF = "extract(epoch from (e.starts_at - current_timestamp)) / 60"


# --- divergence ----------------------------------------------------------------------------------


def divergence_markets(reader: MartsReader) -> pd.DataFrame:
    """The markets fct_divergence judges (market, period) with their row counts, busiest first."""
    return reader.query(
        "select market, period, count(*) as quotes from marts.fct_divergence "
        "group by market, period order by quotes desc, market, period"
    )


def divergence_grid(
    reader: MartsReader, market: str, period: str, sports: Sequence[str] = (), events_limit: int = 40
) -> pd.DataFrame:
    """Books x events for one market: per cell the outcome where the book's price is furthest above
    the others' consensus (edge), for the `events_limit` events with the widest spread of edges."""
    params: dict[str, Any] = {"m": market, "p": period, "events": events_limit}
    sport = _in("s", sports, params)
    return reader.query(
        f"""
        with judged as (
            select d.canonical_event_id, d.bookmaker, d.line, d.outcome, d.price, d.edge,
                d.probability_points, d.other_books,
                row_number() over (
                    partition by d.canonical_event_id, d.bookmaker order by d.edge desc, d.line, d.outcome
                ) as rank
            from marts.fct_divergence d
            join marts.dim_events e on e.canonical_event_id = d.canonical_event_id
            where d.market = :m and d.period = :p and d.other_books >= 1 {sport.where("e.sport")}
        ),
        widest as (
            select canonical_event_id, max(edge) - min(edge) as spread
            from judged
            group by canonical_event_id
            order by spread desc, canonical_event_id
            limit :events
        )
        select j.canonical_event_id, e.home_team || ' v ' || e.away_team as event, e.home_team,
            e.away_team, e.starts_at, j.bookmaker, j.line, j.outcome, j.price, 100 * j.edge as edge_pct,
            j.probability_points, j.other_books, w.spread
        from judged j
        join widest w on w.canonical_event_id = j.canonical_event_id
        join marts.dim_events e on e.canonical_event_id = j.canonical_event_id
        where j.rank = 1
        order by w.spread desc, j.canonical_event_id, j.bookmaker
        """,
        params,
    )


# --- scanner presets (app database) --------------------------------------------------------------

scanner_presets = sa.Table(
    "scanner_presets",
    metadata,
    sa.Column("name", sa.String(80), primary_key=True),
    sa.Column("filters", sa.Text, nullable=False),  # ScannerFilters.to_json()
    sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
)


def save_preset(engine: sa.Engine, name: str, filters: ScannerFilters) -> None:
    """Store `filters` under `name` (replacing a preset of that name)."""
    name = name.strip()
    if not name:
        raise ValueError("a preset needs a name")
    scanner_presets.create(engine, checkfirst=True)
    with engine.begin() as conn:
        conn.execute(scanner_presets.delete().where(scanner_presets.c.name == name))
        conn.execute(
            scanner_presets.insert().values(name=name, filters=filters.to_json(), saved_at=datetime.now(UTC))
        )


def presets(engine: sa.Engine) -> dict[str, ScannerFilters]:
    """Every saved preset by name."""
    scanner_presets.create(engine, checkfirst=True)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(scanner_presets).order_by(scanner_presets.c.name))
        return {r.name: ScannerFilters.from_json(r.filters) for r in rows}


def delete_preset(engine: sa.Engine, name: str) -> None:
    with engine.begin() as conn:
        conn.execute(scanner_presets.delete().where(scanner_presets.c.name == name))


# --- words ---------------------------------------------------------------------------------------


def market_words(market: str, period: str, line: float | None) -> str:
    words = MARKET_NAMES.get(market, market)
    if line is not None and market in ("total", "asian_total", "team_total_home", "team_total_away"):
        words = f"{words} {line:g}"
    return words if period == "ft" else f"{words}, {PERIOD_NAMES.get(period, period)}"


def outcome_words(outcome: str, line: float | None, home: str, away: str) -> str:
    if outcome in ("home", "away"):
        team = home if outcome == "home" else away
        if line is not None:  # handicaps are stored from the home side's view
            return f"{team} {(line if outcome == 'home' else -line):+g}"
        return team
    if outcome in ("over", "under") and line is not None:
        return f"{outcome.capitalize()} {line:g}"
    return outcome.replace("_", " ").capitalize()


def selection_words(market: str, period: str, line: Any, outcome: Any, home: str, away: str) -> str:
    """ "Match result: Arsenal", or the market alone for a whole set (an arbitrage's)."""
    value = number(line)
    words = market_words(str(market), str(period), value)
    if not present(outcome):
        return words
    return f"{words}: {outcome_words(str(outcome), value, str(home), str(away))}"


def outcome_rank(outcome: str) -> tuple[int, str]:
    return (OUTCOME_ORDER.index(outcome) if outcome in OUTCOME_ORDER else len(OUTCOME_ORDER), outcome)


def number(value: Any) -> float | None:
    """A nullable number from pandas (NULL arrives as None or NaN)."""
    return None if not present(value) else float(value)


def present(value: Any) -> bool:
    if value is None or value is pd.NaT:
        return False
    return not (isinstance(value, float) and math.isnan(value))


# --- SQL pieces ----------------------------------------------------------------------------------


def _line_sql(column: str, line: float | None) -> str:
    return f"{column} is null" if line is None else f"{column} = :line"


def _line_param(line: float | None) -> dict[str, float]:
    return {} if line is None else {"line": line}


@dataclass(frozen=True)
class _InList:
    """`column in (:p0, :p1, …)` for a filter's values, bound as parameters; empty: no condition."""

    names: tuple[str, ...]

    def where(self, column: str) -> str:
        return f"and {column} in ({', '.join(':' + n for n in self.names)})" if self.names else ""

    def having(self, column: str) -> str:
        """For a grouped row: kept when any of its rows' `column` is among the values."""
        if not self.names:
            return ""
        listed = ", ".join(":" + n for n in self.names)
        return f"having max(case when {column} in ({listed}) then 1 else 0 end) = 1"


def _in(prefix: str, values: Sequence[str], params: dict[str, Any]) -> _InList:
    names = tuple(f"{prefix}{i}" for i in range(len(values)))
    params.update(zip(names, values, strict=True))
    return _InList(names)
