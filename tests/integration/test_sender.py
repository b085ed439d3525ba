"""The sender delivering the real outbox (SQLite app database) to the fake Bot API over HTTP:
delivery, Telegram's faults, rate limits, and the at-least-once guarantee across a crash."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import datetime
from itertools import pairwise
from pathlib import Path

import pytest
import sqlalchemy as sa

from oddly.alerts.outbox import Outbox
from oddly.appdb import open_app_db
from oddly.ports import free_port
from oddly.telegram.chart import line_chart_png
from oddly.telegram.fake_api import FakeBotApi, Fault
from oddly.telegram.message import render_alert, render_caption
from oddly.telegram.sender import Sender, SenderConfig, SenderConfigError, connect, make_bot
from tests.telegram_fakes import (
    FAST,
    TOKEN,
    make_alert,
    outbox_rows,
    price_history,
    queue_message,
    run_until,
    sender_settings,
)

REPO = Path(__file__).resolve().parents[2]
APP = "http://127.0.0.1:8501"


@pytest.fixture
def api() -> Iterator[FakeBotApi]:
    with FakeBotApi() as server:
        yield server


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/app.db"


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    engine = open_app_db(db_url)
    yield engine
    engine.dispose()


def sender_for(api: FakeBotApi, engine: sa.Engine, config: SenderConfig = FAST) -> Sender:
    return Sender(Outbox(engine), make_bot(sender_settings(api.base_url), config), config)


@pytest.fixture
async def sender(api: FakeBotApi, engine: sa.Engine) -> AsyncIterator[Sender]:
    s = sender_for(api, engine)
    async with s.bot:
        yield s


def sends(api: FakeBotApi, chat_id: int) -> list[datetime]:
    return [
        c.received_at for c in api.calls if c.method in ("sendMessage", "sendPhoto") and c.chat_id == chat_id
    ]


async def test_delivers_an_alert_and_its_chart(api: FakeBotApi, engine: sa.Engine, sender: Sender) -> None:
    alert = make_alert(event_name="Brighton & Hove v Chelsea")
    chart = line_chart_png(price_history({"pinnacle": [2.1, 1.85], "bet365": [2.15]}), "chart", 1.8)
    text_id = queue_message(engine, "42", render_alert(alert, APP))
    photo_id = queue_message(engine, "-1001", render_caption(alert, APP), photo=chart)

    stats = await sender.drain()

    assert (stats.sent, stats.retried, stats.dead) == (2, 0, 0)
    by_chat = {m.chat_id: m for m in api.messages}
    text, photo = by_chat[42], by_chat[-1001]
    assert text.text == render_alert(alert, APP) and text.parse_mode == "HTML" and not text.has_photo
    assert photo.photo == chart and photo.text == render_caption(alert, APP) and photo.parse_mode == "HTML"
    [send_message] = [c for c in api.calls if c.method == "sendMessage"]
    assert send_message.params["link_preview_options"] == {"is_disabled": True}
    rows = outbox_rows(engine)
    assert rows[text_id]["status"] == rows[photo_id]["status"] == "sent"
    assert rows[text_id]["telegram_message_id"] == text.message_id
    assert rows[photo_id]["telegram_message_id"] == photo.message_id


async def test_429_waits_retry_after_for_that_chat_only(
    api: FakeBotApi, engine: sa.Engine, sender: Sender
) -> None:
    api.inject("sendMessage", Fault.retry_after(2))
    limited = queue_message(engine, "42", "to the limited chat")
    queue_message(engine, "43", "to another chat")

    await run_until(sender, lambda: len(api.messages) == 2, timeout=10)

    first, retry = sends(api, 42)
    assert (retry - first).total_seconds() >= 2.0  # not one request earlier than Telegram asked
    [other] = sends(api, 43)
    assert other < retry  # the other chat was not held up by chat 42's flood control
    row = outbox_rows(engine)[limited]
    assert (row["status"], row["attempts"]) == ("sent", 2)
    assert [c.status for c in api.calls if c.chat_id == 42] == [429, 200]


async def test_5xx_then_success(api: FakeBotApi, engine: sa.Engine, sender: Sender) -> None:
    api.inject("sendMessage", Fault.http(502), times=2)
    row_id = queue_message(engine, "42", "after two bad gateways")

    await run_until(sender, lambda: len(api.messages) == 1, timeout=10)

    calls = sends(api, 42)
    assert [c.status for c in api.calls if c.method == "sendMessage"] == [502, 502, 200]
    # Backoff doubles: 0.3 s after the first failure, 0.6 s after the second.
    assert (calls[1] - calls[0]).total_seconds() >= 0.3
    assert (calls[2] - calls[1]).total_seconds() >= 0.6
    row = outbox_rows(engine)[row_id]
    assert (row["status"], row["attempts"]) == ("sent", 3) and "Bad Gateway" in row["last_error"]
    assert [m.text for m in api.messages] == ["after two bad gateways"]


async def test_a_hang_times_out_and_is_retried(api: FakeBotApi, engine: sa.Engine, sender: Sender) -> None:
    api.inject("sendPhoto", Fault.hang(10))
    row_id = queue_message(engine, "42", "chart after a hang", photo=b"\x89PNG-chart")
    config = replace(FAST, read_timeout=0.5, write_timeout=0.5, media_write_timeout=0.5)
    hurried = sender_for(api, engine, config)

    async with hurried.bot:
        await run_until(hurried, lambda: len(api.messages) == 1, timeout=10)

    assert [c.status for c in api.calls if c.method == "sendPhoto"] == [504, 200]
    row = outbox_rows(engine)[row_id]
    assert (row["status"], row["attempts"]) == ("sent", 2) and "TimedOut" in row["last_error"]
    assert api.messages[0].photo == b"\x89PNG-chart"


@pytest.mark.parametrize(
    ("fault", "reason"), [(Fault.chat_not_found(), "Chat not found"), (Fault.blocked(), "blocked")]
)
async def test_refused_for_good_is_dead_and_others_still_go(
    api: FakeBotApi,
    engine: sa.Engine,
    sender: Sender,
    fault: Fault,
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    api.inject("sendMessage", fault)
    dead = queue_message(engine, "404", "to a chat that is gone")
    fine = queue_message(engine, "42", "to a chat that is fine")

    stats = await sender.drain()

    assert (stats.sent, stats.dead, stats.retried) == (1, 1, 0)
    rows = outbox_rows(engine)
    assert rows[dead]["status"] == "dead" and reason in rows[dead]["last_error"]
    assert rows[fine]["status"] == "sent"
    assert len(sends(api, 404)) == 1  # never retried
    assert f"outbox {dead}" in caplog.text and reason in caplog.text


async def test_one_message_a_second_per_chat(api: FakeBotApi, engine: sa.Engine) -> None:
    for i in range(3):
        queue_message(engine, "42", f"message {i}")
    queue_message(engine, "43", "to another chat")
    paced = sender_for(api, engine, replace(FAST, per_chat_interval=0.4))

    async with paced.bot:
        await paced.drain()

    times = sends(api, 42)
    assert [m.text for m in api.messages if m.chat_id == 42] == ["message 0", "message 1", "message 2"]
    assert all((b - a).total_seconds() >= 0.4 for a, b in pairwise(times))
    assert sends(api, 43)[0] < times[1]


async def test_stopping_gives_back_what_was_not_sent(api: FakeBotApi, engine: sa.Engine) -> None:
    ids = [queue_message(engine, "42", f"message {i}") for i in range(4)]
    slow = sender_for(api, engine, replace(FAST, per_chat_interval=5.0))

    async with slow.bot:
        await run_until(slow, lambda: len(api.messages) == 1, timeout=10)

    rows = outbox_rows(engine)
    assert [rows[i]["status"] for i in ids] == ["sent", "pending", "pending", "pending"]
    assert all(rows[i]["next_attempt_at"] is not None for i in ids[1:])


def _env(api: FakeBotApi, db_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "ODDLY_APP_DATABASE_URL": db_url,
        "ODDLY_TELEGRAM_API_URL": api.base_url,
        "ODDLY_TELEGRAM_BOT_TOKEN": TOKEN,
    }


@pytest.mark.slow
def test_killed_between_send_and_acknowledge_loses_nothing(
    api: FakeBotApi, engine: sa.Engine, db_url: str
) -> None:
    texts = [f"alert {i}" for i in range(3)]
    ids = [queue_message(engine, "42", text) for text in texts]
    queue_message(engine, "43", "alert to another chat")
    texts.append("alert to another chat")

    crashed = subprocess.run(
        [sys.executable, "-m", "tests.telegram_fakes", "--db", db_url, "--exit-code", "17"],
        cwd=REPO,
        env=_env(api, db_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert crashed.returncode == 17, crashed.stderr
    # Telegram has the first message (and, since chats are sent to concurrently, perhaps another
    # chat's); the outbox knows of no delivery it has not recorded as sent.
    delivered = Counter(m.text for m in api.messages)
    assert delivered and all(n == 1 for n in delivered.values())
    before = outbox_rows(engine)
    unacknowledged = {row["text"] for row in before.values() if row["status"] == "sending"}
    acknowledged = {row["text"] for row in before.values() if row["status"] == "sent"}
    assert texts[0] in delivered and before[ids[0]]["status"] == "sending"
    assert set(delivered) <= unacknowledged | acknowledged  # claimed ones may not have gone out yet

    restarted = subprocess.run(
        [str(REPO / ".venv" / "bin" / "oddly"), "send", "--once", "--reclaim-after", "0", "--verbose"],
        cwd=REPO,
        env=_env(api, db_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert restarted.returncode == 0, restarted.stderr

    received = Counter(m.text for m in api.messages)
    assert set(received) == set(texts)  # none lost
    # a duplicate only of what Telegram accepted and the dead sender had not recorded as sent
    assert {t for t, n in received.items() if n > 1} == set(delivered) & unacknowledged
    assert max(received.values()) == 2
    assert {row["status"] for row in outbox_rows(engine).values()} == {"sent"}
    for output in (crashed.stdout, crashed.stderr, restarted.stdout, restarted.stderr):
        assert TOKEN not in output and TOKEN.split(":")[1] not in output
    assert "<token>" in restarted.stderr  # debug logging did try to print it, redacted
    assert f"sent {len(texts) - len(acknowledged)}" in restarted.stderr


@pytest.mark.slow
def test_a_restart_does_not_resend_what_was_delivered(
    api: FakeBotApi, engine: sa.Engine, db_url: str
) -> None:
    queue_message(engine, "42", "once only")
    for _ in range(2):
        run = subprocess.run(
            [str(REPO / ".venv" / "bin" / "oddly"), "send", "--once", "--reclaim-after", "0"],
            env=_env(api, db_url),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr
    assert [m.text for m in api.messages] == ["once only"]


@pytest.mark.slow
def test_the_sender_loop_delivers_as_messages_arrive_and_stops_on_sigterm(
    api: FakeBotApi, engine: sa.Engine, db_url: str
) -> None:
    proc = subprocess.Popen(
        [str(REPO / ".venv" / "bin" / "oddly"), "send", "--poll-seconds", "0.1"],
        env=_env(api, db_url),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.0)  # the sender is up and polling an empty outbox
        queue_message(engine, "42", "arrives while running")
        [message] = api.wait_for_messages(1, timeout=15)
        assert message.text == "arrives while running"
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=10)
        assert proc.returncode == 0, stderr
        assert "sent 1" in stderr and TOKEN not in stderr
    finally:
        if proc.poll() is None:
            proc.kill()


async def test_a_rejected_token_stops_the_sender_and_keeps_the_message(
    api: FakeBotApi, engine: sa.Engine, sender: Sender
) -> None:
    api.inject("sendMessage", Fault("api_error", 401, "Unauthorized"))
    row_id = queue_message(engine, "42", "kept for a sender with a good token")

    with pytest.raises(SenderConfigError, match="ODDLY_TELEGRAM_BOT_TOKEN") as raised:
        await sender.drain()

    assert TOKEN not in str(raised.value)
    row = outbox_rows(engine)[row_id]
    assert row["status"] == "pending" and TOKEN not in row["last_error"]


async def test_connect_refuses_a_bad_token_without_quoting_it() -> None:
    with FakeBotApi(token="42:the-right-one") as api:
        bot = make_bot(sender_settings(api.base_url))
        with pytest.raises(SenderConfigError) as raised:
            await connect(bot, asyncio.Event())
    assert TOKEN not in str(raised.value) and raised.value.__cause__ is None
    assert raised.value.__suppress_context__


async def test_connect_waits_for_an_unreachable_bot_api(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()  # nothing listens here until the fake starts on it
    bot = make_bot(sender_settings(f"http://127.0.0.1:{port}/bot"))
    stop = asyncio.Event()
    connecting = asyncio.create_task(connect(bot, stop, retry_seconds=0.2))
    await asyncio.sleep(0.5)
    assert not connecting.done() and "unreachable" in caplog.text and TOKEN not in caplog.text
    with FakeBotApi(port=port):
        assert await asyncio.wait_for(connecting, 5)
        await bot.shutdown()


class BusyOutbox(Outbox):
    """The real outbox, but the app database is locked for the first `busy` calls of each kind."""

    def __init__(self, engine: sa.Engine, busy: int) -> None:
        super().__init__(engine)
        self.left = {"claim_due": busy, "mark_sent": busy}

    def _busy(self, what: str) -> None:
        if self.left[what] > 0:
            self.left[what] -= 1
            raise sa.exc.OperationalError("statement", {}, Exception("database is locked"))

    def claim_due(self, limit: int, now: datetime):  # type: ignore[no-untyped-def]
        self._busy("claim_due")
        return super().claim_due(limit, now)

    def mark_sent(self, message_id: int, telegram_message_id: int | None, sent_at: datetime) -> None:
        self._busy("mark_sent")
        super().mark_sent(message_id, telegram_message_id, sent_at)


async def test_a_locked_app_database_delays_delivery_but_neither_stops_nor_repeats_it(
    api: FakeBotApi, engine: sa.Engine
) -> None:
    row_id = queue_message(engine, "42", "through a busy database")
    sender = Sender(BusyOutbox(engine, busy=2), make_bot(sender_settings(api.base_url), FAST), FAST)
    async with sender.bot:
        await run_until(sender, lambda: outbox_rows(engine)[row_id]["status"] == "sent", timeout=15)
    assert [m.text for m in api.messages] == ["through a busy database"]  # sent once, recorded once
