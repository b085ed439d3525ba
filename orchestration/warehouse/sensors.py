"""Marts follow ingestion: a refresh_marts run whenever a feed has been ingested since the last one,
never two at once, so the marts are at most one ingestion cycle behind."""

from collections.abc import Sequence

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from orchestration.runs import IN_FLIGHT, MIN_INTERVAL_SECONDS


def latest_materialization(instance: dg.DagsterInstance, keys: Sequence[dg.AssetKey]) -> int:
    """The storage id of the newest materialization of any of `keys` (0 when there is none)."""
    records = instance.get_asset_records(list(keys))
    return max((r.asset_entry.last_materialization_storage_id or 0 for r in records), default=0)


def build_marts_sensor(
    feed_keys: Sequence[dg.AssetKey], job: UnresolvedAssetJobDefinition
) -> dg.SensorDefinition:
    @dg.sensor(
        name="refresh_marts_after_ingestion",
        job=job,
        minimum_interval_seconds=MIN_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Requests a refresh_marts run when any feed has been ingested since the last "
        "refresh, one at a time: the marts are at most one ingestion cycle behind.",
    )
    def refresh_marts_after_ingestion(context: dg.SensorEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        if context.instance.get_runs_count(dg.RunsFilter(job_name=job.name, statuses=IN_FLIGHT)):
            return dg.SkipReason("a marts refresh is still queued or running; the next one takes in the rest")
        # The cursor is the newest feed materialization already handed to a refresh: a restarted
        # daemon goes on from there, and the run_key makes a re-evaluated tick request nothing twice.
        latest = latest_materialization(context.instance, feed_keys)
        if latest <= int(context.cursor or 0):
            return dg.SkipReason("no feed has been ingested since the last refresh")
        context.update_cursor(str(latest))
        return dg.RunRequest(run_key=f"marts:{latest}")

    return refresh_marts_after_ingestion
