"""Refresh `raw.event_map` from the events the warehouse currently holds."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

from oddly.matching.aliases import load_aliases
from oddly.matching.matcher import MatchSettings, match_events
from oddly.model import AGGREGATE_BOOKMAKERS, now_utc
from oddly.warehouse import schema
from oddly.warehouse.store import Warehouse

# Aggregates of many books are never matched (oddly.model.AGGREGATE_BOOKMAKERS).
AGGREGATES_SQL = ", ".join(f"'{book}'" for book in sorted(AGGREGATE_BOOKMAKERS))
# Events that kicked off longer ago than this are finished; their mapping is kept as it was.
RECENT = timedelta(hours=6)


@dataclass
class MatchReport:
    events: int
    canonical_events: int
    matched_across_books: int
    unmatched: list[dict[str, Any]] = field(default_factory=list)
    ambiguous: list[dict[str, Any]] = field(default_factory=list)


def update_event_map(warehouse: Warehouse, settings: MatchSettings | None = None) -> MatchReport:
    """Match the current and upcoming events of every book and replace their rows of the map in
    one transaction; events already mapped keep their canonical id."""
    warehouse.ensure_schema()
    since = now_utc() - RECENT
    events = pd.DataFrame(
        warehouse.query(
            "select distinct bookmaker, source_event_id, sport, home, away, starts_at "
            f"from raw.odds_ticks where starts_at >= :since and bookmaker not in ({AGGREGATES_SQL})",
            {"since": since},
        ),
        columns=["bookmaker", "source_event_id", "sport", "home", "away", "starts_at"],
    )
    previous = pd.DataFrame(
        warehouse.query("select bookmaker, source_event_id, canonical_event_id from raw.event_map"),
        columns=["bookmaker", "source_event_id", "canonical_event_id"],
    )
    # the latest spelling and kick-off of each event (a book may correct them)
    events = events.sort_values("starts_at").drop_duplicates(["bookmaker", "source_event_id"], keep="last")
    result = match_events(events, load_aliases(), settings, previous)
    mapping = result.mapping.assign(matched_at=now_utc())
    with warehouse.begin() as conn:
        conn.execute(sa.delete(schema.event_map).where(schema.event_map.c.starts_at >= since))
        if not mapping.empty:
            table = pa.Table.from_pandas(
                mapping[[c.name for c in schema.event_map.columns]], preserve_index=False
            )
            warehouse.bulk_insert(conn, "raw.event_map", table)
    sizes = mapping.groupby("canonical_event_id").size() if not mapping.empty else pd.Series(dtype=int)
    return MatchReport(
        events=len(events),
        canonical_events=int(sizes.size),
        matched_across_books=int((sizes > 1).sum()),
        unmatched=result.unmatched,
        ambiguous=result.ambiguous,
    )


# A full matching pass at least this often, whatever arrived: a book may correct a spelling or a
# kick-off of an event already mapped, which only a full pass sees.
FULL_PASS_SECONDS = 300.0
# Books' events in ticks past a load sequence that the map does not know yet.
NEW_EVENTS_SQL = """
    select count(*) from (
        select distinct t.bookmaker, t.source_event_id from raw.odds_ticks t where t.load_seq > :seq
    ) n
    where not exists (
        select 1 from raw.event_map m
        where m.bookmaker = n.bookmaker and m.source_event_id = n.source_event_id
    )
"""


@dataclass
class MatchState:
    """What a long-lived process knows of its last matching pass: the ticks it covered (load
    sequence) and when it was (monotonic seconds). A new process starts with a full pass."""

    load_seq: int = 0
    full_at: float = float("-inf")


def refresh_event_map(warehouse: Warehouse, state: MatchState) -> MatchReport | None:
    """Match again when ticks since the last pass carry an event the map does not know, or a full
    pass is due; otherwise None (nothing to do: the map covers every event). Reading the new
    ticks' events costs what they are, not the history (they sit past a load-sequence watermark)."""
    warehouse.ensure_schema()
    latest = int(warehouse.scalar("select coalesce(max(load_seq), 0) from raw.feed_runs"))
    due = time.monotonic() - state.full_at >= FULL_PASS_SECONDS
    if not due and latest == state.load_seq:
        return None
    if not due and not int(warehouse.scalar(NEW_EVENTS_SQL, {"seq": state.load_seq})):
        state.load_seq = latest
        return None
    report = update_event_map(warehouse)
    state.load_seq = latest
    if due:
        state.full_at = time.monotonic()
    return report
