"""The rule detectors replayed on labelled rows, scored like the models."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from ml.dataset import DatasetSpec, build
from ml.evaluate import evaluate
from ml.rules_baseline import RULES_SCORED, rule_scores
from oddly.detect.rules import parse_rules
from tests.ml_panels import two_way_panel

T0 = datetime(2026, 3, 1, 15, 0, tzinfo=UTC)
BOOKS = ("pinnacle", "soft_a", "soft_b", "soft_c")
RULES = parse_rules({"version": "test", "sharp_books": ["pinnacle"]})


def frame(prices: dict[tuple[int, str], tuple[float, float]], cycles: int = 4) -> pd.DataFrame:
    rows = two_way_panel(prices, BOOKS, T0, cycles, seed=1)
    return rows.sample(frac=1.0, random_state=3)  # order must not matter


def test_a_rule_scores_the_rows_it_fires_on_and_nothing_else() -> None:
    prices = {(0, b): (1.95, 1.95) for b in BOOKS}
    prices[(2, "soft_c")] = (1.40, 3.20)  # soft_c shortens the over far below the others
    rows = frame(prices)
    scores = rule_scores(rows, RULES)
    assert list(scores.columns) == list(RULES_SCORED)
    assert scores.index.equals(rows.index)
    fired = rows.join(scores)
    hit = fired[(fired["bookmaker"] == "soft_c") & (fired["observed_at"] >= T0 + timedelta(seconds=20))]
    # the drop is a tick of cycle 2 only; being out of line lasts while the price stands
    drop = hit.set_index(["observed_at", "outcome"])["sharp_drop"]
    assert drop[(T0 + timedelta(seconds=20), "over")] >= 1.0
    assert drop[(T0 + timedelta(seconds=30), "over")] == 0.0
    assert (hit["out_of_line"].groupby(hit["observed_at"]).max() >= 1.0).all()
    elsewhere = fired.drop(hit.index)
    assert (elsewhere[["sharp_drop", "out_of_line"]] == 0).all().all()


def test_rules_find_out_of_line_scenarios_in_a_simulated_world() -> None:
    data = build(DatasetSpec(seeds=(11,), hours=0.3, n_events=10, scenarios_per_hour=60))
    rows = data.scored
    scores = rule_scores(data.frame, RULES).loc[rows.index]
    report = evaluate(rows, scores["out_of_line"].to_numpy(), data.scenarios)
    if "out_of_line" not in report.table.index or report.metric("positives", "out_of_line") == 0:
        pytest.fail("seed 11 was expected to inject an out-of-line scenario")
    assert report.metric("detected_share", "out_of_line") > 0.5
    assert report.metric("pr_auc", "out_of_line") > report.metric("pr_auc", "suspension")
