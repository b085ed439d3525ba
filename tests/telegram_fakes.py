"""Helpers for the Telegram tests: alerts to render, outbox rows to send, a sender to run against
the fake Bot API, and (run as `python -m tests.telegram_fakes`) a sender that dies right after
Telegram accepted a message, before recording it, to test the delivery guarantee."""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa

from oddly.alerts import audit
from oddly.alerts.alert import Alert, BookPrice
from oddly.alerts.outbox import Outbox, outbox
from oddly.appdb import open_app_db
from oddly.config import Settings
from oddly.telegram.sender import Sender, SenderConfig, make_bot

TOKEN = "123456:TEST-token-never-in-logs"
DECIDED_AT = datetime(2025, 4, 12, 12, 55, tzinfo=UTC)
T0 = datetime(2025, 4, 12, 12, 0, tzinfo=UTC)
# Quick retries and timeouts, so the fault tests take a second or two.
FAST = SenderConfig(
    poll_seconds=0.05,
    per_chat_interval=0.0,
    backoff_seconds=0.3,
    backoff_max_seconds=1.0,
    read_timeout=1.0,
    shutdown_grace_seconds=3.0,
)


def make_alert(**changes: Any) -> Alert:
    """A red sharp drop on Arsenal at Pinnacle: 2.10 → 1.85, fair 1.80, kick-off in 2 h 5 min."""
    alert = Alert(
        alert_id="a-1",
        dedup_key="ev1|1x2|ft||home|sharp_drop|pinnacle",
        type="sharp_drop",
        severity="red",
        strength=1.8,
        canonical_event_id="ev1",
        event_name="Arsenal v Chelsea",
        sport="football",
        league="Premier League",
        starts_at=DECIDED_AT + timedelta(hours=2, minutes=5),
        is_live=False,
        bookmaker="pinnacle",
        market="1x2",
        period="ft",
        line=None,
        outcome="home",
        old_price=2.10,
        new_price=1.85,
        fair_price=1.80,
        edge=1.85 / 1.80 - 1,
        detected_at=DECIDED_AT - timedelta(seconds=3),
        decided_at=DECIDED_AT,
        rules_version="r1",
        model_version=None,
        explanation="Pinnacle shortened Arsenal by 11.9 % in 4 minutes",
        reasons=["drop 11.9 % ≥ threshold 8 %", "sharp book moved first"],
        best_prices=[BookPrice("bet365", 1.95), BookPrice("22bet", 1.92)],
    )
    return replace(alert, **changes)


def price_history(books: dict[str, list[float]], status: str = "open") -> pd.DataFrame:
    """Ticks five minutes apart from T0, one list of prices per bookmaker (outcome_history's shape)."""
    rows = [
        {"bookmaker": book, "observed_at": T0 + timedelta(minutes=5 * i), "price": price, "status": status}
        for book, prices in books.items()
        for i, price in enumerate(prices)
    ]
    return pd.DataFrame(rows, columns=["bookmaker", "observed_at", "price", "status"])


def queue_message(engine: sa.Engine, chat_id: str, text: str, photo: bytes | None = None) -> int:
    """One pending outbox row (with the decision row the audit trail refers to); its id."""
    now = datetime.now(UTC)
    alert_id = f"t-{time.monotonic_ns()}"
    with engine.begin() as conn:
        conn.execute(
            audit.decisions.insert().values(
                alert_id=alert_id,
                action="queued",
                decision_reason="test",
                policy_version="test",
                inputs={},
                decided_at=now,
            )
        )
        result = conn.execute(
            outbox.insert().values(
                alert_id=alert_id,
                kind="alert",
                chat_id=chat_id,
                text=text,
                photo=photo,
                status="pending",
                attempts=0,
                created_at=now,
                next_attempt_at=now,
            )
        )
    return int(result.inserted_primary_key[0])


def outbox_rows(engine: sa.Engine) -> dict[int, dict[str, Any]]:
    with engine.connect() as conn:
        return {r.id: dict(r._mapping) for r in conn.execute(sa.select(outbox).order_by(outbox.c.id))}


def sender_settings(api_base_url: str) -> Settings:
    return Settings(telegram_api_url=api_base_url, telegram_bot_token=TOKEN)


async def run_until(sender: Sender, done: Callable[[], bool], timeout: float = 15.0) -> None:
    """Run the sender's loop until `done()` holds, then stop it; fails after `timeout` seconds."""
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop))
    deadline = time.monotonic() + timeout
    try:
        while not done():
            if task.done():
                task.result()  # the sender's own error, if any
                raise AssertionError("the sender stopped before the condition held")
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout} s")
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await task


def _crash_after_send(argv: list[str] | None = None) -> None:
    """A sender that `os._exit`s right after Telegram accepted its first message."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--exit-code", type=int, default=17)
    args = parser.parse_args(argv)
    settings = Settings()  # the Bot API and the token from the environment, as `oddly send`
    engine = open_app_db(args.db)

    def die(_row: object) -> None:
        os._exit(args.exit_code)

    async def main() -> None:
        async with make_bot(settings, FAST) as bot:
            await Sender(Outbox(engine), bot, FAST, after_send=die).drain()

    asyncio.run(main())


if __name__ == "__main__":
    _crash_after_send()
