"""What the domains' sensors share: which runs count as in flight, and how often the daemon can tick."""

import dagster as dg

IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]
# Dagster's daemon evaluates sensors every few seconds at best.
MIN_INTERVAL_SECONDS = 5
