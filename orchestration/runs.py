"""What the domains' sensors share: which runs count as in flight, how often the daemon can tick,
and the code server's Prometheus endpoint."""

import dagster as dg

from oddly import metrics
from oddly.config import get_settings

IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]
# Dagster's daemon evaluates sensors every few seconds at best.
MIN_INTERVAL_SECONDS = 5
# The daemon's sensor loop comes round every 5 s and evaluates a sensor whose minimum interval has
# passed since its last tick *ended*; a tick that took 2 s with a 5 s minimum therefore waits for the
# loop after next (10 s apart). A sensor that keeps its own pace asks for this much and skips
# evaluations that come too early itself (see the feed sensors).
EVERY_LOOP_SECONDS = 1


def serve_metrics() -> None:
    """The code server's /metrics (ODDLY_METRICS_PORT), started by the first sensor evaluated in it."""
    metrics.serve(get_settings().metrics_port)
