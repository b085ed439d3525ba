"""`oddly backtest`: replay the detectors over the warehouse's history, grade every signal and the
reference strategy against the close and the results, store the grades in the app database, log
the run to MLflow and print a table per type. `--live` grades the live alerts instead (what the
Dagster asset alerts/grades does every 15 minutes)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import click
import pandas as pd

from oddly.config import get_settings

NO_SIGNALS = (
    "nothing graded: no signal in the window (are there imported or recorded ticks with a sharp book?)"
)
NO_LIVE = "no live alert graded yet: none has had its event kick off"
DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"]


def _types(text: str | None) -> tuple[str, ...]:
    from oddly.grading.replay import REPLAYED_TYPES

    if not text:
        return REPLAYED_TYPES
    names = tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    unknown = [t for t in names if t not in REPLAYED_TYPES]
    if unknown:
        raise click.BadParameter(
            f"unknown type(s) {', '.join(unknown)}; choose from {', '.join(REPLAYED_TYPES)}",
            param_hint="--types",
        )
    return names


def _interval(point: float, low: float, high: float) -> str:
    if not math.isfinite(point):
        return "—"
    return f"{point:+.2%} [{low:+.2%}, {high:+.2%}]"


def summary_table(summary: pd.DataFrame, empty: str = "nothing graded") -> str:
    """The run's summary as a plain table, one line per source, type and horizon (early: signals
    taken 1 h or more before kick-off; late: in the last hour)."""
    if summary.empty:
        return empty
    lines = [
        f"{'source':<9} {'type':<12} {'horizon':<7} {'signals':>7} {'closed':>7} {'mean CLV [95% CI]':>28} "
        f"{'beat close':>10} {'settled':>7} {'ROI [95% CI]':>30}"
    ]
    for r in summary.itertuples():
        beat = "—" if not math.isfinite(r.beat_close_share) else f"{r.beat_close_share:.1%}"
        lines.append(
            f"{r.source:<9} {r.type:<12} {r.horizon:<7} {int(r.signals):>7,} {int(r.with_close):>7,} "
            f"{_interval(r.mean_clv, r.clv_ci_low, r.clv_ci_high):>28} {beat:>10} {int(r.settled):>7,} "
            f"{_interval(r.roi, r.roi_ci_low, r.roi_ci_high):>30}"
        )
    return "\n".join(lines)


@click.command()
@click.option(
    "--since", type=click.DateTime(DATE_FORMATS), default=None, help="first kick-off (UTC) to grade"
)
@click.option("--until", type=click.DateTime(DATE_FORMATS), default=None, help="kick-offs before this (UTC)")
@click.option(
    "--types",
    default=None,
    help="comma-separated detector types to replay (default: value, sharp_drop, steam, out_of_line, "
    "arbitrage, stale_line)",
)
@click.option(
    "--strategy",
    type=click.Choice(["kaunitz", "none"]),
    default="kaunitz",
    show_default=True,
    help="the reference strategy graded beside the detectors",
)
@click.option(
    "--margin",
    type=float,
    default=0.05,
    show_default=True,
    help="the strategy's α: back the best price when 1/best < 1/average - α",
)
@click.option(
    "--strategy-lead-minutes",
    type=float,
    default=60.0,
    show_default=True,
    help="the strategy bets on the prices this long before kick-off (0: the closing prices, as the paper)",
)
@click.option(
    "--strategy-min-books",
    type=int,
    default=4,
    show_default=True,
    help="books that must quote an outcome for the strategy to back it",
)
@click.option(
    "--resamples", type=int, default=2000, show_default=True, help="bootstrap resamples per interval"
)
@click.option("--seed", type=int, default=None, help="bootstrap seed (default: fixed, so reruns agree)")
@click.option(
    "--mlflow/--no-mlflow", "use_mlflow", default=True, show_default=True, help="log the run to MLflow"
)
@click.option(
    "--live", is_flag=True, help="grade the app database's live alerts instead of replaying history"
)
def backtest(
    since: datetime | None,
    until: datetime | None,
    types: str | None,
    strategy: str,
    margin: float,
    strategy_lead_minutes: float,
    strategy_min_books: int,
    resamples: int,
    seed: int | None,
    use_mlflow: bool,
    live: bool,
) -> None:
    """Grade every signal against what followed: closing-line value against the sharp book's
    no-vig close and, where results exist, profit at level stakes, with bootstrap 95 % intervals.
    Replays the rule detectors over the warehouse's history (imported or recorded ticks) and the
    strategy of Kaunitz, Zhong & Kreiner (2017) beside them; prints a table per type, stores the
    graded bets in the app database (the app's Backtest page) and logs the run to MLflow."""
    from oddly.alerts.policy import load_policy
    from oddly.appdb import open_app_db
    from oddly.detect.rules import load_rules
    from oddly.grading.backtest import BacktestConfig, run_backtest
    from oddly.grading.kaunitz import KaunitzParams
    from oddly.grading.live import grade_live
    from oddly.grading.stats import DEFAULT_SEED
    from oddly.grading.store import set_mlflow_run, write_run
    from oddly.warehouse.store import Warehouse

    settings = get_settings()
    rules = load_rules(settings.rules_file)
    policy = load_policy(settings.alert_policy_file)
    window = [None if t is None else t.replace(tzinfo=UTC) for t in (since, until)]
    warehouse = Warehouse.from_settings(settings)
    engine = open_app_db(settings)
    try:
        if live:
            run = grade_live(
                warehouse,
                engine,
                rules,
                policy_version=policy.version,
                resamples=resamples,
                seed=seed or DEFAULT_SEED,
            )
        else:
            try:
                config = BacktestConfig(
                    since=window[0],
                    until=window[1],
                    types=_types(types),
                    strategy=None
                    if strategy == "none"
                    else KaunitzParams(
                        alpha=margin, min_books=strategy_min_books, lead_minutes=strategy_lead_minutes
                    ),
                    resamples=resamples,
                    seed=seed or DEFAULT_SEED,
                )
            except ValueError as exc:
                raise click.UsageError(str(exc)) from None
            run = run_backtest(warehouse, rules, config, policy_version=policy.version, progress=click.echo)
            write_run(engine, run)
        click.echo(run.describe())
        click.echo(summary_table(run.summary, NO_LIVE if live else NO_SIGNALS))
        for reason, n in run.skipped.most_common():
            click.echo(f"  skipped {n:,}: {reason}")
        if use_mlflow and not live:
            from ml.backtest import EXPERIMENT, log_backtest
            from ml.tracking import Tracking

            tracking = Tracking.from_settings(settings)
            mlflow_run = log_backtest(tracking, run)
            set_mlflow_run(engine, run.run_id, mlflow_run)
            click.echo(f"MLflow: experiment {EXPERIMENT}, run {mlflow_run} ({tracking.uri})")
        if run.stored:
            click.echo(
                f"graded bets stored in the app database as run {run.run_id} (the app's Backtest page)"
            )
    finally:
        warehouse.dispose()
        engine.dispose()
