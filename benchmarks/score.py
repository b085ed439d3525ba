"""`oddly bench score`: how fast the champion scores, alone and as the live scoring step.

1. Model only: `predict` on batches of 1,000 feature rows of a simulated held-out world (the
   target: p95 ≤ 50 ms per batch), and the explanation of a batch of candidates.
2. The live step as the Dagster asset runs it (`ml.scoring.score_fresh`): a warehouse filled with
   every simulated book's LineFeed payloads, one feed interval apart in observed time, event
   matching and the dbt marts built once; then each timed cycle ingests the next payloads and
   scores the fresh grid time — panel rebuild, features, scoring, explanations, writing.

The model is the champion in $ODDLY_HOME's MLflow store when there is one (`--model champion`),
else a gradient-boosting model trained here on a small simulated set.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import numpy as np
import sqlalchemy as sa

from ml.dataset import DatasetSpec, build
from ml.evaluate import batch_latency_ms
from ml.explain import explain
from ml.models import AnomalyScorer
from ml.scoring import score_fresh
from oddly.config import FeedConfig
from oddly.feeds.base import FetchOutcome, Payload
from oddly.ingest import process_fetched, start_report
from oddly.matching.run import update_event_map
from oddly.simulator.config import DEFAULT_BOOKS, SimConfig
from oddly.simulator.market import Market
from oddly.warehouse.store import Warehouse

SHARP = [b.name for b in DEFAULT_BOOKS if b.sharp]


def _model(which: str) -> tuple[AnomalyScorer, str]:
    if which == "champion":
        from ml.registry import load_champion
        from ml.tracking import Tracking
        from oddly.config import get_settings

        loaded = load_champion(Tracking.from_settings(get_settings()).activate())
        if loaded is None:
            raise click.ClickException("no champion in $ODDLY_HOME's MLflow store; use --model quick")
        return loaded[0], f"champion version {loaded[1]}"
    data = build(DatasetSpec(seeds=(1, 2), hours=0.5, n_events=12))
    rows = data.scored
    scorer = AnomalyScorer("hgb").fit(rows, rows["label"].to_numpy())
    scorer.threshold_ = float(np.quantile(scorer.predict(rows[rows["label"] == 0]), 0.99))
    return scorer, "hgb trained here (seeds 1-2, 0.5 h)"


def _ingest(market: Market, warehouse: Warehouse, at: datetime) -> int:
    """Every book's payload as one feed run each, observed at `at`."""
    written = 0
    for book in DEFAULT_BOOKS:
        feed = FeedConfig(name=f"sim_{book.name}", agent="linefeed", bookmaker=book.name, base_url="http://x")
        body = market.linefeed_payload(book.name)
        fetched = FetchOutcome(payloads=[Payload("bench", body, received_at=at, kind="prematch")], requests=1)
        report = process_fetched(feed, warehouse, start_report(feed), fetched)
        written += report.ticks_written
    return written


def _dbt_build(home: Path) -> None:
    oddly = str(Path(sys.executable).parent / "oddly")
    command = [oddly, "dbt", "build", "--exclude-resource-type", "unit_test"]
    env = {**os.environ, "ODDLY_HOME": str(home), "ODDLY_WAREHOUSE_URL": ""}
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise click.ClickException(f"dbt build failed:\n{done.stdout[-2000:]}")


@click.command()
@click.option(
    "--model", "which", type=click.Choice(["quick", "champion"]), default="quick", show_default=True
)
@click.option("--events", default=150, show_default=True, help="simulated matches (every book lists each)")
@click.option("--markets", default=8, show_default=True, help="markets per match")
@click.option("--warmup", default=36, show_default=True, help="cycles ingested before the marts are built")
@click.option("--cycles", default=10, show_default=True, help="timed ingest + score cycles")
@click.option("--interval", default=10.0, show_default=True, help="feed interval, seconds")
def score(which: str, events: int, markets: int, warmup: int, cycles: int, interval: float) -> None:
    """Scoring latency: model-only p50/p95 per 1,000 rows and the live scoring step per cycle."""
    scorer, described = _model(which)
    heldout = build(DatasetSpec(seeds=(101,), hours=0.5, n_events=12)).scored
    model_ms = batch_latency_ms(scorer, heldout)
    candidates = heldout.sort_values("label", ascending=False).head(50)
    started = time.perf_counter()
    explain(scorer, candidates)
    explain_ms = 1e3 * (time.perf_counter() - started)

    market = Market(SimConfig(seed=3, n_events=events, markets_per_event=markets, manual_clock=True))
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=interval * (warmup + cycles + 1))
    steps: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        warehouse = Warehouse.from_url(f"duckdb:///{home / 'warehouse.duckdb'}")
        engine = sa.create_engine(f"sqlite:///{home / 'app.db'}")
        for i in range(warmup):
            _ingest(market, warehouse, start + timedelta(seconds=interval * i))
            market.advance(interval)
        update_event_map(warehouse)
        warehouse.dispose()
        _dbt_build(home)
        warehouse = Warehouse.from_url(f"duckdb:///{home / 'warehouse.duckdb'}")
        score_fresh(warehouse, engine, scorer, "bench", SHARP, cycle_seconds=interval)  # the first, full run
        for i in range(warmup, warmup + cycles):
            ticks = _ingest(market, warehouse, start + timedelta(seconds=interval * i))
            market.advance(interval)
            t0 = time.perf_counter()
            report = score_fresh(warehouse, engine, scorer, "bench", SHARP, cycle_seconds=interval)
            seconds = time.perf_counter() - t0
            step = {"seconds": seconds, "rows": report.rows_scored, "candidates": report.candidates}
            steps.append({**step, "ticks": ticks})
        warehouse.dispose()
    step_seconds = np.array([s["seconds"] for s in steps])
    rows = np.array([s["rows"] for s in steps])
    per_1000 = 1e6 * step_seconds / np.maximum(rows, 1)
    click.echo(
        json.dumps(
            {
                "benchmark": "score",
                "model": described,
                "model_ms_per_1000_rows": {k: round(v, 2) for k, v in model_ms.items()},
                "explain_ms_per_50_candidates": round(explain_ms, 1),
                "live_step": {
                    "books": len(DEFAULT_BOOKS),
                    "selections": int(np.median(rows)),
                    "ticks_per_cycle": int(np.median([s["ticks"] for s in steps])),
                    "candidates_per_cycle": float(np.median([s["candidates"] for s in steps])),
                    "seconds_p50": round(float(np.percentile(step_seconds, 50)), 3),
                    "seconds_p95": round(float(np.percentile(step_seconds, 95)), 3),
                    "ms_per_1000_rows_p95": round(float(np.percentile(per_1000, 95)), 1),
                },
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            }
        )
    )
