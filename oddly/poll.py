"""One poll of one feed, as the platform runs it: ingest the feed (fetch → parse → validate → diff →
append change-only ticks), run the fast detectors on the ticks just committed, and decide them at
once, so a red alert is in the Telegram outbox before the poll returns.

The Dagster feed sensor calls this on every tick in Dagster's long-lived code server (no run, no
new process per poll), and the ingestion asset calls the same thing when someone materializes a
feed by hand.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from oddly import metrics
from oddly.alerts.run import AlertSummary, alert_fast_path
from oddly.config import FeedConfig, Settings
from oddly.detect.rules import Rules, rules_for_ingestion
from oddly.ingest import IngestReport, fetch_timed, process_fetched, start_report
from oddly.model import now_utc
from oddly.warehouse.store import Warehouse


@dataclass
class PollReport:
    """What one poll did: the ingestion report, and what became of its detections."""

    ingest: IngestReport
    alerts: AlertSummary | None
    alert_error: str | None
    alert_seconds: float

    @property
    def failed(self) -> bool:
        return self.ingest.status == "failed"

    @property
    def problems(self) -> list[str]:
        """Everything worth a warning: the feed's error, the detectors', the alerting's."""
        found = [self.ingest.error, self.ingest.detection_error, self.alert_error]
        return [p for p in found if p]

    def as_metadata(self) -> dict[str, int | float | str]:
        alerts = {} if self.alerts is None else self.alerts.as_metadata()
        return {
            **self.ingest.as_metadata(),
            **{f"alerts_{key}": value for key, value in alerts.items()},
            "alert_seconds": round(self.alert_seconds, 3),
            **({"alert_error": self.alert_error} if self.alert_error else {}),
        }


def poll_feed(
    feed: FeedConfig,
    warehouse: Warehouse,
    settings: Settings,
    open_app_db: Callable[[], sa.Engine],
    *,
    feed_run_id: str | None = None,
) -> PollReport:
    """Ingest `feed` once and decide its fresh detections. Never raises for a feed, detector or
    alerting problem (each is in the report, in words); only a warehouse failure propagates, and
    then nothing of the poll was written."""
    rules, rules_problem = rules_for_ingestion(settings.rules_file)
    report = start_report(feed, feed_run_id)
    outcome = fetch_timed(feed, report)  # over the network: the warehouse stays free meanwhile
    # One hold of the embedded warehouse from the write to the decision. The marts cycle holds it
    # for seconds at a time; a poll that let go between its write, its detectors' reads and its
    # alerts' reads (context, chart history) queued behind a cycle at each, and its alert with it.
    with warehouse.exclusive():
        report = process_fetched(feed, warehouse, report, outcome, rules=rules)
        report.detection_error = report.detection_error or rules_problem
        return decide_poll(report, warehouse, settings, open_app_db, rules, now=now_utc())


def decide_poll(
    report: IngestReport,
    warehouse: Warehouse,
    settings: Settings,
    open_app_db: Callable[[], sa.Engine],
    rules: Rules | None,
    *,
    now: datetime,
) -> PollReport:
    """The alerting half of a poll: decide the detections of an ingestion just written, as of
    `now` (the wall clock live; the recorded time in a replay, so cooldowns and age caps hold)."""
    t0 = time.perf_counter()
    alerts, alert_error = alert_fast_path(
        open_app_db,
        report.detections,
        policy_file=settings.alert_policy_file,
        app_url=settings.app_url,
        warehouse=warehouse,
        sharp_books=rules.sharp_books if rules else (),
        now=now,
    )
    poll = PollReport(report, alerts, alert_error, time.perf_counter() - t0)
    metrics.record_poll(report, (report.finished_at - report.started_at).total_seconds() + poll.alert_seconds)
    return poll
