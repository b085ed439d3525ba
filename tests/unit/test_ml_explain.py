"""Explanations name the feature that made a row anomalous, with its value and what is normal, for
a supervised and an unsupervised family alike; the training reference travels with the model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.explain import explain
from ml.features import CATEGORICAL_FEATURES, NUMERIC_FEATURES
from ml.models import AnomalyScorer
from ml.reference import SAMPLE_ROWS, FeatureReference

FEATURES = ("move_pp", "z_score", "edge", "minutes_to_kick_off", "market")


def frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = {name: rng.normal(0.0, 1.0, n) for name in FEATURES if name not in CATEGORICAL_FEATURES}
    return pd.DataFrame({**data, "market": rng.choice(["1x2", "total"], n)})


def one_row(**values: float) -> pd.DataFrame:
    row = {name: 0.0 for name in FEATURES if name not in CATEGORICAL_FEATURES}
    return pd.DataFrame([{**row, **values, "market": "1x2"}])


def test_the_supervised_model_is_explained_by_the_feature_its_label_depends_on() -> None:
    train = frame(4_000)
    labels = (train["move_pp"] > 1.5).astype(int).to_numpy()
    scorer = AnomalyScorer("hgb", FEATURES, {"max_iter": 50, "min_samples_leaf": 20}).fit(train, labels)
    rows = pd.concat([one_row(move_pp=4.0), one_row(move_pp=0.0)], ignore_index=True)
    reasons = explain(scorer, rows)
    top = reasons[0][0]
    assert top.feature == "move_pp" and top.value == 4.0
    assert top.contribution > 0.5  # the score falls from ~1 to ~0 when move_pp is normal
    # the normal range comes from the negatives only (move_pp ≤ 1.5)
    assert scorer.reference_.high["move_pp"] < 1.5
    assert "normal" in top.text() and "move_pp = 4" in top.text()
    # a normal row has nothing pushing its score up by much
    assert all(r.contribution < 0.05 for r in reasons[1])


def test_an_outlier_detector_is_explained_by_the_extreme_feature() -> None:
    scorer = AnomalyScorer("isolation_forest", FEATURES, {"n_estimators": 100}).fit(frame(3_000))
    reasons = explain(scorer, one_row(z_score=8.0), top=2)
    assert reasons[0][0].feature == "z_score"
    assert len(reasons[0]) <= 2


def test_reference_keeps_a_bounded_sample_and_typical_values() -> None:
    rows = frame(SAMPLE_ROWS + 1_000)
    reference = FeatureReference.from_frame(rows, FEATURES)
    assert len(reference.sample) == SAMPLE_ROWS and reference.rows == SAMPLE_ROWS + 1_000
    assert list(reference.sample.columns) == [f for f in FEATURES if f in NUMERIC_FEATURES]
    assert reference.median["edge"] == pytest.approx(rows["edge"].median())
    assert reference.mode["market"] in {"1x2", "total"}
    assert reference.typical("edge").startswith(f"{rows['edge'].median():.3g} (normal ")


def test_a_model_without_a_reference_says_to_retrain() -> None:
    scorer = AnomalyScorer("isolation_forest", FEATURES, {"n_estimators": 10}).fit(frame(500))
    del scorer.reference_
    with pytest.raises(ValueError, match="retrain"):
        explain(scorer, one_row())
