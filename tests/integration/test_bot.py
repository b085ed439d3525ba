"""`oddly bot` against the fake Telegram Bot API over real HTTP on 127.0.0.1: users' messages and
button presses go in through getUpdates, the bot's replies and edits are read back from the fake,
and what the bot stored is read from the (temporary SQLite) app database."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa

from oddly.alerts.subscriptions import Filters, QuietHours, Subscription, get_subscription
from oddly.appdb import open_app_db
from oddly.config import Settings
from oddly.matching.run import update_event_map
from oddly.model import PriceColumns, now_utc
from oddly.telegram import bot_queries
from oddly.telegram.bot import OddlyBot
from oddly.telegram.fake_api import FakeBotApi, ReceivedMessage
from oddly.warehouse.reader import MartsReader
from oddly.warehouse.store import FeedRunRecord, Warehouse
from tests.integration.test_dbt_project import dbt
from tests.telegram_fakes import TOKEN

T = TypeVar("T")
USER = 1001  # a private chat (chat id = user id)
OTHER = 1002
ADMIN = 9009
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# --- running the bot -----------------------------------------------------------------------------


class BotThread:
    """The bot's own event loop in a thread, as `oddly bot` runs it, so the test can block on the
    fake's records meanwhile."""

    def __init__(self, bot: OddlyBot) -> None:
        self.bot = bot
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="oddly-bot", daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await self.bot.serve(self._stop, self._ready.set)

        try:
            asyncio.run(main())
        except BaseException as exc:  # reported by start/stop
            self._error = exc
            self._ready.set()

    def start(self) -> BotThread:
        self._thread.start()
        if not self._ready.wait(20) or self._error is not None:
            raise RuntimeError(f"the bot did not start: {self._error!r}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(20)
        assert not self._thread.is_alive(), "the bot did not stop within 20 s"
        if self._error is not None:
            raise self._error


@pytest.fixture
def api() -> Iterator[FakeBotApi]:
    with FakeBotApi() as server:
        yield server


def bot_settings(api: FakeBotApi, home: Path, **changes: Any) -> Settings:
    return Settings(
        home=home,
        telegram_api_url=api.base_url,
        telegram_bot_token=TOKEN,
        app_url="http://app.test",
        **changes,
    )


@contextmanager
def running(settings: Settings, **options: Any) -> Iterator[OddlyBot]:
    bot = OddlyBot(settings, poll_timeout=1, **options)
    thread = BotThread(bot).start()
    try:
        yield bot
    finally:
        thread.stop()
        bot.engine.dispose()


@pytest.fixture
def settings(api: FakeBotApi, tmp_path: Path) -> Settings:
    return bot_settings(api, tmp_path)


@pytest.fixture
def bot(settings: Settings) -> Iterator[OddlyBot]:
    with running(settings, mute_check_seconds=0.1) as oddly_bot:
        yield oddly_bot


# --- talking to it -------------------------------------------------------------------------------


def wait_for(condition: Callable[[], T], what: str, timeout: float = 10.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def to_chat(api: FakeBotApi, chat_id: int) -> list[ReceivedMessage]:
    return [m for m in api.messages if m.chat_id == chat_id]


def say(api: FakeBotApi, chat_id: int, text: str, replies: int = 1) -> list[ReceivedMessage]:
    """The user writes `text`; the bot's `replies` new messages to the chat."""
    before = len(to_chat(api, chat_id))
    api.push_message(chat_id, text)
    wait_for(lambda: len(to_chat(api, chat_id)) >= before + replies, f"{replies} replies to {text!r}")
    return to_chat(api, chat_id)[before:]


def press(api: FakeBotApi, chat_id: int, message: ReceivedMessage, label: str) -> ReceivedMessage:
    """The user presses the button `label` (✅ ignored) under `message`; the message after the bot
    answered the press (edited in place)."""
    edited, _ = press_data(api, chat_id, message.message_id, button(message, label))
    assert edited is not None, f"message {message.message_id} is gone"
    return edited


def press_data(
    api: FakeBotApi, chat_id: int, message_id: int, data: str
) -> tuple[ReceivedMessage | None, dict[str, Any]]:
    answers = len(api.callback_answers)
    api.push_callback(chat_id, data, message_id)
    wait_for(lambda: len(api.callback_answers) > answers, f"the answer to button {data!r}")
    answer = api.callback_answers[answers]
    return next((m for m in api.messages if m.message_id == message_id), None), answer


def labels(message: ReceivedMessage) -> list[str]:
    rows = (message.reply_markup or {}).get("inline_keyboard", [])
    return [b["text"] for row in rows for b in row]


def button(message: ReceivedMessage, label: str) -> str:
    rows = (message.reply_markup or {}).get("inline_keyboard", [])
    for row in rows:
        for b in row:
            if b["text"].removeprefix("✅ ") == label:
                data = b["callback_data"]
                assert len(data.encode()) <= 64
                return str(data)
    raise AssertionError(f"no button {label!r} under message {message.message_id}: {labels(message)}")


def stored(settings: Settings, chat_id: int) -> Subscription | None:
    engine = open_app_db(settings)
    try:
        with engine.connect() as conn:
            return get_subscription(conn, chat_id)
    finally:
        engine.dispose()


def walk_to(api: FakeBotApi, chat_id: int, menu: ReceivedMessage, title: str) -> ReceivedMessage:
    """Press Done until the menu shows step `title`."""
    for _ in range(12):
        if f"· {title}</b>" in (menu.text or ""):
            return menu
        menu = press(api, chat_id, menu, "Done ✔")
    raise AssertionError(f"never reached step {title!r}")


# --- registering and access ----------------------------------------------------------------------


def test_start_registers_the_chat_and_greets(api: FakeBotApi, settings: Settings, bot: OddlyBot) -> None:
    assert stored(settings, USER) is None
    (greeting,) = say(api, USER, "/start")
    sub = stored(settings, USER)
    assert sub is not None and not sub.muted and sub.filters == Filters()
    assert "Welcome to Oddly Odds" in (greeting.text or "") and "/subscribe" in (greeting.text or "")
    (again,) = say(api, USER, "/start")
    assert "already subscribed" in (again.text or "")
    assert {c["command"] for c in api.commands} >= {"start", "subscribe", "settings", "top", "event"}


def test_a_chat_off_the_allow_list_is_refused_and_not_registered(api: FakeBotApi, tmp_path: Path) -> None:
    settings = bot_settings(api, tmp_path, telegram_allowed_chats=[USER], telegram_admin_chats=[ADMIN])
    with running(settings):
        (refusal,) = say(api, OTHER, "/start")
        assert "private" in (refusal.text or "") and str(OTHER) in (refusal.text or "")
        _, answer = press_data(api, OTHER, 12345, "m:n")
        assert answer["show_alert"] in (True, "true") and "private" in answer["text"]
        (welcome,) = say(api, USER, "/start")
        (admin_help,) = say(api, ADMIN, "/help")
        (status,) = say(api, ADMIN, "/status")
        (not_admin,) = say(api, USER, "/status")
    assert stored(settings, OTHER) is None
    assert "Welcome" in (welcome.text or "") and stored(settings, USER) is not None
    assert "/status" in (admin_help.text or "")
    assert "Chats registered: 1 (0 muted)" in (status.text or "") and "Allowed: 1 chats" in (
        status.text or ""
    )
    assert "for the bot's admins" in (not_admin.text or "")
    assert len(to_chat(api, OTHER)) == 1, "a refused chat gets the refusal and nothing else"


# --- menus ---------------------------------------------------------------------------------------


def test_subscribe_walks_every_step_and_saves_at_the_end(
    api: FakeBotApi, settings: Settings, bot: OddlyBot
) -> None:
    say(api, USER, "/start")
    (menu,) = say(api, USER, "/subscribe")
    assert "Step 1 of 10 · Sports" in (menu.text or "") and "No market data published yet" in (
        menu.text or ""
    )
    menu = walk_to(api, USER, menu, "Alert types")
    menu = press(api, USER, menu, "Sharp drop")
    menu = press(api, USER, menu, "Value bet")
    menu = press(api, USER, menu, "Steam move")
    menu = press(api, USER, menu, "Steam move")  # toggled off again
    assert "✅ Sharp drop" in labels(menu) and "✅ Value bet" in labels(menu) and "Steam move" in labels(menu)
    menu = press(api, USER, menu, "Done ✔")
    menu = press(api, USER, menu, "8 %")
    assert "✅ 8 %" in labels(menu)
    menu = press(api, USER, menu, "Done ✔")
    assert "Minimum edge" in (menu.text or "")
    halfway = stored(settings, USER)
    assert halfway is not None and halfway.filters == Filters(), "stored before Save"
    (bad,) = say(api, USER, "lots")
    assert "not a number" in (bad.text or "")
    (menu,) = say(api, USER, "2.5")  # a typed value moves the menu below it, on the next step
    assert "Severity" in (menu.text or "")
    menu = press(api, USER, menu, "🔴 Red only")
    menu = press(api, USER, menu, "Done ✔")
    menu = press(api, USER, menu, "22:00–07:00")
    menu = press(api, USER, menu, "Done ✔")
    menu = press(api, USER, menu, "2 h")
    menu = press(api, USER, menu, "Done ✔")
    assert "Alert limit" in (menu.text or "") and "✅ 30 an hour" in labels(menu)  # the default
    menu = press(api, USER, menu, "10 an hour")
    menu = press(api, USER, menu, "Done ✔")
    assert "Your alerts" in (menu.text or "") and "Save these settings?" in (menu.text or "")
    menu = press(api, USER, menu, "💾 Save")
    assert "Saved" in (menu.text or "") and not labels(menu)
    sub = stored(settings, USER)
    assert sub is not None and sub.filters == Filters(
        alert_types=["sharp_drop", "value"],
        min_drop_pct=8.0,
        min_edge_pct=2.5,
        min_severity="red",
        quiet_hours=QuietHours(start=clock(22), end=clock(7)),
        digest_interval_minutes=120,
        max_alerts_per_hour=10,
    )


def test_an_abandoned_or_cancelled_menu_changes_nothing_and_old_menus_expire(
    api: FakeBotApi, settings: Settings, bot: OddlyBot
) -> None:
    say(api, USER, "/start")
    (first,) = say(api, USER, "/subscribe")
    first = walk_to(api, USER, first, "Alert types")
    first = press(api, USER, first, "Arbitrage")
    stale_done = button(first, "Done ✔")
    (second,) = say(api, USER, "/subscribe")  # the first is abandoned halfway
    assert not labels(first), "the abandoned menu kept its buttons"
    _, answer = press_data(api, USER, first.message_id, stale_done)  # e.g. from a client not yet updated
    assert answer["text"].startswith("This menu has expired")
    second = walk_to(api, USER, second, "Alert types")
    assert "✅ Arbitrage" not in labels(second), "the abandoned draft leaked into the new menu"
    second = press(api, USER, second, "Arbitrage")
    second = press(api, USER, second, "✖ Cancel")
    assert "unchanged" in (second.text or "")
    sub = stored(settings, USER)
    assert sub is not None and sub.filters == Filters()


def test_settings_edits_one_field_directly(api: FakeBotApi, settings: Settings, bot: OddlyBot) -> None:
    say(api, USER, "/start")
    (menu,) = say(api, USER, "/settings")
    assert "Your settings" in (menu.text or "") and "Digest: every 1 h" in (menu.text or "")
    menu = press(api, USER, menu, "✏️ Digest")
    menu = press(api, USER, menu, "30 min")
    menu = press(api, USER, menu, "◀ Back")  # Back discards the edit
    assert "Digest: every 1 h" in (menu.text or "")
    assert stored(settings, USER).filters.digest_interval_minutes == 60  # type: ignore[union-attr]
    menu = press(api, USER, menu, "✏️ Digest")
    menu = press(api, USER, menu, "30 min")
    menu = press(api, USER, menu, "Done ✔")
    assert "Your settings" in (menu.text or "") and "Digest: every 30 min" in (menu.text or "")
    assert stored(settings, USER).filters == Filters(digest_interval_minutes=30)  # type: ignore[union-attr]
    menu = press(api, USER, menu, "✏️ Quiet hours")
    (menu,) = say(api, USER, "23:30-06:00 Europe/Berlin")
    assert "Quiet hours saved" in (menu.text or "")
    assert stored(settings, USER).filters.quiet_hours == QuietHours(  # type: ignore[union-attr]
        start=clock(23, 30), end=clock(6), timezone="Europe/Berlin"
    )
    menu = press(api, USER, menu, "Close")
    assert "closed" in (menu.text or "") and not labels(menu)


# --- mute ----------------------------------------------------------------------------------------


def test_mute_and_unmute_flip_the_stored_flag_and_timed_mutes_end(
    api: FakeBotApi, settings: Settings, bot: OddlyBot
) -> None:
    (not_yet,) = say(api, USER, "/mute")
    assert "/start first" in (not_yet.text or "") and stored(settings, USER) is None
    say(api, USER, "/start")
    (muted,) = say(api, USER, "/mute")
    assert stored(settings, USER).muted and "until you send /unmute" in (muted.text or "")  # type: ignore[union-attr]
    (unmuted,) = say(api, USER, "/unmute")
    assert not stored(settings, USER).muted and "on again" in (unmuted.text or "")  # type: ignore[union-attr]
    (bad,) = say(api, USER, "/mute abc")
    assert "not a duration" in (bad.text or "") and not stored(settings, USER).muted  # type: ignore[union-attr]
    (timed,) = say(api, USER, "/mute 2h")
    assert "Muted for 2 h" in (timed.text or "") and stored(settings, USER).muted  # type: ignore[union-attr]
    engine = open_app_db(settings)
    with engine.begin() as conn:
        until = bot_queries.mute_timer(conn, USER)
        assert until is not None and timedelta(minutes=119) < until - datetime.now(UTC) <= timedelta(hours=2)
        bot_queries.set_mute_timer(conn, USER, datetime.now(UTC) - timedelta(seconds=1))  # time passes
    engine.dispose()
    wait_for(
        lambda: [m for m in to_chat(api, USER) if "mute has ended" in (m.text or "")], "the end of the mute"
    )
    assert not stored(settings, USER).muted  # type: ignore[union-attr]


# --- help, mistakes, errors ----------------------------------------------------------------------


def test_unknown_commands_and_malformed_arguments_get_help(api: FakeBotApi, bot: OddlyBot) -> None:
    (unknown,) = say(api, USER, "/frobnicate now")
    assert "I don't know /frobnicate" in (unknown.text or "") and "/help" in (unknown.text or "")
    (chatter,) = say(api, USER, "hello bot")
    assert "/help" in (chatter.text or "")
    (no_id,) = say(api, USER, "/event")
    assert "Which event?" in (no_id.text or "") and "/event &lt;id&gt;" in (no_id.text or "")
    (bad_id,) = say(api, USER, "/event <script>")
    assert "An event id is one word" in (bad_id.text or "")
    (not_ready,) = say(api, USER, "/event abc123")
    assert "No market data yet" in (not_ready.text or "")
    (top,) = say(api, USER, "/top")
    assert "No market data yet" in (top.text or "")
    (helped,) = say(api, USER, "/help")
    assert "/subscribe" in (helped.text or "") and "/status" not in (helped.text or "")
    group = -500
    api.push_message(group, "/frobnicate@other_bot")  # another bot's command: not ours to answer
    (group_help,) = say(api, group, "/help@oddly_fake_bot")  # updates are handled in order
    assert "/subscribe" in (group_help.text or "") and len(to_chat(api, group)) == 1


def test_an_error_in_a_handler_is_logged_and_answered_with_an_apology(
    api: FakeBotApi, bot: OddlyBot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the marts exploded")

    monkeypatch.setattr(bot.reader, "query", broken)
    (sorry,) = say(api, USER, "/top")
    assert (sorry.text or "").startswith("Sorry, something went wrong")
    assert "Traceback" not in (sorry.text or "") and "exploded" not in (sorry.text or "")
    logged = wait_for(lambda: [r for r in caplog.records if "handler failed" in r.getMessage()], "the log")
    assert "the marts exploded" in logged[0].getMessage() and TOKEN not in caplog.text


@pytest.mark.slow
def test_oddly_bot_command_takes_the_token_from_the_environment_and_never_logs_it(tmp_path: Path) -> None:
    with FakeBotApi(token=TOKEN) as api:  # answers 401 to any other token
        env = {
            **os.environ,
            "ODDLY_HOME": str(tmp_path),
            "ODDLY_TELEGRAM_API_URL": api.base_url,
            "ODDLY_TELEGRAM_BOT_TOKEN": TOKEN,
            "ODDLY_TELEGRAM_ALLOWED_CHATS": f"{USER}, {ADMIN}",
        }
        oddly = Path(sys.executable).parent / "oddly"
        process = subprocess.Popen(
            [str(oddly), "bot", "--verbose"],
            env=env,
            stderr=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            wait_for(lambda: any(c.method == "getUpdates" for c in api.calls), "the bot to poll", 60)
            (reply,) = say(api, USER, "/start")
            (refusal,) = say(api, OTHER, "/start")
        finally:
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err[-2000:]
    assert "Welcome" in (reply.text or "") and "private" in (refusal.text or "")
    assert TOKEN not in err and TOKEN not in out and TOKEN.split(":")[1] not in err
    assert "2 allowed chats" in err
    assert stored(Settings(home=tmp_path), USER) is not None


# --- with marts ----------------------------------------------------------------------------------


def write_prices(
    warehouse: Warehouse, run_id: str, at: datetime, prices: dict[tuple[str, ...], tuple[float, ...]]
) -> None:
    kick_off = (now_utc() + timedelta(hours=3)).replace(microsecond=0).timestamp()
    rows = [
        {
            "bookmaker": book,
            "source_event_id": event,
            "sport": "football",
            "league": "Premier League",
            "home": home,
            "away": away,
            "starts_at": kick_off,
            "market": "1x2",
            "outcome": outcome,
            "price": price,
        }
        for (book, event, home, away), triple in prices.items()
        for outcome, price in zip(("home", "draw", "away"), triple, strict=True)
    ]
    run = FeedRunRecord(
        run_id, "f", "x", "ok", at, at, 1, len(rows), 0, 0, 0, "{}", 0.0, 0.0, 0.0, "ok", None
    )
    warehouse.write_run(PriceColumns.from_records(rows).to_table(at, run_id), [], run)


@pytest.fixture(scope="module")
def marts_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse with two runs 19 minutes apart (three prices dropped), built and published by
    `oddly dbt build`, once for the module."""
    home = tmp_path_factory.mktemp("bot-marts")
    settings = Settings(home=home)
    warehouse = Warehouse.from_settings(settings)
    now = now_utc()
    first = {
        ("pinnacle", "1", "Manchester United", "Tottenham Hotspur"): (2.0, 4.0, 3.2),
        ("22bet", "77", "Man Utd", "Spurs"): (1.95, 3.8, 3.9),
        ("22bet", "78", "Chelsea", "Arsenal"): (2.5, 3.4, 2.8),
    }
    later = {
        ("pinnacle", "1", "Manchester United", "Tottenham Hotspur"): (1.8, 4.0, 3.2),
        ("22bet", "77", "Man Utd", "Spurs"): (1.7, 3.8, 3.9),
        ("22bet", "78", "Chelsea", "Arsenal"): (2.5, 3.4, 2.6),
    }
    write_prices(warehouse, "r1", now - timedelta(minutes=20), first)
    write_prices(warehouse, "r2", now - timedelta(minutes=1), later)
    update_event_map(warehouse)
    warehouse.dispose()
    built = dbt(settings, "build")
    assert built.returncode == 0, built.stdout[-3000:]
    return home


@pytest.mark.slow
def test_top_event_and_menus_read_the_marts(api: FakeBotApi, marts_home: Path) -> None:
    settings = bot_settings(api, marts_home)
    events = MartsReader.from_settings(settings).query(
        "select canonical_event_id, bookmaker_count from marts.dim_events order by bookmaker_count desc"
    )
    manchester = str(events["canonical_event_id"].iloc[0])
    with running(settings):
        (top,) = say(api, USER, "/top")
        (chart,) = say(api, USER, f"/event {manchester}")
        (unknown,) = say(api, USER, "/event no-such-event")
        (menu,) = say(api, USER, "/subscribe")
        menu = press(api, USER, menu, "football")
        menu = press(api, USER, menu, "Done ✔")
        leagues = labels(menu)
        menu = press(api, USER, menu, "Premier League")
        menu = press(api, USER, menu, "Done ✔")
        books = labels(menu)

    text = top.text or ""
    drops = text.split("Best value")[0].splitlines()[1:]
    assert [line.split(". ", 1)[0] for line in drops[:3]] == ["1", "2", "3"]
    assert "@ 22bet 1.95 → <b>1.70</b> (-12.8 %)" in drops[0] and "Manchester United v Tottenham" in drops[0]
    assert "@ pinnacle 2.00 → <b>1.80</b> (-10.0 %)" in drops[1]
    assert "Chelsea v Arsenal" in drops[2] and "Match result: Arsenal @ 22bet 2.80 → <b>2.60</b>" in drops[2]
    assert f'href="http://app.test/event?event_id={manchester}"' in text
    value = text.split("Best value")[1]
    found = re.search(
        r"Tottenham Hotspur @ 22bet <b>3\.90</b>, fair (\d+\.\d+) \(edge \+(\d+\.\d) %\)", value
    )
    assert found is not None, value
    assert float(found[2]) == pytest.approx(100 * (3.9 / float(found[1]) - 1), abs=0.2)

    assert chart.method == "sendPhoto" and chart.photo is not None and chart.photo.startswith(PNG_MAGIC)
    caption = chart.text or ""
    assert "Manchester United v Tottenham Hotspur" in caption and "Match result" in caption
    assert "Manchester United: ★ <b>pinnacle 1.80</b> · 22bet 1.70" in caption
    assert "Tottenham Hotspur: ★ <b>22bet 3.90</b> · pinnacle 3.20" in caption
    assert "I know no current event with id <code>no-such-event</code>" in (unknown.text or "")

    assert "Premier League" in leagues and {"22bet", "pinnacle"} <= set(books)
    assert "✅ Premier League" not in books  # the next step, not the leagues again


def test_mute_timer_round_trip_is_in_utc(tmp_path: Path) -> None:
    engine = open_app_db(f"sqlite:///{tmp_path}/app.db")
    now = datetime(2025, 4, 12, 12, 0, tzinfo=UTC)
    with engine.begin() as conn:
        bot_queries.set_mute_timer(conn, 5, now + timedelta(hours=2))
        bot_queries.set_mute_timer(conn, 6, now - timedelta(minutes=1))
        assert bot_queries.mute_timer(conn, 5) == now + timedelta(hours=2)
        assert bot_queries.due_mute_timers(conn, now) == ["6"]
        assert conn.execute(sa.select(sa.func.count()).select_from(bot_queries.mute_timers)).scalar_one() == 2
    engine.dispose()
