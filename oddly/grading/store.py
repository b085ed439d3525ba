"""Graded bets and run summaries in the app database (SQLite by default, PostgreSQL in server mode),
where the Streamlit app reads them (`oddly.grading.views`).

Three tables on the app database's metadata (`open_app_db` creates them):

- `grading_runs`: one row per backtest or live grading pass — window, rules and policy versions,
  parameters, what was skipped and why, the MLflow run it was logged to;
- `signal_grades`: one row per graded bet leg (GRADED_COLUMNS) with the run that graded it. A
  backtest's rows stay with their run; a live alert's rows are replaced when it is graded again
  (once its result arrives), so the table holds each live alert's latest grade;
- `grade_summaries`: per run, source, type and horizon (all, early, late), the counts, CLV and ROI
  with their intervals (`oddly.grading.stats.SUMMARY_COLUMNS`); a live pass sums up every live
  grade so far.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from oddly.appdb import metadata
from oddly.grading.grade import GRADED_COLUMNS
from oddly.grading.run import GradingRun
from oddly.grading.stats import SUMMARY_COLUMNS
from oddly.model import utc

_ts = sa.DateTime(timezone=True)
_id = sa.BigInteger().with_variant(sa.Integer, "sqlite")  # SQLite autoincrements INTEGER keys only

grading_runs = sa.Table(
    "grading_runs",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("source", sa.String(16), nullable=False),  # backtest | live
    sa.Column("started_at", _ts, nullable=False),
    sa.Column("finished_at", _ts, nullable=False),
    sa.Column("since", _ts),
    sa.Column("until", _ts),
    sa.Column("rules_version", sa.String(64)),
    sa.Column("policy_version", sa.String(64)),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("counts", sa.JSON, nullable=False),
    sa.Column("skipped", sa.JSON, nullable=False),  # reason → how many signals
    sa.Column("mlflow_run_id", sa.String(64)),
)
sa.Index("ix_grading_runs_source_started", grading_runs.c.source, grading_runs.c.started_at)

_TEXT: dict[str, Any] = {
    "source": sa.String(16),
    "signal_key": sa.Text,
    "type": sa.String(32),
    "canonical_event_id": sa.Text,
    "event_name": sa.Text,
    "market": sa.Text,
    "period": sa.Text,
    "outcome": sa.Text,
    "bookmaker": sa.Text,
    "signal_bookmaker": sa.Text,
    "severity": sa.String(8),
    "action": sa.String(16),
    "rules_version": sa.String(64),
    "note": sa.Text,
    "closing_bookmaker": sa.Text,
    "result": sa.String(16),
    "unsettled_reason": sa.Text,
}
_TIMES = ("kick_off", "taken_at", "closing_at")
_INTEGERS = ("leg",)
_BOOLEANS = ("beat_close",)


def _grade_column(name: str) -> sa.Column[Any]:
    if name in _TEXT:
        return sa.Column(name, _TEXT[name])
    if name in _TIMES:
        return sa.Column(name, _ts)
    if name in _INTEGERS:
        return sa.Column(name, sa.Integer, nullable=False)
    if name in _BOOLEANS:
        return sa.Column(name, sa.Boolean)
    return sa.Column(name, sa.Float)


signal_grades = sa.Table(
    "signal_grades",
    metadata,
    sa.Column("id", _id, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), nullable=False),
    *[_grade_column(name) for name in GRADED_COLUMNS],
    sa.Column("graded_at", _ts, nullable=False),
)
sa.Index("ix_signal_grades_run", signal_grades.c.run_id)
sa.Index("ix_signal_grades_source_type", signal_grades.c.source, signal_grades.c.type)
sa.Index("ix_signal_grades_signal", signal_grades.c.signal_key)

_SUMMARY_TYPES: dict[str, Any] = {
    "source": sa.String(16),
    "type": sa.String(32),
    "horizon": sa.String(8),
    **{name: sa.Integer for name in ("signals", "with_close", "settled", "matches", "resamples")},
}

grade_summaries = sa.Table(
    "grade_summaries",
    metadata,
    sa.Column("id", _id, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), nullable=False),
    *[sa.Column(name, _SUMMARY_TYPES.get(name, sa.Float)) for name in SUMMARY_COLUMNS],
)
sa.Index("ix_grade_summaries_run", grade_summaries.c.run_id)

TABLES = (grading_runs, signal_grades, grade_summaries)
# Rows per INSERT statement (SQLite takes at most 32,766 parameters in one statement).
_BATCH = 500


def ensure_tables(engine: sa.Engine) -> None:
    """Create the grading tables if missing (`open_app_db` does it too)."""
    metadata.create_all(engine, tables=list(TABLES), checkfirst=True)


def records(frame: pd.DataFrame, columns: Collection[str]) -> list[dict[str, Any]]:
    """Rows as dicts the database takes: NaN and NaT as None, numpy scalars as Python's."""
    out = frame[list(columns)].astype(object).where(frame[list(columns)].notna(), None)
    rows = out.to_dict("records")
    for row in rows:
        for key, value in row.items():
            if isinstance(value, np.generic):
                row[key] = value.item()
            elif isinstance(value, pd.Timestamp):
                row[key] = value.to_pydatetime()
    return rows


def _time(value: str) -> datetime | None:
    return utc(pd.Timestamp(value).to_pydatetime()) if value else None


def write_run(engine: sa.Engine, run: GradingRun, *, replace_live: bool = False) -> None:
    """The run, its graded bets and its summary in one transaction. With `replace_live`, earlier
    live grades of the same signals are deleted first (each live alert keeps its latest grade)."""
    ensure_tables(engine)
    graded_at = run.finished_at
    bets = records(run.bets, GRADED_COLUMNS)
    for row in bets:
        row["run_id"] = run.run_id
        row["graded_at"] = graded_at
    summary = records(run.summary, SUMMARY_COLUMNS)
    for row in summary:
        row["run_id"] = run.run_id
    with engine.begin() as conn:
        conn.execute(
            grading_runs.insert().values(
                run_id=run.run_id,
                source=run.source,
                started_at=run.started_at,
                finished_at=run.finished_at,
                since=_time(str(run.params.get("since") or "")),
                until=_time(str(run.params.get("until") or "")),
                rules_version=str(run.params.get("rules_version") or "") or None,
                policy_version=str(run.params.get("policy_version") or "") or None,
                params=json.loads(json.dumps(run.params, default=str)),
                counts=run.counts,
                skipped=dict(run.skipped),
            )
        )
        if replace_live:
            keys = sorted(set(run.bets["signal_key"])) if len(run.bets) else []
            for start in range(0, len(keys), _BATCH):
                conn.execute(
                    signal_grades.delete().where(
                        signal_grades.c.source == "live",
                        signal_grades.c.signal_key.in_(keys[start : start + _BATCH]),
                    )
                )
        for start in range(0, len(bets), _BATCH):
            conn.execute(signal_grades.insert(), bets[start : start + _BATCH])
        if summary:
            conn.execute(grade_summaries.insert(), summary)


def set_mlflow_run(engine: sa.Engine, run_id: str, mlflow_run_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            grading_runs.update().where(grading_runs.c.run_id == run_id).values(mlflow_run_id=mlflow_run_id)
        )


def read_grades(engine: sa.Engine, where: sa.ColumnElement[bool] | None = None) -> pd.DataFrame:
    """Graded bets (GRADED_COLUMNS plus run_id and graded_at) matching `where`, times in UTC."""
    ensure_tables(engine)
    query = sa.select(signal_grades).order_by(signal_grades.c.taken_at, signal_grades.c.id)
    if where is not None:
        query = query.where(where)
    with engine.connect() as conn:
        frame = pd.read_sql_query(query, conn)
    for column in (*_TIMES, "graded_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    frame["beat_close"] = frame["beat_close"].astype(object).where(frame["beat_close"].notna(), None)
    return frame.drop(columns="id")


def live_grades(engine: sa.Engine) -> pd.DataFrame:
    """Every live alert's latest grade."""
    return read_grades(engine, signal_grades.c.source == "live")
