"""The platform's health, as `oddly status` prints it (the model part is added by `ml.status`, since
`oddly/` does not import `ml`): per feed, its last success, freshness against its interval, last
error and quarantined rows; the Telegram outbox's backlog and oldest undelivered alert.

Every part reads its store on its own and says in words when it cannot, so a status works (and is
most useful) when something is down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from oddly.alerts.outbox import Outbox
from oddly.appdb import open_app_db
from oddly.config import Settings
from oddly.model import utc
from oddly.warehouse.snapshot import FEED_HEALTH_SQL
from oddly.warehouse.store import Warehouse

# A feed is stale when its last success is older than this many of its intervals (as the Dagster
# freshness check judges it).
STALE_AFTER_INTERVALS = 3


@dataclass
class FeedStatus:
    feed: str
    bookmaker: str | None
    interval_seconds: float
    last_success_at: datetime | None
    last_status: str | None
    last_error: str | None
    runs_24h: int = 0
    failed_runs_24h: int = 0
    quarantined_rows_24h: int = 0
    age_seconds: float | None = None

    @property
    def fresh(self) -> bool:
        return (
            self.age_seconds is not None and self.age_seconds <= STALE_AFTER_INTERVALS * self.interval_seconds
        )

    def state(self) -> str:
        if self.last_success_at is None:
            return "never ingested"
        return "fresh" if self.fresh else f"STALE (last success {self.age_seconds:.0f} s ago)"


@dataclass
class PlatformStatus:
    measured_at: datetime
    feeds: list[FeedStatus] = field(default_factory=list)
    feeds_error: str | None = None
    outbox_backlog: int | None = None
    outbox_oldest: datetime | None = None
    outbox_error: str | None = None
    model: dict[str, Any] = field(default_factory=dict)  # filled by ml.status

    @property
    def healthy(self) -> bool:
        return (
            self.feeds_error is None
            and self.outbox_error is None
            and all(f.fresh for f in self.feeds)
            and not self.model.get("drifted")
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "measured_at": self.measured_at.isoformat(),
            "healthy": self.healthy,
            "feeds": [
                {
                    "feed": f.feed,
                    "state": f.state(),
                    "last_success_at": f.last_success_at.isoformat() if f.last_success_at else None,
                    "age_seconds": None if f.age_seconds is None else round(f.age_seconds, 1),
                    "interval_seconds": f.interval_seconds,
                    "last_error": f.last_error,
                    "runs_24h": f.runs_24h,
                    "failed_runs_24h": f.failed_runs_24h,
                    "quarantined_rows_24h": f.quarantined_rows_24h,
                }
                for f in self.feeds
            ],
            "feeds_error": self.feeds_error,
            "outbox": {
                "backlog": self.outbox_backlog,
                "oldest_undelivered_at": self.outbox_oldest.isoformat() if self.outbox_oldest else None,
                "error": self.outbox_error,
            },
            "model": self.model,
        }

    def render(self) -> str:
        lines = [f"Oddly Odds status at {self.measured_at:%Y-%m-%d %H:%M:%S} UTC: "
                 + ("healthy" if self.healthy else "NEEDS ATTENTION"), "", "feeds:"]  # fmt: skip
        if self.feeds_error:
            lines.append(f"  ! {self.feeds_error}")
        for f in self.feeds:
            lines.append(
                f"  {f.feed:<16} {f.state():<40} runs 24 h {f.runs_24h}, failed {f.failed_runs_24h}, "
                f"quarantined {f.quarantined_rows_24h}"
            )
            if f.last_error and f.last_status == "failed":
                lines.append(f"  {'':<16} last error: {f.last_error}")
        lines += ["", "outbox:"]
        if self.outbox_error:
            lines.append(f"  ! {self.outbox_error}")
        else:
            oldest = "none" if self.outbox_oldest is None else f"{self.outbox_oldest:%H:%M:%S} UTC"
            lines.append(f"  {self.outbox_backlog} undelivered, oldest {oldest}")
        if self.model:
            lines += ["", "model:", *(f"  {k}: {v}" for k, v in self.model.items() if k != "psi")]
        return "\n".join(lines)


def platform_status(settings: Settings, now: datetime) -> PlatformStatus:
    """Feeds (warehouse) and outbox (app database), each read on its own."""
    status = PlatformStatus(measured_at=utc(now))
    try:
        status.feeds = feed_status(settings, status.measured_at)
    except (sa.exc.SQLAlchemyError, OSError, RuntimeError) as exc:
        status.feeds_error = f"warehouse unreadable ({type(exc).__name__}: {exc}); feed state unknown"
    try:
        engine = open_app_db(settings)
        try:
            status.outbox_backlog, status.outbox_oldest = Outbox(engine).backlog(status.measured_at)
        finally:
            engine.dispose()
    except (sa.exc.SQLAlchemyError, OSError) as exc:
        status.outbox_error = f"app database unreadable ({type(exc).__name__}: {exc}); outbox state unknown"
    return status


def feed_status(settings: Settings, now: datetime) -> list[FeedStatus]:
    """Every configured feed, with what the warehouse's run log says of it (never run: no row)."""
    warehouse = Warehouse.from_settings(settings)
    try:
        warehouse.ensure_schema()
        health = pd.DataFrame(warehouse.query(FEED_HEALTH_SQL))
    finally:
        warehouse.dispose()
    by_feed = {row["feed"]: row for row in health.to_dict("records")} if not health.empty else {}
    out = []
    for feed in settings.config.enabled_feeds:
        row = by_feed.get(feed.name, {})
        last = row.get("last_success_at")
        last_at = None if last is None or pd.isna(last) else utc(pd.Timestamp(last).to_pydatetime())
        out.append(
            FeedStatus(
                feed=feed.name,
                bookmaker=feed.bookmaker,
                interval_seconds=feed.interval_seconds,
                last_success_at=last_at,
                last_status=row.get("last_status"),
                last_error=row.get("last_error"),
                runs_24h=int(row.get("runs_24h") or 0),
                failed_runs_24h=int(row.get("failed_runs_24h") or 0),
                quarantined_rows_24h=int(row.get("quarantined_rows_24h") or 0),
                age_seconds=None if last_at is None else (now - last_at).total_seconds(),
            )
        )
    return out
