"""The alerts domain: the decisions asset, downstream of scoring and the marts, so the refresh_marts
job carries each cycle through to the outbox."""

import dagster as dg

from orchestration.alerts.assets import alert_decisions


def alerts_definitions() -> dg.Definitions:
    return dg.Definitions(assets=[alert_decisions])
