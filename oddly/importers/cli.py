"""`oddly import …`: historic odds files into the configured warehouse, file by file, each file's
report printed as it is done (matches, price rows, ticks, results, skipped counts by reason).
A bad file or cell never stops the import: what is sound is written, the rest is counted."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import click

from oddly.config import get_settings
from oddly.importers import football_data, oddsportal
from oddly.importers.football_data import ImportReport, Observation
from oddly.warehouse.store import Warehouse

_FILES = click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))


@click.group("import")
def import_group() -> None:
    """Import history: football-data.co.uk CSV, oddsportal averages, Betfair Exchange streams."""


def file_lines(report: ImportReport, name: str) -> list[str]:
    """One file's report in words."""
    lines = [
        f"{name}: {report.fixtures:,} matches of {report.rows:,} rows ({report.encodings.get(name, '?')}), "
        f"{report.results:,} results stored",
    ]
    for observation in (o.value for o in Observation):
        if report.quotes.get(observation) or report.prices.get(observation):
            markets = ", ".join(
                f"{key.split(' ', 1)[1]} {n:,}"
                for key, n in report.markets.items()
                if key.startswith(f"{observation} ")
            )
            lines.append(
                f"  {observation}: price sets {report.quotes[observation]:,} ({markets or 'none'}), "
                f"price rows {report.prices[observation]:,}, ticks written {report.ticks[observation]:,}"
            )
    if report.unknown_codes:
        codes = ", ".join(f"{code} ×{n}" for code, n in report.unknown_codes.most_common())
        lines.append(f"  unknown book codes kept lower-cased: {codes}")
    for reason, n in report.skipped.most_common():
        lines.append(f"  skipped {n:,}: {reason} (first: {report.examples.get(reason, '?')})")
    return lines


def _run(files: Sequence[Path], one: Callable[[Warehouse, Path], ImportReport]) -> None:
    warehouse = Warehouse.from_settings(get_settings())
    totals = [0, 0, 0]
    try:
        for path in files:
            report = one(warehouse, path)
            for line in file_lines(report, path.name):
                click.echo(line)
            totals[0] += report.fixtures
            totals[1] += sum(report.prices.values())
            totals[2] += sum(report.ticks.values())
    finally:
        warehouse.dispose()
    if len(files) > 1:
        click.echo(
            f"{len(files)} files: {totals[0]:,} matches, {totals[1]:,} price rows, {totals[2]:,} ticks"
        )


@import_group.command("football-data")
@_FILES
@click.option("--no-aggregates", is_flag=True, help="Leave out Max/Avg (market_max, market_avg).")
def football_data_command(files: tuple[Path, ...], no_aggregates: bool) -> None:
    """football-data.co.uk CSV files: pre-match and closing 1X2, over/under 2.5 and Asian
    handicap per book (Max/Avg as market_max/market_avg), results into raw.results."""
    _run(files, lambda wh, path: football_data.import_files(wh, [path], aggregates=not no_aggregates))


@import_group.command("oddsportal")
@_FILES
def oddsportal_command(files: tuple[Path, ...]) -> None:
    """Opening/closing average CSV files (bookmaker oddsportal_avg): 1X2, over/under 2.5, both
    teams to score, results into raw.results."""
    _run(files, lambda wh, path: oddsportal.import_files(wh, [path]))


@import_group.command("betfair")
@_FILES
@click.option(
    "--catalogue",
    "catalogues",
    multiple=True,
    type=click.Path(path_type=Path, exists=True),
    help="Market catalogue JSON with runner names (catalogue_<market id>.json beside a file is found).",
)
def betfair_command(files: tuple[Path, ...], catalogues: tuple[Path, ...]) -> None:
    """Betfair Exchange stream files (historic BASIC/PRO, recorded streams; plain, .gz, .bz2): ticks
    of betfair_ex at the best back price, the exchange book into raw.exchange_prices."""
    from oddly.feeds.betfair_stream import read_catalogue
    from oddly.importers.betfair import import_stream_file

    read = [c for path in catalogues for c in read_catalogue(path)]
    warehouse = Warehouse.from_settings(get_settings())
    try:
        for path in files:
            for line in import_stream_file(warehouse, path, read).lines():
                click.echo(line)
    finally:
        warehouse.dispose()
