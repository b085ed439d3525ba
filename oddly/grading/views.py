"""Grades as the app shows them, read from the app database: the grading runs, a run's summary per
type (the alert types and the reference strategy side by side), and the graded bets with filters.
Every function takes the app database's engine and returns a DataFrame (empty when nothing has
been graded yet), so the Streamlit page caches them like the other app-database reads."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import sqlalchemy as sa

from oddly.grading.store import ensure_tables, grade_summaries, grading_runs, signal_grades

LIVE = "live"
RUN_COLUMNS = [
    "run_id",
    "source",
    "started_at",
    "since",
    "until",
    "rules_version",
    "policy_version",
    "signals",
    "events",
    "mlflow_run_id",
    "skipped",
]
BET_COLUMNS = [
    "taken_at",
    "source",
    "type",
    "event_name",
    "kick_off",
    "market",
    "period",
    "line",
    "outcome",
    "bookmaker",
    "price",
    "effective_price",
    "stake",
    "closing_bookmaker",
    "closing_price",
    "fair_probability",
    "fair_price",
    "clv",
    "beat_close",
    "result",
    "profit",
    "severity",
    "note",
    "unsettled_reason",
    "signal_key",
    "canonical_event_id",
    "run_id",
]
# The alert types first (in the order people ask about them), then the reference strategy.
TYPE_ORDER = ("value", "sharp_drop", "steam", "out_of_line", "arbitrage", "stale_line", "kaunitz")


def _utc(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    for column in columns:
        if column in frame.columns:
            frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def runs(engine: sa.Engine, source: str | None = None, limit: int = 100) -> pd.DataFrame:
    """Grading runs, newest first (RUN_COLUMNS; `skipped` in words)."""
    ensure_tables(engine)
    r = grading_runs.c
    query = sa.select(grading_runs).order_by(r.started_at.desc()).limit(limit)
    if source is not None:
        query = query.where(r.source == source)
    with engine.connect() as conn:
        rows = [dict(row._mapping) for row in conn.execute(query)]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=RUN_COLUMNS)
    frame["signals"] = frame["counts"].map(
        lambda c: int((c or {}).get("signals", (c or {}).get("live_signals", 0)))
    )
    frame["events"] = frame["counts"].map(lambda c: int((c or {}).get("events", 0)))
    frame["skipped"] = frame["skipped"].map(
        lambda s: "; ".join(f"{reason} ×{n}" for reason, n in sorted((s or {}).items(), key=lambda x: -x[1]))
    )
    return _utc(frame[RUN_COLUMNS], "started_at", "since", "until")


def summary(engine: sa.Engine, run_id: str, horizon: str = "all") -> pd.DataFrame:
    """A run's summary over the signals of one horizon (all; early: taken 1 h or more before
    kick-off; late: in the last hour), one row per source and type, the alert types first, then
    the strategy."""
    ensure_tables(engine)
    s = grade_summaries.c
    query = sa.select(grade_summaries).where(s.run_id == run_id, s.horizon == horizon).order_by(s.id)
    with engine.connect() as conn:
        frame = pd.read_sql_query(query, conn).drop(columns=["id"])
    order = {kind: i for i, kind in enumerate(TYPE_ORDER)}
    frame["_order"] = frame["type"].map(order).fillna(len(order))
    return frame.sort_values(["_order", "type"], kind="stable").drop(columns="_order").reset_index(drop=True)


def latest_run(engine: sa.Engine, source: str) -> str | None:
    found = runs(engine, source, limit=1)
    return None if found.empty else str(found["run_id"].iloc[0])


def bets(
    engine: sa.Engine,
    run_id: str | None,
    types: Sequence[str] = (),
    bookmakers: Sequence[str] = (),
    settled_only: bool = False,
    limit: int = 5000,
) -> pd.DataFrame:
    """Graded bets of a run (every live alert's latest grade with `run_id` None), newest first,
    narrowed by type and bookmaker, optionally only the settled ones (BET_COLUMNS)."""
    ensure_tables(engine)
    g = signal_grades.c
    query = sa.select(*(g[c] for c in BET_COLUMNS)).order_by(g.taken_at.desc(), g.id.desc()).limit(limit)
    query = query.where(g.source == LIVE) if run_id is None else query.where(g.run_id == run_id)
    if types:
        query = query.where(g.type.in_(list(types)))
    if bookmakers:
        query = query.where(g.bookmaker.in_(list(bookmakers)))
    if settled_only:
        query = query.where(g.profit.is_not(None))
    with engine.connect() as conn:
        frame = pd.read_sql_query(query, conn)
    return _utc(frame, "taken_at", "kick_off")


def bet_choices(engine: sa.Engine, run_id: str | None) -> pd.DataFrame:
    """The types and bookmakers a run's bets have (for the filters): columns type, bookmaker."""
    ensure_tables(engine)
    g = signal_grades.c
    query = sa.select(g.type, g.bookmaker).distinct()
    query = query.where(g.source == LIVE) if run_id is None else query.where(g.run_id == run_id)
    with engine.connect() as conn:
        return pd.read_sql_query(query, conn)
