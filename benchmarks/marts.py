"""`oddly bench marts`: the marts cycle after each ingestion, on a long tick history (issue 3, item 8).

Builds a DuckDB warehouse holding N ticks of simulated history (`benchmarks.history`), then starts a
long-lived marts worker (`benchmarks.marts_worker`: dbt kept warm in one process, as the Dagster code
server keeps it) and has it rebuild every model from scratch (a deployment), then a few cycles of:
ingest 100,000 new ticks through the ingestion's write path, run the cycle the platform's marts
sensor runs (`oddly.warehouse.cycle.run_marts_cycle`: event matching, `dbt run --selector
ingest_cycle`, the marts published), and last the data tests that run apart from the cycle
(`checks` every few minutes, `raw_history` daily). Peak RSS is the worker's, sampled during each
command (DuckDB runs in it).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import numpy as np

from benchmarks.history import DAY, TICKS_PER_DAY, ingest_round, simulate, write
from oddly.config import Settings
from oddly.warehouse.dbt_env import dbt_env
from oddly.warehouse.store import Warehouse

# A cycle's parts, as `MartsCycle.timings` names them.
PARTS = ("match_seconds", "dbt_models_seconds", "publish_seconds", "warehouse_held_seconds")


@dataclass
class WorkerRun:
    seconds: float  # from the command to the worker's answer
    peak_rss_mb: float  # the worker's largest resident set while it ran the command
    parts: dict[str, float] = field(default_factory=dict)
    nodes: dict[str, float] = field(default_factory=dict)  # slowest dbt nodes, seconds


class MartsWorker:
    """`benchmarks.marts_worker` in a child process: started (dbt imported, the project parsed)
    once, then one command at a time."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.start_seconds = 0.0

    def __enter__(self) -> MartsWorker:
        t0 = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.marts_worker", str(self.settings.home)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=(self.settings.home / "marts_worker.log").open("w"),
            text=True,
            env={**os.environ, **dbt_env(self.settings)},
        )
        self._answer()
        self.start_seconds = time.perf_counter() - t0
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=60)

    def run(self, command: str) -> WorkerRun:
        assert self.process.stdin is not None
        t0 = time.perf_counter()
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        peak_kb = 0
        done: list[dict[str, Any]] = []
        reader = threading.Thread(target=lambda: done.append(self._answer()))
        reader.start()
        while reader.is_alive():
            peak_kb = max(peak_kb, _rss_kb(self.process.pid))
            reader.join(0.01)
        seconds = time.perf_counter() - t0
        [answer] = done
        return WorkerRun(
            seconds,
            peak_kb / 1024,
            {k: float(answer[k]) for k in PARTS if k in answer},
            answer.get("slowest", {}),
        )

    def _answer(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        answer: dict[str, Any] = json.loads(line) if line else {"ok": False, "error": "the worker died"}
        if not answer.get("ok"):
            log = (self.settings.home / "marts_worker.log").read_text()[-3000:]
            raise click.ClickException(f"marts worker: {answer.get('error')}\n{log}")
        return answer


def _rss_kb(pid: int) -> int:
    """A process's resident set now (VmRSS; 0 once gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)


@contextmanager
def bench_home(home: Path | None, prefix: str = "oddly-bench-marts-") -> Iterator[Path]:
    """The given ODDLY_HOME, or a temporary one removed afterwards (it holds gigabytes)."""
    if home is not None:
        home.mkdir(parents=True, exist_ok=True)
        yield home
        return
    root = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _warehouse_mb(settings: Settings) -> float:
    files = [settings.duckdb_path, settings.duckdb_path.with_name(settings.duckdb_path.name + ".wal")]
    return sum(f.stat().st_size for f in files if f.exists()) / 1e6


@click.command()
@click.option("--ticks", default=10_000_000, show_default=True, help="Ticks of simulated history.")
@click.option("--new-ticks", default=100_000, show_default=True, help="Ticks ingested before each cycle.")
@click.option("--cycles", default=5, show_default=True, help="Timed cycles; median, min and max reported.")
@click.option(
    "--interval",
    type=float,
    default=None,
    help="Simulated seconds between ingestion rounds; default: the time the simulated market takes to "
    "make --new-ticks ticks (about 1.8 h for 100,000), so each cycle's recent windows hold its own ticks.",
)
@click.option("--seed", default=7, show_default=True)
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="ODDLY_HOME to build the warehouse in (kept); default: a temporary one, removed after.",
)
def marts(
    ticks: int, new_ticks: int, cycles: int, interval: float | None, seed: int, home: Path | None
) -> None:
    """dbt marts on a long history: full refresh, then incremental cycles after each ingestion.

    Generates `--ticks` ticks of simulated history into a DuckDB warehouse; in a long-lived worker
    with dbt kept warm (as the Dagster code server runs the marts sensor) times a full refresh,
    then `--cycles` times ingests `--new-ticks` new ticks and times the marts cycle (matching, the
    `ingest_cycle` models, the publish), and last the data tests run apart from it. Prints one
    JSON line.
    """
    interval = interval if interval is not None else new_ticks / TICKS_PER_DAY * DAY
    with bench_home(home) as root:
        settings = Settings(home=root, warehouse_url=None)
        if settings.duckdb_path.exists():
            raise click.ClickException(f"{settings.duckdb_path} exists; give an empty --home")
        warehouse = Warehouse.from_settings(settings)
        t0 = time.perf_counter()
        history = simulate(ticks, seed, datetime.now(UTC))
        history_days = history.last_s / DAY
        write(warehouse, history)
        generation_s = time.perf_counter() - t0
        generation_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        with MartsWorker(settings) as worker:
            full = worker.run("full")
            rng = np.random.default_rng(seed + 1)
            ingest_s, runs, written = [], [], 0
            for _ in range(cycles):
                t1 = time.perf_counter()
                written = ingest_round(warehouse, history, rng, new_ticks, history.last_s + interval)
                ingest_s.append(time.perf_counter() - t1)
                runs.append(worker.run("cycle"))
            checks = worker.run("checks")
            raw_checks = worker.run("raw_history")
        median = sorted(runs, key=lambda r: r.seconds)[len(runs) // 2]
        click.echo(
            json.dumps(
                {
                    "benchmark": "marts",
                    "ticks": history.tick_count,
                    "history_days": round(history_days, 1),
                    "selections": history.selections.num_rows,
                    "loads": history.load_count,
                    "generation_s": round(generation_s, 1),
                    "generation_peak_rss_mb": round(generation_rss_mb),
                    "full_refresh_s": round(full.seconds, 1),
                    "full_refresh_peak_rss_mb": round(full.peak_rss_mb),
                    "new_ticks_per_cycle": written,
                    "cycle_interval_s": round(interval),
                    "ingest_round_s": round(statistics.median(ingest_s), 2),
                    "cycles": len(runs),
                    "cycle_s": round(median.seconds, 2),
                    "cycle_min_s": round(min(r.seconds for r in runs), 2),
                    "cycle_max_s": round(max(r.seconds for r in runs), 2),
                    "cycle_parts_s": {
                        k: round(statistics.median(r.parts[k] for r in runs), 2) for k in PARTS
                    },
                    "cycle_peak_rss_mb": round(max(r.peak_rss_mb for r in runs)),
                    "cycle_slowest_nodes": median.nodes,
                    "worker_start_s": round(worker.start_seconds, 2),
                    "checks_s": round(checks.seconds, 2),
                    "raw_history_checks_s": round(raw_checks.seconds, 2),
                    "warehouse_mb": round(_warehouse_mb(settings)),
                }
            )
        )
