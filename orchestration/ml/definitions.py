"""The ML domain: scoring after every marts refresh (it is downstream of the marts, so the
refresh_marts job runs it), the drift check, and the training job — daily and on demand."""

from __future__ import annotations

import dagster as dg

from orchestration.ml.assets import anomaly_model, anomaly_scores, feature_drift

# 04:00 UTC: the quietest hour for most football markets.
TRAIN_CRON = "0 4 * * *"


def ml_definitions() -> dg.Definitions:
    train_job = dg.define_asset_job(
        name="train_anomaly_model",
        selection=dg.AssetSelection.assets(anomaly_model),
        executor_def=dg.in_process_executor,
        description="Train, evaluate and register every model family; promote only a better model.",
    )
    return dg.Definitions(
        assets=[anomaly_scores, anomaly_model],
        asset_checks=[feature_drift],
        jobs=[train_job],
        schedules=[
            dg.ScheduleDefinition(
                name="train_anomaly_model_daily",
                job=train_job,
                cron_schedule=TRAIN_CRON,
                execution_timezone="UTC",
                default_status=dg.DefaultScheduleStatus.RUNNING,
            )
        ],
    )
