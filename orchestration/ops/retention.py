"""Bounded storage, Dagster's part and the job that runs every part (`oddly.retention` has the
warehouse's and the app database's).

Polls and marts cycles report themselves as runless asset events and sensor ticks, every few
seconds: kept for the success window (ODDLY_RETAIN_SUCCESS_HOURS), except each asset's latest event
of each kind and each check's latest evaluation, which the UI, the sensors' cursors and the alert
step read. Runs of the operational jobs (this one, the freshness checks, the alerts' grading, each
scheduled every few minutes) are kept 6 h when they succeeded and 7 days when they failed; any other
run (the daily training, a refresh by hand) 7 days. SQLite
files are vacuumed afterwards, so the space goes back to the disk.
"""

import contextlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import sqlalchemy as sa
from dagster._core.scheduler.instigation import TickStatus

from oddly.appdb import open_app_db
from oddly.config import get_settings
from oddly.retention import RetentionPolicy, prune_app_db, prune_warehouse, vacuum_sqlite
from orchestration.resources import WarehouseResource

RUNLESS_RUN_ID = ""  # the run id Dagster stores runless asset events under
# Jobs a schedule runs every few minutes: a success is kept for the success window, like the polls.
OPERATIONAL_JOBS = ("prune_storage_job", "check_feed_freshness", "grade_alerts")
FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


def _naive(moment: datetime) -> datetime:
    """Dagster stores its event timestamps as naive UTC."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def prune_events(instance: dg.DagsterInstance, before: datetime) -> dict[str, int]:
    """Runless asset events and check evaluations older than `before`, each asset's latest of each
    kind kept; then the tags of events no longer there."""
    storage: Any = instance.event_log_storage
    cutoff = {"runless": RUNLESS_RUN_ID, "before": _naive(before)}
    deleted = {"events": 0, "check_evaluations": 0, "event_tags": 0}
    connections = [storage.index_connection]
    if type(storage).__name__ == "SqliteEventLogStorage":  # runless events also sit in their own shard
        connections.append(lambda: storage.run_connection(RUNLESS_RUN_ID))
    for connect in connections:
        with connect() as conn:
            deleted["events"] += conn.execute(
                sa.text(
                    "delete from event_logs where run_id = :runless and timestamp < :before and id not in "
                    "(select max(id) from event_logs where run_id = :runless "
                    "group by asset_key, dagster_event_type)"
                ),
                cutoff,
            ).rowcount
    with storage.index_connection() as conn:
        tables = set(sa.inspect(conn).get_table_names())
        if "asset_check_executions" in tables:
            deleted["check_evaluations"] = conn.execute(
                sa.text(
                    "delete from asset_check_executions where create_timestamp < :before and id not in "
                    "(select max(id) from asset_check_executions group by asset_key, check_name)"
                ),
                cutoff,
            ).rowcount
        if "asset_event_tags" in tables:
            deleted["event_tags"] = conn.execute(
                sa.text(
                    "delete from asset_event_tags where event_timestamp < :before "
                    "and event_id not in (select id from event_logs)"
                ),
                cutoff,
            ).rowcount
    return deleted


def prune_ticks(instance: dg.DagsterInstance, policy: RetentionPolicy, now: datetime) -> int:
    """Sensor and schedule ticks past the success window (failed ones past the failure window), of
    every instigator that has ticks — one removed from the code since included."""
    storage: Any = instance.schedule_storage
    with storage.connect() as conn:
        owners = conn.execute(
            sa.text("select distinct job_origin_id, selector_id from job_ticks where selector_id is not null")
        ).all()
        before = conn.execute(
            sa.text("select count(*) from job_ticks where timestamp < :before"),
            {"before": _naive(now - policy.success)},
        ).scalar_one()
    for origin_id, selector_id in owners:
        instance.purge_ticks(
            origin_id,
            selector_id,
            before=(now - policy.success).timestamp(),
            tick_statuses=[TickStatus.SUCCESS, TickStatus.SKIPPED],
        )
        instance.purge_ticks(origin_id, selector_id, before=(now - policy.failure).timestamp())
    with storage.connect() as conn:
        after = conn.execute(
            sa.text("select count(*) from job_ticks where timestamp < :before"),
            {"before": _naive(now - policy.success)},
        ).scalar_one()
    return int(before) - int(after)


def prune_runs(instance: dg.DagsterInstance, policy: RetentionPolicy, now: datetime) -> int:
    """Finished runs past their window: operational jobs' successes after the success window,
    everything else after the failure window."""
    deleted = 0
    for record in instance.get_run_records(
        dg.RunsFilter(statuses=FINISHED, updated_before=now - min(policy.success, policy.failure))
    ):
        run = record.dagster_run
        window = (
            policy.success
            if run.job_name in OPERATIONAL_JOBS and run.status == dg.DagsterRunStatus.SUCCESS
            else policy.failure
        )
        if record.update_timestamp < now - window:
            instance.delete_run(run.run_id)
            drop_run_files(instance, run.run_id)
            deleted += 1
    return deleted


def drop_run_files(instance: dg.DagsterInstance, run_id: str) -> None:
    """What `delete_run` leaves on disk: the run's own SQLite event-log shard (emptied, 100 KB or
    more) and its captured compute logs (a folder per run). With the prune job itself a run every
    10 minutes, they would grow without end."""
    if not run_id:  # the runless shard, and a prefix of [""] would be the whole log folder
        return
    path_for_shard = getattr(instance.event_log_storage, "path_for_shard", None)
    if path_for_shard is not None:  # SQLite storage: one file per run
        for suffix in ("", "-wal", "-shm"):
            Path(str(path_for_shard(run_id)) + suffix).unlink(missing_ok=True)
    # a compute log manager that cannot delete (cloud storage) keeps its own retention
    with contextlib.suppress(NotImplementedError):
        instance.compute_log_manager.delete_logs(prefix=[run_id])


def sqlite_files(instance: dg.DagsterInstance) -> list[Path]:
    """The SQLite files of an instance on SQLite storage (none on PostgreSQL)."""
    base = Path(instance.root_directory) / "storage"
    return sorted(base.rglob("*.db")) if base.is_dir() else []


def prune_dagster(instance: dg.DagsterInstance, policy: RetentionPolicy, now: datetime) -> dict[str, int]:
    return {
        "dagster_runs": prune_runs(instance, policy, now),
        "dagster_ticks": prune_ticks(instance, policy, now),
        **{f"dagster_{k}": v for k, v in prune_events(instance, now - policy.success).items()},
    }


@dg.op(
    description="Delete what is past its retention window in the warehouse, the app database and "
    "Dagster's storage, then vacuum the SQLite files."
)
def prune_storage(context: dg.OpExecutionContext, warehouse: WarehouseResource) -> dg.Output[None]:
    settings = get_settings()
    policy = RetentionPolicy.from_settings(settings)
    now = datetime.now(UTC)
    deleted: dict[str, Any] = {}
    deleted |= prune_warehouse(warehouse.get(), policy, now)
    engine = open_app_db(settings)
    try:
        deleted |= prune_app_db(engine, policy, now)
    finally:
        engine.dispose()
    deleted |= prune_dagster(context.instance, policy, now)
    reclaimed, busy = 0, []
    files = sqlite_files(context.instance)
    if settings.resolved_app_database_url.startswith("sqlite"):
        files.append(settings.app_db_path)
    for path in files:
        try:
            reclaimed += vacuum_sqlite(path)
        except RuntimeError as exc:
            busy.append(str(exc))
    for problem in busy:
        context.log.warning(problem)
    context.log.info(f"deleted {deleted}; {reclaimed / 1e6:.1f} MB given back to the disk")
    return dg.Output(None, metadata={**deleted, "sqlite_bytes_reclaimed": reclaimed, "busy_files": len(busy)})


@dg.job(
    executor_def=dg.in_process_executor,
    description="Bounded storage: the run log, quarantine, delivered outbox rows, Dagster's events, ticks "
    "and runs past their windows (ODDLY_RETAIN_SUCCESS_HOURS, ODDLY_RETAIN_FAILURE_DAYS).",
)
def prune_storage_job() -> None:
    prune_storage()


def retention_definitions() -> dg.Definitions:
    return dg.Definitions(
        jobs=[prune_storage_job],
        schedules=[
            dg.ScheduleDefinition(
                name="prune_storage_schedule",
                job=prune_storage_job,
                cron_schedule=get_settings().prune_cron,
                execution_timezone="UTC",
                default_status=dg.DefaultScheduleStatus.RUNNING,
            )
        ],
    )
