"""`oddly bot`: the Telegram bot people talk to (python-telegram-bot, long polling).

/start registers the chat, /subscribe and /settings edit its filters through inline menus,
/mute and /unmute pause it, /top and /event show what the marts say now. Handlers stay thin: the
menus are the pure state machine in `bot_menus`, the reads are `bot_queries`, the subscriptions are
`oddly.alerts.subscriptions`; database and chart work runs in worker threads.

Access: ODDLY_TELEGRAM_ALLOWED_CHATS lists the chats that may use the bot; when it is empty every
chat may (a public bot), so a private deployment must set it. Admin chats
(ODDLY_TELEGRAM_ADMIN_CHATS) are always allowed and also get /status. A refused chat gets one
polite line and nothing else happens: it is not registered.

The token comes only from ODDLY_TELEGRAM_BOT_TOKEN (a placeholder when only ODDLY_TELEGRAM_API_URL
points at the fake Bot API) and never reaches the logs: httpx's request lines are silenced and
every record, error tracebacks included, is scrubbed of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import re
import signal
import sys
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar, cast

import click
import sqlalchemy as sa
from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    Update,
)
from telegram.constants import ChatType, ParseMode
from telegram.error import BadRequest, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
    ExtBot,
    MessageHandler,
    TypeHandler,
    filters,
)

from oddly.alerts.subscriptions import (
    Filters,
    Subscription,
    SubscriptionError,
    chats,
    get_subscription,
    register_chat,
    save_filters,
    set_muted,
)
from oddly.appdb import open_app_db
from oddly.config import Settings, get_settings
from oddly.telegram import bot_queries as queries
from oddly.telegram.bot_menus import (
    Catalog,
    MenuInputError,
    MenuState,
    Screen,
    Transition,
    apply,
    apply_text,
    decode,
    describe,
    is_menu_data,
    open_settings,
    open_subscribe,
    parse_duration,
    render,
)
from oddly.telegram.message import duration_words
from oddly.telegram.sender import PLACEHOLDER_TOKEN, TELEGRAM_BASE_URL, connect, redact_token
from oddly.warehouse.reader import MartsNotReadyError, MartsReader
from oddly.warehouse.store import Warehouse, WarehouseBusyError

if TYPE_CHECKING:
    from oddly.telegram.bot_queries import EventView

log = logging.getLogger(__name__)
T = TypeVar("T")
Context = ContextTypes.DEFAULT_TYPE

MENU_KEY = "menu"  # chat_data: the chat's one open menu
EVENT_ID = re.compile(r"[\w.:-]{1,128}")
CAPTION_LIMIT = 1024
CHART_LOCK_SECONDS = 15.0  # how long /event waits for the warehouse before sending prices alone

COMMANDS = (
    ("start", "register this chat for alerts"),
    ("subscribe", "choose what to be alerted about, step by step"),
    ("settings", "show your filters and change any one"),
    ("mute", "pause alerts: /mute, or /mute 2h"),
    ("unmute", "alerts back on"),
    ("top", "the biggest drops and value bets now"),
    ("event", "prices and chart of one event: /event <id>"),
    ("help", "what I can do"),
)
HELP = "\n".join(
    ["<b>What I can do</b>"]
    + [f"/{name} – {words.replace('<', '&lt;').replace('>', '&gt;')}" for name, words in COMMANDS]
)
REFUSAL = (
    "Sorry, this Oddly Odds bot is private and this chat is not on its list. "
    "Ask the person who runs it to add chat id {chat_id}."
)
NOT_READY = (
    "No market data yet: it appears after the first warehouse build, a few minutes after the feeds "
    "start. Please try again soon."
)
APOLOGY = "Sorry, something went wrong on my side; it is logged. Please try again in a moment."
EXPIRED = "This menu has expired: send /subscribe or /settings for a fresh one."


class BotConfigError(RuntimeError):
    """The bot cannot start: the message says which setting to fix."""


@dataclass(frozen=True)
class Access:
    """Who may use the bot: everyone when `allowed` is empty, else those chats; admins always."""

    allowed: frozenset[int]
    admins: frozenset[int]

    @classmethod
    def of(cls, allowed: Iterable[int], admins: Iterable[int]) -> Access:
        return cls(frozenset(allowed), frozenset(admins))

    def allows(self, chat_id: int) -> bool:
        return not self.allowed or chat_id in self.allowed or chat_id in self.admins

    def is_admin(self, chat_id: int) -> bool:
        return chat_id in self.admins


@dataclass(frozen=True)
class OpenMenu:
    message_id: int
    state: MenuState


class OddlyBot:
    """The handlers and what they need; `serve` runs the bot until `stop` is set."""

    def __init__(
        self,
        settings: Settings,
        *,
        engine: sa.Engine | None = None,
        poll_timeout: int = 10,
        mute_check_seconds: float = 30.0,
    ) -> None:
        self.settings = settings
        self.token = bot_token(settings)
        redact_token(self.token)
        self.engine = engine or open_app_db(settings)
        self.reader = MartsReader.from_settings(settings)
        self.access = Access.of(settings.telegram_allowed_chats, settings.telegram_admin_chats)
        self.poll_timeout = poll_timeout
        self.mute_check_seconds = mute_check_seconds
        self._warehouse: Warehouse | None = None
        self._chart_lock = asyncio.Lock()  # one chart drawn at a time: it holds the warehouse briefly
        self.application = self._build()

    def _build(self) -> Application:
        defaults = Defaults(
            parse_mode=ParseMode.HTML, link_preview_options=LinkPreviewOptions(is_disabled=True)
        )
        app = (
            ApplicationBuilder()
            .token(self.token)
            .base_url((self.settings.telegram_api_url or TELEGRAM_BASE_URL).rstrip("/"))
            .defaults(defaults)
            .build()
        )
        app.add_handler(TypeHandler(Update, self.gate), group=-1)
        for name, callback in (
            ("start", self.start),
            ("help", self.help),
            ("subscribe", self.subscribe),
            ("settings", self.show_settings),
            ("mute", self.mute),
            ("unmute", self.unmute),
            ("top", self.top),
            ("event", self.event),
            ("status", self.status),
        ):
            app.add_handler(CommandHandler(name, callback))
        app.add_handler(CallbackQueryHandler(self.on_button))
        app.add_handler(MessageHandler(filters.COMMAND, self.unknown_command))
        app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, self.on_text))
        app.add_error_handler(self.on_error)
        return app

    # --- running -----------------------------------------------------------------------------

    async def serve(self, stop: asyncio.Event, on_ready: Callable[[], None] | None = None) -> None:
        """Poll for updates until `stop` is set, waiting first for the Bot API to answer (the demo
        may start the bot before the fake)."""
        app = self.application
        # connect() is typed for the sender's rate-limited bot; it only calls initialize().
        if not await connect(cast("ExtBot[int]", app.bot), stop):
            return
        async with app:
            await app.bot.set_my_commands([BotCommand(name, words) for name, words in COMMANDS])
            await app.start()
            assert app.updater is not None
            await app.updater.start_polling(
                poll_interval=0.0, timeout=self.poll_timeout, allowed_updates=["message", "callback_query"]
            )
            timers = asyncio.create_task(self._end_timed_mutes(stop))
            log.info("oddly bot: polling %s", self.settings.telegram_api_url or "Telegram")
            if on_ready is not None:
                on_ready()
            try:
                await stop.wait()
            finally:
                timers.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await timers
                await app.updater.stop()
                await app.stop()

    # --- access and errors -------------------------------------------------------------------

    async def gate(self, update: Update, context: Context) -> None:
        """Runs before every handler: a chat the allow-list refuses gets one line, nothing else."""
        chat = update.effective_chat
        if chat is None:  # e.g. a button under an inline message: no chat to check or answer
            raise ApplicationHandlerStop
        if self.access.allows(chat.id):
            return
        log.info("refused chat %s (not in ODDLY_TELEGRAM_ALLOWED_CHATS)", chat.id)
        refusal = REFUSAL.format(chat_id=chat.id)
        if update.callback_query is not None:
            await update.callback_query.answer(refusal, show_alert=True)
        elif update.effective_message is not None:
            await update.effective_message.reply_text(refusal)
        raise ApplicationHandlerStop

    async def on_error(self, update: object, context: Context) -> None:
        """Logs what failed (token scrubbed) and answers the chat with a short apology."""
        error = context.error
        details = "".join(traceback.format_exception(error)) if error else "no exception"
        where = update.update_id if isinstance(update, Update) else "no update"
        log.error("handler failed on update %s:\n%s", where, details.replace(self.token, "<token>"))
        if isinstance(update, Update) and update.effective_chat is not None:
            with contextlib.suppress(TelegramError):
                await context.bot.send_message(update.effective_chat.id, APOLOGY)

    # --- commands ----------------------------------------------------------------------------

    async def start(self, update: Update, context: Context) -> None:
        chat_id = _chat_id(update)

        def register(conn: sa.Connection) -> tuple[bool, Subscription]:
            existed = get_subscription(conn, chat_id) is not None
            return existed, register_chat(conn, chat_id, _now())

        existed, sub = await self._db(register)
        if existed:
            state = "muted (/unmute turns alerts on)" if sub.muted else "subscribed"
            greeting = f"👋 Welcome back: this chat is already {state}. /settings shows your filters."
        else:
            greeting = (
                "👋 <b>Welcome to Oddly Odds.</b> I watch bookmakers' prices and tell you when something "
                "matters: sharp drops, steam moves, one book out of line, value against the sharp price, "
                "arbitrage and stale lines.\n\nThis chat is now subscribed to everything: red alerts "
                "at once, yellow ones in an hourly digest. /subscribe narrows it down."
            )
        await _reply(update, f"{greeting}\n\n{HELP}")

    async def help(self, update: Update, context: Context) -> None:
        extra = "\n/status – the bot's state (admins)" if self.access.is_admin(_chat_id(update)) else ""
        await _reply(update, HELP + extra)

    async def subscribe(self, update: Update, context: Context) -> None:
        await self._open_menu(update, context, open_subscribe)

    async def show_settings(self, update: Update, context: Context) -> None:
        await self._open_menu(update, context, open_settings)

    async def mute(self, update: Update, context: Context) -> None:
        args = context.args or []
        try:
            if len(args) > 1:
                raise MenuInputError("Use /mute alone, or with one duration such as /mute 2h.")
            duration = parse_duration(args[0]) if args else None
        except MenuInputError as exc:
            await _reply(update, str(exc))
            return
        chat_id, now = _chat_id(update), _now()
        until = now + duration if duration is not None else None

        def do(conn: sa.Connection) -> None:
            set_muted(conn, chat_id, True, now)
            queries.set_mute_timer(conn, chat_id, until)

        if not await self._db_for_registered(update, do):
            return
        if until is None or duration is None:
            text = "🔕 Muted until you send /unmute."
        else:
            words = duration_words(duration.total_seconds())
            text = f"🔕 Muted for {words}, until {until:%a %H:%M} UTC. /unmute ends it sooner."
        await _reply(update, text + " Alerts in the meantime are not sent later.")

    async def unmute(self, update: Update, context: Context) -> None:
        chat_id = _chat_id(update)

        def do(conn: sa.Connection) -> None:
            set_muted(conn, chat_id, False, _now())
            queries.set_mute_timer(conn, chat_id, None)

        if await self._db_for_registered(update, do):
            await _reply(update, "🔔 Alerts are on again.")

    async def top(self, update: Update, context: Context) -> None:
        try:
            text = await asyncio.to_thread(queries.top_text, self.reader, self.settings.app_url)
        except MartsNotReadyError:
            text = NOT_READY
        await _reply(update, text)

    async def event(self, update: Update, context: Context) -> None:
        args = context.args or []
        if not args:
            await _reply(
                update,
                "Which event? Send /event &lt;id&gt;. /top lists current events; each links to its page "
                "in the app, which shows the id.",
            )
            return
        event_id = args[0]
        if len(args) > 1 or not EVENT_ID.fullmatch(event_id):
            await _reply(update, "An event id is one word of letters, digits and - _ . : ; see /top.")
            return
        try:
            view = await asyncio.to_thread(
                queries.event_view, self.reader, event_id, self.settings.app_url, _now()
            )
        except MartsNotReadyError:
            await _reply(update, NOT_READY)
            return
        if view is None:
            await _reply(
                update,
                f"I know no current event with id <code>{_escape(event_id)}</code>. Finished events "
                "leave the list; /top shows what is on now.",
            )
            return
        await self._send_event(update, view)

    async def status(self, update: Update, context: Context) -> None:
        if not self.access.is_admin(_chat_id(update)):
            await _reply(update, "/status is for the bot's admins (ODDLY_TELEGRAM_ADMIN_CHATS).")
            return

        def count(conn: sa.Connection) -> tuple[int, int]:
            total = conn.execute(sa.select(sa.func.count()).select_from(chats)).scalar_one()
            muted = conn.execute(sa.select(sa.func.count()).where(chats.c.muted.is_(True))).scalar_one()
            return int(total), int(muted)

        total, muted = await self._db(count)
        try:
            published = await asyncio.to_thread(self.reader.published)
            marts = f"{len(published)} mart tables published" if len(published) else "marts: server mode"
        except MartsNotReadyError:
            marts = "no marts published yet"
        allowed = f"{len(self.access.allowed)} chats" if self.access.allowed else "everyone"
        await _reply(
            update,
            f"<b>Status</b>\nChats registered: {total} ({muted} muted)\nAllowed: {allowed}\n"
            f"Admins: {len(self.access.admins)}\n{marts}",
        )

    async def unknown_command(self, update: Update, context: Context) -> None:
        command = (_text(update).split() or ["that"])[0]
        addressee = command.partition("@")[2]
        if addressee and addressee.lower() != (context.bot.username or "").lower():
            return  # "/cmd@other_bot" in a group is another bot's business
        await _reply(update, f"I don't know {_escape(command)}. /help lists what I can do.")

    # --- menus -------------------------------------------------------------------------------

    async def _open_menu(
        self, update: Update, context: Context, opener: Callable[[Filters, Catalog], MenuState]
    ) -> None:
        """A fresh menu from the stored filters (registering the chat if /start was skipped); an
        older menu of the chat loses its buttons, so only one draft is ever open."""
        chat_id = _chat_id(update)
        sub = await self._db(lambda conn: register_chat(conn, chat_id, _now()))
        catalog = await asyncio.to_thread(queries.load_catalog, self.reader)
        await self._retire_menu(context, chat_id)
        await self._show(update, context, Transition(opener(sub.filters, catalog)))

    async def on_button(self, update: Update, context: Context) -> None:
        query = update.callback_query
        assert query is not None
        menu = _open_menu_of(context)
        if not is_menu_data(query.data):
            await query.answer("This button is no longer in use.")
            return
        if menu is None or query.message is None or menu.message_id != query.message.message_id:
            await query.answer(EXPIRED, show_alert=True)
            return
        try:
            transition = apply(menu.state, decode(str(query.data)))
        except MenuInputError as exc:
            await query.answer(str(exc), show_alert=True)
            return
        await self._follow(update, context, menu.message_id, transition)
        await query.answer(transition.notice or None)

    async def on_text(self, update: Update, context: Context) -> None:
        """A typed value for the open menu's step; otherwise, in a private chat, a hint."""
        menu = _open_menu_of(context)
        if menu is not None and menu.state.step is not None:
            try:
                transition = apply_text(menu.state, _text(update))
            except MenuInputError as exc:
                await _reply(update, str(exc))
                return
            # The value was typed below the menu: the menu moves down to it.
            await self._retire_menu(context, _chat_id(update))
            await self._save(_chat_id(update), transition)
            await self._show(update, context, transition)
            return
        if update.effective_chat is not None and update.effective_chat.type == ChatType.PRIVATE:
            await _reply(update, "I answer commands; /help lists them.")

    async def _follow(
        self, update: Update, context: Context, message_id: int, transition: Transition
    ) -> None:
        """Store what the transition saves, then show its state in the menu message (edited)."""
        chat_id = _chat_id(update)
        await self._save(chat_id, transition)
        if transition.state is None:
            _chat_data(context).pop(MENU_KEY, None)
            await _edit(context, chat_id, message_id, _closing_text(transition), None)
            return
        _chat_data(context)[MENU_KEY] = OpenMenu(message_id, transition.state)
        screen = render(transition.state)
        await _edit(context, chat_id, message_id, screen.text, _markup(screen))

    async def _show(self, update: Update, context: Context, transition: Transition) -> None:
        """The transition's menu (or closing words) as a new message, which becomes the open menu."""
        if transition.state is None:
            await _reply(update, _closing_text(transition))
            return
        screen = render(transition.state)
        text = f"{transition.notice}\n\n{screen.text}" if transition.notice else screen.text
        sent = await _reply(update, text, _markup(screen))
        _chat_data(context)[MENU_KEY] = OpenMenu(sent.message_id, transition.state)

    async def _retire_menu(self, context: Context, chat_id: int) -> None:
        menu = _open_menu_of(context)
        _chat_data(context).pop(MENU_KEY, None)
        if menu is not None:
            with contextlib.suppress(BadRequest):  # deleted by the user, or too old to edit
                await _edit(context, chat_id, menu.message_id, render(menu.state).text, None)

    async def _save(self, chat_id: int, transition: Transition) -> None:
        filters_ = transition.save
        if filters_ is not None:
            await self._db(lambda conn: save_filters(conn, chat_id, filters_, _now()))

    # --- helpers -----------------------------------------------------------------------------

    async def _send_event(self, update: Update, view: EventView) -> None:
        note = ""
        png: bytes | None = None
        try:
            async with self._chart_lock:
                png = await asyncio.to_thread(queries.event_chart, self._chart_warehouse(), view)
        except WarehouseBusyError:
            note = "\n<i>No chart: the warehouse is busy with an update; try again in a minute.</i>"
        message = update.effective_message
        assert message is not None
        if png is None:
            await _reply(update, view.text + (note or "\n<i>No price history to chart yet.</i>"))
        elif len(view.text) <= CAPTION_LIMIT:
            await message.reply_photo(png, caption=view.text)
        else:
            await message.reply_photo(png, caption=_escape(view.chart_title))
            await _reply(update, view.text)

    def _chart_warehouse(self) -> Warehouse:
        if self._warehouse is None:
            self._warehouse = Warehouse(
                self.settings.resolved_warehouse_url, lock_timeout_seconds=CHART_LOCK_SECONDS
            )
        return self._warehouse

    async def _db(self, work: Callable[[sa.Connection], T]) -> T:
        """`work` in one app-database transaction, in a worker thread."""

        def run() -> T:
            with self.engine.begin() as conn:
                return work(conn)

        return await asyncio.to_thread(run)

    async def _db_for_registered(self, update: Update, work: Callable[[sa.Connection], None]) -> bool:
        try:
            await self._db(work)
        except SubscriptionError:
            await _reply(update, "This chat is not subscribed yet: send /start first.")
            return False
        return True

    async def _end_timed_mutes(self, stop: asyncio.Event) -> None:
        """Every `mute_check_seconds`: unmute the chats whose /mute <duration> ran out and tell them."""

        def expire(conn: sa.Connection) -> list[str]:
            due = queries.due_mute_timers(conn, _now())
            for chat_id in due:
                with contextlib.suppress(SubscriptionError):
                    set_muted(conn, chat_id, False, _now())
                queries.set_mute_timer(conn, chat_id, None)
            return due

        while not stop.is_set():
            try:
                for chat_id in await self._db(expire):
                    with contextlib.suppress(TelegramError):
                        await self.application.bot.send_message(
                            chat_id, "🔔 Your mute has ended; alerts are on again."
                        )
            except Exception:
                log.exception("ending timed mutes failed; trying again in %g s", self.mute_check_seconds)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.mute_check_seconds)


def bot_token(settings: Settings) -> str:
    """The token from the environment; the placeholder the fake Bot API accepts when only its URL is set."""
    if settings.telegram_bot_token is not None:
        return settings.telegram_bot_token.get_secret_value()
    if settings.telegram_api_url:
        return PLACEHOLDER_TOKEN
    raise BotConfigError(
        "no Telegram bot token: set ODDLY_TELEGRAM_BOT_TOKEN, or run `oddly fake-telegram` and set "
        "ODDLY_TELEGRAM_API_URL to the base_url it prints"
    )


def _markup(screen: Screen) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.label, callback_data=b.data) for b in row] for row in screen.rows]
    )


def _closing_text(transition: Transition) -> str:
    saved = transition.save
    return transition.notice + ("\n\n<b>Your alerts</b>\n" + describe(saved) if saved is not None else "")


async def _reply(update: Update, text: str, markup: InlineKeyboardMarkup | None = None) -> Message:
    message = update.effective_message
    assert message is not None
    return await message.reply_text(text, reply_markup=markup)


async def _edit(
    context: Context, chat_id: int, message_id: int, text: str, markup: InlineKeyboardMarkup | None
) -> None:
    try:
        await context.bot.edit_message_text(text, chat_id=chat_id, message_id=message_id, reply_markup=markup)
    except BadRequest as exc:
        # Pressing what is already chosen leaves the message as it was; Telegram calls that an error.
        if "not modified" not in str(exc).lower():
            raise


def _chat_id(update: Update) -> int:
    chat = update.effective_chat
    assert chat is not None, "commands and buttons always come from a chat"
    return chat.id


def _chat_data(context: Context) -> dict[object, object]:
    assert context.chat_data is not None
    return context.chat_data


def _open_menu_of(context: Context) -> OpenMenu | None:
    menu = _chat_data(context).get(MENU_KEY)
    return menu if isinstance(menu, OpenMenu) else None


def _text(update: Update) -> str:
    message = update.effective_message
    return (message.text or "") if message is not None else ""


def _escape(text: str) -> str:
    return html.escape(text)


def _now() -> datetime:
    return datetime.now(UTC)


@click.command()
@click.option("-v", "--verbose", is_flag=True, help="Debug logging (the bot token is still redacted).")
def bot(verbose: bool) -> None:
    """Run the Telegram bot (long polling) with the token from ODDLY_TELEGRAM_BOT_TOKEN, or against the
    fake Bot API at ODDLY_TELEGRAM_API_URL. Stops cleanly on Ctrl-C or SIGTERM."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        oddly_bot = OddlyBot(get_settings())
    except BotConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    allowed = oddly_bot.access.allowed
    click.echo(
        f"oddly bot: {len(allowed)} allowed chats"
        if allowed
        else "oddly bot: every chat allowed (set ODDLY_TELEGRAM_ALLOWED_CHATS to make it private)",
        err=True,
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await oddly_bot.serve(stop)

    asyncio.run(main())
