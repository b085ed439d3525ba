"""Model scores in the app database (SQLite by default, PostgreSQL in server mode).

Two append-only tables: `scoring_runs`, one row per scoring run (its latest observation is the
next run's cursor, so a restart neither skips nor repeats grid times), and `model_scores`, the
rows worth keeping: every alert candidate (score above the model's operating point) with its
reasons, plus a uniform sample of all scored rows (`in_sample`) with their features, which the
drift check compares with the training window. Keeping every scored row would grow by millions a
day for no reader.
"""

from __future__ import annotations

import json
from datetime import datetime

import pandas as pd
import sqlalchemy as sa

from ml.explain import Reason
from ml.features import NUMERIC_FEATURES

metadata = sa.MetaData()
_TS = sa.DateTime(timezone=True)

scoring_runs = sa.Table(
    "scoring_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("scored_at", _TS, nullable=False),
    sa.Column("latest_observed_at", _TS, nullable=False),
    sa.Column("model_version", sa.Text, nullable=False),
    sa.Column("rows_scored", sa.Integer, nullable=False),
    sa.Column("candidates", sa.Integer, nullable=False),
    sa.Column("seconds", sa.Float, nullable=False),
)

model_scores = sa.Table(
    "model_scores",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("scored_at", _TS, nullable=False),
    sa.Column("observed_at", _TS, nullable=False, index=True),
    sa.Column("selection_key", sa.BigInteger, nullable=False),
    sa.Column("canonical_event_id", sa.Text, nullable=False),
    sa.Column("bookmaker", sa.Text, nullable=False),
    sa.Column("market", sa.Text, nullable=False),
    sa.Column("period", sa.Text, nullable=False),
    sa.Column("line", sa.Float),
    sa.Column("outcome", sa.Text, nullable=False),
    sa.Column("price", sa.Float),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("threshold", sa.Float),
    sa.Column("is_candidate", sa.Boolean, nullable=False),
    sa.Column("in_sample", sa.Boolean, nullable=False),
    sa.Column("model_version", sa.Text, nullable=False),
    sa.Column("reasons", sa.Text),  # JSON list of ml.explain.Reason
    *[sa.Column(f"f_{name}", sa.Float) for name in NUMERIC_FEATURES],
)

SCORE_COLUMNS = [c.name for c in model_scores.columns if c.name != "id"]


def ensure_tables(engine: sa.Engine) -> None:
    metadata.create_all(engine, checkfirst=True)


def last_latest(engine: sa.Engine) -> datetime | None:
    """The latest observation the previous scoring run covered: where this one starts."""
    ensure_tables(engine)
    with engine.connect() as conn:
        value = conn.execute(sa.select(sa.func.max(scoring_runs.c.latest_observed_at))).scalar()
    if value is None:
        return None
    stamp = pd.Timestamp(value)
    return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")).to_pydatetime()


def write(engine: sa.Engine, rows: pd.DataFrame, run: dict[str, object]) -> None:
    """The kept rows and the run record, in one transaction (a crash writes neither)."""
    ensure_tables(engine)
    records = rows[SCORE_COLUMNS].astype(object).where(rows[SCORE_COLUMNS].notna(), None).to_dict("records")
    with engine.begin() as conn:
        if records:
            conn.execute(model_scores.insert(), records)
        conn.execute(scoring_runs.insert(), [run])


def recent_sample(engine: sa.Engine, since: datetime, max_rows: int | None = None) -> pd.DataFrame:
    """The sampled rows' features observed since `since`, named as the features are; at most
    `max_rows`, taken evenly over the window (every k-th row) when there are more."""
    ensure_tables(engine)
    columns = [model_scores.c[f"f_{name}"].label(name) for name in NUMERIC_FEATURES]
    where = [model_scores.c.in_sample, model_scores.c.observed_at >= since]
    with engine.connect() as conn:
        if max_rows is not None:
            total = conn.execute(sa.select(sa.func.count()).where(*where)).scalar() or 0
            if total > max_rows:
                where.append(model_scores.c.id % (-(-total // max_rows)) == 0)
        return pd.read_sql_query(sa.select(*columns).where(*where), conn)


def candidates_after(engine: sa.Engine, after_id: int, limit: int = 5_000) -> pd.DataFrame:
    """Alert candidates kept after row `after_id` (the alerting step's cursor), oldest first, with
    their reasons as lines a person reads."""
    ensure_tables(engine)
    query = (
        sa.select(model_scores)
        .where(model_scores.c.is_candidate, model_scores.c.id > after_id)
        .order_by(model_scores.c.id)
        .limit(limit)
    )
    with engine.connect() as conn:
        frame = pd.read_sql_query(query, conn)
    frame["reasons"] = [[Reason(**r).text() for r in json.loads(t)] if t else [] for t in frame["reasons"]]
    frame["observed_at"] = pd.to_datetime(frame["observed_at"], utc=True)
    return frame
