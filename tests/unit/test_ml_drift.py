"""The PSI drift check on shifted and unshifted data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ml.drift import WARN_ABOVE, feature_drift, psi


def windows(shift: float, n: int = 20_000) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(5)
    reference = pd.DataFrame({"move_pp": rng.normal(0, 1, n), "edge": rng.normal(0, 1, n)})
    recent = pd.DataFrame({"move_pp": rng.normal(shift, 1, n), "edge": rng.normal(0, 1, n)})
    return reference, recent


def test_the_same_distribution_does_not_drift() -> None:
    reference, recent = windows(shift=0.0)
    report = feature_drift(reference, recent, ["move_pp", "edge"])
    assert all(value < 0.01 for value in report.psi.values())
    assert report.drifted == [] and report.summary().startswith("no feature drifted")


def test_a_shifted_feature_is_named_and_the_other_is_not() -> None:
    reference, recent = windows(shift=1.0)
    report = feature_drift(reference, recent, ["move_pp", "edge"])
    assert report.psi["move_pp"] > WARN_ABOVE and report.psi["edge"] < 0.01
    assert report.drifted == ["move_pp"]
    assert "move_pp" in report.summary() and "edge" not in report.summary()


def test_psi_matches_a_hand_computation_on_two_bins() -> None:
    # reference median 0.5: half below, half above; recent puts 80 % above
    reference = np.array([0.0, 0.0, 1.0, 1.0])
    recent = np.array([0.0, 1.0, 1.0, 1.0, 1.0])
    expected = (0.2 - 0.5) * math.log(0.2 / 0.5) + (0.8 - 0.5) * math.log(0.8 / 0.5)
    assert psi(reference, recent, bins=2) == pytest.approx(expected)


def test_a_window_without_values_gives_nan_and_a_missing_column_an_error() -> None:
    assert math.isnan(psi(np.array([np.nan]), np.array([1.0, 2.0])))
    reference, recent = windows(shift=0.0)
    with pytest.raises(ValueError, match="velocity"):
        feature_drift(reference, recent, ["velocity"])
