"""What the bot reads and keeps: the menus' catalog, /top and /event from the published marts (the
queries are `oddly.views.market`'s, shared with the Streamlit app), the /event chart from the
warehouse's ticks, and timed mutes in the app database.

Plain functions over a `MartsReader` / `Warehouse` / SQLAlchemy connection, called from worker
threads by `oddly.telegram.bot`, so the event loop never waits on a database. Texts are Telegram
HTML with every value from data escaped (a team called "A&B" must not break the message).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from oddly.appdb import metadata
from oddly.model import utc
from oddly.telegram.bot_menus import Catalog
from oddly.telegram.chart import outcome_chart
from oddly.telegram.message import event_page_url, kickoff_words
from oddly.views import market as views
from oddly.warehouse.reader import MartsNotReadyError, MartsReader
from oddly.warehouse.store import Warehouse

TOP_LIMIT = 5
BOOKS_PER_OUTCOME = 8

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
        events = views.sports_and_leagues(reader)
        books = views.bookmakers(reader)
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
    drops = views.top_drops(reader, limit)
    values = views.top_value_bets(reader, limit)
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
    event = views.event(reader, event_id)
    if event is None:
        return None
    prices = views.event_prices(reader, event_id)
    name = f"{event['home_team']} v {event['away_team']}"
    head = [
        f"<b>{html.escape(name)}</b>",
        html.escape(
            " · ".join(
                str(v)
                for v in (event["sport"], event.get("league"), _kickoff(event, now))
                if views.present(v)
            )
        ),
    ]
    link = f'<a href="{html.escape(event_page_url(app_url, event_id))}">Event page</a>'
    if prices.empty:
        text = "\n".join([*head, "No open prices right now.", link])
        return EventView(event_id, text, name, "", "", None, "", None, None)
    prices["line"] = prices["line"].map(views.number)
    market, period, line = views.main_market(prices)
    main = views.market_rows(prices, market, period, line)  # a null line matches None, not NaN
    outcomes = sorted(main["outcome"].unique(), key=views.outcome_rank)
    rows = [f"<b>{html.escape(views.market_words(market, period, line))}</b> (best ★)"]
    for outcome in outcomes:
        books = main[main["outcome"] == outcome].sort_values(["price", "bookmaker"], ascending=[False, True])
        best = books["price"].max()
        quotes = [
            f"★ <b>{html.escape(str(b.bookmaker))} {b.price:.2f}</b>"
            if b.price == best
            else f"{html.escape(str(b.bookmaker))} {b.price:.2f}"
            for b in books.head(BOOKS_PER_OUTCOME).itertuples()
        ]
        label = views.outcome_words(str(outcome), line, str(event["home_team"]), str(event["away_team"]))
        rows.append(f"{html.escape(label)}: " + " · ".join(quotes))
    books_count = main["bookmaker"].nunique()
    footer = f"{books_count} book{'s' if books_count != 1 else ''} · {link}"
    chart_outcome = str(outcomes[0])
    fair = views.sharp_fair_price(reader, event_id, market, period, line, chart_outcome)
    sharp = views.sharp_bookmaker(reader)
    title = f"{name} · {views.market_words(market, period, line)}: " + views.outcome_words(
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
    return outcome_chart(
        warehouse,
        view.event_id,
        view.market,
        view.period,
        view.line,
        view.outcome,
        view.chart_title,
        view.fair_price,
        sharp_bookmaker=view.sharp_bookmaker,
    )


# --- words ---------------------------------------------------------------------------------------


def _event_link(row: Any, app_url: str) -> str:
    name = html.escape(f"{row.home_team} v {row.away_team}")
    return f'<a href="{html.escape(event_page_url(app_url, str(row.canonical_event_id)))}">{name}</a>'


def _selection(row: Any) -> str:
    return html.escape(
        views.selection_words(row.market, row.period, row.line, row.outcome, row.home_team, row.away_team)
    )


def _kickoff(event: pd.Series, now: datetime) -> str | None:
    starts = event.get("starts_at")
    if not views.present(starts):
        return None
    return kickoff_words(pd.Timestamp(starts).to_pydatetime(), bool(event.get("is_live") or False), now)


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
