"""The live warehouse as the panel the models were trained on: what every book showed for every
selection at each moment of a regular grid, one feed interval apart.

Books are polled at their own times and ticks are change-only, so the panel is rebuilt: the grid
ends at the latest observation in the warehouse, and each (grid time, selection) takes the
selection's last tick at or before it (an as-of join). The state before the window comes from the
first tick in it (its `previous_price`) or, for selections that did not change, from the current
marts. The window reaches `LOOKBACK` behind the first grid time to score, so 5-minute moves are
measured as in training. Only markets where some book moved inside the window are rebuilt: a
market nobody touched scores as it did on the previous run. The canonical event is split by
period, since the features compare books within one market of one period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb
import pandas as pd
import sqlalchemy as sa

from ml.features import PANEL_COLUMNS
from oddly.warehouse.store import Warehouse

LOOKBACK = timedelta(minutes=6)
# At most this many grid times are scored per run (a run after a long pause scores the latest).
MAX_FRESH_CYCLES = 30
# The identifying columns kept next to the panel for writing scores.
SELECTION_COLUMNS = ["changed_before", "selection_key", "canonical_event_id", "period"]

_CURRENT_SQL = """
    select selection_key, canonical_event_id, bookmaker, market, period, line, outcome,
           price, status, is_live, starts_at, last_changed_at
    from marts.fct_prices_current
"""


@dataclass(frozen=True)
class LivePanel:
    panel: pd.DataFrame  # PANEL_COLUMNS + SELECTION_COLUMNS, every grid time in the window
    fresh_from: datetime | None  # grid times after this are the fresh ones
    latest: datetime | None  # the last grid time (the warehouse's latest observation)

    @property
    def fresh(self) -> pd.Series:
        if self.panel.empty:
            return pd.Series([], dtype=bool)
        if self.fresh_from is None:
            return pd.Series(False, index=self.panel.index)
        return self.panel["observed_at"] > pd.Timestamp(self.fresh_from)


def latest_observation(warehouse: Warehouse) -> datetime | None:
    value = warehouse.scalar("select max(observed_at) from raw.latest_prices")
    return None if value is None else pd.Timestamp(value).tz_convert("UTC").to_pydatetime()


def live_panel(
    warehouse: Warehouse,
    *,
    after: datetime | None,
    cycle_seconds: float = 10.0,
    max_cycles: int = MAX_FRESH_CYCLES,
) -> LivePanel:
    """The panel around the grid times after `after` (the previous run's latest; None on the
    first run), ending at the warehouse's latest observation."""
    latest = latest_observation(warehouse)
    empty = pd.DataFrame(columns=[*PANEL_COLUMNS, *SELECTION_COLUMNS])
    if latest is None or (after is not None and latest <= after):
        return LivePanel(empty, after, latest)
    cycle = timedelta(seconds=cycle_seconds)
    cycles = max_cycles if after is None else min(max_cycles, int((latest - after) / cycle) + 1)
    first_fresh = latest - (cycles - 1) * cycle
    steps = int(LOOKBACK / cycle) + cycles
    grid = pd.DataFrame({"observed_at": [latest - i * cycle for i in reversed(range(steps))]})
    start = grid["observed_at"].iloc[0]
    current = warehouse.arrow(_CURRENT_SQL).to_pandas()
    ticks = warehouse.arrow(
        f"""
        select selection_key, observed_at, price, status, previous_price, is_live
        from raw.odds_ticks
        where observed_at > '{start.isoformat()}' and observed_at <= '{latest.isoformat()}'
        """
    ).to_pandas()
    return LivePanel(_assemble(grid, current, ticks, start), first_fresh - cycle / 2, latest)


def _assemble(
    grid: pd.DataFrame, current: pd.DataFrame, ticks: pd.DataFrame, start: datetime
) -> pd.DataFrame:
    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        con.register("grid", grid)
        con.register("current", current)
        con.register("ticks", ticks)
        return con.execute(
            f"""
            with groups as (
                select *, canonical_event_id || '|' || period || '|' || market || '|'
                          || coalesce(cast(line as varchar), '') as group_key
                from current
            ),
            sel as (
                -- only markets where some book moved in the window: a quiet market's rows are
                -- what the previous runs already scored
                select * exclude (group_key) from groups
                where group_key in (
                    select g.group_key from groups as g join ticks as t on t.selection_key = g.selection_key
                )
            ),
            first_ticks as (
                -- first(… order by): arg_min would skip a first tick's null previous price
                select selection_key, first(previous_price order by observed_at) as previous_price
                from ticks group by selection_key
            ),
            initial as (
                -- what each selection showed when the window opened
                select sel.selection_key, timestamptz '{pd.Timestamp(start).isoformat()}' as observed_at,
                       coalesce(f.previous_price, sel.price) as price,
                       case when f.selection_key is null then sel.status else 'open' end as status,
                       sel.is_live
                from sel
                left join first_ticks as f on f.selection_key = sel.selection_key
                where f.selection_key is null or f.previous_price is not null
            ),
            states as (
                select * from initial
                union all
                select selection_key, observed_at, price, status, is_live
                from ticks where selection_key in (select selection_key from sel)
            ),
            cells as (
                select grid.observed_at, sel.* exclude (price, status, is_live, last_changed_at),
                       -- when it last changed before the window (unknown if it changed inside it)
                       case when f.selection_key is null then sel.last_changed_at end as changed_before
                from grid cross join sel
                left join first_ticks as f on f.selection_key = sel.selection_key
            )
            select cells.observed_at, cells.bookmaker,
                   cells.canonical_event_id || '|' || cells.period as event_id,
                   cells.market, cells.line, cells.outcome, states.price, states.status,
                   states.is_live, cells.starts_at, cells.changed_before,
                   cells.selection_key, cells.canonical_event_id, cells.period
            from cells
            asof join states
                on states.selection_key = cells.selection_key and states.observed_at <= cells.observed_at
            order by cells.observed_at, cells.selection_key
            """
        ).df()
    finally:
        con.close()


def book_profiles(warehouse: Warehouse, sharp_books: set[str]) -> pd.DataFrame | None:
    """Per book and market, the usual lag behind the sharp book and margin, from
    `marts.fct_bookmaker_quality`; None when that mart is not built yet (the features then measure
    them on the panel itself)."""
    try:
        frame = warehouse.arrow(
            "select bookmaker, market, median_lag_seconds as lag_seconds, mean_margin as margin "
            "from marts.fct_bookmaker_quality"
        ).to_pandas()
    except (duckdb.Error, sa.exc.DBAPIError):  # not built yet: the panel measures them itself
        return None
    if frame.empty:
        return None
    frame.loc[frame["bookmaker"].isin(sharp_books), "lag_seconds"] = 0.0
    return frame
