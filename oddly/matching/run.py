"""Refresh `raw.event_map` from the events the warehouse currently holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

from oddly.matching.aliases import load_aliases
from oddly.matching.matcher import MatchSettings, match_events
from oddly.model import now_utc
from oddly.warehouse import schema
from oddly.warehouse.store import Warehouse

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
            "from raw.odds_ticks where starts_at >= :since",
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
