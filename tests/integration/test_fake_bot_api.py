"""The fake Telegram Bot API, driven by python-telegram-bot over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TimedOut
from telegram.request import HTTPXRequest

from oddly.ports import free_port
from oddly.telegram.fake_api import FakeBotApi, Fault
from tests.telegram_fakes import TOKEN

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def api() -> Iterator[FakeBotApi]:
    with FakeBotApi() as server:
        yield server


def bot_for(api: FakeBotApi, token: str = TOKEN, read_timeout: float = 5.0) -> Bot:
    return Bot(token, base_url=api.base_url, request=HTTPXRequest(read_timeout=read_timeout))


async def test_records_messages_and_photos(api: FakeBotApi) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Mute", callback_data="mute")]])
    async with bot_for(api) as bot:
        me = await bot.get_me()
        text = await bot.send_message(42, "<b>Red</b> &amp; bold", parse_mode="HTML", reply_markup=keyboard)
        photo = await bot.send_photo(-100123, photo=b"\x89PNG-bytes", caption="chart", parse_mode="HTML")
    assert me.is_bot and me.username == "oddly_fake_bot"
    first, second = api.messages
    assert (first.message_id, first.chat_id, first.text, first.parse_mode) == (
        text.message_id,
        42,
        "<b>Red</b> &amp; bold",
        "HTML",
    )
    assert first.reply_markup == {"inline_keyboard": [[{"text": "Mute", "callback_data": "mute"}]]}
    assert not first.has_photo
    assert second.photo == b"\x89PNG-bytes" and second.text == "chart" and second.chat_id == -100123
    assert photo.photo[0].file_size == len(b"\x89PNG-bytes") and photo.caption == "chart"
    assert first.received_at <= second.received_at


async def test_page_and_json_list_newest_first(api: FakeBotApi) -> None:
    async with bot_for(api) as bot:
        await bot.send_message(1, 'old <a href="http://x/?a=1&amp;b=2">link</a>', parse_mode="HTML")
        await bot.send_message(1, "<script>alert(1)</script>")  # no parse mode: shown as text
        await bot.send_photo(1, photo=b"\x89PNG-chart", caption="<b>new</b>", parse_mode="HTML")
    async with httpx.AsyncClient(base_url=api.url) as client:
        listed = (await client.get("/messages.json")).json()
        page = (await client.get("/")).text
        picture = await client.get(listed[0]["photo_url"])
    assert [m["text"] for m in listed] == [
        "<b>new</b>",
        "<script>alert(1)</script>",
        'old <a href="http://x/?a=1&amp;b=2">link</a>',
    ]
    assert listed[0]["has_photo"] and picture.content == b"\x89PNG-chart"
    assert (
        page.index("<b>new</b>")
        < page.index("&lt;script&gt;")
        < page.index('<a href="http://x/?a=1&amp;b=2">')
    )
    assert "<script>" not in page and f'<img src="{listed[0]["photo_url"]}"' in page


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.retry_after(3), RetryAfter),
        (Fault.http(502), NetworkError),
        (Fault.chat_not_found(), BadRequest),
        (Fault.blocked(), Forbidden),
    ],
)
async def test_faults_reach_the_client_as_telegram_errors(
    api: FakeBotApi, fault: Fault, error: type[Exception]
) -> None:
    api.inject("sendMessage", fault, times=2)
    async with bot_for(api) as bot:
        for _ in range(2):
            with pytest.raises(error) as raised:
                await bot.send_message(7, "x")
        await bot.send_message(7, "third time")  # the fault was for two calls only
    if isinstance(raised.value, RetryAfter):
        assert "Retry in 3 seconds" in str(raised.value)
    assert [m.text for m in api.messages] == ["third time"]
    assert [c.status for c in api.calls if c.method == "sendMessage"] == [fault.status, fault.status, 200]


async def test_a_hang_times_out_the_client_and_records_nothing(api: FakeBotApi) -> None:
    api.inject("sendMessage", Fault.hang(5))
    async with bot_for(api, read_timeout=0.5) as bot:
        started = time.monotonic()
        with pytest.raises(TimedOut):
            await bot.send_message(7, "lost in the hang")
        assert time.monotonic() - started < 3
    assert api.messages == []


async def test_faults_can_be_queued_over_http(api: FakeBotApi) -> None:
    async with httpx.AsyncClient(base_url=api.url) as client:
        answer = await client.post("/_fake/faults", json={"method": "sendPhoto", "kind": "blocked"})
        bad = await client.post("/_fake/faults", json={"method": "sendPhoto", "kind": "nonsense"})
    assert answer.status_code == 200 and bad.status_code == 400 and "unknown fault kind" in bad.text
    async with bot_for(api) as bot:
        with pytest.raises(Forbidden, match="blocked"):
            await bot.send_photo(7, photo=b"png")
        async with httpx.AsyncClient(base_url=api.url) as client:
            pushed = (await client.post("/_fake/updates", json={"chat_id": 5, "text": "/help"})).json()
            await client.post("/_fake/updates", json={"chat_id": 5, "callback_data": "menu:back"})
        first, second = await bot.get_updates(timeout=1)
        assert first.update_id == pushed["update_id"] and first.message.text == "/help"
        assert second.callback_query.data == "menu:back" and second.callback_query.from_user.id == 5
        async with httpx.AsyncClient(base_url=api.url) as client:
            await client.post("/_fake/reset")
            assert (await client.get("/_fake/calls")).json() == []
        assert api.pending_updates() == 0


async def test_long_poll_wakes_on_a_pushed_update_and_offset_confirms(api: FakeBotApi) -> None:
    async with bot_for(api) as bot:
        started = time.monotonic()
        poll = asyncio.create_task(bot.get_updates(timeout=5))
        await asyncio.sleep(0.3)
        api.push_message(42, "/subscribe football")
        updates = await poll
        assert time.monotonic() - started < 2  # woken by the update, not the 5 s timeout
        [update] = updates
        assert update.message.text == "/subscribe football" and update.effective_chat.id == 42
        assert update.message.entities[0].type == "bot_command" and update.message.entities[0].length == 10
        assert await bot.get_updates(offset=update.update_id + 1, timeout=0) == ()
        assert api.pending_updates() == 0


async def test_callback_queries_and_edits(api: FakeBotApi) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Football", callback_data="sport:football")]])
    async with bot_for(api) as bot:
        menu = await bot.send_message(42, "Pick a sport", reply_markup=keyboard)
        api.push_callback(42, "sport:football")
        [update] = await bot.get_updates(timeout=1)
        query = update.callback_query
        assert query.data == "sport:football" and query.message.message_id == menu.message_id
        assert await bot.answer_callback_query(query.id, text="Saved")
        await bot.edit_message_text("Football ✓", chat_id=42, message_id=menu.message_id)
        await bot.edit_message_reply_markup(42, menu.message_id, reply_markup=keyboard)
        await bot.set_my_commands([("start", "Register this chat")])
        assert await bot.delete_webhook()
        with pytest.raises(BadRequest, match="not found"):
            await bot.edit_message_text("nope", chat_id=42, message_id=999)
    [message] = api.messages
    assert message.text == "Football ✓" and message.edited_at is not None
    assert message.reply_markup == {
        "inline_keyboard": [[{"text": "Football", "callback_data": "sport:football"}]]
    }
    assert api.callback_answers == [{"callback_query_id": query.id, "text": "Saved"}]
    assert api.commands == [{"command": "start", "description": "Register this chat"}]


async def test_a_fixed_token_rejects_others() -> None:
    with FakeBotApi(token=TOKEN) as api:
        async with bot_for(api) as bot:
            assert (await bot.get_me()).is_bot
        with pytest.raises(InvalidToken):
            async with bot_for(api, token="999:wrong") as bot:
                pass


def test_stops_promptly_even_while_a_request_hangs() -> None:
    api = FakeBotApi().start()
    api.inject("getMe", Fault.hang(30))
    hanging = subprocess.Popen(
        [sys.executable, "-c", f"import httpx; httpx.post('{api.base_url}x/getMe', timeout=60)"],
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not api.calls and time.monotonic() < deadline:
            time.sleep(0.05)
        started = time.monotonic()
        api.stop()
        assert time.monotonic() - started < 5
        with pytest.raises(OSError), socket.create_connection(("127.0.0.1", api.port), timeout=1):
            pass
    finally:
        hanging.kill()
        hanging.wait()


@pytest.mark.slow
def test_cli_serves_and_prints_the_base_url() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [str(REPO / ".venv" / "bin" / "oddly"), "fake-telegram", "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        assert f"http://127.0.0.1:{port}/" in lines[0]
        assert lines[1].strip() == f"set ODDLY_TELEGRAM_API_URL=http://127.0.0.1:{port}/bot"
        me = httpx.get(f"http://127.0.0.1:{port}/bot{TOKEN}/getMe", timeout=5).json()
        assert me["ok"] and me["result"]["is_bot"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
