"""The alerts domain: the decisions asset, downstream of scoring and the marts, so the refresh_marts
job carries each cycle through to the outbox; and the live alerts' grading, every 15 minutes."""

import dagster as dg

from orchestration.alerts.assets import alert_decisions
from orchestration.alerts.grading import GRADE_CRON, alert_grades


def alerts_definitions() -> dg.Definitions:
    grade_job = dg.define_asset_job(
        name="grade_alerts",
        selection=dg.AssetSelection.assets(alert_grades),
        executor_def=dg.in_process_executor,
        description="Grade the live alerts whose events have kicked off (closing-line value, then "
        "profit once the result is in).",
    )
    return dg.Definitions(
        assets=[alert_decisions, alert_grades],
        jobs=[grade_job],
        schedules=[
            dg.ScheduleDefinition(
                name="grade_alerts_every_15_minutes",
                job=grade_job,
                cron_schedule=GRADE_CRON,
                execution_timezone="UTC",
                default_status=dg.DefaultScheduleStatus.RUNNING,
            )
        ],
    )
