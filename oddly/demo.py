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

import click
import httpx

from oddly.config import REPO_ROOT, Settings, get_settings
from oddly.dagster_home import password_env, write_dagster_yaml


@dataclass
class Service:
    name: str
    argv: list[str]
    url: str
    ready_url: str
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None


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
            {"DAGSTER_HOME": str(settings.dagster_home), **password_env(settings.dagster_pg_url)},
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
        ),
    ]


def _wait_ready(service: Service, timeout: float) -> None:
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


def _stop(running: list[Service]) -> None:
    for service in reversed(running):
        if service.process and service.process.poll() is None:
            os.killpg(service.process.pid, signal.SIGTERM)
    for service in reversed(running):
        if service.process:
            try:
                service.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(service.process.pid, signal.SIGKILL)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@click.command()
@click.option("--dagster-port", default=3000, show_default=True, help="Port of the Dagster UI.")
@click.option("--ready-timeout", default=180.0, show_default=True, help="Seconds to wait for each service.")
def demo(dagster_port: int, ready_timeout: float) -> None:
    """Run the platform locally: simulator, Dagster (webserver + daemon with the feed and marts sensors),
    the MLflow UI."""
    settings = get_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    write_dagster_yaml(settings)
    running: list[Service] = []
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        for service in services(settings, dagster_port):
            click.echo(f"starting {service.name} …")
            service.process = subprocess.Popen(
                service.argv, env={**os.environ, **service.env}, cwd=REPO_ROOT, start_new_session=True
            )
            running.append(service)
            _wait_ready(service, ready_timeout)
        click.echo("\nOddly Odds is running (Ctrl-C stops everything):")
        for service in running:
            click.echo(f"  {service.name:<10} {service.url}")
        click.echo(f"  warehouse  {settings.resolved_warehouse_url}")
        click.echo("The feed sensors poll every 10 s, the marts refresh after them; see the Dagster UI.")
        while all(s.process and s.process.poll() is None for s in running):
            time.sleep(1)
        dead = [s.name for s in running if s.process and s.process.poll() is not None]
        raise click.ClickException(f"{', '.join(dead)} stopped; shutting the rest down")
    except KeyboardInterrupt:
        click.echo("\nstopping …")
    finally:
        _stop(running)
