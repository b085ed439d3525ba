"""The registered model `oddly-anomaly` and its `champion` alias.

Every trained candidate becomes a version; the alias moves to it only when it beats the current
champion on the same held-out set, both scored now, side by side (never a metric remembered from
another set). Scoring loads `models:/oddly-anomaly@champion`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import mlflow
from mlflow.exceptions import MlflowException

from ml.dataset import LabelledSet
from ml.evaluate import pr_auc
from ml.models import AnomalyScorer

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

    from ml.train import TrainedModel

MODEL_NAME = "oddly-anomaly"
CHAMPION = "champion"
CHAMPION_URI = f"models:/{MODEL_NAME}@{CHAMPION}"


@dataclass(frozen=True)
class Promotion:
    """What happened to one candidate version, and why."""

    version: str
    promoted: bool
    candidate_pr_auc: float
    champion_version: str | None
    champion_pr_auc: float | None
    heldout_set: str
    reason: str

    def describe(self) -> str:
        verdict = "is now the champion" if self.promoted else "was not promoted"
        return f"{MODEL_NAME} version {self.version} {verdict}: {self.reason}"


def register(trained: TrainedModel) -> str:
    """Register a trained model as a new version of `oddly-anomaly`; returns the version."""
    version = mlflow.register_model(
        trained.model_uri,
        MODEL_NAME,
        tags={
            "family": trained.config.family,
            "run_id": trained.run_id,
            "heldout_pr_auc_at_training": f"{trained.pr_auc:.6f}",
        },
    )
    return str(version.version)


def champion(client: MlflowClient) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(MODEL_NAME, CHAMPION)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def load_scorer(uri: str) -> AnomalyScorer:
    model = mlflow.sklearn.load_model(uri)
    if not isinstance(model, AnomalyScorer):
        raise TypeError(f"{uri} is a {type(model).__name__}, not an ml.models.AnomalyScorer")
    return model


def heldout_pr_auc(scorer: AnomalyScorer, heldout: LabelledSet) -> float:
    rows = heldout.scored
    return pr_auc(rows["label"].to_numpy(), scorer.predict(rows))


def promote_if_better(
    client: MlflowClient, version: str, heldout: LabelledSet, min_gain: float = 0.0
) -> Promotion:
    """Move `champion` to `version` when its PR-AUC on `heldout` exceeds the champion's on the
    same set by more than `min_gain` (or when there is no champion yet). Records the decision as
    tags on the version."""
    fingerprint = heldout.spec.fingerprint()
    candidate = heldout_pr_auc(load_scorer(f"models:/{MODEL_NAME}/{version}"), heldout)
    if math.isnan(candidate):
        raise ValueError(f"held-out set {fingerprint} has no positive rows; nothing to compare on")
    current = champion(client)
    champion_score: float | None = None
    if current is None:
        promoted, reason = True, f"no champion yet; PR-AUC {candidate:.4f} on held-out set {fingerprint}"
    elif str(current.version) == str(version):
        promoted, reason = False, "it is already the champion"
        champion_score = candidate
    else:
        champion_model = load_scorer(f"models:/{MODEL_NAME}/{current.version}")
        missing = [f for f in champion_model.features if f not in heldout.frame.columns]
        if missing:
            promoted = True
            reason = f"champion {current.version} needs features the current definitions lack: {missing}"
        else:
            champion_score = heldout_pr_auc(champion_model, heldout)
            promoted = candidate > champion_score + min_gain
            relation = "beats" if promoted else "does not beat"
            reason = (
                f"PR-AUC {candidate:.4f} {relation} champion {current.version}'s {champion_score:.4f}"
                f" (+{min_gain:g} required) on held-out set {fingerprint}"
            )
    if promoted:
        client.set_registered_model_alias(MODEL_NAME, CHAMPION, str(version))
    for key, value in {
        "heldout_set": fingerprint,
        "heldout_pr_auc": f"{candidate:.6f}",
        "promotion": reason,
    }.items():
        client.set_model_version_tag(MODEL_NAME, str(version), key, value)
    return Promotion(
        version=str(version),
        promoted=promoted,
        candidate_pr_auc=candidate,
        champion_version=None if current is None else str(current.version),
        champion_pr_auc=champion_score,
        heldout_set=fingerprint,
        reason=reason,
    )


def load_champion(client: MlflowClient) -> tuple[AnomalyScorer, str] | None:
    """The champion and its version, loaded by version so the alias moving meanwhile cannot mix
    one version's model with another's number; None when there is no champion yet."""
    current = champion(client)
    if current is None:
        return None
    version = str(current.version)
    return _load_version(mlflow.get_registry_uri(), version), version


@functools.lru_cache(maxsize=4)
def _load_version(registry_uri: str, version: str) -> AnomalyScorer:  # keyed by store and version
    """A registered version never changes: the scoring asset and its drift check, in one run
    process, load it once."""
    return load_scorer(f"models:/{MODEL_NAME}/{version}")
