"""`oddly train` and `oddly evaluate`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import click

from oddly.config import get_settings

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_TRAIN_SEEDS = "1-8"
DEFAULT_HELDOUT_SEEDS = "101-104"


def parse_seeds(text: str) -> tuple[int, ...]:
    """`1-8`, `1,2,5` or a mix (`1-3,7`)."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                low, high = (int(x) for x in part.split("-", 1))
                seeds.extend(range(low, high + 1))
            elif part:
                seeds.append(int(part))
    except ValueError:
        raise click.BadParameter(f"{text!r}: give seeds as 1-8 or 1,2,5") from None
    if not seeds:
        raise click.BadParameter("no seeds given")
    return tuple(dict.fromkeys(seeds))


def data_options(fn: F) -> F:
    """The simulated worlds: how long, how many matches, how often a scenario is injected."""
    options = [
        click.option(
            "--heldout-seeds",
            default=DEFAULT_HELDOUT_SEEDS,
            show_default=True,
            help="seeds of the held-out worlds (never trained on)",
        ),
        click.option("--hours", type=float, default=1.0, show_default=True, help="simulated hours per seed"),
        click.option("--events", type=int, default=20, show_default=True, help="matches per world"),
        click.option("--scenarios-per-hour", type=float, default=90.0, show_default=True),
        click.option(
            "--cache/--no-cache",
            default=True,
            show_default=True,
            help="keep generated data under $ODDLY_HOME/ml/datasets",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _spec(seeds: tuple[int, ...], hours: float, events: int, scenarios_per_hour: float) -> Any:
    from ml.dataset import DatasetSpec

    return DatasetSpec(seeds=seeds, hours=hours, n_events=events, scenarios_per_hour=scenarios_per_hour)


def _build(spec: Any, cache: bool, what: str) -> Any:
    from ml.dataset import build

    started = time.perf_counter()
    cache_dir = get_settings().home / "ml" / "datasets" if cache else None
    data = build(spec, cache_dir)
    summary = ", ".join(f"{k} {v:,}" for k, v in data.summary().items())
    seeds = ",".join(map(str, spec.seeds))
    click.echo(f"{what}: seeds {seeds} — {summary} ({time.perf_counter() - started:.1f} s)")
    return data


@click.command()
@click.option(
    "--family",
    "families",
    multiple=True,
    type=click.Choice(["isolation_forest", "lof", "hgb"]),
    help="model families to train (repeatable; default: all)",
)
@click.option(
    "--train-seeds", default=DEFAULT_TRAIN_SEEDS, show_default=True, help="seeds of the training worlds"
)
@data_options
@click.option(
    "--promote/--no-promote",
    default=True,
    show_default=True,
    help="move the champion alias to the best candidate if it beats the champion",
)
@click.option(
    "--min-gain",
    type=float,
    default=0.0,
    show_default=True,
    help="PR-AUC a candidate must gain over the champion to replace it",
)
def train(
    families: tuple[str, ...],
    train_seeds: str,
    heldout_seeds: str,
    hours: float,
    events: int,
    scenarios_per_hour: float,
    cache: bool,
    promote: bool,
    min_gain: float,
) -> None:
    """Train the anomaly models on simulated, labelled worlds, evaluate them on held-out worlds,
    register them as `oddly-anomaly` versions and promote the best if it beats the champion."""
    from ml.tracking import Tracking
    from ml.train import TrainedModel, train_and_promote

    train_ids, heldout_ids = parse_seeds(train_seeds), parse_seeds(heldout_seeds)
    overlap = set(train_ids) & set(heldout_ids)
    if overlap:
        raise click.BadParameter(f"seeds {sorted(overlap)} are in both sets", param_hint="--heldout-seeds")
    tracking = Tracking.from_settings(get_settings())
    click.echo(f"MLflow tracking: {tracking.uri}")
    train_set = _build(_spec(train_ids, hours, events, scenarios_per_hour), cache, "train")
    heldout = _build(_spec(heldout_ids, hours, events, scenarios_per_hour), cache, "held-out")
    started = time.perf_counter()

    def report(model: TrainedModel, version: str) -> None:
        nonlocal started
        seconds = time.perf_counter() - started
        title = f"{model.config.family} (run {model.run_id}, version {version}, {seconds:.0f} s)"
        click.echo("\n" + model.report.format(title))
        started = time.perf_counter()

    outcome = train_and_promote(
        train_set,
        heldout,
        tracking,
        families or ("isolation_forest", "lof", "hgb"),
        promote=promote,
        min_gain=min_gain,
        on_trained=report,
    )
    if outcome.promotion is not None:
        click.echo("\n" + outcome.promotion.describe())


@click.command()
@click.option("--model-uri", default=None, help="model to evaluate (default: models:/oddly-anomaly@champion)")
@data_options
@click.option("--k", type=int, default=100, show_default=True, help="k of precision@k")
@click.option(
    "--fpr",
    type=float,
    default=0.01,
    show_default=True,
    help="false-positive rate of the operating point (recall, time to detect)",
)
@click.option(
    "--rules/--no-rules",
    default=True,
    show_default=True,
    help="also replay the rule detectors (ODDLY_RULES_FILE) on the same rows, side by side",
)
def evaluate(
    model_uri: str | None,
    heldout_seeds: str,
    hours: float,
    events: int,
    scenarios_per_hour: float,
    cache: bool,
    k: int,
    fpr: float,
    rules: bool,
) -> None:
    """Score held-out simulated worlds with a registered model (the champion by default), print
    the metrics per scenario type and overall next to the rule detectors', and log them to MLflow."""
    import mlflow

    from ml.evaluate import batch_latency_ms, pr_curves_figure, side_by_side
    from ml.evaluate import evaluate as evaluate_scores
    from ml.registry import CHAMPION_URI, champion, load_scorer
    from ml.tracking import EVALUATION_EXPERIMENT, Tracking

    settings = get_settings()
    tracking = Tracking.from_settings(settings)
    client = tracking.activate()
    uri = model_uri or CHAMPION_URI
    if model_uri is None and champion(client) is None:
        raise click.ClickException(f"no champion in {tracking.uri} yet; run `oddly train` first")
    scorer = load_scorer(uri)
    heldout = _build(_spec(parse_seeds(heldout_seeds), hours, events, scenarios_per_hour), cache, "held-out")
    rows = heldout.scored
    scores = scorer.predict(rows)
    latency = batch_latency_ms(scorer, rows)
    report = evaluate_scores(rows, scores, heldout.scenarios, k=k, fpr=fpr)
    title = f"{uri} ({scorer.family}) on held-out seeds {heldout_seeds}"
    click.echo("\n" + report.format(title))
    click.echo(f"scoring a batch of 1,000 rows: p50 {latency['p50']:.1f} ms, p95 {latency['p95']:.1f} ms")
    rule_reports = {}
    if rules:
        from ml.rules_baseline import rule_scores
        from oddly.detect.rules import load_rules

        started = time.perf_counter()
        by_rule = rule_scores(heldout.frame, load_rules(settings.rules_file)).loc[rows.index]
        for name in by_rule.columns:
            rule_reports[name] = evaluate_scores(
                rows, by_rule[name].to_numpy(), heldout.scenarios, k=k, fpr=fpr
            )
        comparison = side_by_side(report, rule_reports)
        click.echo(f"\nrule detectors replayed on the same rows ({time.perf_counter() - started:.0f} s):")
        click.echo(comparison.to_string(float_format=lambda v: f"{v:.3f}"))
    with mlflow.start_run(experiment_id=tracking.experiment(EVALUATION_EXPERIMENT), run_name=scorer.family):
        mlflow.set_tags(
            {"model_uri": uri, "family": scorer.family, "heldout_set": heldout.spec.fingerprint()}
        )
        mlflow.log_params({f"heldout.{key}": value for key, value in heldout.spec.params().items()})
        mlflow.log_params({"k": k, "fpr": fpr})
        mlflow.log_metrics(
            {
                **report.mlflow_metrics("heldout"),
                "score_p50_ms_per_1000_rows": latency["p50"],
                "score_p95_ms_per_1000_rows": latency["p95"],
            }
        )
        for name, rule_report in rule_reports.items():
            mlflow.log_metrics(rule_report.mlflow_metrics(f"rule.{name}"))
        mlflow.log_text(report.format(title), "heldout_report.txt")
        mlflow.log_text(report.table.to_csv(index_label="scope"), "heldout_metrics.csv")
        if rule_reports:
            mlflow.log_text(comparison.to_csv(index_label="scope"), "model_vs_rules.csv")
        mlflow.log_figure(pr_curves_figure(rows, scores, title), "pr_curve.png")
