"""Bounded storage: what the platform keeps of its operational records, and for how long.

The tick history is the product and is kept whole. What grows with every poll only to say how the
machinery ran is kept for a window and then deleted, on a schedule (orchestration/ops):

* the warehouse's run log `raw.feed_runs` — successful polls for `success` (6 h), failed ones for
  `failure` (7 days); each feed's latest run and latest success always stay (feed health and
  freshness read them, and the next load sequence counts on); `raw.quarantine` for `failure`;
* the app database's queue: outbox rows sent or dead for `delivered` (their outcome stays in the
  append-only audit trail), digest items flushed for as long; model-score rows for `scores` (the
  drift check reads a day of them);
* Dagster's own records (orchestration/ops/retention.py): runless poll and cycle events, check
  evaluations and sensor ticks for `success`, runs by their status;

and SQLite files are vacuumed afterwards so the space goes back to the disk.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from oddly.config import Settings
from oddly.model import utc
from oddly.warehouse.store import Warehouse


@dataclass(frozen=True)
class RetentionPolicy:
    success: timedelta = timedelta(hours=6)
    failure: timedelta = timedelta(days=7)
    delivered: timedelta = timedelta(days=7)
    scores: timedelta = timedelta(hours=48)

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        return cls(
            success=timedelta(hours=settings.retain_success_hours),
            failure=timedelta(days=settings.retain_failure_days),
            delivered=timedelta(days=settings.retain_failure_days),
            scores=max(timedelta(hours=48), timedelta(hours=settings.retain_success_hours)),
        )


# Runs every feed keeps whatever their age: its latest run and its latest success.
_KEPT_RUNS = """
    select runs.feed_run_id from raw.feed_runs runs
    join (select feed, max(started_at) as at from raw.feed_runs group by feed) latest
        on latest.feed = runs.feed and runs.started_at = latest.at
    union
    select runs.feed_run_id from raw.feed_runs runs
    join (select feed, max(started_at) as at from raw.feed_runs where status <> 'failed' group by feed) ok
        on ok.feed = runs.feed and runs.started_at = ok.at
"""


def prune_warehouse(warehouse: Warehouse, policy: RetentionPolicy, now: datetime) -> dict[str, int]:
    """Delete the run log and quarantine past their windows; returns rows deleted per table."""
    warehouse.ensure_schema()
    now = utc(now)
    with warehouse.begin() as conn:
        runs = conn.execute(
            sa.text(
                f"""
                delete from raw.feed_runs
                where ((status <> 'failed' and started_at < :success) or started_at < :failure)
                    and feed_run_id not in ({_KEPT_RUNS})
                """
            ),
            {"success": now - policy.success, "failure": now - policy.failure},
        ).rowcount
        quarantined = conn.execute(
            sa.text("delete from raw.quarantine where observed_at < :failure"),
            {"failure": now - policy.failure},
        ).rowcount
    return {"raw.feed_runs": max(runs, 0), "raw.quarantine": max(quarantined, 0)}


def prune_app_db(engine: sa.Engine, policy: RetentionPolicy, now: datetime) -> dict[str, int]:
    """Delete delivered outbox rows, flushed digest items and old model-score rows; the audit
    trail (decisions, deliveries) is never touched."""
    from oddly.alerts.outbox import digest_items, outbox

    now = utc(now)
    deleted: dict[str, int] = {}
    with engine.begin() as conn:
        deleted["alert_outbox"] = conn.execute(
            outbox.delete().where(
                outbox.c.status.in_(("sent", "dead")), outbox.c.created_at < now - policy.delivered
            )
        ).rowcount
        deleted["alert_digest_items"] = conn.execute(
            digest_items.delete().where(
                digest_items.c.digest_id.is_not(None), digest_items.c.flushed_at < now - policy.delivered
            )
        ).rowcount
        tables = set(sa.inspect(conn).get_table_names())
        for table, column in (("model_scores", "observed_at"), ("scoring_runs", "scored_at")):
            if table in tables:
                deleted[table] = conn.execute(
                    sa.text(f"delete from {table} where {column} < :cutoff"), {"cutoff": now - policy.scores}
                ).rowcount
    return {k: max(v, 0) for k, v in deleted.items()}


def vacuum_sqlite(path: Path, attempts: int = 5) -> int:
    """VACUUM a SQLite file, giving its free pages back to the disk; returns the bytes reclaimed
    (0 when the file does not exist). Other processes keep it open: a busy file is tried again a
    few times, then left for the next run (the error names it)."""
    if not path.exists():
        return 0
    wal = path.with_name(path.name + "-wal")
    before = path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    for attempt in range(attempts):
        try:
            with sqlite3.connect(path, timeout=10) as db:
                db.execute("vacuum")
                # in WAL mode the rewritten pages sit in the log until a checkpoint moves them home
                db.execute("pragma wal_checkpoint(truncate)")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if attempt == attempts - 1:
                raise RuntimeError(
                    f"{path} stayed busy through {attempts} tries; vacuumed next time"
                ) from exc
            time.sleep(1.0 + attempt)
    return max(0, before - path.stat().st_size - (wal.stat().st_size if wal.exists() else 0))
