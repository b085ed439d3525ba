"""`oddly send` (deliver the outbox to Telegram) and `oddly fake-telegram` (a local Bot API)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from datetime import UTC, datetime, timedelta

import click

from oddly import metrics
from oddly.config import get_settings


@click.command()
@click.option("--once", is_flag=True, help="Send what is due now, then exit (otherwise run until stopped).")
@click.option("--poll-seconds", default=0.5, show_default=True, type=click.FloatRange(min=0.05))
@click.option(
    "--reclaim-after",
    type=click.FloatRange(min=0),
    default=None,
    help="Seconds after which a message left 'sending' by a sender that died is sent again "
    "[default: the outbox's, 120]. 0 after a crash, when no other sender runs.",
)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging (the bot token is still redacted).")
def send(once: bool, poll_seconds: float, reclaim_after: float | None, verbose: bool) -> None:
    """Deliver the alert outbox through the Telegram Bot API (ODDLY_TELEGRAM_BOT_TOKEN, or the
    fake at ODDLY_TELEGRAM_API_URL). Stops cleanly on Ctrl-C or SIGTERM."""
    from oddly.alerts.outbox import SENDING_TIMEOUT, Outbox
    from oddly.appdb import open_app_db
    from oddly.telegram.sender import Sender, SenderConfig, SenderConfigError, connect, make_bot

    _configure_logging(verbose)
    settings = get_settings()
    config = SenderConfig(poll_seconds=poll_seconds)
    try:
        bot = make_bot(settings, config)
    except SenderConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    reclaim = SENDING_TIMEOUT if reclaim_after is None else timedelta(seconds=reclaim_after)
    outbox = Outbox(open_app_db(settings), sending_timeout=reclaim)
    where = settings.telegram_api_url or "Telegram"
    click.echo(f"oddly send: delivering the outbox to {where}{' (once)' if once else ''}", err=True)
    if not once and metrics.serve(settings.sender_metrics_port):
        click.echo(
            f"oddly send: metrics at http://127.0.0.1:{settings.sender_metrics_port}/metrics", err=True
        )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if not await connect(bot, stop):
            return
        try:
            stats = await Sender(outbox, bot, config).run(stop, once=once)
        finally:
            await bot.shutdown()
        count, oldest = outbox.backlog(datetime.now(UTC))
        waiting = f"; {count} waiting (oldest from {oldest:%H:%M:%S} UTC)" if oldest else ""
        click.echo(f"oddly send: {stats}{waiting}", err=True)

    try:
        asyncio.run(main())
    except SenderConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@click.command("fake-telegram")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8081, show_default=True, type=int)
def fake_telegram(host: str, port: int) -> None:
    """Run a local fake Telegram Bot API with a page listing the messages it received."""
    from oddly.telegram.fake_api import FakeBotApi

    api = FakeBotApi(host, port)

    def ready() -> None:
        click.echo(f"fake Telegram Bot API: messages at {api.url}")
        click.echo(f"set ODDLY_TELEGRAM_API_URL={api.base_url}")
        sys.stdout.flush()

    async def main() -> None:
        server = asyncio.create_task(api.serve(ready))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, api.stop)
        await server

    try:
        asyncio.run(main())
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port} ({exc}); pick another --port") from exc


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
