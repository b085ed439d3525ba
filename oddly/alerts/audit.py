"""The audit trail: every decision with its inputs, versions, explanation and why, and every delivery
outcome (queued for a chat, sent, retried, dead) as appended rows.

Append-only, and enforced by the database, not by convention: a trigger on SQLite and on PostgreSQL
refuses any UPDATE or DELETE of these tables, so a reviewer can trust that what is here is what was
decided and done. A correction is a new row. The functions take a connection so the caller puts
the audit rows in the same transaction as the outbox rows (`oddly.alerts.outbox`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from oddly.alerts.decide import Decision, PriorDecision, cooldown_key
from oddly.appdb import metadata
from oddly.model import utc

DELIVERY_STATUSES = ("queued", "digest_queued", "sent", "retry", "dead")

_ts = sa.DateTime(timezone=True)
_id = sa.BigInteger().with_variant(sa.Integer, "sqlite")  # SQLite autoincrements INTEGER keys only

decisions = sa.Table(
    "alert_decisions",
    metadata,
    sa.Column("id", _id, primary_key=True, autoincrement=True),
    sa.Column("alert_id", sa.String(64), nullable=False, unique=True),
    sa.Column("dedup_key", sa.Text),
    sa.Column("type", sa.String(32)),
    sa.Column("severity", sa.String(8)),  # null when rejected
    sa.Column("action", sa.String(16), nullable=False),  # oddly.alerts.decide.ACTIONS
    sa.Column("decision_reason", sa.Text, nullable=False),
    sa.Column("strength", sa.Float),
    sa.Column("canonical_event_id", sa.Text),
    sa.Column("bookmaker", sa.Text),
    sa.Column("market", sa.Text),
    sa.Column("period", sa.Text),
    sa.Column("line", sa.Float),
    sa.Column("outcome", sa.Text),
    sa.Column("rules_version", sa.String(64)),
    sa.Column("model_version", sa.String(64)),
    sa.Column("policy_version", sa.String(64), nullable=False),
    sa.Column("explanation", sa.Text),
    sa.Column("reasons", sa.JSON),
    sa.Column("inputs", sa.JSON, nullable=False),  # the detection or score row as given
    sa.Column("alert", sa.JSON),  # the whole alert (Alert.as_dict), null when rejected
    sa.Column("detected_at", _ts),
    sa.Column("decided_at", _ts, nullable=False),
)
sa.Index("ix_alert_decisions_dedup", decisions.c.dedup_key, decisions.c.decided_at)
sa.Index("ix_alert_decisions_event", decisions.c.canonical_event_id, decisions.c.decided_at)
sa.Index("ix_alert_decisions_decided", decisions.c.decided_at)

deliveries = sa.Table(
    "alert_deliveries",
    metadata,
    sa.Column("id", _id, primary_key=True, autoincrement=True),
    sa.Column("alert_id", sa.String(64), sa.ForeignKey("alert_decisions.alert_id"), nullable=False),
    sa.Column("chat_id", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # DELIVERY_STATUSES
    sa.Column("at", _ts, nullable=False),
    sa.Column("outbox_id", sa.BigInteger),
    sa.Column("telegram_message_id", sa.BigInteger),
    sa.Column("error", sa.Text),
)
sa.Index("ix_alert_deliveries_alert", deliveries.c.alert_id)

_SQLITE_GUARD = """
create trigger if not exists {table}_no_{verb} before {verb} on {table}
begin select raise(abort, '{table} is append-only: append a new row instead'); end
"""
_PG_GUARD_FUNCTION = """
create or replace function oddly_append_only() returns trigger language plpgsql as $$
begin
    raise exception '% is append-only: append a new row instead', tg_table_name;
end $$
"""
_PG_GUARD = """
create trigger {table}_append_only before update or delete on {table}
for each row execute function oddly_append_only()
"""

for _table in (decisions, deliveries):
    for _verb in ("update", "delete"):
        sa.event.listen(
            _table,
            "after_create",
            sa.DDL(_SQLITE_GUARD.format(table=_table.name, verb=_verb)).execute_if(dialect="sqlite"),
        )
    sa.event.listen(
        _table, "after_create", sa.DDL(_PG_GUARD_FUNCTION.replace("%", "%%")).execute_if(dialect="postgresql")
    )
    sa.event.listen(
        _table, "after_create", sa.DDL(_PG_GUARD.format(table=_table.name)).execute_if(dialect="postgresql")
    )


class AuditError(ValueError):
    """An audit row that cannot be written as asked (an unknown delivery status)."""


# --- writing -----------------------------------------------------------------------------------


def record_decisions(conn: sa.Connection, batch: Sequence[Decision]) -> None:
    """Append one row per decision (in the caller's transaction)."""
    if not batch:
        return
    conn.execute(decisions.insert(), [_decision_row(d) for d in batch])


def record_delivery(
    conn: sa.Connection,
    alert_id: str,
    chat_id: str,
    status: str,
    at: datetime,
    telegram_message_id: int | None = None,
    error: str | None = None,
    outbox_id: int | None = None,
) -> None:
    """Append one delivery event of an alert to a chat (in the caller's transaction)."""
    if status not in DELIVERY_STATUSES:
        raise AuditError(f"delivery status {status!r} is not one of {', '.join(DELIVERY_STATUSES)}")
    conn.execute(
        deliveries.insert().values(
            alert_id=alert_id,
            chat_id=str(chat_id),
            status=status,
            at=utc(at),
            outbox_id=outbox_id,
            telegram_message_id=telegram_message_id,
            error=error,
        )
    )


def _decision_row(d: Decision) -> dict[str, Any]:
    alert = d.alert
    return {
        "alert_id": d.alert_id,
        "dedup_key": d.dedup_key,
        "type": d.type,
        "severity": d.severity,
        "action": d.action,
        "decision_reason": d.reason,
        "strength": alert.strength if alert else None,
        "canonical_event_id": alert.canonical_event_id if alert else None,
        "bookmaker": alert.bookmaker if alert else None,
        "market": alert.market if alert else None,
        "period": alert.period if alert else None,
        "line": alert.line if alert else None,
        "outcome": alert.outcome if alert else None,
        "rules_version": alert.rules_version if alert else None,
        "model_version": alert.model_version if alert else None,
        "policy_version": d.policy_version,
        "explanation": alert.explanation if alert else None,
        "reasons": alert.reasons if alert else None,
        "inputs": d.inputs,
        "alert": alert.as_dict() if alert else None,
        "detected_at": utc(alert.detected_at) if alert else None,
        "decided_at": utc(d.decided_at),
    }


# --- reading -----------------------------------------------------------------------------------


def recent_decisions(
    conn: sa.Connection, cooldown_keys: Iterable[str], since: datetime, per: str = "selection"
) -> dict[str, list[PriorDecision]]:
    """The decisions made since `since` under these cooldown keys (`Candidate.cooldown_key`: dedup
    keys, or event × type with `per="event"`), oldest first, keyed by cooldown key."""
    keys = sorted(set(cooldown_keys))
    if not keys:
        return {}
    c = decisions.c
    query = sa.select(c.alert_id, c.dedup_key, c.type, c.severity, c.action, c.strength, c.decided_at)
    if per == "selection":
        query = query.where(c.dedup_key.in_(keys))
    else:  # event × type: the event's dedup keys start with it
        events = sorted({key.rsplit("|", 1)[0] for key in keys})
        types = sorted({key.rsplit("|", 1)[1] for key in keys})
        query = query.where(
            c.type.in_(types), sa.or_(*(c.dedup_key.startswith(f"{e}|", autoescape=True) for e in events))
        )
    rows = conn.execute(query.where(c.decided_at >= utc(since)).order_by(c.decided_at, c.id))
    out: dict[str, list[PriorDecision]] = {}
    for r in rows:
        key = cooldown_key(r.dedup_key, r.type, per)
        if key in keys:
            prior = PriorDecision(
                r.alert_id, r.dedup_key, r.severity, r.action, r.strength, utc(r.decided_at)
            )
            out.setdefault(key, []).append(prior)
    return out


def search_decisions(
    conn: sa.Connection,
    *,
    canonical_event_id: str | None = None,
    alert_type: str | None = None,
    severity: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """Decisions matching every filter given, newest first (times UTC-aware)."""
    c = decisions.c
    query = sa.select(decisions).order_by(c.decided_at.desc(), c.id.desc()).limit(limit)
    for column, value in (
        (c.canonical_event_id, canonical_event_id),
        (c.type, alert_type),
        (c.severity, severity),
        (c.action, action),
    ):
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(c.decided_at >= utc(since))
    if until is not None:
        query = query.where(c.decided_at < utc(until))
    return [_with_utc(dict(r._mapping)) for r in conn.execute(query)]


def deliveries_of(conn: sa.Connection, alert_id: str) -> list[dict[str, Any]]:
    """Every delivery event of one alert, in the order they happened."""
    c = deliveries.c
    query = sa.select(deliveries).where(c.alert_id == alert_id).order_by(c.at, c.id)
    return [_with_utc(dict(r._mapping)) for r in conn.execute(query)]


def _with_utc(row: dict[str, Any]) -> dict[str, Any]:
    # SQLite hands timestamps back naive; they were written in UTC.
    return {k: utc(v) if isinstance(v, datetime) else v for k, v in row.items()}
