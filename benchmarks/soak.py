"""`oddly bench soak`: the `make demo` stack running for a while — does its storage stay bounded,
and how much memory does each process take?

Starts every service as `oddly demo` does (simulator, Dagster webserver + daemon + code server,
MLflow, Streamlit, the fake Bot API, the sender, the bot) in a temporary home on free ports, with
the retention window shortened (`--retain-minutes`) and the prune job every minute, so that a run
of `--minutes` shows storage before and after the window. Every `--sample-seconds` it measures the
size of each store (Dagster's instance storage, the warehouse, the app database, MLflow's store,
the published snapshot) and the resident memory of each service (its whole process tree).

Growth per hour is fitted (least squares) over the samples before the first prune after the window
and over those after it; the target is flat growth of the instance storage after the window.
Prints one JSON line.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import psutil

from benchmarks.latency import machine
from oddly.config import Settings, get_settings
from oddly.ports import free_port

HOUR = 3600.0


@dataclass
class Sample:
    at: float  # seconds since the stack was up
    bytes: dict[str, int]
    rss_mb: dict[str, float]
    dagster_files: dict[str, int] = field(default_factory=dict)  # each file of the instance storage


@dataclass
class Soak:
    samples: list[Sample] = field(default_factory=list)
    peak_rss_mb: dict[str, float] = field(default_factory=dict)


def file_bytes(path: Path) -> int:
    """A file's size; 0 when it is gone (SQLite removes its -wal and -shm files as it pleases)."""
    try:
        return path.stat().st_size if path.is_file() else 0
    except FileNotFoundError:
        return 0


def folder_bytes(path: Path) -> int:
    if path.is_file():
        return file_bytes(path)
    return sum(file_bytes(p) for p in path.rglob("*")) if path.exists() else 0


def dagster_files(settings: Settings) -> dict[str, int]:
    """Each file of Dagster's instance storage (run shards grouped), to tell which one grows."""
    base = settings.dagster_home / "storage"
    sizes: dict[str, int] = {}
    for path in base.rglob("*") if base.exists() else []:
        if size := file_bytes(path):
            rel = path.relative_to(base).as_posix()
            shared = ("history/runs/.", "history/runs/index")  # the runless shard and the index
            if rel.startswith("history/runs/") and not rel.startswith(shared):
                rel = "history/runs/<run shards>"
            elif "/compute_logs/" in rel:
                rel = "<compute logs>"
            sizes[rel] = sizes.get(rel, 0) + size
    return sizes


def file_growth(first: dict[str, int], last: dict[str, int]) -> dict[str, float]:
    """Bytes each file gained (or lost) between two samples, in MB, largest change first."""
    change = {k: last.get(k, 0) - first.get(k, 0) for k in first.keys() | last.keys()}
    return {k: round(v / 1e6, 3) for k, v in sorted(change.items(), key=lambda kv: -abs(kv[1])) if v}


def store_bytes(settings: Settings) -> dict[str, int]:
    home = settings.home
    wal = settings.duckdb_path.with_name(settings.duckdb_path.name + ".wal")
    return {
        "dagster_storage": folder_bytes(settings.dagster_home / "storage"),
        "warehouse": folder_bytes(settings.duckdb_path) + folder_bytes(wal),
        "app_db": sum(folder_bytes(home / n) for n in ("app.db", "app.db-wal", "app.db-shm")),
        "mlflow": folder_bytes(settings.mlflow_db_path),
        "published": folder_bytes(home / "published.duckdb"),
    }


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its children (a service is a process group)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total / 1e6


def growth_per_hour(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, bytes) in bytes per hour; None with fewer than 3 points."""
    if len(points) < 3:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_b = sum(b for _, b in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return None
    return sum((t - mean_t) * (b - mean_b) for t, b in points) / var * HOUR


@contextmanager
def demo_stack(
    home: Path, retain_minutes: float, ready_timeout: float
) -> Iterator[tuple[Settings, list[Any]]]:
    from oddly.demo import interrupt_on_sigterm, prepare_stores, services, start_service, stop_services

    for name in ("ODDLY_TELEGRAM_BOT_TOKEN", "ODDLY_TELEGRAM_API_URL"):
        os.environ.pop(name, None)
    os.environ.update(
        {
            "ODDLY_HOME": str(home),
            "ODDLY_SIMULATOR_PORT": str(free_port()),
            "ODDLY_MLFLOW_PORT": str(free_port()),
            "ODDLY_FAKE_TELEGRAM_PORT": str(free_port()),
            "ODDLY_STREAMLIT_PORT": str(free_port()),
            "ODDLY_METRICS_PORT": str(free_port()),
            "ODDLY_SENDER_METRICS_PORT": str(free_port()),
            "ODDLY_RETAIN_SUCCESS_HOURS": str(retain_minutes / 60),
            "ODDLY_PRUNE_CRON": "* * * * *",
        }
    )
    settings = get_settings()
    prepare_stores(settings)
    running: list[Any] = []
    previous = signal.signal(signal.SIGTERM, interrupt_on_sigterm)
    with (home / "stack.log").open("ab") as log:
        try:
            for service in services(settings, free_port()):
                click.echo(f"starting {service.name} …", err=True)
                start_service(service, ready_timeout, running, output=log)
            yield settings, running
        finally:
            click.echo("stopping the stack …", err=True)
            stop_services(running)
            signal.signal(signal.SIGTERM, previous)


@click.command()
@click.option("--minutes", default=30.0, show_default=True, help="How long the stack runs.")
@click.option("--retain-minutes", default=10.0, show_default=True, help="Retention window of poll records.")
@click.option("--sample-seconds", default=30.0, show_default=True, help="Seconds between measurements.")
@click.option("--ready-timeout", default=300.0, show_default=True, help="Seconds to wait for each service.")
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the stack's stores and stack.log here (a temporary directory, removed, when unset).",
)
def soak(
    minutes: float, retain_minutes: float, sample_seconds: float, ready_timeout: float, home: Path | None
) -> None:
    """The demo stack for MINUTES: storage growth per hour before and after the retention window,
    and peak memory per process. Target: flat growth of Dagster's storage after the window."""
    load_start = os.getloadavg()
    soaked = Soak()
    with tempfile.TemporaryDirectory(prefix="oddly-bench-soak-") as tmp:
        where = home or Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        with demo_stack(where, retain_minutes, ready_timeout) as (settings, running):
            t0 = time.monotonic()
            while (elapsed := time.monotonic() - t0) < minutes * 60:
                rss = {s.name: tree_rss_mb(s.process.pid) for s in running if s.process}
                for name, mb in rss.items():
                    soaked.peak_rss_mb[name] = max(soaked.peak_rss_mb.get(name, 0.0), mb)
                soaked.samples.append(Sample(elapsed, store_bytes(settings), rss, dagster_files(settings)))
                dead = [s.name for s in running if s.process and s.process.poll() is not None]
                if dead:
                    raise click.ClickException(
                        f"{', '.join(dead)} stopped during the soak; see {where}/stack.log"
                    )
                time.sleep(sample_seconds)
            load_end = os.getloadavg()
    # the first prune after the window has passed: a minute's grace for the schedule to come round
    settled = retain_minutes * 60 + 120
    before = [s for s in soaked.samples if s.at < settled]
    after = [s for s in soaked.samples if s.at >= settled]
    stores = soaked.samples[-1].bytes.keys() if soaked.samples else []
    click.echo(
        json.dumps(
            {
                "benchmark": "soak",
                "minutes": minutes,
                "retain_minutes": retain_minutes,
                "samples": len(soaked.samples),
                "final_mb": {
                    k: round(v / 1e6, 2)
                    for k, v in (soaked.samples[-1].bytes.items() if soaked.samples else [])
                },
                "growth_mb_per_hour_before_window": {
                    k: _mb(growth_per_hour([(s.at, s.bytes[k]) for s in before])) for k in stores
                },
                "growth_mb_per_hour_after_window": {
                    k: _mb(growth_per_hour([(s.at, s.bytes[k]) for s in after])) for k in stores
                },
                # the curve itself, to tell a plateau from a slope the fit averages out
                "dagster_storage_mb_by_minute": {
                    f"{s.at / 60:.1f}": round(s.bytes["dagster_storage"] / 1e6, 2)
                    for s in soaked.samples
                    if "dagster_storage" in s.bytes
                },
                # which file of the instance storage the growth after the window is in
                "dagster_files_mb_at_end": {
                    k: round(v / 1e6, 3)
                    for k, v in sorted((after or soaked.samples)[-1].dagster_files.items())
                }
                if soaked.samples
                else {},
                "dagster_file_growth_mb_after_window": file_growth(
                    after[0].dagster_files, after[-1].dagster_files
                )
                if len(after) > 1
                else {},
                "peak_rss_mb": {k: round(v) for k, v in sorted(soaked.peak_rss_mb.items())},
                "load_avg_start": [round(x, 2) for x in load_start],
                "load_avg_end": [round(x, 2) for x in load_end],
                **machine(),
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
        )
    )


def _mb(value: float | None) -> float | None:
    return None if value is None else round(value / 1e6, 2)
