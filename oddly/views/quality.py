"""Bookmaker quality and feed health: the trading-quality monitor.

Quality comes from `marts.fct_bookmaker_quality` (one row per bookmaker and market), summed up per
bookmaker in SQL, each measure weighted by what it is a share or mean of. Feed health is the
per-feed summary of `raw.feed_runs` and `raw.quarantine` (`oddly.warehouse.snapshot.FEED_HEALTH_SQL`):
read from the published snapshot in embedded mode (readers never open the warehouse file), run
on the warehouse itself in server mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from oddly.model import now_utc
from oddly.warehouse.reader import MartsReader
from oddly.warehouse.snapshot import FEED_HEALTH, FEED_HEALTH_SQL

# A feed whose last run started longer ago than this is not being polled.
SILENT_AFTER = timedelta(minutes=10)


def _weighted(measure: str, weight: str, name: str | None = None) -> str:
    """The `weight`-weighted mean of `measure` over the rows where it is known."""
    return (
        f"sum({measure} * {weight}) / nullif(sum(case when {measure} is not null then {weight} end), 0)"
        f" as {name or measure}"
    )


QUALITY_SQL = f"""
select
    bookmaker,
    bool_or(is_sharp) as is_sharp,
    count(*) as markets,
    sum(selections) as selections,
    sum(ticks) as ticks,
    {_weighted("mean_margin", "selections")},
    {_weighted("mean_stale_seconds", "selections")},
    sum(sharp_moves_followed) as sharp_moves_followed,
    {_weighted("median_lag_seconds", "sharp_moves_followed", "lag_seconds")},
    {_weighted("suspension_rate", "ticks")},
    {_weighted("out_of_line_share", "selections")}
from marts.fct_bookmaker_quality
where {{where}}
group by bookmaker
order by bool_or(is_sharp) desc, bookmaker
"""


def in_list(column: str, values: Sequence[Any], prefix: str) -> tuple[str, dict[str, Any]]:
    """`column in (:p0, :p1, ...)` with its parameters (one per value)."""
    params = {f"{prefix}{i}": v for i, v in enumerate(values)}
    return f"{column} in ({', '.join(':' + k for k in params)})", params


def bookmaker_quality(
    reader: MartsReader, market: str | None = None, bookmakers: Sequence[str] = ()
) -> pd.DataFrame:
    """Per bookmaker: margin, staleness, lag behind the sharp book (the markets' medians, weighted
    by the moves followed), suspension rate and out-of-line share, over one market or all."""
    where, params = ["true"], {}
    if market:
        where.append("market = :market")
        params["market"] = market
    if bookmakers:
        clause, books = in_list("bookmaker", bookmakers, "book")
        where.append(clause)
        params |= books
    return reader.query(QUALITY_SQL.format(where=" and ".join(where)), params)


def quality_choices(reader: MartsReader) -> pd.DataFrame:
    """The (market, bookmaker) pairs with a quality row: what the filters offer."""
    return reader.query(
        "select distinct market, bookmaker from marts.fct_bookmaker_quality order by market, bookmaker"
    )


def feed_health(reader: MartsReader, now: datetime | None = None) -> pd.DataFrame:
    """One row per feed: last run and its status and error, last success, runs, failed runs,
    rejected and quarantined rows over 24 h, and `health` (down / silent / ok). Empty when no feed
    has run, or the published snapshot predates the summary."""
    if reader.snapshot is None:
        frame = reader.query(FEED_HEALTH_SQL)
    elif FEED_HEALTH in set(reader.published()["relation"]):
        frame = reader.query(f"select * from {FEED_HEALTH}")
    else:
        return pd.DataFrame(columns=["feed", "health"])
    for column in ("last_run_at", "last_success_at", "measured_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    frame["health"] = [
        _health(status, last_run, now or now_utc())
        for status, last_run in zip(frame["last_status"], frame["last_run_at"], strict=True)
    ]
    return frame


def _health(status: str, last_run: pd.Timestamp, now: datetime) -> str:
    if status == "failed":
        return "down"
    if now - last_run.to_pydatetime() > SILENT_AFTER:
        return "silent"
    return "ok"


def feed_problems(health: pd.DataFrame) -> list[str]:
    """One sentence per feed that is down or silent, with what to do."""
    out = []
    for row in health.itertuples():
        if row.health == "down":
            out.append(f"feed {row.feed} is down: its last run failed ({row.last_error or 'no error text'}).")
        elif row.health == "silent":
            out.append(
                f"feed {row.feed} has not run since {row.last_run_at:%Y-%m-%d %H:%M} UTC: is its sensor "
                "on in Dagster (or `oddly scan` running)?"
            )
    return out
