"""The line-movement chart a red alert carries: one outcome's price at every book over time.

Step lines, because a price holds until the next tick changes it; the sharp book drawn heavier,
since the others are read against it; the fair price dashed and the alert's moment marked, so the
move is seen at a glance in a phone-sized PNG (well under Telegram's photo limits).
"""

from __future__ import annotations

import io
from datetime import datetime
from typing import TYPE_CHECKING

import matplotlib.dates as mdates
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from oddly.warehouse.store import Warehouse

HISTORY_COLUMNS = ("bookmaker", "observed_at", "price", "status")
MAX_BOOKS = 10  # more lines than this are unreadable on a phone; the busiest books are kept


class ChartInputError(ValueError):
    """The history frame lacks a column the chart needs; the message names it."""


def outcome_history(
    warehouse: Warehouse,
    canonical_event_id: str,
    market: str,
    period: str,
    line: float | None,
    outcome: str,
    since: datetime | None = None,
) -> pd.DataFrame:
    """Every tick of one outcome of one canonical event at every matched book, oldest first:
    columns bookmaker, observed_at, price, status (from raw.odds_ticks joined with raw.event_map).
    The tick before `since` is kept per book, so each line starts at the price then current."""
    params: dict[str, object] = {"event": canonical_event_id, "market": market, "period": period}
    params |= {"outcome": outcome, "line": line, "since": since}
    line_sql = "t.line is null" if line is None else "t.line = :line"
    # Each book's last tick before `since` is what its price was at `since`.
    window_sql = (
        "true"
        if since is None
        else "t.observed_at >= :since or t.observed_at = "
        "(select max(p.observed_at) from ticks p where p.bookmaker = t.bookmaker and p.observed_at < :since)"
    )
    rows = warehouse.query(
        f"""
        with ticks as (
            select t.bookmaker, t.observed_at, t.price, t.status
            from raw.odds_ticks t
            join raw.event_map m on m.bookmaker = t.bookmaker and m.source_event_id = t.source_event_id
            where m.canonical_event_id = :event and t.market = :market and t.period = :period
                and t.outcome = :outcome and {line_sql}
        )
        select t.bookmaker, t.observed_at, t.price, t.status from ticks t
        where {window_sql}
        order by t.observed_at, t.bookmaker
        """,
        {k: v for k, v in params.items() if v is not None},
    )
    frame = pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))
    frame["observed_at"] = pd.to_datetime(frame["observed_at"], utc=True)
    return frame


def line_chart_png(
    history: pd.DataFrame,
    title: str,
    fair_price: float | None = None,
    *,
    sharp_bookmaker: str | None = None,
    marked_at: datetime | None = None,
    until: datetime | None = None,
) -> bytes:
    """A PNG of `history` (columns bookmaker, observed_at, price; status optional, suspended
    ticks are gaps): one step line per book, the sharp book emphasized, the fair price as a dashed
    line and `marked_at` (the alert) as a vertical line. Lines run on to `until` (default: the
    last tick or mark), so a book's current price is visible even if it has not moved lately."""
    missing = [c for c in ("bookmaker", "observed_at", "price") if c not in history.columns]
    if missing:
        raise ChartInputError(f"history frame lacks column(s) {', '.join(missing)}; see outcome_history")
    frame = history.assign(observed_at=pd.to_datetime(history["observed_at"], utc=True)).sort_values(
        "observed_at"
    )
    if "status" in frame.columns:
        frame.loc[frame["status"] != "open", "price"] = float("nan")
    end = _end_time(frame, marked_at, until)

    # A bare Figure on the Agg canvas, not pyplot: no global figure registry (charts are drawn in
    # long-lived servers, from several threads) and fixed margins instead of a layout pass.
    fig = Figure(figsize=(8, 4.2), dpi=100)
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=0.08, right=0.98, top=0.91, bottom=0.13)
    ax = fig.add_subplot()
    books = frame["bookmaker"].value_counts().index[:MAX_BOOKS]
    for book in sorted(books, key=lambda b: b == sharp_bookmaker):  # sharp drawn last, on top
        ticks = frame[frame["bookmaker"] == book]
        times = [*ticks["observed_at"], end]
        prices = [*ticks["price"], ticks["price"].iloc[-1]]
        sharp = book == sharp_bookmaker
        ax.step(
            times,
            prices,
            where="post",
            linewidth=2.8 if sharp else 1.3,
            alpha=1.0 if sharp else 0.75,
            label=f"{book} (sharp)" if sharp else str(book),
            zorder=3 if sharp else 2,
        )
    if fair_price is not None:
        ax.axhline(fair_price, color="black", linestyle="--", linewidth=1, label=f"fair {fair_price:.2f}")
    if marked_at is not None:
        ax.axvline(_utc(marked_at), color="red", linewidth=1, alpha=0.7, label="alert")
    if frame.empty:
        ax.text(0.5, 0.5, "no prices recorded", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(title, fontsize=11)
    ax.set_ylabel("decimal price")
    ax.grid(alpha=0.3)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz="UTC"))
    ax.set_xlabel("UTC")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="upper left", framealpha=0.8)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _end_time(frame: pd.DataFrame, marked_at: datetime | None, until: datetime | None) -> pd.Timestamp:
    if until is not None:
        return _utc(until)
    candidates = [_utc(marked_at)] if marked_at is not None else []
    if not frame.empty:
        candidates.append(frame["observed_at"].max())
    if not candidates:
        return pd.Timestamp.now(tz="UTC")
    # A little past the last tick, so the latest prices show as a level, not just a drop.
    start = frame["observed_at"].min() if not frame.empty else min(candidates)
    return max(candidates) + max((max(candidates) - start) * 0.08, pd.Timedelta(seconds=30))


def _utc(moment: datetime) -> pd.Timestamp:
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def outcome_chart(
    warehouse: Warehouse,
    canonical_event_id: str,
    market: str,
    period: str,
    line: float | None,
    outcome: str,
    title: str,
    fair_price: float | None = None,
    *,
    sharp_bookmaker: str | None = None,
    since: datetime | None = None,
    marked_at: datetime | None = None,
) -> bytes | None:
    """`line_chart_png` of one outcome's `outcome_history`; None when no tick is recorded."""
    history = outcome_history(warehouse, canonical_event_id, market, period, line, outcome, since=since)
    if history.empty:
        return None
    return line_chart_png(history, title, fair_price, sharp_bookmaker=sharp_bookmaker, marked_at=marked_at)
