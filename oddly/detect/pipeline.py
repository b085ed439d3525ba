"""Runs the rule detectors: on the fresh ticks of one ingestion run (the fast ones, so a red alert
does not wait for dbt), or on the published marts.

Fast path, inside the ingestion run (`oddly.ingest`): the run's ticks are committed first; then
`detect_ingested` reads, in one short read, which canonical events they belong to
(raw.event_map) and the latest prices of every book on those events' touched markets
(raw.latest_prices, found by selection key: no scan of the tick history), and `detect_fresh` runs
sharp drop, out of line and arbitrage on them. The detections are returned in the run's
`IngestReport` (not stored: the alerting step decides what to keep and send), and a detector
failure is reported there too, never losing the committed ticks. Events not matched yet get the
single-book detector (sharp drop) only.

Mart path: `detect_marts` takes rows of marts.fct_prices_current, fct_steam_moves,
fct_value_bets and fct_bookmaker_quality and runs every detector that has its input.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from datetime import datetime

import pandas as pd
import pyarrow as pa

from oddly.detect.arbitrage import detect_arbitrage
from oddly.detect.detection import Detection
from oddly.detect.frames import COMPLETE_OUTCOMES, NO_LINE, Frame, prices_frame, to_frame
from oddly.detect.out_of_line import detect_out_of_line
from oddly.detect.rules import Rules
from oddly.detect.sharp_drop import detect_sharp_drops
from oddly.detect.stale_line import detect_stale_lines
from oddly.detect.steam import detect_steam
from oddly.detect.value import detect_value
from oddly.warehouse.store import Warehouse

# The detectors cheap enough to run on every ingestion run's fresh ticks.
FAST_DETECTORS: dict[str, Callable[[pd.DataFrame, pd.DataFrame, Rules], list[Detection]]] = {
    "sharp_drop": lambda ticks, prices, rules: detect_sharp_drops(ticks, rules),
    "out_of_line": lambda ticks, prices, rules: detect_out_of_line(prices, rules),
    "arbitrage": lambda ticks, prices, rules: detect_arbitrage(prices, rules),
}
# The tick columns the fast detectors read.
TICK_COLUMNS = (
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
)
_OUTCOME_SETS = pa.table(
    {
        "market": [m for m, outcomes in COMPLETE_OUTCOMES.items() for _ in outcomes],
        "outcome": [o for outcomes in COMPLETE_OUTCOMES.values() for o in outcomes],
    }
)


def detect_fresh(ticks: Frame, state: Frame | None, rules: Rules) -> list[Detection]:
    """The fast detectors on one run's fresh ticks.

    `ticks`: the run's ticks (price columns, `previous_price`, `observed_at`; `canonical_event_id`
    where the event is matched). `state`: the latest prices of the selections around them — every
    book's outcomes on the canonical markets the ticks touch, this book's unchanged outcomes too —
    with the same columns but `previous_price`. Only the fresh ticks are judged; the state is
    context (a book that did not move now is the stale-line detector's business).
    """
    fresh = to_frame(ticks)
    if fresh.empty:
        return []
    context = to_frame(state) if state is not None else pd.DataFrame()
    combined = pd.concat(
        [frame for frame in (context.assign(is_fresh=False), fresh.assign(is_fresh=True)) if not frame.empty],
        ignore_index=True,
    )
    # Normalized once for all detectors; a fresh tick replaces the state row of its selection.
    prices = prices_frame(combined, "fresh ticks and state")
    found = [d for detector in FAST_DETECTORS.values() for d in detector(fresh, prices, rules)]
    return sort_detections(found)


def detect_marts(
    rules: Rules,
    *,
    prices: Frame | None = None,
    steam_moves: Frame | None = None,
    value_bets: Frame | None = None,
    quality: Frame | None = None,
    only: Collection[str] | None = None,
) -> list[Detection]:
    """Every detector whose input is given (and, with `only`, that is named there), on rows of the
    marts: `prices` from fct_prices_current (out of line, arbitrage, stale line; also the tick
    times of value bets), `steam_moves` from fct_steam_moves, `value_bets` from fct_value_bets,
    `quality` from fct_bookmaker_quality (what staleness is normal per book)."""

    def wanted(name: str) -> bool:
        return only is None or name in only

    found: list[Detection] = []
    price_rows = to_frame(prices) if prices is not None else pd.DataFrame()
    if not price_rows.empty:
        normalized = prices_frame(price_rows, "marts prices")
        if wanted("out_of_line"):
            found += detect_out_of_line(normalized, rules)
        if wanted("arbitrage"):
            found += detect_arbitrage(normalized, rules)
        if wanted("stale_line"):
            found += detect_stale_lines(normalized, rules, quality)
    if steam_moves is not None and wanted("steam"):
        found += detect_steam(steam_moves, rules)
    if value_bets is not None and wanted("value"):
        found += detect_value(_with_tick_times(to_frame(value_bets), price_rows, rules.sharp_books), rules)
    return sort_detections(found)


def _with_tick_times(
    value_bets: pd.DataFrame, prices: pd.DataFrame, sharp_books: Iterable[str] = ()
) -> pd.DataFrame:
    """Value bets with the moment they became one: the later of their own price's last change and
    the last change of the sharp books on the same market (fct_prices_current.last_changed_at) — a
    value bet appears as often because the sharp book moved while the soft price stayed put."""
    if value_bets.empty or prices.empty or "observed_at" in value_bets.columns:
        return value_bets
    times = "last_changed_at" if "last_changed_at" in prices.columns else "observed_at"
    market = ["canonical_event_id", "market", "period", "line_key"]
    keys = [*market[:1], "bookmaker", *market[1:], "outcome"]
    right = prices.assign(line_key=pd.to_numeric(prices["line"]).fillna(NO_LINE))
    own = right[[*keys, times]].rename(columns={times: "own_at"}).drop_duplicates(keys)
    sharp = (
        right[right["bookmaker"].isin(list(sharp_books))]
        .groupby(market, dropna=False)[times]
        .max()
        .rename("sharp_at")
        .reset_index()
    )
    left = value_bets.assign(line_key=pd.to_numeric(value_bets["line"]).fillna(NO_LINE))
    joined = left.merge(own, on=keys, how="left").merge(sharp, on=market, how="left")
    joined["observed_at"] = joined[["own_at", "sharp_at"]].max(axis=1)
    return joined.drop(columns=["line_key", "own_at", "sharp_at"])


def sort_detections(detections: list[Detection]) -> list[Detection]:
    return sorted(detections, key=lambda d: (d.detected_at, d.type, d.bookmaker or "", d.outcome or ""))


def detect_ingested(warehouse: Warehouse, ticks: pa.Table, rules: Rules) -> list[Detection]:
    """The fast detectors on ticks an ingestion run has just committed (`Warehouse.write_run_ticks`),
    with their events and state read from the warehouse in one short transaction."""
    if ticks.num_rows == 0:
        return []
    fresh = ticks.select(list(TICK_COLUMNS))
    key = warehouse.selection_key_sql
    mapping, state = warehouse.arrow_with(
        [
            # The canonical event of each fresh tick's event.
            """
            select distinct m.bookmaker, m.source_event_id, m.canonical_event_id
            from (select distinct bookmaker, source_event_id from _fresh) f
            join raw.event_map m on m.bookmaker = f.bookmaker and m.source_event_id = f.source_event_id
            """,
            # Every book's latest price on every outcome of the canonical markets the ticks touch.
            f"""
            with touched as (
                select distinct m.canonical_event_id, f.market, f.period, f.line
                from _fresh f
                join raw.event_map m on m.bookmaker = f.bookmaker and m.source_event_id = f.source_event_id
            ),
            candidates as (
                select m.bookmaker, m.source_event_id, m.canonical_event_id,
                    t.market, t.period, t.line, s.outcome
                from touched t
                join raw.event_map m on m.canonical_event_id = t.canonical_event_id
                join _outcome_sets s on s.market = t.market
            )
            select c.canonical_event_id, c.bookmaker, c.source_event_id,
                c.market, c.period, c.line, c.outcome, l.price, l.status, l.observed_at
            from (select {key} as selection_key, * from candidates) c
            join raw.latest_prices l on l.selection_key = c.selection_key
            """,
        ],
        {"_fresh": fresh, "_outcome_sets": _OUTCOME_SETS},
    )
    events = mapping.to_pandas().drop_duplicates(["bookmaker", "source_event_id"])
    ticks_frame = fresh.to_pandas().merge(events, on=["bookmaker", "source_event_id"], how="left")
    return detect_fresh(ticks_frame, state.to_pandas(), rules)


# The detectors that need the marts (the fast ones already ran inside each ingestion run).
MART_DETECTORS = ("steam", "value", "stale_line")


def detect_in_marts(
    warehouse: Warehouse, rules: Rules, *, since: datetime, only: Collection[str] = MART_DETECTORS
) -> list[Detection]:
    """`detect_marts` on the marts as the warehouse holds them now, keeping what was detected
    after `since` (so a value bet that stands for an hour is decided once, not every cycle)."""
    stamp = pd.Timestamp(since).isoformat()
    prices, steam, value, quality = (
        warehouse.arrow(sql)
        for sql in (
            "select * from marts.fct_prices_current",
            f"select * from marts.fct_steam_moves where last_moved_at > '{stamp}'",
            "select * from marts.fct_value_bets",
            "select * from marts.fct_bookmaker_quality",
        )
    )
    found = detect_marts(
        rules, prices=prices, steam_moves=steam, value_bets=value, quality=quality, only=only
    )
    return [d for d in found if pd.Timestamp(d.detected_at) > pd.Timestamp(since)]
