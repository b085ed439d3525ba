"""Train one model family on a labelled set and track the run in MLflow: parameters, the feature
list, the data windows, held-out metrics, a precision-recall plot, permutation feature importances
and the model itself (an `ml.models.AnomalyScorer`, logged with the sklearn flavour)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import sklearn
from mlflow.models import infer_signature
from sklearn.inspection import permutation_importance

from ml.dataset import LabelledSet
from ml.evaluate import Report, evaluate, importances_figure, pr_auc, pr_curves_figure
from ml.features import FEATURES
from ml.models import FAMILIES, AnomalyScorer
from ml.registry import Promotion, promote_if_better, register
from ml.tracking import Tracking, family_experiment

# Rows each family is fit on, by default: the outlier detectors learn "normal" from a sample
# (LOF's scoring cost grows with it); the classifier takes every positive and this many negatives.
FIT_ROWS = {"isolation_forest": 50_000, "lof": 8_000, "hgb": 400_000}


@dataclass(frozen=True)
class TrainConfig:
    family: str
    features: tuple[str, ...] = FEATURES
    params: dict[str, Any] = field(default_factory=dict)
    fit_rows: int | None = None
    random_state: int = 0
    k: int = 100
    fpr: float = 0.01
    importance_rows: int = 10_000
    importance_repeats: int = 2

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"unknown model family {self.family!r}; known: {', '.join(FAMILIES)}")

    @property
    def rows_to_fit(self) -> int:
        return self.fit_rows or FIT_ROWS[self.family]


@dataclass
class TrainedModel:
    config: TrainConfig
    scorer: AnomalyScorer
    run_id: str
    model_uri: str
    report: Report

    @property
    def pr_auc(self) -> float:
        return self.report.metric("pr_auc")


def training_rows(config: TrainConfig, train: LabelledSet) -> pd.DataFrame:
    """The rows a family is fit on (see FAMILIES for what each learns from)."""
    rng = np.random.default_rng(config.random_state)
    scored = train.scored
    n = config.rows_to_fit

    def sample(frame: pd.DataFrame, size: int) -> pd.DataFrame:
        if len(frame) <= size:
            return frame
        return frame.iloc[np.sort(rng.choice(len(frame), size=size, replace=False))]

    if config.family == "lof":
        return sample(scored[scored["label"] == 0], n)
    if config.family == "isolation_forest":
        return sample(scored, n)
    # the classifier: every positive and `n` negatives
    return pd.concat([scored[scored["label"] == 1], sample(scored[scored["label"] == 0], n)]).sort_index()


def train(
    config: TrainConfig, train_set: LabelledSet, heldout: LabelledSet, tracking: Tracking
) -> TrainedModel:
    """Fit, evaluate on the held-out set and log everything to the family's experiment."""
    tracking.activate()
    experiment = tracking.experiment(family_experiment(config.family))
    fit_rows = training_rows(config, train_set)
    if fit_rows.empty:
        raise ValueError(f"no rows to fit {config.family} on; the training set has {train_set.summary()}")
    held = heldout.scored
    with mlflow.start_run(experiment_id=experiment, run_name=config.family) as run:
        mlflow.set_tags(
            {
                "family": config.family,
                "learns_from": FAMILIES[config.family][0],
                "train_set": train_set.spec.fingerprint(),
                "heldout_set": heldout.spec.fingerprint(),
            }
        )
        scorer = AnomalyScorer(config.family, config.features, config.params or None, config.random_state)
        mlflow.log_params(_params(config, scorer, train_set, heldout, len(fit_rows)))
        mlflow.log_dict({"features": list(config.features)}, "features.json")

        started = time.perf_counter()
        scorer.fit(fit_rows, fit_rows["label"].to_numpy())
        fit_seconds = time.perf_counter() - started

        started = time.perf_counter()
        scores = scorer.predict(held)
        score_seconds = time.perf_counter() - started
        report = evaluate(held, scores, heldout.scenarios, k=config.k, fpr=config.fpr)
        # live scoring flags a row as an alert candidate above the same operating point
        scorer.threshold_ = report.threshold

        mlflow.log_metrics(
            {
                **report.mlflow_metrics("heldout"),
                "operating_threshold": report.threshold,
                "fit_seconds": fit_seconds,
                "score_ms_per_1000_rows": 1e6 * score_seconds / max(len(held), 1),
            }
        )
        title = f"{config.family} on held-out seeds {_seeds(heldout)}"
        mlflow.log_figure(pr_curves_figure(held, scores, title), "pr_curve.png")
        importances = feature_importances(scorer, held, config)
        mlflow.log_table(importances, "feature_importances.json")
        mlflow.log_text(importances.to_csv(index=False), "feature_importances.csv")
        mlflow.log_figure(
            importances_figure(importances, f"{config.family}: permutation importance"),
            "feature_importances.png",
        )
        mlflow.log_text(report.format(title), "heldout_report.txt")
        mlflow.log_text(report.table.to_csv(index_label="scope"), "heldout_metrics.csv")
        mlflow.log_text(report.detections.to_csv(index=False), "heldout_detections.csv")
        mlflow.log_text(train_set.profiles.to_csv(index=False), "book_profiles.csv")

        example = held[list(config.features)].head(5)
        info = mlflow.sklearn.log_model(
            scorer,
            name="model",
            signature=infer_signature(example, scorer.predict(example)),
            input_example=example,
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
            pip_requirements=_requirements(),
        )
    return TrainedModel(config, scorer, run.info.run_id, info.model_uri, report)


def feature_importances(scorer: AnomalyScorer, rows: pd.DataFrame, config: TrainConfig) -> pd.DataFrame:
    """Permutation importance: how much PR-AUC drops when one feature is shuffled (on a sample
    of the rows keeping every positive, up to half of the sample)."""
    rng = np.random.default_rng(config.random_state)
    positive = np.flatnonzero(rows["label"].to_numpy() == 1)
    negative = np.flatnonzero(rows["label"].to_numpy() == 0)
    half = config.importance_rows // 2
    take = np.concatenate(
        [
            rng.choice(positive, size=min(half, len(positive)), replace=False),
            rng.choice(
                negative,
                size=min(config.importance_rows - min(half, len(positive)), len(negative)),
                replace=False,
            ),
        ]
    )
    sample = rows.iloc[np.sort(take)]
    result = permutation_importance(
        scorer,
        sample[list(config.features)],
        sample["label"].to_numpy(),
        scoring=lambda est, X, y: pr_auc(y, est.predict(X)),
        n_repeats=config.importance_repeats,
        random_state=config.random_state,
        n_jobs=1,
    )
    return (
        pd.DataFrame(
            {
                "feature": list(config.features),
                "importance": result["importances_mean"],
                "std": result["importances_std"],
            }
        )
        .sort_values("importance", ascending=False)
        .reset_index(drop=True)
    )


def _params(
    config: TrainConfig, scorer: AnomalyScorer, train_set: LabelledSet, heldout: LabelledSet, fit_rows: int
) -> dict[str, Any]:
    train_start, train_end = train_set.window
    held_start, held_end = heldout.window
    params: dict[str, Any] = {
        "family": config.family,
        "features": ",".join(config.features),
        "n_features": len(config.features),
        "fit_rows": fit_rows,
        "random_state": config.random_state,
        "k": config.k,
        "fpr": config.fpr,
        "train_window": f"{train_start.isoformat()}/{train_end.isoformat()}",
        "heldout_window": f"{held_start.isoformat()}/{held_end.isoformat()}",
        **{f"model.{k}": v for k, v in scorer.estimator_params.items()},
        **{f"train.{k}": v for k, v in train_set.spec.params().items()},
        **{f"train.{k}": v for k, v in train_set.summary().items()},
        "heldout.seeds": _seeds(heldout),
        **{f"heldout.{k}": v for k, v in heldout.summary().items()},
    }
    return params


def _seeds(data: LabelledSet) -> str:
    return ",".join(map(str, data.spec.seeds))


def _requirements() -> list[str]:
    """Pinned to what trained the model, instead of MLflow inferring them in a subprocess."""
    return [
        f"scikit-learn=={sklearn.__version__}",
        f"pandas=={pd.__version__}",
        f"numpy=={np.__version__}",
        f"mlflow=={mlflow.__version__}",
        "oddly-odds",
    ]


@dataclass
class TrainingOutcome:
    trained: list[tuple[TrainedModel, str]]  # each model with its registered version
    promotion: Promotion | None


def train_and_promote(
    train_set: LabelledSet,
    heldout: LabelledSet,
    tracking: Tracking,
    families: Sequence[str] = tuple(FAMILIES),
    *,
    promote: bool = True,
    min_gain: float = 0.0,
    on_trained: Callable[[TrainedModel, str], None] | None = None,
) -> TrainingOutcome:
    """Train every family, register each as a version of `oddly-anomaly`, and move the champion
    alias to the best of them if it beats the current champion on the same held-out set — what
    `oddly train` and the Dagster training asset both do."""
    client = tracking.activate()
    trained = []
    for family in families:
        model = train(TrainConfig(family=family), train_set, heldout, tracking)
        version = register(model)
        trained.append((model, version))
        if on_trained is not None:
            on_trained(model, version)
    promotion = None
    if promote and trained:
        _, best = max(trained, key=lambda pair: pair[0].pr_auc)
        promotion = promote_if_better(client, best, heldout, min_gain=min_gain)
    return TrainingOutcome(trained, promotion)
