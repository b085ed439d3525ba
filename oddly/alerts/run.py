"""One alerting step: candidates (rule detections, model scores) → context → decisions → audit and
outbox in one transaction → due digests flushed. The ingestion run calls it on its fast detections
(red alerts do not wait for dbt); the Dagster alert asset calls it after every marts refresh on the
scores and the mart detectors' findings.

Red alerts carry a line-movement chart of their outcome across books (the last `CHART_WINDOW`).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from oddly import metrics
from oddly.alerts import audit
from oddly.alerts.alert import Alert
from oddly.alerts.context import SelectionContext, SelectionRef, enrich
from oddly.alerts.decide import Candidate, Decision, Rejected, decide, to_candidates
from oddly.alerts.outbox import Render, decide_and_queue, flush_digests, routes, sent_last_hour
from oddly.alerts.policy import AlertPolicy, PolicyError, load_policy
from oddly.alerts.subscriptions import active_subscriptions
from oddly.detect.detection import Detection
from oddly.telegram.message import render_alert, render_caption, render_digest
from oddly.warehouse.reader import MartsReader
from oddly.warehouse.store import Warehouse

log = logging.getLogger(__name__)

CHART_WINDOW = timedelta(hours=2)
# Charts drawn per batch of decisions (each a fraction of a second); the rest go as text.
MAX_CHARTS = 3


@dataclass(frozen=True)
class AlertSummary:
    decisions: int
    by_action: dict[str, int] = field(default_factory=dict)  # queued, digest, recorded, held, rejected
    by_severity: dict[str, int] = field(default_factory=dict)
    digests_sent: int = 0
    examples: list[str] = field(default_factory=list)  # the queued alerts' explanations

    def describe(self) -> str:
        if not self.decisions:
            return "no alert candidates"
        actions = ", ".join(f"{n} {a}" for a, n in sorted(self.by_action.items()))
        return f"{self.decisions} decision(s): {actions}; {self.digests_sent} digest(s) flushed"

    def as_metadata(self) -> dict[str, int]:
        return {
            "decisions": self.decisions,
            **{f"action_{a}": n for a, n in self.by_action.items()},
            **{f"severity_{s}": n for s, n in self.by_severity.items()},
            "digests_sent": self.digests_sent,
        }


def chart_png(alert: Alert, warehouse: Warehouse, sharp: str | None) -> bytes | None:
    """The line-movement chart of the alert's outcome across books, or None when there is no
    history to draw or the warehouse cannot be read (the alert then goes as text)."""
    from oddly.telegram.chart import ChartInputError, outcome_chart  # matplotlib: only when drawing

    if not alert.canonical_event_id or not alert.outcome:
        return None
    try:
        return outcome_chart(
            warehouse,
            alert.canonical_event_id,
            alert.market,
            alert.period,
            alert.line,
            alert.outcome,
            f"{alert.event_name}: {alert.market} {alert.outcome}",
            alert.fair_price,
            sharp_bookmaker=sharp,
            since=alert.detected_at - CHART_WINDOW,
            marked_at=alert.detected_at,
        )
    except (ChartInputError, sa.exc.SQLAlchemyError, ValueError) as exc:
        log.warning("alert %s: no chart (%s); sending text", alert.alert_id, exc)
        return None


def prerender_charts(
    engine: sa.Engine,
    candidates: list[Candidate | Rejected],
    policy: AlertPolicy,
    now: datetime,
    context: Mapping[SelectionRef, SelectionContext],
    warehouse: Warehouse | None,
    sharp_books: Iterable[str],
) -> dict[str, bytes]:
    """Charts of the alerts that will go out red to some chat now, by dedup key, drawn BEFORE the
    decision's write transaction: drawing takes a fraction of a second each, and on SQLite that
    transaction holds the database's write lock (the sender and the bot wait on it). A dry run of
    the decision and of each chat's routing (filters, quiet hours, hourly limit) finds them, the
    strongest first, at most `MAX_CHARTS` a batch; if the real decision differs (another process
    decided meanwhile), an alert without a chart goes as text."""
    if warehouse is None:
        return {}
    keys = [c.cooldown_key(policy.cooldown.per) for c in candidates if isinstance(c, Candidate)]
    with engine.connect() as conn:
        since = now - timedelta(minutes=policy.longest_cooldown_minutes)
        recent = audit.recent_decisions(conn, keys, since, policy.cooldown.per)
        subscriptions = active_subscriptions(conn)
        sent = sent_last_hour(conn, now)
    red = [
        d.alert
        for d in decide(candidates, recent, policy, now, context)
        if d.action == "queued" and d.severity == "red" and d.alert is not None and d.dedup_key
    ]
    going = {
        a.dedup_key: a for a, _sub, where, _why in routes(red, subscriptions, now, sent) if where == "send"
    }
    sharp = next(iter(sharp_books), None)
    charts: dict[str, bytes] = {}
    for alert in list(going.values())[:MAX_CHARTS]:
        png = chart_png(alert, warehouse, sharp)
        if png is not None:
            charts[alert.dedup_key] = png
    return charts


def renderer(app_url: str, charts: Mapping[str, bytes]) -> Render:
    """The outbox's render callback: an alert with a chart as a photo with a caption, others as
    text. Cheap: it runs inside the decision's transaction."""

    def render(alert: Alert) -> tuple[str, bytes | None]:
        png = charts.get(alert.dedup_key) if alert.severity == "red" else None
        if png is None:
            return render_alert(alert, app_url), None
        return render_caption(alert, app_url), png

    return render


def run_alerts(
    engine: sa.Engine,
    candidates: Iterable[Detection | Mapping[str, Any]] | pd.DataFrame,
    policy: AlertPolicy,
    now: datetime,
    *,
    app_url: str,
    warehouse: Warehouse | None = None,
    marts: MartsReader | None = None,
    sharp_books: Iterable[str] = (),
) -> AlertSummary:
    """Decide and queue `candidates`, then flush the digests that are due."""
    parsed = to_candidates(candidates)
    decisions: list[Decision] = []
    if parsed:
        context = enrich(parsed, warehouse, marts)
        charts = prerender_charts(engine, parsed, policy, now, context, warehouse, sharp_books)
        decisions = decide_and_queue(engine, parsed, policy, now, renderer(app_url, charts), context=context)
        metrics.record_decisions(decisions, now)
    digests = flush_digests(engine, now, partial(render_digest, app_url=app_url))
    return AlertSummary(
        decisions=len(decisions),
        by_action=dict(Counter(d.action for d in decisions)),
        by_severity=dict(Counter(d.severity for d in decisions if d.severity)),
        digests_sent=digests,
        examples=[d.alert.explanation for d in decisions if d.action == "queued" and d.alert][:10],
    )


def alert_fast_path(
    open_engine: Callable[[], sa.Engine],
    detections: list[Detection],
    *,
    policy_file: Path,
    app_url: str,
    warehouse: Warehouse,
    sharp_books: Iterable[str],
    now: datetime,
) -> tuple[AlertSummary | None, str | None]:
    """The ingestion run's own detections, decided and queued in that run. A failure here (a broken
    policy file, the app database down) is returned as a message for the run's report: the run's
    ticks are committed and stay; only these detections go undecided, and say so."""
    if not detections:
        return AlertSummary(0), None
    engine = None
    try:
        policy = load_policy(policy_file)
        engine = open_engine()
        summary = run_alerts(
            engine, detections, policy, now, app_url=app_url, warehouse=warehouse, sharp_books=sharp_books
        )
    except (PolicyError, sa.exc.SQLAlchemyError, OSError) as exc:
        log.exception("alerting failed on %d fresh detections", len(detections))
        return None, f"alerts not decided for {len(detections)} detection(s): {exc}"
    finally:
        if engine is not None:
            engine.dispose()
    return summary, None
