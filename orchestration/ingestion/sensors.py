"""One sensor per feed: requests an ingestion run every interval, never piling runs up."""

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from oddly.config import FeedConfig
from orchestration.runs import IN_FLIGHT, MIN_INTERVAL_SECONDS


def build_feed_sensor(feed: FeedConfig, job: UnresolvedAssetJobDefinition) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"poll_{feed.name}",
        job=job,
        minimum_interval_seconds=max(MIN_INTERVAL_SECONDS, round(feed.interval_seconds)),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Requests an ingestion run of {feed.name} every {feed.interval_seconds:g} s.",
    )
    def poll(context: dg.SensorEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        in_flight = context.instance.get_runs_count(dg.RunsFilter(job_name=job.name, statuses=IN_FLIGHT))
        if in_flight:
            return dg.SkipReason(
                f"a run of feed {feed.name} is still queued or running; not piling up another"
            )
        # The cursor counts requested polls: a restarted daemon continues the count, and the
        # run_key makes a re-evaluated tick request nothing twice.
        poll_number = int(context.cursor or 0) + 1
        context.update_cursor(str(poll_number))
        return dg.RunRequest(run_key=f"{feed.name}:{poll_number}", tags={"oddly/feed": feed.name})

    return poll
