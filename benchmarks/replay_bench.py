"""`oddly bench replay`: replay a Betfair stream file at max speed into a temporary home.

Times `oddly.replay.replay` end to end on the cricket MATCH_ODDS file (`../shared/data/betfair/
1.200806927`, six days of pre-play and in-play exchange prices, 18,529 updates): read the stream
with betfairlightweight, and for every publish time one run as a live poll makes it — validate,
diff against `raw.latest_prices`, append the change-only ticks (one DuckDB transaction), the fast
detectors on them, the alert decisions — into a fresh DuckDB warehouse and SQLite app database.
Reports the file's real-time span, the wall time, the speed-up over real time, updates/s and the
ticks written (checked against what `oddly import betfair` writes from the same file).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import tempfile
from pathlib import Path

import click

from oddly.config import Settings
from oddly.detect.rules import load_rules
from oddly.importers.betfair import import_stream_file
from oddly.replay import replay, replay_settings
from oddly.warehouse.store import Warehouse

DEFAULT_FILE = Path(__file__).resolve().parents[2] / "shared" / "data" / "betfair" / "1.200806927"


@click.command("replay")
@click.option(
    "--file",
    "path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=DEFAULT_FILE,
    show_default=True,
    help="Betfair stream file to replay.",
)
def replay_bench(path: Path) -> None:
    """Replay speed-up over real time: a Betfair stream file at max speed into a temporary home."""
    if not path.is_file():
        raise click.ClickException(f"{path} not found: pass --file (a Betfair stream file)")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        settings = replay_settings(Settings(), home=Path(tmp) / "home", rules_file=None, policy_file=None)
        summary = replay([path], settings, load_rules(settings.rules_file))
        imported = Warehouse.from_url(f"duckdb:///{Path(tmp) / 'import.duckdb'}")
        import_ticks = import_stream_file(imported, path).ticks
        imported.dispose()
    wall = summary.wall_seconds
    click.echo(
        json.dumps(
            {
                "benchmark": "replay",
                "file": path.name,
                "updates": summary.updates,
                "cycles": summary.cycles,
                "recorded_span_s": round(summary.recorded_seconds, 1),
                "wall_s": round(wall, 1),
                "speedup": round(summary.speedup or 0.0, 1),
                "updates_per_s": round(summary.updates / wall, 1) if wall else None,
                "cycles_per_s": round(summary.cycles / wall, 1) if wall else None,
                "ticks_written": summary.ticks_written,
                "ticks_as_imported": import_ticks,
                "detections": dict(summary.detections),
                "decisions": summary.decisions,
                "runs": dict(summary.by_status),
                "problems": summary.problems,
                "load_before": [round(x, 2) for x in load_before],
                "load_after": [round(x, 2) for x in os.getloadavg()],
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
        )
    )
