"""The ingestion domain: for every enabled feed an asset, its sensor (which polls it) and its checks;
plus a schedule that re-evaluates freshness every minute even when a feed stops producing."""

from __future__ import annotations

import dagster as dg

from oddly.config import OddlyConfig
from orchestration.ingestion.assets import build_feed_asset, feed_asset_key
from orchestration.ingestion.checks import build_feed_checks
from orchestration.ingestion.sensors import build_feed_sensor


def ingestion_definitions(config: OddlyConfig) -> dg.Definitions:
    feeds = config.enabled_feeds
    checks = [check for feed in feeds for check in build_feed_checks(feed)]
    freshness_job = dg.define_asset_job(
        name="check_feed_freshness",
        selection=dg.AssetSelection.checks_for_assets(*(feed_asset_key(f) for f in feeds)),
        executor_def=dg.in_process_executor,
    )
    return dg.Definitions(
        assets=[build_feed_asset(feed) for feed in feeds],
        asset_checks=checks,
        jobs=[freshness_job],
        sensors=[build_feed_sensor(feed) for feed in feeds],
        schedules=[
            dg.ScheduleDefinition(
                job=freshness_job, cron_schedule="* * * * *", default_status=dg.DefaultScheduleStatus.RUNNING
            )
        ],
    )
