"""Detection metrics on hand-made scores: PR-AUC, precision@k, recall at a fixed false-positive
rate and time to detect, per scenario type and overall."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from ml.evaluate import OVERALL, evaluate, pr_auc, precision_at_k

T0 = datetime(2026, 3, 1, 15, 0, tzinfo=UTC)


def rows_and_scenarios() -> tuple[pd.DataFrame, pd.DataFrame]:
    """100 negatives; scenario 1 (steam, starts at T0) has positive rows at +10 s, +20 s, +30 s;
    scenario 2 (stale_line, starts at T0 + 60 s) at +70 s and +80 s."""
    times = [T0 + timedelta(seconds=s) for s in range(100)]
    negatives = pd.DataFrame({"observed_at": times, "label": 0, "scenario_id": pd.NA, "scenario_type": None})
    positives = pd.DataFrame(
        {
            "observed_at": [T0 + timedelta(seconds=s) for s in (10, 20, 30, 70, 80)],
            "label": 1,
            "scenario_id": [1, 1, 1, 2, 2],
            "scenario_type": ["steam", "steam", "steam", "stale_line", "stale_line"],
        }
    )
    rows = pd.concat([negatives, positives], ignore_index=True)
    rows["scenario_id"] = rows["scenario_id"].astype("Int64")
    scenarios = pd.DataFrame(
        {
            "scenario_id": [1, 2, 3],
            "type": ["steam", "stale_line", "arbitrage"],
            "start_at": [T0, T0 + timedelta(seconds=60), T0 + timedelta(seconds=90)],
        }
    )
    return rows, scenarios


def test_a_perfect_ranking_scores_one_and_detects_at_the_first_positive_row() -> None:
    rows, scenarios = rows_and_scenarios()
    scores = rows["label"].to_numpy(dtype=float) + np.linspace(0, 0.5, len(rows))
    report = evaluate(rows, scores, scenarios, k=5, fpr=0.01)
    assert report.metric("pr_auc") == 1.0
    assert report.metric("precision_at_k") == 1.0
    assert report.metric("recall_at_fpr") == 1.0
    assert report.metric("detected_share") == 1.0
    assert report.metric("median_ttd_seconds", "steam") == 10.0
    assert report.metric("median_ttd_seconds", "stale_line") == 10.0
    assert report.metric("positives", "steam") == 3
    assert report.metric("scenarios", OVERALL) == 2  # the arbitrage had no positive row
    assert math.isnan(report.metric("pr_auc", "arbitrage"))


def test_a_late_detection_counts_from_the_scenario_start() -> None:
    rows, scenarios = rows_and_scenarios()
    scores = np.zeros(len(rows))
    scores[rows.index[(rows["scenario_id"] == 1).fillna(False)][-1]] = 5.0  # only the +30 s row of steam
    scores[rows.index[(rows["scenario_id"] == 2).fillna(False)]] = -1.0  # stale line scored below all
    report = evaluate(rows, scores, scenarios, k=5, fpr=0.05)
    assert report.metric("median_ttd_seconds", "steam") == 30.0
    assert report.metric("detected_share", "stale_line") == 0.0
    assert math.isnan(report.metric("median_ttd_seconds", "stale_line"))
    assert report.metric("detected_share") == 0.5
    assert report.metric("recall_at_fpr", "steam") == pytest.approx(1 / 3)
    # top 5: the flagged steam row, then 4 of the 102 rows tied at 0 (2 of them positives)
    assert report.metric("precision_at_k", "steam") == pytest.approx((1 + 4 * 2 / 102) / 5)
    # a scope's PR-AUC uses its own positives against every negative
    assert report.metric("pr_auc", "stale_line") < 0.1 < report.metric("pr_auc", "steam")


def test_the_operating_point_keeps_false_positives_at_the_rate_asked() -> None:
    rng = np.random.default_rng(1)
    rows, scenarios = rows_and_scenarios()
    scores = rng.normal(size=len(rows))
    for fpr in (0.01, 0.05, 0.2):
        report = evaluate(rows, scores, scenarios, fpr=fpr)
        negatives = scores[rows["label"].to_numpy() == 0]
        assert (negatives > report.threshold).mean() <= fpr


def test_random_scores_are_far_from_perfect() -> None:
    rng = np.random.default_rng(7)
    labels = (rng.random(20_000) < 0.02).astype(int)
    assert pr_auc(labels, rng.random(20_000)) < 0.05
    assert math.isnan(pr_auc(np.zeros(10), np.arange(10.0)))


def test_metrics_refuse_ignored_rows_and_mismatched_scores() -> None:
    rows, scenarios = rows_and_scenarios()
    with pytest.raises(ValueError, match="scores for"):
        evaluate(rows, np.zeros(3), scenarios)
    rows.loc[0, "label"] = -1
    with pytest.raises(ValueError, match="ignored"):
        evaluate(rows, np.zeros(len(rows)), scenarios)


def test_report_lists_metrics_for_mlflow_and_as_a_table() -> None:
    rows, scenarios = rows_and_scenarios()
    report = evaluate(rows, rows["label"].to_numpy(dtype=float), scenarios, k=3)
    metrics = report.mlflow_metrics("heldout")
    assert metrics["heldout.overall.pr_auc"] == 1.0
    assert "heldout.steam.median_ttd_seconds" in metrics
    assert not any("arbitrage.pr_auc" in name for name in metrics)  # NaN is left out
    text = report.format("title")
    assert "overall" in text and "stale_line" in text and "k = 3" in text


def test_precision_at_k_does_not_depend_on_the_order_of_tied_rows() -> None:
    positive = np.array([True, False, False, True, False, False])
    scores = np.array([1.0, 1.0, 1.0, 1.0, 0.2, 0.1])
    assert precision_at_k(positive, scores, 2) == pytest.approx(0.5)
    assert precision_at_k(positive[::-1], scores[::-1], 2) == pytest.approx(0.5)
    assert precision_at_k(positive, np.array([4.0, 3.0, 2.0, 1.0, 0.2, 0.1]), 2) == pytest.approx(0.5)
    assert precision_at_k(positive, np.array([4.0, 0.0, 0.0, 3.0, 0.2, 0.1]), 2) == 1.0
    assert precision_at_k(positive, scores, 100) == pytest.approx(2 / 6)  # k beyond the rows: all
