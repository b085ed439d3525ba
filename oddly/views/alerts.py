"""The alert feed and the audit trail, as the app shows them.

Decisions come from `oddly.alerts.audit.search_decisions` (the one query over the audit trail);
the delivery status of each alert is summed up in SQL from `alert_deliveries`: the last event of
every chat it went to, counted by status.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from oddly.alerts import audit
from oddly.alerts.decide import SENT_ACTIONS

FEED_COLUMNS = [
    "decided_at",
    "severity",
    "type",
    "event",
    "bookmaker",
    "market",
    "outcome",
    "strength",
    "explanation",
    "reasons",
    "delivery",
    "action",
    "decision_reason",
    "alert_id",
]


def delivery_summary(conn: sa.Connection, alert_ids: Sequence[str]) -> pd.DataFrame:
    """Per alert: chats it went to and how many of them are sent, waiting (queued, in a digest,
    retrying) and dead, by each chat's latest delivery event."""
    d = audit.deliveries.c
    latest = (
        sa.select(
            d.alert_id,
            d.status,
            sa.func.row_number()
            .over(partition_by=(d.alert_id, d.chat_id), order_by=(d.at.desc(), d.id.desc()))
            .label("recency"),
        )
        .where(d.alert_id.in_(list(alert_ids)))
        .subquery()
    )

    def count(*statuses: str) -> sa.ColumnElement[Any]:
        return sa.func.sum(sa.case((latest.c.status.in_(statuses), 1), else_=0))

    query = (
        sa.select(
            latest.c.alert_id,
            sa.func.count().label("chats"),
            count("sent").label("sent"),
            count("queued", "digest_queued", "retry").label("waiting"),
            count("dead").label("dead"),
        )
        .where(latest.c.recency == 1)
        .group_by(latest.c.alert_id)
    )
    return pd.read_sql_query(query, conn)


def describe_delivery(chats: int, sent: int, waiting: int, dead: int) -> str:
    if chats == 0:
        return "no subscribed chat"
    parts = [f"{sent}/{chats} sent"]
    if waiting:
        parts.append(f"{waiting} waiting")
    if dead:
        parts.append(f"{dead} failed")
    return ", ".join(parts)


def search(
    engine: sa.Engine,
    event: str | None = None,
    alert_type: str | None = None,
    severity: str | None = None,
    actions: Sequence[str | None] = (None,),
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 200,
) -> pd.DataFrame:
    """Decisions matching the filters (any of `actions`; None: every action), newest first, with
    their delivery status in words."""
    with engine.connect() as conn:
        rows = [
            row
            for action in actions
            for row in audit.search_decisions(
                conn,
                canonical_event_id=event,
                alert_type=alert_type,
                severity=severity,
                action=action,
                since=since,
                until=until,
                limit=limit,
            )
        ]
        frame = pd.DataFrame(rows)
        if frame.empty:
            return pd.DataFrame(columns=FEED_COLUMNS)
        frame = frame.sort_values(["decided_at", "id"], ascending=False).head(limit)
        delivered = delivery_summary(conn, frame["alert_id"].tolist())
    frame = frame.merge(delivered, on="alert_id", how="left")
    counts = frame[["chats", "sent", "waiting", "dead"]].fillna(0).astype(int)
    frame["delivery"] = [describe_delivery(*row) for row in counts.itertuples(index=False)]
    frame.loc[~frame["action"].isin(SENT_ACTIONS), "delivery"] = "not sent"
    frame["event"] = [
        _event_name(a, e) for a, e in zip(frame["alert"], frame["canonical_event_id"], strict=True)
    ]
    frame["reasons"] = frame["reasons"].map(_reasons_text)
    return frame[FEED_COLUMNS].reset_index(drop=True)


def alert_feed(engine: sa.Engine, severity: str | None = None, limit: int = 200) -> pd.DataFrame:
    """Alerts that went out (sent at once or in a digest), newest first."""
    return search(engine, severity=severity, actions=SENT_ACTIONS, limit=limit)


def audited_events(engine: sa.Engine, limit: int = 200) -> pd.DataFrame:
    """The events in the audit trail (id and name), most recently decided first."""
    c = audit.decisions.c
    query = (
        sa.select(c.canonical_event_id, sa.func.max(c.decided_at).label("last_decided_at"))
        .where(c.canonical_event_id.is_not(None))
        .group_by(c.canonical_event_id)
        .order_by(sa.desc("last_decided_at"))
        .limit(limit)
    )
    with engine.connect() as conn:
        return pd.read_sql_query(query, conn)


def deliveries(engine: sa.Engine, alert_id: str) -> pd.DataFrame:
    """Every delivery event of one alert (`oddly.alerts.audit.deliveries_of`)."""
    with engine.connect() as conn:
        rows = audit.deliveries_of(conn, alert_id)
    columns = ["at", "chat_id", "status", "telegram_message_id", "error"]
    return pd.DataFrame(rows, columns=[*columns, "id", "alert_id", "outbox_id"])[columns]


def _event_name(alert: Any, event_id: str | None) -> str:
    if isinstance(alert, dict) and alert.get("event_name"):
        return str(alert["event_name"])
    return event_id or ""


def _reasons_text(reasons: Any) -> str:
    """Reasons as `key: value` pairs (a detection's) or lines (a model's explanation)."""
    if isinstance(reasons, dict):
        return ", ".join(f"{k}: {v}" for k, v in reasons.items())
    if isinstance(reasons, list):
        return "; ".join(str(r) for r in reasons)
    return "" if reasons is None else str(reasons)
