"""Bounded storage: the warehouse's run log and quarantine, the app database's delivered outbox
rows and Dagster's runless events, check evaluations, ticks and runs are deleted past their
windows (what the UI, the cursors and the next load sequence read is kept), SQLite gives the space
back — and driven through many poll-sized rounds, Dagster's storage stays under a bound."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import sqlalchemy as sa
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.scheduler.instigation import TickData, TickStatus

from oddly.alerts.outbox import digest_items, outbox
from oddly.appdb import open_app_db
from oddly.config import Settings
from oddly.dagster_home import write_dagster_yaml
from oddly.model import PriceColumns, Reject
from oddly.retention import RetentionPolicy, prune_app_db, prune_warehouse, vacuum_sqlite
from oddly.warehouse.store import FeedRunRecord, Warehouse
from orchestration.ops.retention import prune_dagster, prune_runs, prune_storage_job, sqlite_files
from orchestration.resources import WarehouseResource
from tests.telegram_fakes import queue_message

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
POLICY = RetentionPolicy(success=timedelta(hours=6), failure=timedelta(days=7))


def log_run(warehouse: Warehouse, feed: str, status: str, ago: timedelta, rejects: int = 0) -> str:
    at = NOW - ago
    run_id = f"{feed}-{uuid.uuid4().hex[:8]}"
    record = FeedRunRecord(
        run_id, feed, "book", status, at, at, 1, 0, 0, rejects, 0, "{}", 0.0, 0.0, 0.0, "ok",
        "HTTP 503" if status == "failed" else None,
    )  # fmt: skip
    rejected = [Reject("price 0", {"C": 0})] * rejects
    warehouse.write_run(PriceColumns.from_records([]).to_table(at, run_id), rejected, record)
    return run_id


def test_the_run_log_keeps_its_windows_and_each_feeds_latest_run_and_success(warehouse: Warehouse) -> None:
    keep_recent = log_run(warehouse, "a", "ok", timedelta(hours=1))
    log_run(warehouse, "a", "ok", timedelta(hours=7))  # past 6 h: deleted
    failed_recent = log_run(warehouse, "a", "failed", timedelta(days=2), rejects=2)
    log_run(
        warehouse, "a", "failed", timedelta(days=8), rejects=1
    )  # past 7 days: deleted, its quarantine too
    quiet_success = log_run(warehouse, "b", "ok", timedelta(days=9))  # feed b's only success: kept
    quiet_latest = log_run(warehouse, "b", "failed", timedelta(days=8))  # feed b's latest run: kept
    deleted = prune_warehouse(warehouse, POLICY, NOW)
    left = {r["feed_run_id"] for r in warehouse.query("select feed_run_id from raw.feed_runs")}
    assert left == {keep_recent, failed_recent, quiet_success, quiet_latest}
    assert deleted == {"raw.feed_runs": 2, "raw.quarantine": 1}
    assert int(warehouse.scalar("select count(*) from raw.quarantine")) == 2
    # the next load sequence still counts on from the highest one written
    assert int(warehouse.scalar("select max(load_seq) from raw.feed_runs")) == 6


def test_the_app_database_drops_delivered_queue_rows_and_never_the_audit(tmp_path: Path) -> None:
    engine = open_app_db(f"sqlite:///{tmp_path}/app.db")
    old_sent, old_pending, new_sent = (
        queue_message(engine, "1", t) for t in ("old sent", "old pending", "new")
    )
    with engine.begin() as conn:
        conn.execute(
            outbox.update()
            .where(outbox.c.id.in_([old_sent, old_pending]))
            .values(created_at=NOW - timedelta(days=8))
        )
        conn.execute(outbox.update().where(outbox.c.id.in_([old_sent, new_sent])).values(status="sent"))
        decisions = conn.execute(sa.text("select count(*) from alert_decisions")).scalar_one()
    deleted = prune_app_db(engine, POLICY, NOW)
    with engine.connect() as conn:
        left = {r.id: r.status for r in conn.execute(sa.select(outbox.c.id, outbox.c.status))}
        assert conn.execute(sa.text("select count(*) from alert_decisions")).scalar_one() == decisions
        assert conn.execute(sa.select(sa.func.count()).select_from(digest_items)).scalar_one() == 0
    assert left == {old_pending: "pending", new_sent: "sent"}  # never an undelivered one
    assert deleted["alert_outbox"] == 1
    engine.dispose()


def instance_in(home: Path) -> dg.DagsterInstance:
    settings = Settings(home=home, dagster_pg_url=None, database_url=None)
    write_dagster_yaml(settings)
    return dg.DagsterInstance.from_config(str(settings.dagster_home))


def one_round(
    instance: dg.DagsterInstance, origin_id: str, selector_id: str, at: datetime, polls: int
) -> None:
    """What `polls` polls of five feeds and their marts cycles leave in Dagster's storage."""
    for i in range(polls):
        for feed in range(5):
            instance.report_runless_asset_event(
                dg.AssetMaterialization(f"feed_{feed}", metadata={"ticks_written": i, "report": "x" * 800})
            )
            instance.create_tick(
                TickData(
                    origin_id,
                    f"poll_{feed}",
                    InstigatorType.SENSOR,
                    TickStatus.SKIPPED,
                    at.timestamp(),
                    selector_id=selector_id,
                )
            )
        instance.report_runless_asset_event(
            dg.AssetCheckEvaluation(asset_key=dg.AssetKey("mart"), check_name="unique", passed=True)
        )


def storage_bytes(instance: dg.DagsterInstance) -> int:
    files = [*sqlite_files(instance), *(p.with_name(p.name + "-wal") for p in sqlite_files(instance))]
    return sum(p.stat().st_size for p in files if p.exists())


def test_many_poll_sized_rounds_leave_dagster_storage_under_a_bound(tmp_path: Path) -> None:
    instance = instance_in(tmp_path)
    origin_id, selector_id = "origin-feeds", "selector-feeds"
    sizes, events = [], []
    for round_ in range(6):
        at = datetime.now(UTC) + timedelta(hours=7 * round_)
        one_round(instance, origin_id, selector_id, at, polls=60)
        # an hour of wall time is simulated by judging the round 7 h later (past the 6 h window)
        deleted = prune_dagster(instance, POLICY, at + timedelta(hours=7))
        for path in sqlite_files(instance):
            vacuum_sqlite(path)
        sizes.append(storage_bytes(instance))
        with instance.event_log_storage.index_connection() as conn:  # type: ignore[attr-defined]
            events.append(
                conn.execute(sa.text("select count(*) from event_logs where run_id = ''")).scalar_one()
            )
        assert deleted["dagster_events"] > 0 and deleted["dagster_check_evaluations"] >= 59
        with instance.event_log_storage.index_connection() as conn:  # type: ignore[attr-defined]
            assert conn.execute(sa.text("select count(*) from asset_check_executions")).scalar_one() == 1
        assert instance.get_latest_materialization_event(dg.AssetKey("feed_0")) is not None
    # each asset keeps its latest event of each kind: five feeds and a check's evaluation
    assert events[-1] <= 5 + 1 + 1
    assert max(sizes[2:]) <= sizes[1] * 1.05 + 64_000, sizes  # flat after the window
    instance.dispose()


@dg.op
def _one_step() -> int:
    return 1


@dg.job
def _small_job() -> None:
    _one_step()


def test_pruned_runs_leave_no_event_log_shard_and_no_compute_logs(tmp_path: Path) -> None:
    instance = instance_in(tmp_path)
    storage: Any = instance.event_log_storage
    run_ids = [_small_job.execute_in_process(instance=instance).run_id for _ in range(3)]
    shards = [Path(storage.path_for_shard(r)) for r in run_ids]
    logs = [
        Path(instance.compute_log_manager.get_captured_local_path([r, "compute_logs", "x"], "out"))
        for r in run_ids
    ]
    for log in logs:  # what a run launched by the daemon captures (in-process execution captures none)
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("step output")
    assert all(s.exists() for s in shards)
    keep = shards[0].parent / "keep.txt"  # the folders around them stay
    keep.write_text("x")

    assert prune_runs(instance, POLICY, datetime.now(UTC) + timedelta(days=30)) == 3
    assert instance.get_runs_count() == 0
    assert not any(s.exists() for s in shards), [s for s in shards if s.exists()]
    assert not any(log.parent.parent.exists() for log in logs)
    assert keep.exists() and Path(storage.path_for_shard("")).parent.is_dir()
    instance.dispose()


def test_the_prune_job_runs_in_dagster_and_reports_what_it_deleted(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ODDLY_HOME", str(tmp_path))
    warehouse = Warehouse.from_url(f"duckdb:///{tmp_path}/warehouse.duckdb")
    log_run(warehouse, "a", "ok", timedelta(days=30))
    log_run(warehouse, "a", "ok", timedelta(days=31))
    warehouse.dispose()
    with dg.instance_for_test() as instance:
        result = prune_storage_job.execute_in_process(
            instance=instance,
            resources={"warehouse": WarehouseResource(url=f"duckdb:///{tmp_path}/warehouse.duckdb")},
        )
    assert result.success
    [materialized] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    meta = {k: v.value for k, v in materialized.event_specific_data.metadata.items()}  # type: ignore[union-attr]
    assert meta["raw.feed_runs"] == 1 and "dagster_events" in meta and "sqlite_bytes_reclaimed" in meta


@dg.job(name="grade_alerts")
def _grading_job() -> None:
    _one_step()


@dg.job(name="train_models")
def _training_job() -> None:
    _one_step()


def test_scheduled_operational_runs_go_after_the_success_window_and_others_after_the_failure_window(
    tmp_path: Path,
) -> None:
    instance = instance_in(tmp_path)
    graded = _grading_job.execute_in_process(instance=instance).run_id  # every 15 minutes
    trained = _training_job.execute_in_process(instance=instance).run_id  # daily
    a_day_later = datetime.now(UTC) + POLICY.success + timedelta(hours=1)
    assert a_day_later < datetime.now(UTC) + POLICY.failure
    assert prune_runs(instance, POLICY, a_day_later) == 1
    assert instance.get_run_by_id(graded) is None
    assert instance.get_run_by_id(trained) is not None
    instance.dispose()
