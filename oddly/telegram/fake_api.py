"""A fake Telegram Bot API on 127.0.0.1: enough of the real one for python-telegram-bot pointed at
it with `base_url`, so the demo runs without a token and the tests exercise real HTTP.

It records every message it accepts (with the wall-clock time it arrived, which the latency
benchmark measures against) and shows them on a small page at `/` (`/messages.json` for
programs). Tests queue faults for the next calls of a method (429 with retry_after, a 5xx, a hang,
"chat not found", "bot was blocked") and push user messages and button presses into the
`getUpdates` queue, either in-process (`FakeBotApi` methods) or over HTTP (`/_fake/...`).

Implemented: getMe, sendMessage, sendPhoto, getUpdates (long poll), answerCallbackQuery,
editMessageText, editMessageReplyMarkup, setMyCommands, deleteWebhook, sendChatAction,
deleteMessage. Any token is accepted unless one is given; tokens are never stored or logged.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

MAX_MESSAGES = 5000  # oldest dropped beyond this, photos with them: a demo runs for hours
BOT_USER = {"id": 7000000001, "is_bot": True, "first_name": "Oddly Odds (fake)", "username": "oddly_fake_bot"}
_JSON_PARAMS = {"reply_markup", "link_preview_options", "allowed_updates", "commands", "scope", "entities"}
_INT_PARAMS = {"offset", "limit", "timeout", "message_id", "cache_time"}


@dataclass(frozen=True)
class Fault:
    """What the fake answers instead of the real thing, for one call."""

    kind: str  # "retry_after" | "http" | "hang" | "api_error"
    status: int = 0
    description: str = ""
    seconds: float = 0.0

    @classmethod
    def retry_after(cls, seconds: int) -> Fault:
        return cls("retry_after", 429, f"Too Many Requests: retry after {seconds}", float(seconds))

    @classmethod
    def http(cls, status: int = 502) -> Fault:
        """A server error (5xx) for one call."""
        return cls("http", status, "Bad Gateway" if status == 502 else f"Server error {status}")

    @classmethod
    def hang(cls, seconds: float) -> Fault:
        """No answer for `seconds` (the client times out first), then a 504; nothing recorded."""
        return cls("hang", 504, "Gateway Timeout", seconds)

    @classmethod
    def chat_not_found(cls) -> Fault:
        return cls("api_error", 400, "Bad Request: chat not found")

    @classmethod
    def blocked(cls) -> Fault:
        return cls("api_error", 403, "Forbidden: bot was blocked by the user")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fault:
        kind = data.get("kind")
        makers: dict[str, Callable[[], Fault]] = {
            "retry_after": lambda: cls.retry_after(int(data.get("seconds", 1))),
            "http": lambda: cls.http(int(data.get("status", 502))),
            "hang": lambda: cls.hang(float(data.get("seconds", 30))),
            "chat_not_found": cls.chat_not_found,
            "blocked": cls.blocked,
        }
        if kind not in makers:
            raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(makers)}")
        return makers[kind]()


@dataclass
class ReceivedMessage:
    """A message the fake accepted from the bot (sendMessage or sendPhoto)."""

    message_id: int
    chat_id: int | str
    method: str
    text: str | None
    parse_mode: str | None
    photo: bytes | None
    reply_markup: dict[str, Any] | None
    received_at: datetime
    edited_at: datetime | None = None

    @property
    def has_photo(self) -> bool:
        return self.photo is not None

    def as_json(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "chat_id": self.chat_id,
            "method": self.method,
            "text": self.text,
            "parse_mode": self.parse_mode,
            "has_photo": self.has_photo,
            "photo_url": f"/photos/{self.message_id}.png" if self.photo is not None else None,
            "reply_markup": self.reply_markup,
            "received_at": self.received_at.isoformat(),
            "edited_at": self.edited_at.isoformat() if self.edited_at else None,
        }


@dataclass(frozen=True)
class Call:
    """One Bot API request, answered normally or by a fault."""

    method: str
    chat_id: int | str | None
    received_at: datetime
    status: int
    params: dict[str, Any] = field(default_factory=dict)


class FakeBotApi:
    """The server. `with FakeBotApi() as api:` runs it on a free port in a background thread;
    `await api.serve()` runs it in the current event loop (the CLI)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, token: str | None = None) -> None:
        self.host = host
        self.port = port
        self._token = token
        self._lock = threading.Lock()
        self._messages: deque[ReceivedMessage] = deque(maxlen=MAX_MESSAGES)
        self._calls: list[Call] = []
        self._faults: dict[str, deque[Fault]] = {}
        self._updates: list[dict[str, Any]] = []
        self._next_update_id = 1
        self._next_message_id = 1
        self.commands: list[dict[str, Any]] = []
        self.callback_answers: list[dict[str, Any]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # --- addresses ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The messages page."""
        return f"http://{self.host}:{self.port}/"

    @property
    def base_url(self) -> str:
        """What python-telegram-bot's `Bot(base_url=...)` / ODDLY_TELEGRAM_API_URL takes."""
        return f"http://{self.host}:{self.port}/bot"

    # --- running -----------------------------------------------------------------------------

    async def serve(self, on_ready: Callable[[], None] | None = None) -> None:
        """Serve until `stop()` (or cancellation)."""
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        # No access log: the request path carries the bot token.
        runner = web.AppRunner(self._app(), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
            self.port = int(runner.addresses[0][1])
            if on_ready:
                on_ready()
            await self._stop.wait()
        finally:
            await runner.cleanup()

    def start(self, timeout: float = 10.0) -> FakeBotApi:
        """Run in a background thread; returns once it accepts connections."""

        def run() -> None:
            try:
                asyncio.run(self.serve(self._ready.set))
            except BaseException as exc:  # reported to the starting thread
                self._error = exc
                self._ready.set()

        self._thread = threading.Thread(target=run, name="fake-telegram", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout) or self._error is not None:
            raise RuntimeError(f"fake Bot API did not start on {self.host}:{self.port}: {self._error}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> FakeBotApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- test hooks --------------------------------------------------------------------------

    def inject(self, method: str, fault: Fault, times: int = 1) -> None:
        """Answer the next `times` calls of `method` (e.g. "sendMessage") with `fault`."""
        with self._lock:
            self._faults.setdefault(method.lower(), deque()).extend([fault] * times)

    def push_message(self, chat_id: int, text: str, user_id: int | None = None) -> int:
        """A user writes `text` in `chat_id` (commands get their bot_command entity); the update id."""
        now = datetime.now(UTC)
        with self._lock:
            message = {
                "message_id": self._new_message_id(),
                "date": int(now.timestamp()),
                "chat": _chat(chat_id),
                "from": _user(user_id or chat_id),
                "text": text,
            }
            if text.startswith("/"):
                command = text.split()[0]
                message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
            return self._push({"message": message})

    def push_callback(
        self, chat_id: int, data: str, message_id: int | None = None, user_id: int | None = None
    ) -> int:
        """A user presses an inline button with callback `data` under the bot's message
        `message_id` (default: the bot's latest message to that chat); the update id."""
        with self._lock:
            sent = [m for m in self._messages if m.chat_id == chat_id and message_id in (None, m.message_id)]
            message = (
                _message_json(sent[-1])
                if sent
                else {
                    "message_id": message_id or 0,
                    "date": int(time.time()),
                    "chat": _chat(chat_id),
                    "from": BOT_USER,
                    "text": "",
                }
            )
            update_id = self._next_update_id
            query = {
                "id": f"cq{update_id}",
                "from": _user(user_id or chat_id),
                "chat_instance": str(chat_id),
                "data": data,
                "message": message,
            }
            return self._push({"callback_query": query})

    def reset(self) -> None:
        with self._lock:
            self._messages.clear()
            self._calls.clear()
            self._faults.clear()
            self._updates.clear()
            self.callback_answers.clear()

    @property
    def messages(self) -> list[ReceivedMessage]:
        with self._lock:
            return list(self._messages)

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def pending_updates(self) -> int:
        with self._lock:
            return len(self._updates)

    def wait_for_messages(self, count: int, timeout: float = 10.0) -> list[ReceivedMessage]:
        """At least `count` messages, waiting up to `timeout` seconds; fails naming what arrived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            messages = self.messages
            if len(messages) >= count:
                return messages
            time.sleep(0.02)
        raise TimeoutError(f"expected {count} messages within {timeout} s, got {len(self.messages)}")

    # --- the Bot API -------------------------------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_get("/", self._page)
        app.router.add_get("/messages.json", self._messages_json)
        app.router.add_get("/photos/{message_id:\\d+}.png", self._photo)
        app.router.add_post("/_fake/faults", self._add_fault)
        app.router.add_post("/_fake/updates", self._add_update)
        app.router.add_post("/_fake/reset", self._reset)
        app.router.add_get("/_fake/calls", self._calls_json)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        return app

    async def _api(self, request: web.Request) -> web.StreamResponse:
        if self._token is not None and request.match_info["token"] != self._token:
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        params, photo = await _read_params(request)
        chat_id = params.get("chat_id")
        with self._lock:
            queued = self._faults.get(method.lower())
            fault = queued.popleft() if queued else None
            status = fault.status if fault else 200
            self._calls.append(Call(method, chat_id, datetime.now(UTC), status, params))
        if fault is not None:
            return await _fault_response(fault)
        handler = self._handlers().get(method.lower())
        if handler is None:
            return _error(400, f"Bad Request: method {method} is not implemented by the fake Bot API")
        try:
            result = await handler(params, photo)
        except _ApiError as exc:
            return _error(exc.status, exc.description)
        return web.json_response({"ok": True, "result": result})

    def _handlers(self) -> dict[str, Callable[[dict[str, Any], bytes | None], Any]]:
        return {
            "getme": self._get_me,
            "sendmessage": self._send,
            "sendphoto": self._send,
            "getupdates": self._get_updates,
            "answercallbackquery": self._answer_callback,
            "editmessagetext": self._edit,
            "editmessagereplymarkup": self._edit,
            "setmycommands": self._set_commands,
            "deletewebhook": self._true,
            "sendchataction": self._true,
            "deletemessage": self._delete,
        }

    async def _get_me(self, params: dict[str, Any], photo: bytes | None) -> dict[str, Any]:
        return {**BOT_USER, "can_join_groups": True, "can_read_all_group_messages": False}

    async def _true(self, params: dict[str, Any], photo: bytes | None) -> bool:
        return True

    async def _send(self, params: dict[str, Any], photo: bytes | None) -> dict[str, Any]:
        chat_id: int | str | None = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise _ApiError(400, "Bad Request: chat_id is empty")
        is_photo = "photo" in params or photo is not None
        if is_photo and photo is None:
            raise _ApiError(400, "Bad Request: there is no photo in the request")
        text = params.get("caption") if is_photo else params.get("text")
        if not is_photo and not text:
            raise _ApiError(400, "Bad Request: message text is empty")
        with self._lock:
            message = ReceivedMessage(
                message_id=self._new_message_id(),
                chat_id=chat_id,
                method="sendPhoto" if is_photo else "sendMessage",
                text=text,
                parse_mode=params.get("parse_mode"),
                photo=photo,
                reply_markup=params.get("reply_markup"),
                received_at=datetime.now(UTC),
            )
            self._messages.append(message)
        return _message_json(message)

    async def _get_updates(self, params: dict[str, Any], photo: bytes | None) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        deadline = time.monotonic() + float(params.get("timeout") or 0)
        while True:
            with self._lock:
                # An offset confirms every update before it, as in the real API.
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
                if self._updates:
                    return self._updates[:limit]
            if time.monotonic() >= deadline:
                return []
            await asyncio.sleep(0.05)

    async def _answer_callback(self, params: dict[str, Any], photo: bytes | None) -> bool:
        with self._lock:
            self.callback_answers.append(params)
        return True

    async def _edit(self, params: dict[str, Any], photo: bytes | None) -> dict[str, Any]:
        with self._lock:
            found = [
                m
                for m in self._messages
                if m.chat_id == params.get("chat_id") and m.message_id == params.get("message_id")
            ]
            if not found:
                raise _ApiError(400, "Bad Request: message to edit not found")
            message = found[0]
            if "text" in params:
                message.text = params["text"]
                message.parse_mode = params.get("parse_mode")
            message.reply_markup = params.get("reply_markup")
            message.edited_at = datetime.now(UTC)
            return _message_json(message)

    async def _delete(self, params: dict[str, Any], photo: bytes | None) -> bool:
        with self._lock:
            for m in list(self._messages):
                if m.chat_id == params.get("chat_id") and m.message_id == params.get("message_id"):
                    self._messages.remove(m)
                    return True
        raise _ApiError(400, "Bad Request: message to delete not found")

    async def _set_commands(self, params: dict[str, Any], photo: bytes | None) -> bool:
        self.commands = list(params.get("commands") or [])
        return True

    # --- pages and control -------------------------------------------------------------------

    async def _page(self, request: web.Request) -> web.Response:
        rows = "\n".join(_message_html(m) for m in reversed(self.messages))
        body = _PAGE.format(count=len(self.messages), base_url=html.escape(self.base_url), rows=rows)
        return web.Response(text=body, content_type="text/html")

    async def _messages_json(self, request: web.Request) -> web.Response:
        return web.json_response([m.as_json() for m in reversed(self.messages)])

    async def _calls_json(self, request: web.Request) -> web.Response:
        calls = [
            {
                "method": c.method,
                "chat_id": c.chat_id,
                "received_at": c.received_at.isoformat(),
                "status": c.status,
            }
            for c in self.calls
        ]
        return web.json_response(calls)

    async def _photo(self, request: web.Request) -> web.Response:
        wanted = int(request.match_info["message_id"])
        for m in self.messages:
            if m.message_id == wanted and m.photo is not None:
                return web.Response(body=m.photo, content_type="image/png")
        raise web.HTTPNotFound(text=f"no photo in message {wanted}")

    async def _add_fault(self, request: web.Request) -> web.Response:
        data = await request.json()
        try:
            fault = Fault.from_json(data)
        except ValueError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from exc
        self.inject(str(data["method"]), fault, int(data.get("times", 1)))
        return web.json_response({"ok": True})

    async def _add_update(self, request: web.Request) -> web.Response:
        data = await request.json()
        chat_id = int(data["chat_id"])
        if "callback_data" in data:
            update_id = self.push_callback(chat_id, str(data["callback_data"]), data.get("message_id"))
        else:
            update_id = self.push_message(chat_id, str(data["text"]))
        return web.json_response({"ok": True, "update_id": update_id})

    async def _reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})

    # --- helpers (call with the lock held) ---------------------------------------------------

    def _new_message_id(self) -> int:
        self._next_message_id += 1
        return self._next_message_id - 1

    def _push(self, payload: dict[str, Any]) -> int:
        update_id = self._next_update_id
        self._next_update_id += 1
        self._updates.append({"update_id": update_id, **payload})
        return update_id


class _ApiError(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


async def _read_params(request: web.Request) -> tuple[dict[str, Any], bytes | None]:
    """The call's parameters from the query, a form (python-telegram-bot's way: JSON-encoded
    values), multipart (with an uploaded photo) or a JSON body."""
    raw: dict[str, Any] = dict(request.query)
    photo: bytes | None = None
    if request.content_type == "application/json":
        raw.update(await request.json())
    elif request.can_read_body:
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                photo = value.file.read()
                raw[key] = f"attach://{value.filename}"
            else:
                raw[key] = value
    params = {key: _decode(key, value) for key, value in raw.items()}
    return params, photo


def _decode(key: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if key in _JSON_PARAMS:
        return json.loads(value)
    if key in _INT_PARAMS or key in ("chat_id", "user_id"):
        return int(value) if re.fullmatch(r"-?\d+", value) else value
    return value


async def _fault_response(fault: Fault) -> web.Response:
    if fault.kind == "hang":
        await asyncio.sleep(fault.seconds)
    parameters = {"retry_after": int(fault.seconds)} if fault.kind == "retry_after" else None
    return _error(fault.status, fault.description, parameters)


def _error(status: int, description: str, parameters: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=status)


def _chat(chat_id: int | str) -> dict[str, Any]:
    if isinstance(chat_id, str):  # "@channel": Telegram answers with its numeric id
        return {
            "id": -1000000000000 - zlib.crc32(chat_id.encode()),
            "type": "channel",
            "username": chat_id[1:],
        }
    if chat_id > 0:
        return {"id": chat_id, "type": "private", "first_name": f"User {chat_id}"}
    return {
        "id": chat_id,
        "type": "supergroup" if chat_id < -(10**12) else "group",
        "title": f"Group {chat_id}",
    }


def _user(user_id: int) -> dict[str, Any]:
    return {"id": abs(user_id), "is_bot": False, "first_name": f"User {abs(user_id)}", "language_code": "en"}


def _message_json(message: ReceivedMessage) -> dict[str, Any]:
    body: dict[str, Any] = {
        "message_id": message.message_id,
        "date": int(message.received_at.timestamp()),
        "chat": _chat(message.chat_id),
        "from": BOT_USER,
    }
    if message.photo is not None:
        body["photo"] = [
            {
                "file_id": f"photo-{message.message_id}",
                "file_unique_id": f"p{message.message_id}",
                "width": 800,
                "height": 420,
                "file_size": len(message.photo),
            }
        ]
        if message.text:
            body["caption"] = message.text
    else:
        body["text"] = message.text or ""
    if message.reply_markup:
        body["reply_markup"] = message.reply_markup
    if message.edited_at:
        body["edit_date"] = int(message.edited_at.timestamp())
    return body


# Telegram HTML tags that are shown as such on the page; anything else stays escaped text.
_ALLOWED_TAG = re.compile(r"&lt;(/?)(b|strong|i|em|u|ins|s|strike|del|code|pre|tg-spoiler)&gt;")
_LINK = re.compile(r"&lt;a href=&quot;(https?://.*?)&quot;&gt;(.*?)&lt;/a&gt;", re.DOTALL)


def _telegram_html(text: str, parse_mode: str | None) -> str:
    """Telegram-HTML text as safe page HTML: everything escaped, then the tags Telegram knows
    restored (links only to http(s))."""
    escaped = html.escape(text)
    if (parse_mode or "").upper() != "HTML":
        return escaped
    escaped = _ALLOWED_TAG.sub(r"<\1\2>", escaped)
    return _LINK.sub(lambda m: f'<a href="{html.unescape(m.group(1))}">{m.group(2)}</a>', escaped)


def _message_html(message: ReceivedMessage) -> str:
    photo = f'<img src="/photos/{message.message_id}.png" alt="chart">' if message.photo is not None else ""
    buttons = ""
    if message.reply_markup:
        labels = [
            html.escape(str(button.get("text", "")))
            for row in message.reply_markup.get("inline_keyboard", [])
            for button in row
        ]
        buttons = f'<div class="buttons">{" ".join(f"<span>{b}</span>" for b in labels)}</div>'
    text = _telegram_html(message.text or "", message.parse_mode)
    when = message.received_at.strftime("%H:%M:%S.%f")[:-3]
    edited = " (edited)" if message.edited_at else ""
    return (
        f'<div class="msg"><div class="meta">#{message.message_id} · {when} UTC · chat '
        f"{html.escape(str(message.chat_id))} · {message.method}{edited}</div>"
        f'{photo}<div class="text">{text}</div>{buttons}</div>'
    )


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="3">
<title>Fake Telegram · Oddly Odds</title>
<style>
body {{ font-family: system-ui, sans-serif; background: #e6ebee; margin: 0 auto; max-width: 760px; }}
h1 {{ font-size: 1.2em; }} .hint {{ color: #555; font-size: .9em; }}
.msg {{ background: #fff; border-radius: 10px; padding: 10px 14px; margin: 10px 0; }}
.meta {{ color: #888; font-size: .8em; margin-bottom: 4px; }}
.text {{ white-space: pre-wrap; }} img {{ max-width: 100%; border-radius: 6px; }}
.buttons span {{ display: inline-block; border: 1px solid #4a90d9; color: #4a90d9; border-radius: 6px;
  padding: 2px 8px; margin: 4px 4px 0 0; font-size: .9em; }}
</style></head><body>
<h1>Fake Telegram Bot API · {count} messages received</h1>
<p class="hint">Newest first, refreshes every 3 s. Bot API base_url: <code>{base_url}</code>
· <a href="/messages.json">messages.json</a></p>
{rows}
</body></html>
"""
