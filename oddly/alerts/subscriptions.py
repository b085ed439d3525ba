"""Subscriptions: the chats that receive alerts and each chat's own filters, which the bot edits.

A chat is a row (registered_at, muted) with its filters as one validated JSON document, so a new
filter is a new field with a default, not a migration. Who may register is the settings'
allow-list (the bot checks it), not a column here. `route` decides per chat whether an alert goes
out now, into the chat's digest, or not at all; quiet hours delay a red alert into the digest
rather than drop it.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from oddly.alerts.alert import SEVERITIES, Alert
from oddly.alerts.policy import ALERT_TYPES
from oddly.appdb import metadata
from oddly.model import utc

Route = Literal["send", "digest", "skip"]

chats = sa.Table(
    "alert_chats",
    metadata,
    sa.Column("chat_id", sa.String(64), primary_key=True),
    sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("muted", sa.Boolean, nullable=False, default=False),
    sa.Column("filters", sa.JSON, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)


class SubscriptionError(ValueError):
    """A subscription that does not exist or filters that are not valid; the message says which."""


# Alerts a chat is sent at once per hour unless it chooses otherwise (the rest go to its digest).
DEFAULT_ALERTS_PER_HOUR = 30


class QuietHours(BaseModel):
    """A daily window (local time) in which nothing is sent at once; it may span midnight."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: time
    end: time
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Europe/London") from exc
        return value

    def contains(self, now: datetime) -> bool:
        local = utc(now).astimezone(ZoneInfo(self.timezone)).time()
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


class Filters(BaseModel):
    """What a chat wants. Empty lists mean everything; a threshold of None means no threshold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sports: list[str] = Field(default_factory=list)
    leagues: list[str] = Field(default_factory=list)
    bookmakers: list[str] = Field(default_factory=list)
    alert_types: list[str] = Field(default_factory=list)
    min_drop_pct: float | None = Field(None, ge=0, le=100)  # price fall, % of the old price
    min_edge_pct: float | None = Field(None, ge=0, le=1000)  # edge against the fair price, %
    min_severity: Literal["yellow", "red"] = "yellow"
    quiet_hours: QuietHours | None = None
    digest_interval_minutes: int = Field(60, ge=5, le=24 * 60)
    # No chat is flooded: past this many alerts sent at once in the last hour, red alerts wait for
    # the digest (the strongest of a batch go first). None: no limit.
    max_alerts_per_hour: int | None = Field(DEFAULT_ALERTS_PER_HOUR, ge=1, le=3600)

    @field_validator("alert_types")
    @classmethod
    def _known_types(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(ALERT_TYPES))
        if unknown:
            raise ValueError(f"unknown alert type(s) {', '.join(unknown)}; known: {', '.join(ALERT_TYPES)}")
        return value


class Subscription(BaseModel):
    model_config = ConfigDict(frozen=True)

    chat_id: str
    registered_at: datetime
    muted: bool = False
    filters: Filters = Field(default_factory=Filters)


# --- storage -----------------------------------------------------------------------------------


def register_chat(conn: sa.Connection, chat_id: str | int, at: datetime) -> Subscription:
    """The chat's subscription, created with default filters on its first /start."""
    existing = get_subscription(conn, chat_id)
    if existing is not None:
        return existing
    conn.execute(
        chats.insert().values(
            chat_id=str(chat_id),
            registered_at=utc(at),
            muted=False,
            filters=Filters().model_dump(mode="json"),
            updated_at=utc(at),
        )
    )
    return Subscription(chat_id=str(chat_id), registered_at=utc(at))


def get_subscription(conn: sa.Connection, chat_id: str | int) -> Subscription | None:
    row = conn.execute(sa.select(chats).where(chats.c.chat_id == str(chat_id))).first()
    return None if row is None else _subscription(row)


def save_filters(conn: sa.Connection, chat_id: str | int, filters: Filters, at: datetime) -> None:
    _update(conn, chat_id, at, filters=Filters.model_validate(filters).model_dump(mode="json"))


def set_muted(conn: sa.Connection, chat_id: str | int, muted: bool, at: datetime) -> None:
    _update(conn, chat_id, at, muted=muted)


def active_subscriptions(conn: sa.Connection) -> list[Subscription]:
    """Every unmuted chat."""
    rows = conn.execute(sa.select(chats).where(chats.c.muted.is_(False)).order_by(chats.c.chat_id))
    return [_subscription(r) for r in rows]


def _update(conn: sa.Connection, chat_id: str | int, at: datetime, **values: object) -> None:
    result = conn.execute(
        chats.update().where(chats.c.chat_id == str(chat_id)).values(updated_at=utc(at), **values)
    )
    if result.rowcount == 0:
        raise SubscriptionError(f"chat {chat_id} is not registered; it must send /start first")


def _subscription(row: sa.Row[tuple[object, ...]]) -> Subscription:
    m = row._mapping
    return Subscription(
        chat_id=str(m["chat_id"]),
        registered_at=utc(m["registered_at"]),
        muted=bool(m["muted"]),
        filters=Filters.model_validate(m["filters"]),
    )


# --- matching ----------------------------------------------------------------------------------


def route(sub: Subscription, alert: Alert, now: datetime, sent_last_hour: int = 0) -> tuple[Route, str]:
    """Where an alert goes for this chat — sent now, into its digest, or skipped — and why.
    `sent_last_hour`: alerts the chat was sent at once in the hour before `now`."""
    ok, why = _passes_filters(sub, alert)
    if not ok:
        return "skip", why
    if alert.severity == "red":
        quiet = sub.filters.quiet_hours
        if quiet is not None and quiet.contains(now):
            return "digest", f"quiet hours {quiet.start:%H:%M}–{quiet.end:%H:%M} {quiet.timezone}: digest"
        limit = sub.filters.max_alerts_per_hour
        if limit is not None and sent_last_hour >= limit:
            return (
                "digest",
                f"{sent_last_hour} alerts sent in the last hour, the chat's limit {limit}: digest",
            )
        return "send", "red: sent now"
    return "digest", f"{alert.severity}: digest"


def matches(sub: Subscription, alert: Alert, now: datetime) -> tuple[bool, str]:
    """Whether the chat gets this alert at all (now or in its digest), and why."""
    where, why = route(sub, alert, now)
    return where != "skip", why


def _passes_filters(sub: Subscription, alert: Alert) -> tuple[bool, str]:
    f = sub.filters
    if sub.muted:
        return False, "muted"
    if alert.severity not in SEVERITIES or SEVERITIES.index(alert.severity) < SEVERITIES.index(
        f.min_severity
    ):
        return False, f"severity {alert.severity} below {f.min_severity}"
    for name, wanted, value in (
        ("sport", f.sports, alert.sport),
        ("league", f.leagues, alert.league),
        ("bookmaker", f.bookmakers, alert.bookmaker),
        ("type", f.alert_types, alert.type),
    ):
        if wanted and value not in wanted:
            return False, f"{name} {value} not in {', '.join(wanted)}"
    # Thresholds apply to alerts that carry the measure; a value bet has no drop, a drop may have no edge.
    change = alert.price_change_pct
    if f.min_drop_pct is not None and change is not None and -change < f.min_drop_pct:
        return False, f"drop {-change:.1f} % below {f.min_drop_pct:g} %"
    if f.min_edge_pct is not None and alert.edge is not None and 100 * alert.edge < f.min_edge_pct:
        return False, f"edge {100 * alert.edge:.1f} % below {f.min_edge_pct:g} %"
    return True, "matches"
