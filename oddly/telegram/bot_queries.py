"""What the bot reads and keeps: the menus' catalog, /top and /event from the published marts, the
/event chart from the warehouse's ticks, and timed mutes in the app database.

Plain functions over a `MartsReader` / `Warehouse` / SQLAlchemy connection, called from worker
threads by `oddly.telegram.bot`, so the event loop never waits on a database. Texts are Telegram
HTML with every value from data escaped (a team called "A&B" must not break the message).
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import pandas as pd
import sqlalchemy as sa

from oddly.appdb import metadata
from oddly.model import utc
from oddly.telegram.bot_menus import Catalog
from oddly.telegram.chart import line_chart_png, outcome_history
from oddly.telegram.message import MARKET_NAMES, PERIOD_NAMES, kickoff_words
from oddly.warehouse.reader import MartsNotReadyError, MartsReader
from oddly.warehouse.store import Warehouse

TOP_LIMIT = 5
BOOKS_PER_OUTCOME = 8
OUTCOME_ORDER = ("home", "draw", "away", "over", "under", "yes", "no")
MAIN_MARKETS = (("1x2", "ft"), ("moneyline", "ft"), ("win", "ft"))  # the market /event shows first

# Timed mutes (/mute 2h): when the bot turns alerts back on. Subscriptions only know muted or not;
# the bot, which set the timer, ends it.
mute_timers = sa.Table(
    "bot_mute_timers",
    metadata,
    sa.Column("chat_id", sa.String(64), primary_key=True),
    sa.Column("until", sa.DateTime(timezone=True), nullable=False),
)


# --- the menus' catalog --------------------------------------------------------------------------


def load_catalog(reader: MartsReader) -> Catalog:
    """Sports, leagues and bookmakers the marts know; empty (with why) before the first build."""
    try:
        events = reader.query(
            "select distinct sport, league from marts.dim_events where sport is not null order by 1, 2"
        )
        books = reader.query("select bookmaker from marts.dim_bookmakers order by bookmaker")
    except MartsNotReadyError:
        return Catalog(note="No market data published yet")
    leagues = tuple(
        (str(r.sport), str(r.league)) for r in events.itertuples() if isinstance(r.league, str) and r.league
    )
    return Catalog(
        sports=tuple(dict.fromkeys(str(s) for s in events["sport"])),
        leagues=leagues,
        bookmakers=tuple(str(b) for b in books["bookmaker"]),
    )


# --- /top ----------------------------------------------------------------------------------------


def top_text(reader: MartsReader, app_url: str, limit: int = TOP_LIMIT) -> str:
    """The biggest drops of the last 30 minutes and the best value bets, `limit` of each."""
    drops = reader.query(
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
    values = reader.query(
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
    lines = ["<b>📉 Biggest drops, last 30 min</b>"]
    for i, r in enumerate(drops.itertuples(), 1):
        old = r.current_price / (1 + r.change_30m)
        lines.append(
            f"{i}. {_event_link(r, app_url)} · {_selection(r)} @ {html.escape(str(r.bookmaker))} "
            f"{old:.2f} → <b>{r.current_price:.2f}</b> ({100 * r.change_30m:+.1f} %)"
        )
    if drops.empty:
        lines.append("No price has dropped in the last 30 minutes.")
    lines.append("\n<b>💎 Best value against the sharp price</b>")
    for i, r in enumerate(values.itertuples(), 1):
        lines.append(
            f"{i}. {_event_link(r, app_url)} · {_selection(r)} @ {html.escape(str(r.bookmaker))} "
            f"<b>{r.price:.2f}</b>, fair {r.fair_price:.2f} (edge {100 * r.edge:+.1f} %)"
        )
    if values.empty:
        lines.append("No value bets right now.")
    return "\n".join(lines)


# --- /event --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventView:
    """An event's current prices (the text) and the selection its chart shows."""

    event_id: str
    text: str  # Telegram HTML
    chart_title: str
    market: str
    period: str
    line: float | None
    outcome: str
    fair_price: float | None
    sharp_bookmaker: str | None


def event_view(reader: MartsReader, event_id: str, app_url: str, now: datetime) -> EventView | None:
    """The event's main market at every book, best price per outcome marked; None if unknown."""
    events = reader.query("select * from marts.dim_events where canonical_event_id = :e", {"e": event_id})
    if events.empty:
        return None
    event = events.iloc[0]
    prices = reader.query(
        "select bookmaker, market, period, line, outcome, price from marts.fct_prices_current "
        "where canonical_event_id = :e and not is_suspended",
        {"e": event_id},
    )
    name = f"{event['home_team']} v {event['away_team']}"
    head = [
        f"<b>{html.escape(name)}</b>",
        html.escape(
            " · ".join(
                str(v) for v in (event["sport"], event.get("league"), _kickoff(event, now)) if _present(v)
            )
        ),
    ]
    link = f'<a href="{html.escape(event_url(app_url, event_id))}">Event page</a>'
    if prices.empty:
        text = "\n".join([*head, "No open prices right now.", link])
        return EventView(event_id, text, name, "", "", None, "", None, None)
    prices["line"] = prices["line"].map(_line)
    market, period, line = _main_market(prices)
    main = prices[(prices["market"] == market) & (prices["period"] == period)]
    main = main[main["line"].map(lambda v: v == line)]
    outcomes = sorted(main["outcome"].unique(), key=_outcome_rank)
    rows = [f"<b>{html.escape(_market_words(market, period, line))}</b> (best ★)"]
    for outcome in outcomes:
        books = main[main["outcome"] == outcome].sort_values(["price", "bookmaker"], ascending=[False, True])
        best = books["price"].max()
        quotes = [
            f"★ <b>{html.escape(str(b.bookmaker))} {b.price:.2f}</b>"
            if b.price == best
            else f"{html.escape(str(b.bookmaker))} {b.price:.2f}"
            for b in books.head(BOOKS_PER_OUTCOME).itertuples()
        ]
        label = _outcome_words(str(outcome), line, str(event["home_team"]), str(event["away_team"]))
        rows.append(f"{html.escape(label)}: " + " · ".join(quotes))
    books_count = main["bookmaker"].nunique()
    footer = f"{books_count} book{'s' if books_count != 1 else ''} · {link}"
    chart_outcome = str(outcomes[0])
    fair, sharp = _fair_and_sharp(reader, event_id, market, period, line, chart_outcome)
    title = f"{name} · {_market_words(market, period, line)}: " + _outcome_words(
        chart_outcome, line, str(event["home_team"]), str(event["away_team"])
    )
    return EventView(
        event_id,
        "\n".join([*head, "", *rows, "", footer]),
        title,
        market,
        period,
        line,
        chart_outcome,
        fair,
        sharp,
    )


def event_chart(warehouse: Warehouse, view: EventView) -> bytes | None:
    """The chart of the view's selection across books; None when no ticks are recorded."""
    if not view.outcome:
        return None
    history = outcome_history(warehouse, view.event_id, view.market, view.period, view.line, view.outcome)
    if history.empty:
        return None
    return line_chart_png(history, view.chart_title, view.fair_price, sharp_bookmaker=view.sharp_bookmaker)


def event_url(app_url: str, event_id: str) -> str:
    return f"{app_url.rstrip('/')}/event?{urlencode({'event_id': event_id})}"


def _fair_and_sharp(
    reader: MartsReader, event_id: str, market: str, period: str, line: float | None, outcome: str
) -> tuple[float | None, str | None]:
    line_sql = "line is null" if line is None else "line = :line"
    fair = reader.query(
        "select fair_probability_sharp_power as p from marts.fct_consensus where canonical_event_id = :e "
        f"and market = :m and period = :p and outcome = :o and {line_sql}",
        {"e": event_id, "m": market, "p": period, "o": outcome, "line": line},
    )
    sharp = reader.query("select bookmaker from marts.dim_bookmakers where is_sharp order by bookmaker")
    probability = _line(fair["p"].iloc[0]) if not fair.empty else None
    fair_price = 1 / probability if probability else None
    return fair_price, (str(sharp["bookmaker"].iloc[0]) if not sharp.empty else None)


def _main_market(prices: pd.DataFrame) -> tuple[str, str, float | None]:
    for market, period in MAIN_MARKETS:
        if ((prices["market"] == market) & (prices["period"] == period)).any():
            lines = prices[(prices["market"] == market) & (prices["period"] == period)]["line"]
            return market, period, lines.iloc[0]
    # Otherwise the selection quoted by the most rows (most books).
    counts = (
        prices.astype({"line": object}).fillna({"line": "-"}).groupby(["market", "period", "line"]).size()
    )
    market, period, line = counts.sort_values(ascending=False).index[0]
    return str(market), str(period), None if line == "-" else float(line)


# --- words ---------------------------------------------------------------------------------------


def _event_link(row: Any, app_url: str) -> str:
    name = html.escape(f"{row.home_team} v {row.away_team}")
    return f'<a href="{html.escape(event_url(app_url, str(row.canonical_event_id)))}">{name}</a>'


def _selection(row: Any) -> str:
    line = _line(row.line)
    words = _outcome_words(str(row.outcome), line, str(row.home_team), str(row.away_team))
    return html.escape(f"{_market_words(str(row.market), str(row.period), line)}: {words}")


def _market_words(market: str, period: str, line: float | None) -> str:
    words = MARKET_NAMES.get(market, market)
    if line is not None and market in ("total", "asian_total", "team_total_home", "team_total_away"):
        words = f"{words} {line:g}"
    return words if period == "ft" else f"{words}, {PERIOD_NAMES.get(period, period)}"


def _outcome_words(outcome: str, line: float | None, home: str, away: str) -> str:
    if outcome in ("home", "away"):
        team = home if outcome == "home" else away
        if line is not None:  # handicaps are stored from the home side's view
            return f"{team} {(line if outcome == 'home' else -line):+g}"
        return team
    if outcome in ("over", "under") and line is not None:
        return f"{outcome.capitalize()} {line:g}"
    return outcome.replace("_", " ").capitalize()


def _kickoff(event: pd.Series, now: datetime) -> str | None:
    starts = event.get("starts_at")
    if not _present(starts):
        return None
    return kickoff_words(pd.Timestamp(starts).to_pydatetime(), bool(event.get("is_live") or False), now)


def _outcome_rank(outcome: str) -> tuple[int, str]:
    return (OUTCOME_ORDER.index(outcome) if outcome in OUTCOME_ORDER else len(OUTCOME_ORDER), outcome)


def _line(value: Any) -> float | None:
    """A nullable number from pandas (NULL arrives as None or NaN)."""
    return None if not _present(value) else float(value)


def _present(value: Any) -> bool:
    if value is None or value is pd.NaT:
        return False
    return not (isinstance(value, float) and math.isnan(value))


# --- timed mutes ---------------------------------------------------------------------------------


def set_mute_timer(conn: sa.Connection, chat_id: str | int, until: datetime | None) -> None:
    """Unmute `chat_id` at `until`; None: muted until /unmute (any timer dropped)."""
    conn.execute(mute_timers.delete().where(mute_timers.c.chat_id == str(chat_id)))
    if until is not None:
        conn.execute(mute_timers.insert().values(chat_id=str(chat_id), until=utc(until)))


def mute_timer(conn: sa.Connection, chat_id: str | int) -> datetime | None:
    until = conn.execute(
        sa.select(mute_timers.c.until).where(mute_timers.c.chat_id == str(chat_id))
    ).scalar_one_or_none()
    return None if until is None else utc(until)


def due_mute_timers(conn: sa.Connection, now: datetime) -> list[str]:
    """Chats whose timed mute has run out (the caller unmutes them and drops the timers)."""
    rows = conn.execute(sa.select(mute_timers.c.chat_id).where(mute_timers.c.until <= utc(now)))
    return [str(r.chat_id) for r in rows]
