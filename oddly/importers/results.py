"""Match results of imported history in `raw.results`, for grading signals against what happened:
one row per source match (source, source event id), with the matcher's canonical event id, the
kick-off and the full-time (and half-time) goals. Re-importing a file replaces its rows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

from oddly.matching.aliases import canonical_team, load_aliases
from oddly.matching.matcher import canonical_event_id
from oddly.model import now_utc
from oddly.warehouse import schema
from oddly.warehouse.store import Warehouse

if TYPE_CHECKING:
    from oddly.importers.football_data import Fixture, FootballDataFile

_TS = pa.timestamp("us", tz="UTC")
RESULTS_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string()),
        pa.field("source_event_id", pa.string()),
        pa.field("canonical_event_id", pa.string()),
        pa.field("sport", pa.string()),
        pa.field("league", pa.string()),
        pa.field("country", pa.string()),
        pa.field("home", pa.string()),
        pa.field("away", pa.string()),
        pa.field("starts_at", _TS),
        pa.field("home_goals", pa.int32()),
        pa.field("away_goals", pa.int32()),
        pa.field("result", pa.string()),
        pa.field("home_goals_ht", pa.int32()),
        pa.field("away_goals_ht", pa.int32()),
        pa.field("imported_at", _TS),
    ]
)


def result_of(home_goals: int | None, away_goals: int | None) -> str | None:
    """H, D or A from the goals (None when either is unknown)."""
    if home_goals is None or away_goals is None:
        return None
    return "H" if home_goals > away_goals else "A" if away_goals > home_goals else "D"


def results_table(fixtures: Iterable[Fixture], source: str) -> pa.Table:
    """One row per fixture that has a result (goals or a result letter)."""
    aliases = load_aliases()
    imported = now_utc()
    rows = []
    for f in fixtures:
        if f.home_goals is None and f.away_goals is None and f.result is None:
            continue
        home, away = canonical_team(f.home, aliases), canonical_team(f.away, aliases)
        rows.append(
            {
                "source": source,
                "source_event_id": f.source_event_id,
                "canonical_event_id": canonical_event_id(f.sport, home, away, pd.Timestamp(f.kick_off)),
                "sport": f.sport,
                "league": f.division,
                "country": f.country,
                "home": f.home,
                "away": f.away,
                "starts_at": f.kick_off,
                "home_goals": f.home_goals,
                "away_goals": f.away_goals,
                "result": f.result or result_of(f.home_goals, f.away_goals),
                "home_goals_ht": f.home_goals_ht,
                "away_goals_ht": f.away_goals_ht,
                "imported_at": imported,
            }
        )
    return pa.Table.from_pylist(rows, schema=RESULTS_SCHEMA)


def write_results(warehouse: Warehouse, files: Sequence[FootballDataFile], source: str) -> int:
    """Replace the results of these files' matches in one transaction; returns the rows written."""
    table = results_table((f for parsed in files for f in parsed.fixtures), source)
    if not table.num_rows:
        return 0
    ids = table["source_event_id"].to_pylist()
    warehouse.ensure_schema()
    with warehouse.begin() as conn:
        for start in range(0, len(ids), 1000):
            conn.execute(
                sa.delete(schema.results).where(
                    schema.results.c.source == source,
                    schema.results.c.source_event_id.in_(ids[start : start + 1000]),
                )
            )
        warehouse.bulk_insert(conn, "raw.results", table)
    return table.num_rows
