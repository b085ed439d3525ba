"""`oddly demo` (what `make demo` runs): start the platform's processes on embedded stores, wait
until each answers, print where to look, and stop them all on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import click
import httpx

from oddly.config import REPO_ROOT, Settings, get_settings
from oddly.dagster_home import password_env, write_dagster_yaml
from oddly.pg_schema import ensure_schema

# The chat the demo subscribes when it runs the fake Bot API, so alerts arrive on its page.
DEMO_CHAT_ID = 1
# How long the Dagster daemon waits for one sensor evaluation.
SENSOR_TIMEOUT_SECONDS = 600


@dataclass
class Service:
    name: str
    argv: list[str]
    url: str
    ready_url: str | None  # None: ready once it has run a moment without exiting
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None


def telegram_env(settings: Settings) -> dict[str, str]:
    """With no bot token the demo runs the fake Bot API, and the sender and bot talk to it."""
    if settings.telegram_bot_token is not None:
        return {}
    return {"ODDLY_TELEGRAM_API_URL": f"http://127.0.0.1:{settings.fake_telegram_port}/bot"}


def telegram_services(settings: Settings) -> list[Service]:
    oddly = str(Path(sys.executable).parent / "oddly")
    env = telegram_env(settings)
    out = []
    if env:
        fake = f"http://127.0.0.1:{settings.fake_telegram_port}"
        out.append(
            Service(
                "telegram", [oddly, "fake-telegram", "--port", str(settings.fake_telegram_port)], fake, fake
            )
        )
    target = "the fake Bot API" if env else "Telegram"
    out.append(Service("sender", [oddly, "send"], f"outbox → {target}", None, env))
    out.append(Service("bot", [oddly, "bot"], f"polling {target}", None, env))
    return out


def subscribe_demo_chat(settings: Settings) -> None:
    """The fake Bot API has no users to press /start: subscribe one demo chat with default filters."""
    from oddly.alerts.subscriptions import get_subscription, register_chat
    from oddly.appdb import open_app_db
    from oddly.model import now_utc

    engine = open_app_db(settings)
    try:
        with engine.begin() as conn:
            if get_subscription(conn, DEMO_CHAT_ID) is None:
                register_chat(conn, DEMO_CHAT_ID, now_utc())
    finally:
        engine.dispose()


def prepare_stores(settings: Settings) -> None:
    """Before any service starts: the home, Dagster's instance settings and, in server mode, each
    store's schema (a service that finds its schema missing fails: `mlflow server` does); without a
    bot token, the demo chat that alerts go to."""
    settings.home.mkdir(parents=True, exist_ok=True)
    write_dagster_yaml(settings)
    ensure_schema(settings.resolved_mlflow_tracking_uri)
    if telegram_env(settings):
        subscribe_demo_chat(settings)


def services(settings: Settings, dagster_port: int) -> list[Service]:
    bin_dir = Path(sys.executable).parent
    sim = f"http://{settings.simulator_host}:{settings.simulator_port}"
    dagster = f"http://127.0.0.1:{dagster_port}"
    mlflow = f"http://127.0.0.1:{settings.mlflow_port}"
    return [
        Service(
            "simulator",
            [
                str(bin_dir / "oddly"),
                "simulate",
                "--host",
                settings.simulator_host,
                "--port",
                str(settings.simulator_port),
            ],
            sim,
            f"{sim}/_sim/health",
        ),
        Service(
            "dagster",
            [
                str(bin_dir / "dagster"),
                "dev",
                "-w",
                str(REPO_ROOT / "workspace.yaml"),
                "-h",
                "127.0.0.1",
                "-p",
                str(dagster_port),
            ],
            dagster,
            f"{dagster}/server_info",
            {
                "DAGSTER_HOME": str(settings.dagster_home),
                # the sensors do the work (a poll, a marts cycle); a first cycle on a long history
                # takes longer than Dagster's default minute
                "DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS": str(SENSOR_TIMEOUT_SECONDS),
                # the simulator's copy of The Odds API takes any key; a real key is never needed here
                "ODDLY_SIMULATOR_ODDS_API_KEY": os.environ.get("ODDLY_SIMULATOR_ODDS_API_KEY", "demo"),
                **password_env(settings.dagster_pg_url),
            },
        ),
        Service(
            "mlflow",
            [
                str(bin_dir / "mlflow"),
                "server",
                "--backend-store-uri",
                settings.resolved_mlflow_tracking_uri,
                "--default-artifact-root",
                settings.mlflow_artifacts_path.resolve().as_uri(),
                "--host",
                "127.0.0.1",
                "--port",
                str(settings.mlflow_port),
            ],
            mlflow,
            f"{mlflow}/health",
            # MLflow's server-side job workers (seven processes) serve features the platform does not use
            {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        ),
        Service(
            "streamlit",
            [
                str(bin_dir / "streamlit"),
                "run",
                str(REPO_ROOT / "dashboards" / "app.py"),
                "--server.address",
                "127.0.0.1",
                "--server.port",
                str(settings.streamlit_port),
                "--server.headless",
                "true",
                "--browser.gatherUsageStats",
                "false",
            ],
            f"http://127.0.0.1:{settings.streamlit_port}",
            f"http://127.0.0.1:{settings.streamlit_port}/_stcore/health",
        ),
        *telegram_services(settings),
    ]


def _wait_ready(service: Service, timeout: float) -> None:
    if service.ready_url is None:
        time.sleep(1.0)
        if service.process is not None and service.process.poll() is not None:
            raise click.ClickException(
                f"{service.name} exited with code {service.process.returncode}; see its output above"
            )
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process is not None and service.process.poll() is not None:
            raise click.ClickException(
                f"{service.name} exited with code {service.process.returncode} before answering; "
                "see its output above"
            )
        try:
            if httpx.get(service.ready_url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise click.ClickException(f"{service.name} did not answer at {service.ready_url} within {timeout:.0f} s")


def start_service(
    service: Service, ready_timeout: float, running: list[Service], output: IO[bytes] | None = None
) -> None:
    """Start `service` in its own session (so a stop reaches its children), add it to `running`
    (so a failure below still stops it) and wait until it answers. Its output goes to `output`
    (a benchmark's log file), or to ours."""
    service.process = subprocess.Popen(
        service.argv,
        env={**os.environ, **service.env},
        cwd=REPO_ROOT,
        start_new_session=True,
        stdout=output,
        stderr=output,
    )
    running.append(service)
    _wait_ready(service, ready_timeout)


def stop_services(running: list[Service]) -> None:
    """SIGTERM every service's process group (last started first), SIGKILL any not gone in 20 s."""
    for service in reversed(running):
        if service.process and service.process.poll() is None:
            os.killpg(service.process.pid, signal.SIGTERM)
    for service in reversed(running):
        if service.process:
            try:
                service.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(service.process.pid, signal.SIGKILL)


def interrupt_on_sigterm(signum: int, frame: object) -> None:
    """A signal handler: SIGTERM stops the services as Ctrl-C does."""
    raise KeyboardInterrupt


@click.command()
@click.option("--dagster-port", default=3000, show_default=True, help="Port of the Dagster UI.")
@click.option("--ready-timeout", default=180.0, show_default=True, help="Seconds to wait for each service.")
def demo(dagster_port: int, ready_timeout: float) -> None:
    """Run the platform locally: simulator, Dagster (webserver + daemon with the feed and marts sensors),
    the MLflow UI, the Telegram sender and bot — against a fake Bot API with its own page when no
    ODDLY_TELEGRAM_BOT_TOKEN is set."""
    settings = get_settings()
    prepare_stores(settings)
    running: list[Service] = []
    signal.signal(signal.SIGTERM, interrupt_on_sigterm)
    try:
        for service in services(settings, dagster_port):
            click.echo(f"starting {service.name} …")
            start_service(service, ready_timeout, running)
        click.echo("\nOddly Odds is running (Ctrl-C stops everything):")
        for service in running:
            click.echo(f"  {service.name:<10} {service.url}")
        click.echo(f"  warehouse  {settings.resolved_warehouse_url}")
        if settings.metrics_port:
            click.echo(
                f"  metrics    http://127.0.0.1:{settings.metrics_port}/metrics (code server, once it polls)"
            )
        if settings.sender_metrics_port:
            click.echo(f"  metrics    http://127.0.0.1:{settings.sender_metrics_port}/metrics (sender)")
        click.echo(
            "The feed sensors poll every feed by its interval, the marts sensor refreshes the marts after "
            "them; see the Dagster UI (Automation and Assets)."
        )
        if telegram_env(settings):
            click.echo(
                f"No bot token set: alerts to demo chat {DEMO_CHAT_ID} appear on the telegram page above."
            )
        while all(s.process and s.process.poll() is None for s in running):
            time.sleep(1)
        dead = [s.name for s in running if s.process and s.process.poll() is not None]
        raise click.ClickException(f"{', '.join(dead)} stopped; shutting the rest down")
    except KeyboardInterrupt:
        click.echo("\nstopping …")
    finally:
        stop_services(running)
