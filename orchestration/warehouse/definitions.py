"""The warehouse domain: event matching and the dbt models after ingestion, the dbt tests as asset
checks, the refresh_marts job and the sensor that runs it whenever a feed has been ingested."""

from __future__ import annotations

import dagster as dg
from dagster_dbt import DbtProject

from oddly.config import OddlyConfig
from orchestration.ingestion.assets import feed_asset_key
from orchestration.warehouse.assets import build_dbt_assets, build_event_map_asset, odds_ticks_spec
from orchestration.warehouse.dbt_project import DBT_PROJECT
from orchestration.warehouse.sensors import build_marts_sensor


def warehouse_definitions(config: OddlyConfig, project: DbtProject = DBT_PROJECT) -> dg.Definitions:
    feed_keys = [feed_asset_key(feed) for feed in config.enabled_feeds]
    event_map = build_event_map_asset(feed_keys)
    dbt_build = build_dbt_assets(project)
    refresh_marts = dg.define_asset_job(
        name="refresh_marts",
        # and whatever follows the marts (scoring, alerts), so one run carries a cycle to the end
        selection=dg.AssetSelection.assets(event_map, dbt_build).downstream(),
        executor_def=dg.in_process_executor,
        description="Event matching, then dbt build (models and data tests), the marts published, then "
        "what reads them: model scoring.",
    )
    return dg.Definitions(
        assets=[odds_ticks_spec(feed_keys), event_map, dbt_build],
        jobs=[refresh_marts],
        sensors=[build_marts_sensor(feed_keys, refresh_marts)],
    )
