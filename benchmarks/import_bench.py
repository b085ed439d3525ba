"""`oddly bench import`: import the football-data.co.uk files into a fresh DuckDB warehouse.

Times `oddly.importers.football_data.import_files` end to end on every file of a folder (by default
`../shared/data/football-data`): read and parse the CSV, map the events, store the results, then the
pre-match and closing feed runs (validate, drop what is older than stored, diff, append). Each
repeat starts from an empty warehouse; the median repeat is reported, as price rows/s and
matches/s.
"""

from __future__ import annotations

import json
import resource
import tempfile
import time
from pathlib import Path

import click

from oddly.importers.football_data import ImportReport, import_files
from oddly.warehouse.store import Warehouse

DEFAULT_FOLDER = Path(__file__).resolve().parents[2] / "shared" / "data" / "football-data"


def _once(paths: list[Path]) -> tuple[float, ImportReport]:
    with tempfile.TemporaryDirectory() as tmp:
        warehouse = Warehouse.from_url(f"duckdb:///{Path(tmp) / 'bench.duckdb'}")
        warehouse.ensure_schema()
        t0 = time.perf_counter()
        report = import_files(warehouse, paths)
        seconds = time.perf_counter() - t0
        warehouse.dispose()
    return seconds, report


@click.command("import")
@click.option(
    "--folder",
    type=click.Path(path_type=Path, file_okay=False),
    default=DEFAULT_FOLDER,
    show_default=True,
    help="Folder of football-data CSV files.",
)
@click.option("--repeats", default=5, show_default=True, help="Imports timed; the median is reported.")
def import_bench(folder: Path, repeats: int) -> None:
    """Import throughput: price rows/s and matches/s of `oddly import football-data`'s code."""
    paths = sorted(folder.glob("*.csv"))
    if not paths:
        raise click.ClickException(f"no CSV files in {folder}: pass --folder")
    runs = sorted((_once(paths) for _ in range(repeats)), key=lambda run: run[0])
    seconds, report = runs[len(runs) // 2]
    rows = sum(report.prices.values())
    click.echo(
        json.dumps(
            {
                "benchmark": "import",
                "files": len(paths),
                "matches": report.fixtures,
                "price_rows": rows,
                "ticks_written": sum(report.ticks.values()),
                "results": report.results,
                "repeats": len(runs),
                "seconds": round(seconds, 3),
                "rows_per_s": round(rows / seconds),
                "matches_per_s": round(report.fixtures / seconds),
                "fastest_s": round(runs[0][0], 3),
                "slowest_s": round(runs[-1][0], 3),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
        )
    )
