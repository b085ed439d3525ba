"""The ML domain: the champion model scores every marts refresh (`anomaly_scores`, with the
feature-drift check), and a training asset retrains, evaluates and promotes (daily and on demand).
Thin: the work is in `ml.scoring`, `ml.train` and `ml.registry`."""

import json
import logging
import math

import dagster as dg
import pandas as pd
from pydantic import Field

from ml.cli import DEFAULT_HELDOUT_SEEDS, DEFAULT_TRAIN_SEEDS, parse_seeds
from oddly.config import get_settings
from oddly.dagster_home import WAREHOUSE_WRITER_POOL
from oddly.detect.rules import load_rules
from orchestration.resources import AppDatabaseResource, MlflowResource, WarehouseResource

# scikit-learn, MLflow and the model code are imported only where a model is used: the code server
# and every run process load this module, and most of them never score or train.
CHAMPION_URI = "models:/oddly-anomaly@champion"  # ml.registry.CHAMPION_URI

SCORES_KEY = dg.AssetKey(["ml", "anomaly_scores"])
MODEL_KEY = dg.AssetKey(["ml", "anomaly_model"])
# The marts scoring reads: current prices (the selections) and bookmaker quality (lag, margin).
SCORED_MARTS = [dg.AssetKey(["marts", "fct_prices_current"]), dg.AssetKey(["marts", "fct_bookmaker_quality"])]
NO_CHAMPION = (
    "no champion model yet: nothing scored (the rule detectors still run). Train one with "
    "`oddly train`, or materialize ml/anomaly_model"
)
TOP_CANDIDATES = 8


@dg.asset(
    key=SCORES_KEY,
    deps=SCORED_MARTS,
    group_name="ml",
    kinds={"python", "mlflow"},
    pool=WAREHOUSE_WRITER_POOL,
    description=f"The champion ({CHAMPION_URI}) scores the fresh grid times of the warehouse; "
    "candidates above its operating point are kept with their reasons, and a 5 % sample of all "
    "rows for the drift check, in the app database (model_scores).",
)
def anomaly_scores(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    app_db: AppDatabaseResource,
    mlflow: MlflowResource,
) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata=score_fresh_rows(warehouse, app_db, mlflow, context.log))


def score_fresh_rows(
    warehouse: WarehouseResource,
    app_db: AppDatabaseResource,
    mlflow: MlflowResource,
    log: logging.Logger | dg.DagsterLogManager,
) -> dict[str, object]:
    """Score the fresh rows with the champion (loaded once per process and version); the
    materialization's metadata. The asset and the marts sensor both call this."""
    from ml.registry import load_champion
    from ml.scoring import score_fresh

    loaded = load_champion(mlflow.tracking().activate())
    if loaded is None:
        log.warning(NO_CHAMPION)
        return {"champion": "none", "note": NO_CHAMPION, "rows_scored": 0}
    scorer, version = loaded
    sharp_books = load_rules(warehouse.settings().rules_file).sharp_books
    engine = app_db.engine()
    try:
        report = score_fresh(warehouse.get(), engine, scorer, version, sharp_books)
    finally:
        engine.dispose()
    log.info(report.describe())
    return {
        "champion": f"{scorer.family} version {version}",
        "model_version": version,
        "rows_scored": report.rows_scored,
        "candidates": report.candidates,
        "rows_kept": report.rows_written,
        "latest_observed_at": report.latest.isoformat() if report.latest else "none",
        "seconds": round(report.seconds, 3),
        "top_candidates": dg.MetadataValue.md(candidates_table(report.top.head(TOP_CANDIDATES))),
    }


def candidates_table(top: pd.DataFrame) -> str:
    if top.empty:
        return "no candidate above the model's operating point in this run"
    lines = ["| score | book | event | selection | price | top reason |", "|---|---|---|---|---|---|"]
    for row in top.itertuples():
        reasons = json.loads(row.reasons) if isinstance(row.reasons, str) else []
        first = f"{reasons[0]['feature']} = {reasons[0]['value']}" if reasons else ""
        line = "" if pd.isna(row.line) else f" {row.line:g}"
        lines.append(
            f"| {row.score:.3f} | {row.bookmaker} | {row.canonical_event_id} | "
            f"{row.market}{line} {row.outcome} | {row.price} | {first} |"
        )
    return "\n".join(lines)


@dg.asset_check(
    asset=SCORES_KEY,
    name="feature_drift",
    blocking=False,
    description="PSI of each model feature, the last 24 h of sampled scored rows against the champion's "
    "training window; warns above 0.2 and names the features.",
)
def feature_drift(app_db: AppDatabaseResource, mlflow: MlflowResource) -> dg.AssetCheckResult:
    from ml.registry import load_champion
    from ml.scoring import live_drift

    loaded = load_champion(mlflow.tracking().activate())
    if loaded is None:
        return dg.AssetCheckResult(passed=True, description="no champion model: nothing to compare")
    scorer, version = loaded
    engine = app_db.engine()
    try:
        outcome = live_drift(engine, scorer)
    finally:
        engine.dispose()
    metadata: dict[str, object] = {"model_version": version, "rows": outcome.rows}
    if outcome.report is None:
        return dg.AssetCheckResult(passed=True, description=outcome.note, metadata=metadata)
    psi = {name: round(value, 4) for name, value in outcome.report.psi.items() if math.isfinite(value)}
    metadata |= {"drifted": ", ".join(outcome.report.drifted) or "none", "psi": dg.MetadataValue.json(psi)}
    return dg.AssetCheckResult(
        passed=not outcome.report.drifted,
        severity=dg.AssetCheckSeverity.WARN,
        description=outcome.note,
        metadata=metadata,
    )


class TrainingConfig(dg.Config):
    """The simulated worlds to train and judge on (as `oddly train`'s options)."""

    train_seeds: str = DEFAULT_TRAIN_SEEDS
    heldout_seeds: str = DEFAULT_HELDOUT_SEEDS
    hours: float = 1.0
    events: int = 20
    scenarios_per_hour: float = 90.0
    families: list[str] = Field(default_factory=list, description="empty: every model family")
    min_gain: float = 0.0


@dg.asset(
    key=MODEL_KEY,
    group_name="ml",
    kinds={"scikitlearn", "mlflow"},
    description="Trains every model family on simulated, labelled worlds, registers each as a version "
    "of oddly-anomaly, and moves the champion alias only to a model that beats the champion on the "
    "same held-out worlds. Daily (train_anomaly_model_daily) and on demand.",
)
def anomaly_model(
    context: dg.AssetExecutionContext, config: TrainingConfig, mlflow: MlflowResource
) -> dg.MaterializeResult:
    from ml.dataset import DatasetSpec, build
    from ml.models import FAMILIES
    from ml.train import train_and_promote

    train_ids, heldout_ids = parse_seeds(config.train_seeds), parse_seeds(config.heldout_seeds)
    overlap = sorted(set(train_ids) & set(heldout_ids))
    if overlap:
        raise dg.Failure(f"seeds {overlap} are in both the train and held-out sets")
    spec = DatasetSpec(
        seeds=train_ids,
        hours=config.hours,
        n_events=config.events,
        scenarios_per_hour=config.scenarios_per_hour,
    )
    cache = get_settings().home / "ml" / "datasets"
    train_set, heldout = build(spec, cache), build(spec.with_seeds(heldout_ids), cache)
    outcome = train_and_promote(
        train_set,
        heldout,
        mlflow.tracking(),
        config.families or list(FAMILIES),
        min_gain=config.min_gain,
        on_trained=lambda model, version: context.log.info(
            f"{model.config.family}: version {version}, held-out PR-AUC {model.pr_auc:.4f}"
        ),
    )
    promotion = outcome.promotion
    table = "\n".join(
        ["| family | version | held-out PR-AUC |", "|---|---|---|"]
        + [f"| {m.config.family} | {v} | {m.pr_auc:.4f} |" for m, v in outcome.trained]
    )
    return dg.MaterializeResult(
        metadata={
            "versions": dg.MetadataValue.md(table),
            "promoted": bool(promotion and promotion.promoted),
            "promotion": promotion.describe() if promotion else "not asked to promote",
            "heldout_set": heldout.spec.fingerprint(),
            **{f"train_{key}": value for key, value in train_set.summary().items()},
        }
    )
