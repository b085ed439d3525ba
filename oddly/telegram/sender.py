"""The Telegram sender: drains the outbox (`oddly.alerts.outbox`) through python-telegram-bot.

Delivery guarantee — at-least-once:
  * An alert's message is written to the outbox in the same transaction as its decision, so a
    decided alert is never without its message.
  * The sender claims due messages (marked `sending`, attempts + 1, committed before any send),
    sends each, and records the outcome in the outbox (`sent` with Telegram's message id, a retry
    time, or `dead` with the reason) before it moves on: the outbox is acknowledged only after
    Telegram accepted the message.
  * Nothing is ever lost: a message leaves the outbox only as `sent` (Telegram accepted it) or
    `dead` (Telegram refused it for good: chat not found, bot blocked, a malformed message; the
    reason is logged and stored). Timeouts, 5xx and network errors are retried with exponential
    backoff (capped) for as long as it takes; a 429 waits exactly `retry_after` for that chat.
    Messages claimed by a sender that died are claimed again by the next one.
  * A duplicate is possible only if the process dies after Telegram accepted a message and before
    `mark_sent` committed: the message is then sent again on restart. (Likewise when a send timed
    out after Telegram had accepted it, or a sender stalled inside one send for longer than the
    outbox's `sending_timeout`, 2 min.) A message recorded as sent is never sent again.

Rate limits: python-telegram-bot's `AIORateLimiter` keeps to about 30 messages a second overall
and 20 a minute per group; the sender itself sends to one chat at most once a second and pauses
only that chat on a 429, so other chats keep flowing. The bot token is never logged: python-
telegram-bot puts it in the request URL, so httpx's request log is lowered to WARNING and
`redact_token` scrubs it from any log record that still carries it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

import sqlalchemy as sa
from telegram import LinkPreviewOptions, Message
from telegram.constants import ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, InvalidToken, RetryAfter, TelegramError
from telegram.ext import AIORateLimiter, ExtBot
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from oddly import metrics

if TYPE_CHECKING:
    from oddly.config import Settings

log = logging.getLogger(__name__)

TELEGRAM_BASE_URL = "https://api.telegram.org/bot"
# The fake Bot API takes any token; this one stands in when only ODDLY_TELEGRAM_API_URL is set.
PLACEHOLDER_TOKEN = "1:oddly-fake-api-token"
# Tries to record a delivery outcome while the app database is busy (about a minute in all).
RECORD_ATTEMPTS = 10


class OutboxRow(Protocol):
    """A claimed outbox message (`oddly.alerts.outbox.OutboxMessage`)."""

    @property
    def id(self) -> int: ...
    @property
    def alert_id(self) -> str: ...
    @property
    def chat_id(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def photo(self) -> bytes | None: ...
    @property
    def attempts(self) -> int: ...
    @property
    def created_at(self) -> datetime: ...


class OutboxStore(Protocol):
    """What the sender needs of `oddly.alerts.outbox.Outbox`."""

    def claim_due(self, limit: int, now: datetime) -> Sequence[OutboxRow]: ...
    def mark_sent(self, message_id: int, telegram_message_id: int | None, sent_at: datetime) -> None: ...
    def mark_retry(self, message_id: int, error: str, next_attempt_at: datetime) -> None: ...
    def mark_dead(self, message_id: int, error: str) -> None: ...
    def backlog(self, now: datetime) -> tuple[int, datetime | None]: ...


class SenderConfigError(RuntimeError):
    """The sender cannot start or go on: the message says which setting to fix."""


@dataclass(frozen=True)
class SenderConfig:
    poll_seconds: float = 0.5
    batch_size: int = 50
    max_in_flight: int = 200  # claimed and not yet finished; bounds what a crash leaves `sending`
    per_chat_interval: float = 1.0  # Telegram: about one message a second to one chat
    backoff_seconds: float = 2.0  # first retry after a timeout or 5xx, doubling per attempt
    backoff_max_seconds: float = 300.0
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    write_timeout: float = 10.0
    media_write_timeout: float = 20.0
    shutdown_grace_seconds: float = 15.0  # how long a stop waits for sends already on the wire

    def backoff(self, attempts: int) -> float:
        return min(self.backoff_max_seconds, self.backoff_seconds * 2 ** max(0, attempts - 1))


@dataclass
class SendStats:
    sent: int = 0
    retried: int = 0
    dead: int = 0

    def __str__(self) -> str:
        return f"sent {self.sent}, retried {self.retried}, dead {self.dead}"


@dataclass
class _Chat:
    queue: deque[OutboxRow] = field(default_factory=deque)
    not_before: float = 0.0  # monotonic time of the next send allowed to this chat
    task: asyncio.Task[None] | None = None
    on_the_wire: bool = False  # a send (and its recording) is under way


def make_bot(settings: Settings, config: SenderConfig | None = None) -> ExtBot[int]:
    """A bot for the sender: the token from ODDLY_TELEGRAM_BOT_TOKEN, the Bot API at
    ODDLY_TELEGRAM_API_URL (e.g. the fake) or Telegram's, Telegram's rate limits applied."""
    config = config or SenderConfig()
    if settings.telegram_bot_token is not None:
        token = settings.telegram_bot_token.get_secret_value()
    elif settings.telegram_api_url:
        token = PLACEHOLDER_TOKEN
    else:
        raise SenderConfigError(
            "no Telegram bot token: set ODDLY_TELEGRAM_BOT_TOKEN, or run `oddly fake-telegram` and set "
            "ODDLY_TELEGRAM_API_URL to the base_url it prints"
        )
    redact_token(token)
    request = HTTPXRequest(
        connection_pool_size=64,
        connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout,
        write_timeout=config.write_timeout,
        media_write_timeout=config.media_write_timeout,
        pool_timeout=config.connect_timeout,
    )
    # max_retries=0: a 429 comes back to the sender, which pauses that chat only (the limiter
    # would halt every chat while it sleeps).
    limiter = AIORateLimiter(
        overall_max_rate=30, overall_time_period=1, group_max_rate=20, group_time_period=60, max_retries=0
    )
    return ExtBot(
        token,
        base_url=(settings.telegram_api_url or TELEGRAM_BASE_URL).rstrip("/"),
        request=request,
        rate_limiter=limiter,
    )


async def connect(bot: ExtBot[int], stop: asyncio.Event, retry_seconds: float = 2.0) -> bool:
    """Initialize the bot (its getMe checks the token), waiting out an unreachable Bot API (the
    demo may start the sender before the fake); False if stopped before it answered."""
    while not stop.is_set():
        try:
            await bot.initialize()
            return True
        except InvalidToken:  # its message quotes the token: not chained
            raise SenderConfigError(
                "Telegram rejected the bot token; check ODDLY_TELEGRAM_BOT_TOKEN (and ODDLY_TELEGRAM_API_URL)"
            ) from None
        except TelegramError as exc:
            error = str(exc).replace(bot.token, "<token>")
            log.warning(
                "Bot API at %s unreachable (%s); trying again in %g s", _where(bot), error, retry_seconds
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), retry_seconds)
    return False


def _where(bot: ExtBot[int]) -> str:
    return bot.base_url.replace(bot.token, "")


class _RedactToken(logging.Filter):
    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.token in message:
            record.msg, record.args = message.replace(self.token, "<token>"), None
        return True


def redact_token(token: str) -> None:
    """Keep `token` out of the logs: quiet httpx's per-request line (its URL holds the token) and
    scrub the token from every record reaching the root logger's handlers."""
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _RedactToken) and f.token == token for f in handler.filters):
            handler.addFilter(_RedactToken(token))


class Sender:
    """Delivers outbox messages; `run` until stopped, or `drain` what is due now.

    `after_send` runs right after Telegram accepted a message and before it is recorded as sent:
    the tests kill the process there to check the delivery guarantee."""

    def __init__(
        self,
        outbox: OutboxStore,
        bot: ExtBot[int],
        config: SenderConfig | None = None,
        *,
        after_send: Callable[[OutboxRow], None] | None = None,
    ) -> None:
        self.outbox = outbox
        self.bot = bot
        self.config = config or SenderConfig()
        self.after_send = after_send
        self.stats = SendStats()
        self._chats: dict[str, _Chat] = {}
        self._in_flight: set[int] = set()
        self._fatal: SenderConfigError | None = None

    async def drain(self) -> SendStats:
        """Send everything due now, then return; a message told to wait (a 429, a backoff) stays
        queued in the outbox for its time."""
        return await self.run(asyncio.Event(), once=True)

    async def run(self, stop: asyncio.Event, *, once: bool = False) -> SendStats:
        """Poll the outbox every `poll_seconds` until `stop` is set (or, with `once`, until
        nothing is due and nothing is in flight)."""
        try:
            while not stop.is_set() and self._fatal is None:
                claimed = await self._claim()
                if once and not claimed and not self._in_flight:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.config.poll_seconds)
        finally:
            await self._shutdown()
        if self._fatal is not None:
            raise self._fatal
        return self.stats

    async def _claim(self) -> int:
        room = self.config.max_in_flight - len(self._in_flight)
        if room <= 0:
            return 0
        now = datetime.now(UTC)
        try:
            rows = await asyncio.to_thread(self.outbox.claim_due, min(room, self.config.batch_size), now)
        except sa.exc.OperationalError as exc:
            # the app database is busy (a long decision transaction) or down: try again next poll
            log.warning("outbox unavailable (%s); trying again in %.1f s", exc.orig, self.config.poll_seconds)
            return 0
        fresh = [row for row in rows if row.id not in self._in_flight]
        for row in fresh:
            self._in_flight.add(row.id)
            chat = self._chats.setdefault(row.chat_id, _Chat())
            chat.queue.append(row)
            if chat.task is None:
                chat.task = asyncio.create_task(self._drain_chat(chat), name=f"chat {row.chat_id}")
        return len(fresh)

    async def _record(self, mark: Callable[..., None], *args: object) -> None:
        """An outcome written to the outbox, retried while the database is busy or down: a sent
        message whose `sent` is not recorded would be sent again once its claim expires."""
        delay = 0.5
        for attempt in range(RECORD_ATTEMPTS):
            try:
                await asyncio.to_thread(mark, *args)
                return
            except sa.exc.OperationalError as exc:
                if attempt == RECORD_ATTEMPTS - 1:
                    raise
                what = getattr(mark, "__name__", "an outcome")
                log.warning("outbox busy recording %s (%s); retrying in %.1f s", what, exc.orig, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _drain_chat(self, chat: _Chat) -> None:
        """One chat's messages in order, at most one per `per_chat_interval`, after any 429 pause."""
        try:
            while chat.queue and self._fatal is None:
                await asyncio.sleep(max(0.0, chat.not_before - time.monotonic()))
                if not chat.queue:  # given back by a stop while waiting
                    break
                row = chat.queue.popleft()
                chat.on_the_wire = True
                try:
                    await self._deliver(row, chat)
                except Exception:
                    # The row stays claimed; the outbox hands it out again (at-least-once).
                    log.exception("outbox %s: could not record the delivery outcome", row.id)
                finally:
                    chat.on_the_wire = False
                    self._in_flight.discard(row.id)
        finally:
            chat.task = None

    async def _deliver(self, row: OutboxRow, chat: _Chat) -> None:
        try:
            message = await self._send(row)
        except TelegramError as exc:
            await self._failed(row, chat, exc)
            return
        if self.after_send is not None:
            self.after_send(row)
        await self._record(self.outbox.mark_sent, row.id, message.message_id, datetime.now(UTC))
        chat.not_before = time.monotonic() + self.config.per_chat_interval
        self.stats.sent += 1
        metrics.DELIVERIES.labels("sent").inc()
        log.info("outbox %s (alert %s) sent to chat %s", row.id, row.alert_id, row.chat_id)

    async def _failed(self, row: OutboxRow, chat: _Chat, exc: TelegramError) -> None:
        """Record why a send failed and when to try again (counted from Telegram's answer)."""
        now = datetime.now(UTC)
        text = str(exc).replace(self.bot.token, "<token>")  # stored and logged: never the token
        if isinstance(exc, RetryAfter):
            wait = _retry_after_seconds(exc)
            chat.not_before = time.monotonic() + wait
            error = f"Telegram flood control (429): retry after {wait:g} s"
            await self._record(self.outbox.mark_retry, row.id, error, now + timedelta(seconds=wait))
            self.stats.retried += 1
            metrics.DELIVERIES.labels("retried").inc()
            log.warning("outbox %s to chat %s: %s; pausing this chat only", row.id, row.chat_id, error)
        elif isinstance(exc, InvalidToken):
            await self._record(self.outbox.mark_retry, row.id, f"token rejected: {text}", now)
            self._fatal = SenderConfigError(
                f"Telegram rejected the bot token ({text}); check ODDLY_TELEGRAM_BOT_TOKEN "
                "(and ODDLY_TELEGRAM_API_URL); no message was dropped"
            )
        elif isinstance(exc, BadRequest | Forbidden):  # BadRequest is a NetworkError: test it first
            reason = f"Telegram refused it for good ({type(exc).__name__}: {text})"
            await self._record(self.outbox.mark_dead, row.id, reason)
            self.stats.dead += 1
            metrics.DELIVERIES.labels("dead").inc()
            log.warning(
                "outbox %s (alert %s) to chat %s is dead: %s; fix or remove that chat's subscription",
                row.id,
                row.alert_id,
                row.chat_id,
                reason,
            )
        else:  # timeouts, 5xx, connection errors: transient
            delay = self.config.backoff(row.attempts)
            error = f"{type(exc).__name__}: {text}"
            await self._record(self.outbox.mark_retry, row.id, error, now + timedelta(seconds=delay))
            self.stats.retried += 1
            metrics.DELIVERIES.labels("retried").inc()
            log.warning(
                "outbox %s to chat %s: %s (attempt %d); next try in %g s",
                row.id,
                row.chat_id,
                error,
                row.attempts,
                delay,
            )

    async def _send(self, row: OutboxRow) -> Message:
        chat_id: int | str = _chat_id(row.chat_id)
        try:
            return await self._send_to(chat_id, row)
        except ChatMigrated as exc:  # a group became a supergroup: same people, new id
            log.warning(
                "chat %s migrated to %s; sending there (update the subscription)", chat_id, exc.new_chat_id
            )
            return await self._send_to(exc.new_chat_id, row)

    async def _send_to(self, chat_id: int | str, row: OutboxRow) -> Message:
        if row.photo is not None:
            return await self.bot.send_photo(
                chat_id, photo=row.photo, caption=row.text, parse_mode=ParseMode.HTML
            )
        return await self.bot.send_message(
            chat_id,
            row.text,
            parse_mode=ParseMode.HTML,
            link_preview_options=LinkPreviewOptions(is_disabled=True),
        )

    async def _shutdown(self) -> None:
        """Give back what is claimed but not yet on the wire (due at once for the next sender),
        and let sends already on the wire finish and be recorded."""
        now = datetime.now(UTC)
        for chat in self._chats.values():
            while chat.queue:
                row = chat.queue.popleft()
                await asyncio.to_thread(
                    self.outbox.mark_retry, row.id, "sender stopped before sending it", now
                )
                self._in_flight.discard(row.id)
        waiting = [c.task for c in self._chats.values() if c.task is not None and not c.on_the_wire]
        for task in waiting:  # only pacing sleeps: nothing of theirs is claimed any more
            task.cancel()
        sending = [c.task for c in self._chats.values() if c.task is not None and c.on_the_wire]
        if sending:
            _, pending = await asyncio.wait(sending, timeout=self.config.shutdown_grace_seconds)
            for task in pending:  # still on the wire: left claimed, handed out again on restart
                task.cancel()
        await asyncio.gather(*waiting, *sending, return_exceptions=True)


def _chat_id(chat_id: str) -> int | str:
    """Numeric chat ids as integers (the rate limiter tells groups by their sign); "@name" as is."""
    try:
        return int(chat_id)
    except ValueError:
        return chat_id


def _retry_after_seconds(exc: RetryAfter) -> float:
    # An int until python-telegram-bot's next major version, a timedelta after; both handled.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
