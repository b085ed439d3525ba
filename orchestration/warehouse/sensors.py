"""The marts follow ingestion, in Dagster's long-lived code server: whenever a feed has been
ingested since the last refresh, this sensor runs one marts cycle itself (`oddly.warehouse.cycle`:
event matching, the dbt models in the warm in-process dbt, the marts published, the data tests when
due), then scores the fresh rows with the champion and decides the alerts — and reports each step
as a materialization (dbt tests as asset checks) of the same assets the refresh_marts job builds.

No run is launched per cycle: a run is a new process that imports the code location and dbt and
parses the project (seconds each, BENCHMARKS.md), while here they are loaded once. The marts are
therefore at most one cycle behind ingestion. The refresh_marts job does the same work in a run,
for materializing by hand; while one of its runs is in flight this sensor waits.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from oddly.warehouse.cycle import run_marts_cycle
from orchestration.alerts.assets import ALERTS_KEY, decide_alerts
from orchestration.ml.assets import SCORES_KEY, score_fresh_rows
from orchestration.resources import AppDatabaseResource, MlflowResource, WarehouseResource
from orchestration.runs import IN_FLIGHT, MIN_INTERVAL_SECONDS, serve_metrics
from orchestration.warehouse.assets import (
    EVENT_MAP_KEY,
    ODDS_TICKS_KEY,
    dbt_asset_events,
    match_metadata,
    published,
)
from orchestration.warehouse.dbt_project import warm_dbt

SENSOR_NAME = "refresh_marts_after_ingestion"
log = logging.getLogger(__name__)


def latest_materialization(instance: dg.DagsterInstance, keys: Sequence[dg.AssetKey]) -> int:
    """The storage id of the newest materialization of any of `keys` (0 when there is none)."""
    records = instance.get_asset_records(list(keys))
    return max((r.asset_entry.last_materialization_storage_id or 0 for r in records), default=0)


@dataclass(frozen=True)
class MartsCursor:
    """The newest feed materialization a cycle took in, and when the data tests last ran (epoch s).
    A restarted daemon goes on from here: nothing is refreshed twice, no test run is skipped."""

    ingested: int = 0
    checked_at: float = 0.0

    @classmethod
    def parse(cls, cursor: str | None) -> MartsCursor:
        if not cursor:
            return cls()
        if cursor.isdigit():  # the cursor of earlier versions: the feed materialization alone
            return cls(int(cursor))
        raw = json.loads(cursor)
        return cls(int(raw["ingested"]), float(raw["checked_at"]))

    def dump(self) -> str:
        return json.dumps({"ingested": self.ingested, "checked_at": self.checked_at})


def build_marts_sensor(
    feed_keys: Sequence[dg.AssetKey], job: UnresolvedAssetJobDefinition
) -> dg.SensorDefinition:
    @dg.sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=MIN_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="When any feed has been ingested since the last refresh: match events, run the dbt "
        "models and publish the marts (data tests when due), score the fresh rows, decide the alerts — "
        "here, without a run; the marts are at most one ingestion cycle behind.",
    )
    def refresh_marts_after_ingestion(
        context: dg.SensorEvaluationContext,
        warehouse: WarehouseResource,
        app_db: AppDatabaseResource,
        mlflow: MlflowResource,
    ) -> dg.SensorResult | dg.SkipReason:
        serve_metrics()
        if context.instance.get_runs_count(dg.RunsFilter(job_name=job.name, statuses=IN_FLIGHT)):
            return dg.SkipReason("a refresh_marts run is queued or running; the next cycle takes in the rest")
        cursor = MartsCursor.parse(context.cursor)
        latest = latest_materialization(context.instance, feed_keys)
        if latest <= cursor.ingested:
            return dg.SkipReason("no feed has been ingested since the last refresh")
        settings = warehouse.settings()
        started = time.time()
        run_checks = started - cursor.checked_at >= settings.marts_checks_seconds
        dbt, matching = warm_dbt(settings)
        cycle = run_marts_cycle(settings, dbt, run_checks=run_checks, matching=matching)
        events: list[Any] = [
            *(
                [dg.AssetMaterialization(EVENT_MAP_KEY, metadata=match_metadata(cycle.matching))]
                if cycle.matching is not None
                else []
            ),
            # the cycle itself, as seen from the tick table it folded in: where its time went
            dg.AssetObservation(
                ODDS_TICKS_KEY, metadata={**cycle.timings(), "models": len(cycle.models.nodes)}
            ),
            *dbt_asset_events(cycle.models),
            *(dbt_asset_events(cycle.checks) if cycle.checks else []),
            *published(cycle.snapshot),
        ]
        if not cycle.success:
            context.log.error(cycle.describe())
            return dg.SensorResult(
                asset_events=events, skip_reason=f"marts not refreshed: {cycle.models.describe()}"
            )
        log.info(cycle.describe())
        problems = []
        for key, step in (
            (SCORES_KEY, lambda: score_fresh_rows(warehouse, app_db, mlflow, log)),
            (ALERTS_KEY, lambda: decide_alerts(context.instance, warehouse, app_db, log)),
        ):
            try:
                events.append(dg.AssetMaterialization(key, metadata=step()))
            except Exception as exc:  # one step's failure must not lose the others' events
                context.log.exception(f"{key.to_user_string()} failed after the marts refresh")
                problems.append(f"{key.to_user_string()}: {type(exc).__name__}: {exc}")
        checked_at = started if cycle.checks is not None else cursor.checked_at
        return dg.SensorResult(
            asset_events=events,
            cursor=MartsCursor(latest, checked_at).dump(),
            skip_reason=("; ".join(problems) if problems else None),
        )

    return refresh_marts_after_ingestion
