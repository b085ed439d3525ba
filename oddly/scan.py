"""`oddly scan`: poll the configured feeds without Dagster, through the same ingestion code the
Dagster assets run (fast detectors included: each detection is printed as a `»` line). `--once`
runs one cycle and prints what each feed did."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence

import click

from oddly.config import ConfigError, FeedConfig, get_settings
from oddly.detect.rules import rules_for_ingestion
from oddly.ingest import IngestReport, ingest_feeds
from oddly.warehouse.store import Warehouse

COLUMNS = (
    ("feed", "feed"),
    ("status", "status"),
    ("prices", "prices_seen"),
    ("ticks", "ticks_written"),
    ("rejected", "rejected"),
    ("unmapped", "unmapped"),
    ("fetch s", "fetch_seconds"),
    ("write s", "write_seconds"),
)


def format_table(reports: Sequence[IngestReport]) -> str:
    """A plain-text table of reports, then one line per feed that has something to say."""
    rows = [[h for h, _ in COLUMNS]]
    for r in reports:
        values = [getattr(r, attr) for _, attr in COLUMNS]
        rows.append([f"{v:.3f}" if isinstance(v, float) else str(v) for v in values])
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines += [f"! {r.error}" for r in reports if r.error]
    lines += [f"» {d.explanation}" for r in reports for d in r.detections]
    lines += [f"! {r.detection_error}" for r in reports if r.detection_error]
    return "\n".join(lines)


def _select(feeds: list[FeedConfig], names: tuple[str, ...]) -> list[FeedConfig]:
    if not names:
        return feeds
    unknown = sorted(set(names) - {f.name for f in feeds})
    if unknown:
        raise click.BadParameter(
            f"unknown feed(s) {', '.join(unknown)}; configured: {', '.join(f.name for f in feeds)}"
        )
    return [f for f in feeds if f.name in names]


@click.command()
@click.option("--once", is_flag=True, help="Run one ingestion cycle for every feed, print a summary, exit.")
@click.option("--feed", "feed_names", multiple=True, help="Only this feed (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON line per feed instead of a table.")
def scan(once: bool, feed_names: tuple[str, ...], as_json: bool) -> None:
    """Poll the configured feeds into the warehouse (without Dagster).

    Exits 1 when a feed failed in a --once cycle (the others are still ingested).
    """
    settings = get_settings()
    try:
        feeds = _select(settings.config.enabled_feeds, feed_names)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    if not feeds:
        raise click.ClickException(f"no enabled feeds in {settings.config_file}")
    warehouse = Warehouse.from_settings(settings)
    rules, rules_problem = rules_for_ingestion(settings.rules_file)
    if rules_problem:
        click.echo(f"! {rules_problem}", err=True)
    due = dict.fromkeys((f.name for f in feeds), 0.0)
    while True:
        now = time.monotonic()
        cycle = [f for f in feeds if due[f.name] <= now]
        reports = ingest_feeds(cycle, warehouse, rules=rules)
        for feed in cycle:
            due[feed.name] = now + feed.interval_seconds
        if as_json:
            for r in reports:
                click.echo(json.dumps(r.as_metadata()))
        else:
            click.echo(format_table(reports))
        if once:
            sys.exit(1 if any(r.status == "failed" for r in reports) else 0)
        time.sleep(max(0.0, min(due.values()) - time.monotonic()))
