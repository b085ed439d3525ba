"""Alerts: what went out (severity, reasons, delivery status), and a search of the whole audit
trail — every decision, sent or not, with why."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from dashboards.common import explained, from_app_db
from oddly.alerts.alert import SEVERITIES
from oddly.alerts.decide import ACTIONS
from oddly.alerts.policy import ALERT_TYPES
from oddly.views import alerts as views

ANY = "any"
NO_ALERTS = (
    "No alert decided yet. Alerts appear when an ingestion run or the alert job detects something: "
    "start the simulator or a feed (`make demo`), and subscribe a chat in the Telegram bot to get them."
)
SEVERITY_MARK = {"red": "🔴 red", "yellow": "🟡 yellow", "green": "🟢 green"}

COLUMNS: dict[str, Any] = {
    "decided_at": st.column_config.DatetimeColumn("Decided (UTC)", format="YYYY-MM-DD HH:mm:ss"),
    "severity": "Severity",
    "type": "Type",
    "event": "Event",
    "bookmaker": "Bookmaker",
    "market": "Market",
    "outcome": "Outcome",
    "strength": st.column_config.NumberColumn("Strength", format="%.2f"),
    "explanation": st.column_config.TextColumn("What happened", width="large"),
    "reasons": st.column_config.TextColumn("Reasons", width="large"),
    "delivery": "Delivery",
    "action": "Action",
    "decision_reason": st.column_config.TextColumn("Why", width="large"),
    "alert_id": "Alert id",
}


def show(frame: pd.DataFrame) -> None:
    marked = frame.assign(severity=frame["severity"].map(lambda s: SEVERITY_MARK.get(s, s or "—")))
    st.dataframe(marked, hide_index=True, column_config=COLUMNS)


def choice(value: str) -> str | None:
    return None if value == ANY else value


def day_range(days: tuple[date, ...]) -> tuple[datetime | None, datetime | None]:
    """From the start of the first day to the end of the last (UTC); open ends while picking."""
    if not days:
        return None, None
    since = datetime.combine(days[0], time.min, UTC)
    until = datetime.combine(days[-1], time.min, UTC) + timedelta(days=1) if len(days) > 1 else None
    return since, until


st.title("Alerts")
feed_tab, audit_tab = st.tabs(["Alert feed", "Audit trail"])

with feed_tab, explained():
    severity = st.segmented_control(
        "Severity", [ANY, *reversed(SEVERITIES)], default=ANY, key="feed_severity"
    )
    feed = from_app_db(views.alert_feed, choice(severity or ANY))
    if feed.empty:
        st.info(NO_ALERTS if severity in (ANY, None) else f"No {severity} alert went out yet.")
    else:
        st.caption(f"The {len(feed)} most recent alerts sent at once or in a digest, newest first.")
        show(feed)

with audit_tab, explained():
    events = from_app_db(views.audited_events)
    if events.empty:
        st.info(NO_ALERTS)
    else:
        with st.form("audit_search"):
            left, middle, right = st.columns(3)
            event = left.selectbox("Event", [ANY, *events["canonical_event_id"]], key="audit_event")
            alert_type = middle.selectbox("Type", [ANY, *ALERT_TYPES], key="audit_type")
            severity_filter = right.selectbox("Severity", [ANY, *reversed(SEVERITIES)], key="audit_severity")
            left, right = st.columns(2)
            action = left.selectbox("Decision", [ANY, *ACTIONS], key="audit_action")
            today = datetime.now(UTC).date()
            days = right.date_input("Decided between", (today - timedelta(days=7), today), key="audit_days")
            st.form_submit_button("Search")
        since, until = day_range(tuple(days) if isinstance(days, tuple | list) else (days,))
        found = from_app_db(
            views.search,
            choice(event),
            choice(alert_type),
            choice(severity_filter),
            (choice(action),),
            since,
            until,
        )
        if found.empty:
            st.info("No decision matches these filters.")
        else:
            st.caption(f"{len(found)} decision(s), newest first (at most 200).")
            show(found)
            picked = st.selectbox("Deliveries of alert", found["alert_id"], key="audit_alert")
            st.dataframe(from_app_db(views.deliveries, picked), hide_index=True)
