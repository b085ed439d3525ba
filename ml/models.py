"""The model families, each a scikit-learn pipeline behind one interface: `predict(frame)` returns
an anomaly score per row, higher meaning more anomalous, whatever the family. That is what the
registry stores and what scoring loads, so a champion of any family is used the same way."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, IsolationForest
from sklearn.impute import SimpleImputer
from sklearn.neighbors import LocalOutlierFactor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ml.features import CATEGORICAL_FEATURES, FEATURES
from ml.reference import FeatureReference

# family → (what it learns from, default estimator parameters)
FAMILIES: dict[str, tuple[str, dict[str, Any]]] = {
    # The baseline: unsupervised, fit on a sample of all traffic (labels unused).
    "isolation_forest": ("all rows, unlabelled", {"n_estimators": 200, "contamination": "auto"}),
    # Novelty detection: fit on normal traffic only, scores how far a row is from it.
    "lof": ("negative rows", {"n_neighbors": 35, "novelty": True}),
    # Supervised on the simulator's labels. Regularized: without it, early stopping and leaves of
    # a few rows let last-bit changes in the data swing the rare types' PR-AUC by 0.1.
    "hgb": (
        "labelled rows",
        {
            "max_iter": 300,
            "learning_rate": 0.1,
            "max_leaf_nodes": 31,
            "min_samples_leaf": 100,
            "l2_regularization": 1.0,
        },
    ),
}


def _preprocess(features: Sequence[str]) -> ColumnTransformer:
    numeric = [f for f in features if f not in CATEGORICAL_FEATURES]
    categorical = [f for f in features if f in CATEGORICAL_FEATURES]
    scale = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    parts: list[tuple[str, Any, list[str]]] = [("numeric", scale, numeric)]
    if categorical:
        parts.append(
            ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical)
        )
    return ColumnTransformer(parts, verbose_feature_names_out=False)


def _estimator(family: str, params: dict[str, Any], random_state: int) -> Any:
    if family == "isolation_forest":
        return IsolationForest(random_state=random_state, n_jobs=1, **params)
    if family == "lof":
        return LocalOutlierFactor(**params)
    if family == "hgb":
        return HistGradientBoostingClassifier(random_state=random_state, **params)
    raise ValueError(f"unknown model family {family!r}; known: {', '.join(FAMILIES)}")


class AnomalyScorer(BaseEstimator):
    """One model family as a pipeline (impute, scale, one-hot → estimator) that scores rows."""

    def __init__(
        self,
        family: str = "isolation_forest",
        features: tuple[str, ...] = FEATURES,
        params: dict[str, Any] | None = None,
        random_state: int = 0,
    ) -> None:
        self.family = family
        self.features = features
        self.params = params
        self.random_state = random_state

    @property
    def estimator_params(self) -> dict[str, Any]:
        return {**FAMILIES[self.family][1], **(self.params or {})}

    def fit(self, X: pd.DataFrame, y: Sequence[int] | np.ndarray | None = None) -> AnomalyScorer:
        if self.family not in FAMILIES:
            raise ValueError(f"unknown model family {self.family!r}; known: {', '.join(FAMILIES)}")
        unknown = [f for f in self.features if f not in FEATURES]
        if unknown:
            raise ValueError(f"unknown features {unknown}; known: {', '.join(FEATURES)}")
        if self.family == "hgb" and (y is None or len(set(np.asarray(y).tolist())) < 2):
            raise ValueError("the supervised family needs labels of both classes")
        self.pipeline_ = Pipeline(
            [
                ("features", _preprocess(self.features)),
                ("model", _estimator(self.family, self.estimator_params, self.random_state)),
            ]
        )
        self.pipeline_.fit(X[list(self.features)], None if self.family != "hgb" else np.asarray(y))
        normal = X if y is None else X[np.asarray(y) == 0]
        self.reference_ = FeatureReference.from_frame(normal, self.features, self.random_state)
        # the operating point (score at a fixed false-positive rate), set by training on held-out data
        self.threshold_: float | None = None
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Anomaly score per row: higher is more anomalous."""
        rows = X[list(self.features)]
        if self.family == "hgb":
            return np.asarray(self.pipeline_.predict_proba(rows)[:, 1], dtype=float)
        # score_samples: lower is more abnormal for both outlier detectors.
        return -np.asarray(self.pipeline_.score_samples(rows), dtype=float)
