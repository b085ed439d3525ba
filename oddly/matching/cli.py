"""`oddly match`: refresh the event map and say what could not be matched."""

from __future__ import annotations

import click

from oddly.config import get_settings
from oddly.matching.run import update_event_map
from oddly.warehouse.store import Warehouse


@click.command()
@click.option("--show", default=10, show_default=True, help="How many unmatched/ambiguous events to list.")
def match(show: int) -> None:
    """Match every bookmaker's current events to canonical events (raw.event_map)."""
    report = update_event_map(Warehouse.from_settings(get_settings()))
    click.echo(
        f"{report.events} bookmaker events → {report.canonical_events} canonical events, "
        f"{report.matched_across_books} listed at more than one book; "
        f"{len(report.unmatched)} unmatched, {len(report.ambiguous)} ambiguous"
    )
    for kind, rows in (("unmatched", report.unmatched), ("ambiguous", report.ambiguous)):
        for row in rows[:show]:
            event = f"{row['bookmaker']} {row['source_event_id']} {row['home']} v {row['away']}"
            click.echo(f"  {kind}: {event}: {row['reason']}")
