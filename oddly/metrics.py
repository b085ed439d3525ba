"""Prometheus metrics (prometheus-client) of the processes that do the work: the Dagster code
server (polls, ticks written, rejects, alerts by severity, tick-to-alert latency, marts cycles) and
the Telegram sender (deliveries by outcome, failures included). Each serves its own registry over
HTTP at `/metrics` on its port (ODDLY_METRICS_PORT, ODDLY_SENDER_METRICS_PORT; 0: off), started once
per process; Prometheus scrapes both. Counters restart at zero with their process, as Prometheus
expects of counters.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

if TYPE_CHECKING:
    from oddly.alerts.decide import Decision
    from oddly.ingest import IngestReport

REGISTRY = CollectorRegistry()

POLLS = Counter(
    "oddly_polls",
    "Feed polls, by feed and outcome (ok, partial, failed).",
    ["feed", "status"],
    registry=REGISTRY,
)
TICKS = Counter("oddly_ticks_written", "Change-only ticks written, by feed.", ["feed"], registry=REGISTRY)
REJECTS = Counter("oddly_records_rejected", "Records quarantined, by feed.", ["feed"], registry=REGISTRY)
POLL_SECONDS = Histogram(
    "oddly_poll_seconds",
    "One poll, fetch to committed ticks and decided alerts, by feed.",
    ["feed"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30),
    registry=REGISTRY,
)
ALERTS = Counter(
    "oddly_alert_decisions",
    "Alert decisions, by alert type, severity and action (queued, digest, recorded, held).",
    ["type", "severity", "action"],
    registry=REGISTRY,
)
TICK_TO_ALERT = Histogram(
    "oddly_tick_to_alert_seconds",
    "From the tick that fired a detection to its alert being decided and queued (red) or put in a digest.",
    ["type"],
    buckets=(0.5, 1, 2, 3, 5, 7.5, 10, 15, 30, 60, 120, 300, 900),
    registry=REGISTRY,
)
MARTS_CYCLE_SECONDS = Histogram(
    "oddly_marts_cycle_seconds",
    "One marts cycle: matching, the dbt models, the publish.",
    buckets=(0.5, 1, 2, 3, 5, 7.5, 10, 20, 60),
    registry=REGISTRY,
)
MARTS_CYCLES = Counter("oddly_marts_cycles", "Marts cycles, by outcome.", ["status"], registry=REGISTRY)
DELIVERIES = Counter(
    "oddly_telegram_deliveries",
    "Telegram sends, by outcome: sent, retried (429, timeouts, 5xx) and dead (refused for good).",
    ["outcome"],
    registry=REGISTRY,
)

_served: dict[int, object] = {}
_lock = threading.Lock()


def serve(port: int, host: str = "127.0.0.1") -> bool:
    """Serve this process's metrics at http://host:port/metrics, once (later calls do nothing);
    False when off (port 0) or the port is taken (said by the caller, the work goes on)."""
    if port <= 0:
        return False
    with _lock:
        if port in _served:
            return True
        try:
            _served[port] = start_http_server(port, addr=host, registry=REGISTRY)
        except OSError:
            return False
        return True


def record_poll(report: IngestReport, seconds: float) -> None:
    POLLS.labels(report.feed, report.status).inc()
    TICKS.labels(report.feed).inc(report.ticks_written)
    REJECTS.labels(report.feed).inc(report.rejected)
    POLL_SECONDS.labels(report.feed).observe(seconds)


def record_decisions(decisions: Iterable[Decision], now: datetime) -> None:
    for d in decisions:
        ALERTS.labels(d.type or "unknown", d.severity or "none", d.action).inc()
        if d.alert is not None and d.action in ("queued", "digest"):
            TICK_TO_ALERT.labels(d.type or "unknown").observe(
                max(0.0, (now - d.alert.detected_at).total_seconds())
            )
