"""The anomaly models as the app shows them: the training runs of every `oddly-anomaly-<family>`
experiment side by side, the registered model's versions with the champion and its promotions,
and the champion's feature drift.

Drift is computed here with `ml.scoring.live_drift` on the app database, the same function and
data as the Dagster `feature_drift` check: reading that check's last evaluation would need the
Dagster instance, which neither `oddly` nor `ml` imports.

MLflow is only read: a store that does not exist yet is reported, never created. MLflow and the
model code are imported on first use (seconds of imports an app without a store never needs), and
`warm_up` does that and opens the store ahead of the first page that shows them.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import sqlalchemy as sa

from ml.tracking import EVALUATION_EXPERIMENT, EXPERIMENT_PREFIX, Tracking

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

# The held-out metrics shown side by side (ml.evaluate.Report.mlflow_metrics, scope "overall").
RUN_METRICS = {
    "heldout.overall.pr_auc": "pr_auc",
    "heldout.overall.precision_at_k": "precision_at_k",
    "heldout.overall.recall_at_fpr": "recall_at_fpr",
    "heldout.overall.detected_share": "detected_share",
    "heldout.overall.median_ttd_seconds": "time_to_detect_s",
    "fit_seconds": "fit_seconds",
}


class ModelsUnavailable(RuntimeError):
    """The MLflow store is missing or does not answer; the message says what to do."""


def client(tracking: Tracking) -> MlflowClient:
    """A client of the store, which must exist already (an embedded store is never created here)."""
    if tracking.uri.startswith("sqlite:///"):
        path = Path(tracking.uri.removeprefix("sqlite:///"))
        if not path.exists():
            raise ModelsUnavailable(
                f"no MLflow store yet at {path}: train a model first (`oddly train`, or the Dagster "
                "training job)"
            )
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking.uri, registry_uri=tracking.uri)


def store_error(exc: BaseException) -> str | None:
    """MLflow's message when `exc` is an MLflow error (the store did not answer), else None."""
    if "mlflow" not in sys.modules:  # nothing of MLflow ran, so it cannot be MLflow's
        return None
    from mlflow.exceptions import MlflowException

    return exc.message if isinstance(exc, MlflowException) else None


def warm_up(tracking: Tracking) -> None:
    """What the first read of the models costs a process, paid ahead: import MLflow and the model
    code, open the store and read it once. Without a store, nothing. MLflow's process-wide URIs
    are left alone (this may run in a background thread)."""
    mlflow = client(tracking)
    import ml.scoring  # noqa: F401 - the drift check's code

    versions(mlflow)
    runs(mlflow, max_results=1)


def runs(mlflow: MlflowClient, max_results: int = 200) -> pd.DataFrame:
    """Training runs of every model family, newest first, with their held-out metrics."""
    experiments = {
        e.experiment_id: e.name.removeprefix(f"{EXPERIMENT_PREFIX}-")
        for e in mlflow.search_experiments(filter_string=f"name LIKE '{EXPERIMENT_PREFIX}-%'")
        if e.name != EVALUATION_EXPERIMENT
    }
    columns = ["started_at", "family", *RUN_METRICS.values(), "heldout_set", "status", "run_id"]
    if not experiments:
        return pd.DataFrame(columns=columns)
    found = mlflow.search_runs(
        list(experiments), max_results=max_results, order_by=["attributes.start_time DESC"]
    )
    rows = [
        {
            "started_at": pd.Timestamp(run.info.start_time, unit="ms", tz="UTC"),
            "family": experiments.get(run.info.experiment_id, run.data.tags.get("family", "")),
            **{label: run.data.metrics.get(metric, math.nan) for metric, label in RUN_METRICS.items()},
            "heldout_set": run.data.tags.get("heldout_set", ""),
            "status": run.info.status,
            "run_id": run.info.run_id,
        }
        for run in found
    ]
    return pd.DataFrame(rows, columns=columns)


def versions(mlflow: MlflowClient) -> pd.DataFrame:
    """Every version of the registered model, newest first: its family, its held-out PR-AUC when
    it was last compared, whether it is the champion, and why it was (not) promoted."""
    from ml.registry import MODEL_NAME, champion

    columns = ["version", "registered_at", "family", "champion", "heldout_pr_auc", "promotion", "run_id"]
    found = mlflow.search_model_versions(f"name = '{MODEL_NAME}'")
    current = champion(mlflow) if found else None
    rows = [
        {
            "version": int(v.version),
            "registered_at": pd.Timestamp(v.creation_timestamp, unit="ms", tz="UTC"),
            "family": v.tags.get("family", ""),
            "champion": current is not None and str(current.version) == str(v.version),
            "heldout_pr_auc": float(
                v.tags.get("heldout_pr_auc", v.tags.get("heldout_pr_auc_at_training", "nan"))
            ),
            "promotion": v.tags.get("promotion", "not compared yet"),
            "run_id": v.run_id,
        }
        for v in found
    ]
    return pd.DataFrame(rows, columns=columns).sort_values("version", ascending=False, ignore_index=True)


@dataclass(frozen=True)
class DriftStatus:
    model_version: str | None
    rows: int
    summary: str  # a sentence: drifted features, not judged and why, or no champion
    psi: pd.DataFrame = field(default_factory=pd.DataFrame)  # feature, psi, drifted

    @property
    def drifted(self) -> bool:
        return bool(not self.psi.empty and self.psi["drifted"].any())


def drift(tracking: Tracking, app_engine: sa.Engine, hours: float = 24.0) -> DriftStatus:
    """The champion's feature drift over the last `hours` of sampled scored rows."""
    mlflow = client(tracking)  # raises before activate() could create a missing store
    from ml.registry import CHAMPION, load_champion
    from ml.scoring import live_drift

    tracking.activate()  # loading a `models:/` URI goes through this process's registry URI
    loaded = load_champion(mlflow)
    if loaded is None:
        return DriftStatus(None, 0, f"no champion model yet: nothing to compare (alias `{CHAMPION}`)")
    scorer, version = loaded
    outcome = live_drift(app_engine, scorer, hours=hours)
    if outcome.report is None:
        return DriftStatus(version, outcome.rows, outcome.note)
    report = outcome.report
    psi = pd.DataFrame({"feature": list(report.psi), "psi": list(report.psi.values())})
    psi["drifted"] = psi["feature"].isin(report.drifted)
    return DriftStatus(
        version, outcome.rows, outcome.note, psi.sort_values("psi", ascending=False, ignore_index=True)
    )
