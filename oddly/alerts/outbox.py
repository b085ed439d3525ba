"""The transactional outbox: decisions, their audit rows and the messages to send are written in one
transaction, and a sender (`oddly.telegram.sender`) delivers from the outbox table.

The guarantee, end to end:

* **No alert is lost on a crash at any point.** `decide_and_queue` commits the decisions, the audit
  rows and one outbox row per chat (or digest item) together or not at all: a crash before the
  commit leaves nothing, and the caller's retry (the Dagster run, the next ingestion) decides the
  same detections again. After the commit a row stays until a sender marks it sent or dead.
* **At-least-once delivery.** `claim_due` commits the rows as 'sending' *before* the send; a sender
  that dies holding them leaves them 'sending', and after `sending_timeout` any sender claims them
  again. A duplicate is possible only when a sender dies after Telegram accepted a message and
  before `mark_sent` committed (or is stalled longer than `sending_timeout` inside one send); a
  restarted sender never resends a row whose `mark_sent` committed.
* **The audit trail says what happened**: `mark_sent`, `mark_retry` and `mark_dead` append delivery
  rows in the same transaction as the status change. The outbox status is the one mutable thing:
  it is a queue, not the record.

Yellow alerts (and red ones in a chat's quiet hours) wait in a per-chat digest queue until
`flush_digests` turns them into one outbox message per chat and digest interval.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa

from oddly.alerts import audit
from oddly.alerts.alert import Alert
from oddly.alerts.context import SelectionContext, SelectionRef
from oddly.alerts.decide import SENT_ACTIONS, Candidate, Decision, Rejected, decide, to_candidates
from oddly.alerts.policy import AlertPolicy
from oddly.alerts.subscriptions import Subscription, active_subscriptions, get_subscription, route
from oddly.appdb import metadata
from oddly.detect.detection import Detection
from oddly.model import now_utc, utc

STATUSES = ("pending", "sending", "sent", "dead")
# A row 'sending' for longer than this was left by a sender that died: it is claimed again.
SENDING_TIMEOUT = timedelta(minutes=2)
# Serializes deciders and digest flushes on PostgreSQL (SQLite: BEGIN IMMEDIATE already does), so
# two runs cannot both read "not sent yet" for the same dedup key and both send it.
_PG_LOCK_KEY = 0x0DD1_A1E7

Render = Callable[[Alert], tuple[str, bytes | None]]
RenderDigest = Callable[[list[Alert]], str]

_ts = sa.DateTime(timezone=True)
_id = sa.BigInteger().with_variant(sa.Integer, "sqlite")

outbox = sa.Table(
    "alert_outbox",
    metadata,
    sa.Column("id", _id, primary_key=True, autoincrement=True),
    sa.Column("alert_id", sa.String(64), nullable=False),  # the alert's, or the digest's id
    sa.Column("kind", sa.String(8), nullable=False),  # alert | digest
    sa.Column("chat_id", sa.String(64), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("photo", sa.LargeBinary),
    sa.Column("status", sa.String(8), nullable=False),  # STATUSES
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("created_at", _ts, nullable=False),
    sa.Column("next_attempt_at", _ts, nullable=False),
    sa.Column("claimed_at", _ts),
    sa.Column("sent_at", _ts),
    sa.Column("telegram_message_id", sa.BigInteger),
    sa.Column("last_error", sa.Text),
)
sa.Index("ix_alert_outbox_due", outbox.c.status, outbox.c.next_attempt_at)

digest_items = sa.Table(
    "alert_digest_items",
    metadata,
    sa.Column("id", _id, primary_key=True, autoincrement=True),
    sa.Column("chat_id", sa.String(64), nullable=False),
    sa.Column("alert_id", sa.String(64), sa.ForeignKey("alert_decisions.alert_id"), nullable=False),
    sa.Column("queued_at", _ts, nullable=False),
    sa.Column("digest_id", sa.String(64)),  # set when flushed into an outbox message
    sa.Column("flushed_at", _ts),
)
sa.Index("ix_alert_digest_items_chat", digest_items.c.chat_id, digest_items.c.digest_id)


class OutboxError(LookupError):
    """An outbox message that does not exist; the message names it."""


@dataclass(frozen=True)
class OutboxMessage:
    id: int
    alert_id: str
    chat_id: str
    text: str
    photo: bytes | None
    attempts: int
    created_at: datetime


# --- writing: decisions to messages ------------------------------------------------------------


def decide_and_queue(
    engine: sa.Engine,
    candidates: Iterable[Detection | Mapping[str, Any] | Candidate | Rejected] | pd.DataFrame,
    policy: AlertPolicy,
    now: datetime,
    render: Render,
    *,
    context: Mapping[SelectionRef, SelectionContext] | None = None,
) -> list[Decision]:
    """Decide the candidates and, in ONE transaction, append their audit rows and queue every red
    alert for each subscribed, unmuted chat it matches (digest items for yellow ones and for chats
    in quiet hours). Anything raising inside (a failing `render`) leaves nothing written."""
    now = utc(now)
    parsed = to_candidates(candidates)
    keys = [c.cooldown_key(policy.cooldown.per) for c in parsed if isinstance(c, Candidate)]
    with engine.begin() as conn:
        _serialize(conn)
        since = now - timedelta(minutes=policy.longest_cooldown_minutes)
        made = decide(
            parsed, audit.recent_decisions(conn, keys, since, policy.cooldown.per), policy, now, context
        )
        audit.record_decisions(conn, made)
        subscriptions = active_subscriptions(conn)
        sent = sent_last_hour(conn, now)
        for alert in by_urgency(d.alert for d in made if d.action in SENT_ACTIONS and d.alert is not None):
            _queue(conn, alert, subscriptions, now, render, sent)
    return made


def by_urgency(alerts: Iterable[Alert]) -> list[Alert]:
    """Red before yellow, the strongest first: what a chat's hourly limit lets through first."""
    return sorted(alerts, key=lambda a: (a.severity != "red", -a.strength))


def sent_last_hour(conn: sa.Connection, now: datetime) -> dict[str, int]:
    """Alerts (not digests) queued to each chat in the hour before `now`."""
    rows = conn.execute(
        sa.select(outbox.c.chat_id, sa.func.count())
        .where(outbox.c.kind == "alert", outbox.c.created_at >= now - timedelta(hours=1))
        .group_by(outbox.c.chat_id)
    )
    return {str(row[0]): int(row[1]) for row in rows}


def routes(
    alerts: Iterable[Alert], subscriptions: Sequence[Subscription], now: datetime, sent: dict[str, int]
) -> Iterable[tuple[Alert, Subscription, str, str]]:
    """Each alert's route to each chat, the strongest first, counting what each chat is sent
    against its hourly limit (`sent` is updated). The decision's transaction and the dry run that
    decides which charts to draw both go through here."""
    for alert in by_urgency(alerts):
        for sub in subscriptions:
            where, why = route(sub, alert, now, sent.get(sub.chat_id, 0))
            if where == "send":
                sent[sub.chat_id] = sent.get(sub.chat_id, 0) + 1
            yield alert, sub, where, why


def _queue(
    conn: sa.Connection,
    alert: Alert,
    subscriptions: Sequence[Subscription],
    now: datetime,
    render: Render,
    sent: dict[str, int],
) -> None:
    rendered: tuple[str, bytes | None] | None = None  # once per alert, only if some chat gets it now
    for _alert, sub, where, _why in routes([alert], subscriptions, now, sent):
        if where == "send":
            rendered = rendered or render(alert)
            message_id = _insert_message(conn, alert.alert_id, "alert", sub.chat_id, rendered, now)
            audit.record_delivery(conn, alert.alert_id, sub.chat_id, "queued", now, outbox_id=message_id)
        elif where == "digest":
            conn.execute(
                digest_items.insert().values(chat_id=sub.chat_id, alert_id=alert.alert_id, queued_at=now)
            )
            audit.record_delivery(conn, alert.alert_id, sub.chat_id, "digest_queued", now)


def flush_digests(engine: sa.Engine, now: datetime, render_digest: RenderDigest) -> int:
    """Turn each chat's waiting digest items into one outbox message once its oldest item has
    waited the chat's digest interval (not while the chat is muted or in its quiet hours).
    Returns how many digest messages were queued."""
    now = utc(now)
    queued = 0
    with engine.begin() as conn:
        _serialize(conn)
        waiting = conn.execute(
            sa.select(
                digest_items.c.id, digest_items.c.chat_id, digest_items.c.queued_at, audit.decisions.c.alert
            )
            .join(audit.decisions, audit.decisions.c.alert_id == digest_items.c.alert_id)
            .where(digest_items.c.digest_id.is_(None))
            .order_by(digest_items.c.chat_id, digest_items.c.queued_at, digest_items.c.id)
        ).all()
        by_chat: dict[str, list[Any]] = {}
        for row in waiting:
            by_chat.setdefault(row.chat_id, []).append(row)
        for chat_id, rows in by_chat.items():
            sub = get_subscription(conn, chat_id)
            if sub is None or sub.muted or _in_quiet_hours(sub, now):
                continue
            if utc(rows[0].queued_at) + timedelta(minutes=sub.filters.digest_interval_minutes) > now:
                continue
            digest_id = f"digest-{uuid.uuid4().hex}"
            text = render_digest([Alert.from_dict(r.alert) for r in rows])
            _insert_message(conn, digest_id, "digest", chat_id, (text, None), now)
            conn.execute(
                digest_items.update()
                .where(digest_items.c.id.in_([r.id for r in rows]))
                .values(digest_id=digest_id, flushed_at=now)
            )
            queued += 1
    return queued


def _in_quiet_hours(sub: Subscription, now: datetime) -> bool:
    quiet = sub.filters.quiet_hours
    return quiet is not None and quiet.contains(now)


def _insert_message(
    conn: sa.Connection,
    alert_id: str,
    kind: str,
    chat_id: str,
    rendered: tuple[str, bytes | None],
    now: datetime,
) -> int:
    text, photo = rendered
    message_id: int = conn.execute(
        outbox.insert()
        .values(
            alert_id=alert_id,
            kind=kind,
            chat_id=chat_id,
            text=text,
            photo=photo,
            status="pending",
            attempts=0,
            created_at=now,
            next_attempt_at=now,
        )
        .returning(outbox.c.id)
    ).scalar_one()
    return int(message_id)


def _serialize(conn: sa.Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("select pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})


# --- the sender's side -------------------------------------------------------------------------


class Outbox:
    """The queue the Telegram sender works from (see the module docstring for the guarantee)."""

    def __init__(self, engine: sa.Engine, *, sending_timeout: timedelta = SENDING_TIMEOUT) -> None:
        self.engine = engine
        self.sending_timeout = sending_timeout

    def claim_due(self, limit: int, now: datetime) -> list[OutboxMessage]:
        """Pending rows with next_attempt_at <= now, oldest first, plus rows left 'sending' by a crashed
        sender; marks them 'sending' and attempts+1 in one transaction (commit BEFORE the send)."""
        now = utc(now)
        c = outbox.c
        due = sa.or_(
            sa.and_(c.status == "pending", c.next_attempt_at <= now),
            sa.and_(c.status == "sending", c.claimed_at <= now - self.sending_timeout),
        )
        # SKIP LOCKED: two senders on PostgreSQL take different rows (SQLite ignores it and
        # serializes writers instead).
        ids = (
            sa.select(c.id)
            .where(due)
            .order_by(c.created_at, c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        with self.engine.begin() as conn:
            rows = conn.execute(
                outbox.update()
                .where(c.id.in_(ids.scalar_subquery()))
                .values(status="sending", attempts=c.attempts + 1, claimed_at=now)
                .returning(c.id, c.alert_id, c.chat_id, c.text, c.photo, c.attempts, c.created_at)
            ).all()
        messages = [
            OutboxMessage(
                int(r.id), r.alert_id, r.chat_id, r.text, r.photo, int(r.attempts), utc(r.created_at)
            )
            for r in rows
        ]
        return sorted(messages, key=lambda m: (m.created_at, m.id))

    def mark_sent(self, message_id: int, telegram_message_id: int | None, sent_at: datetime) -> None:
        """status 'sent' + audit delivery row, one transaction."""
        values = {"status": "sent", "sent_at": utc(sent_at), "telegram_message_id": telegram_message_id}
        self._settle(message_id, values, "sent", utc(sent_at), telegram_message_id=telegram_message_id)

    def mark_retry(self, message_id: int, error: str, next_attempt_at: datetime) -> None:
        """Back to 'pending' until `next_attempt_at`, the error audited."""
        values = {"status": "pending", "next_attempt_at": utc(next_attempt_at), "last_error": error}
        self._settle(message_id, values, "retry", now_utc(), error=error)

    def mark_dead(self, message_id: int, error: str) -> None:
        """A permanent failure (chat blocked the bot, bad request): never retried, audited."""
        self._settle(message_id, {"status": "dead", "last_error": error}, "dead", now_utc(), error=error)

    def backlog(self, now: datetime) -> tuple[int, datetime | None]:
        """Messages created up to `now` and not yet delivered (pending or sending): how many, and the
        oldest one's created_at."""
        c = outbox.c
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(sa.func.count().label("n"), sa.func.min(c.created_at).label("oldest")).where(
                    c.status.in_(("pending", "sending")), c.created_at <= utc(now)
                )
            ).one()
        return int(row.n), None if row.oldest is None else utc(row.oldest)

    def _settle(
        self, message_id: int, values: dict[str, Any], status: str, at: datetime, **event: Any
    ) -> None:
        with self.engine.begin() as conn:
            row = conn.execute(
                outbox.update()
                .where(outbox.c.id == message_id)
                .values(**values)
                .returning(outbox.c.alert_id, outbox.c.kind, outbox.c.chat_id)
            ).first()
            if row is None:
                raise OutboxError(f"outbox message {message_id} does not exist; nothing was marked {status}")
            for alert_id in _alerts_in(conn, row.alert_id, row.kind):
                audit.record_delivery(conn, alert_id, row.chat_id, status, at, outbox_id=message_id, **event)


def _alerts_in(conn: sa.Connection, alert_id: str, kind: str) -> list[str]:
    """The alerts an outbox message carries: itself, or every item of a digest."""
    if kind != "digest":
        return [alert_id]
    rows = conn.execute(
        sa.select(digest_items.c.alert_id)
        .where(digest_items.c.digest_id == alert_id)
        .order_by(digest_items.c.id)
    )
    return [r.alert_id for r in rows]
