"""`oddly simulate`: the market simulator as an HTTP server on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import click

from oddly.simulator.config import SimConfig
from oddly.simulator.faults import FAULT_KINDS
from oddly.simulator.server import SimulatorApp, serve


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, show_default=True)
@click.option("--seed", default=7, show_default=True, help="Same seed, same market.")
@click.option("--events", default=40, show_default=True, help="Simulated events.")
@click.option("--markets", default=12, show_default=True, help="Markets per event.")
@click.option("--live-share", default=0.25, show_default=True, help="Share of events already in play.")
@click.option("--step", default=1.0, show_default=True, help="Seconds per simulation step.")
@click.option("--scenarios-per-hour", default=120.0, show_default=True, help="Injected labeled scenarios.")
@click.option(
    "--moves-per-hour", default=8.0, show_default=True, help="Natural re-pricing moves per event per hour."
)
@click.option("--manual-clock", is_flag=True, help="Advance only on POST /_sim/advance?seconds=N.")
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="BOOK:KIND[:COUNT]",
    help=f"Misbehave from the start (repeatable). Kinds: {', '.join(FAULT_KINDS)}; COUNT 0 = for good.",
)
@click.option(
    "--ground-truth-out", type=click.Path(path_type=Path), help="Write the scenarios here (CSV) on exit."
)
def simulate(
    host: str,
    port: int,
    seed: int,
    events: int,
    markets: int,
    live_share: float,
    step: float,
    scenarios_per_hour: float,
    moves_per_hour: float,
    manual_clock: bool,
    faults: tuple[str, ...],
    ground_truth_out: Path | None,
) -> None:
    """Serve simulated bookmakers in the real 22Bet/1xBet LineFeed format.

    Each book lives under its own base path (http://HOST:PORT/<book>), e.g.
    /22bet/LineFeed/Get1x2_VZip and /22bet/service-api/LiveFeed/Get1x2_VZip.
    Control: GET /_sim/state, GET /_sim/events, GET /_sim/ground-truth, POST /_sim/inject
    (a labeled scenario now), POST/DELETE /_sim/fault.
    """
    config = SimConfig(
        seed=seed,
        n_events=events,
        markets_per_event=markets,
        live_share=live_share,
        step_seconds=step,
        scenarios_per_hour=scenarios_per_hour,
        moves_per_hour=moves_per_hour,
        manual_clock=manual_clock,
    )
    app = SimulatorApp(config)
    for spec in faults:
        parts = spec.split(":")
        if len(parts) not in (2, 3):
            raise click.BadParameter(f"{spec!r}: expected BOOK:KIND[:COUNT]", param_hint="--fault")
        try:
            app.faults.add(parts[0], parts[1], int(parts[2]) if len(parts) == 3 else 0)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--fault") from exc
    base = f"http://{host}:{port}"
    click.echo(f"market simulator on {base} (seed {seed}); books:")
    for book in config.books:
        click.echo(f"  {book.name:<10} {base}/{book.name}{'  (sharp)' if book.sharp else ''}")
    click.echo(f"state {base}/_sim/state · ground truth {base}/_sim/ground-truth")
    serve(app, host, port, ground_truth_out)
