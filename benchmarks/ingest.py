"""`oddly bench ingest`: parse, validate, diff and append one large LineFeed payload.

The simulator builds a payload of at least 500,000 prices for one book; a first cycle stores it
(the "previous cycle"), the market moves, and the second cycle is timed end to end: parse the
JSON, validate, diff against the stored prices, append the changed ticks. Pinned to one core.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import resource
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import click

from oddly.config import FeedConfig
from oddly.feeds.base import FetchOutcome, Payload
from oddly.ingest import IngestReport, process_fetched, start_report
from oddly.simulator.config import SimConfig
from oddly.simulator.market import Market
from oddly.warehouse.store import Warehouse

BOOK = "22bet"


def _cycle(feed: FeedConfig, warehouse: Warehouse, body: bytes) -> IngestReport:
    """One ingestion run through the same code as the Dagster asset, minus the HTTP fetch."""
    report = start_report(feed)
    payload = Payload(url="bench", body=body, received_at=datetime.now(UTC), kind="prematch")
    return process_fetched(feed, warehouse, report, FetchOutcome(payloads=[payload], requests=1))


def _payloads(seed: int, events: int, markets: int, interval: float, cycles: int) -> list[bytes]:
    """Consecutive cycles of one book, `interval` simulated seconds apart."""
    market = Market(SimConfig(seed=seed, n_events=events, markets_per_event=markets, manual_clock=True))
    payloads = [market.linefeed_payload(BOOK)]
    for _ in range(cycles):
        market.advance(interval)
        payloads.append(market.linefeed_payload(BOOK))
    return payloads


@click.command()
@click.option("--events", default=2000, show_default=True, help="Simulated events in the payload.")
@click.option("--markets", default=125, show_default=True, help="Markets per event (2–3 prices each).")
@click.option("--interval", default=10.0, show_default=True, help="Simulated seconds between cycles.")
@click.option("--cycles", default=5, show_default=True, help="Timed cycles; the median is reported.")
@click.option("--seed", default=1, show_default=True)
@click.option("--cores", default=1, show_default=True, help="Pin the process to this many cores.")
def ingest(events: int, markets: int, interval: float, cycles: int, seed: int, cores: int) -> None:
    """Ingest throughput: prices/s for parse + validate + diff + append, and peak RSS.

    A first cycle stores the market; each timed cycle then ingests the next payload (the market
    `interval` seconds later) against it. Prints the median cycle and the spread.
    """
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:cores]))
    # The payloads are built in a child process, so peak RSS here is the ingestion's alone.
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        first, *timed = pool.apply(_payloads, (seed, events, markets, interval, cycles))
    feed = FeedConfig(name="bench", agent="linefeed", bookmaker=BOOK, base_url="http://127.0.0.1")
    runs: list[tuple[float, IngestReport]] = []
    with tempfile.TemporaryDirectory() as tmp:
        warehouse = Warehouse.from_url(f"duckdb:///{Path(tmp) / 'bench.duckdb'}")
        warehouse.ensure_schema()
        _cycle(feed, warehouse, first)
        for body in timed:
            t0 = time.perf_counter()
            report = _cycle(feed, warehouse, body)
            runs.append((time.perf_counter() - t0, report))
    seconds, report = sorted(runs, key=lambda run: run[0])[len(runs) // 2]
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    click.echo(
        json.dumps(
            {
                "benchmark": "ingest",
                "prices": report.prices_seen,
                "ticks_written": report.ticks_written,
                "rejected": report.rejected,
                "payload_mb": round(len(timed[0]) / 1e6, 1),
                "cycles": len(runs),
                "seconds": round(seconds, 3),
                "prices_per_s": round(report.prices_seen / seconds),
                "fastest_s": round(min(s for s, _ in runs), 3),
                "slowest_s": round(max(s for s, _ in runs), 3),
                "peak_rss_mb": round(peak_rss_mb, 1),
                "cores": cores,
                "parse_validate_s": round(report.parse_seconds, 3),
                "diff_append_s": round(report.write_seconds, 3),
            }
        )
    )
