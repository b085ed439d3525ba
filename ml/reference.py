"""What "normal" looks like for each feature, kept inside a trained model.

Taken at fit time from the rows the model learnt as normal (the negatives when labels are given,
every row otherwise): each numeric feature's median and 5th–95th percentile range, the most common
category, and a bounded sample of the rows. Explanations compare a scored row against the medians
and ranges; the drift check compares the last 24 h against the sample. Stored with the model, so
the champion carries its own training window wherever it is loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.features import CATEGORICAL_FEATURES

SAMPLE_ROWS = 5_000


@dataclass(frozen=True)
class FeatureReference:
    median: dict[str, float]
    low: dict[str, float]  # 5th percentile
    high: dict[str, float]  # 95th percentile
    mode: dict[str, str]  # categorical features: the most common value
    sample: pd.DataFrame  # up to SAMPLE_ROWS rows of the numeric features, float32
    rows: int  # how many rows the reference was taken from

    @classmethod
    def from_frame(
        cls, frame: pd.DataFrame, features: Sequence[str], random_state: int = 0
    ) -> FeatureReference:
        if frame.empty:
            raise ValueError("no rows to take a feature reference from")
        numeric = [f for f in features if f not in CATEGORICAL_FEATURES]
        values = frame[numeric].astype(float)
        quantiles = values.quantile([0.05, 0.5, 0.95])
        take = len(frame) if len(frame) <= SAMPLE_ROWS else SAMPLE_ROWS
        rng = np.random.default_rng(random_state)
        rows = np.sort(rng.choice(len(frame), size=take, replace=False))
        return cls(
            median=_finite(quantiles.loc[0.5]),
            low=_finite(quantiles.loc[0.05]),
            high=_finite(quantiles.loc[0.95]),
            mode={
                f: str(frame[f].mode(dropna=True).iloc[0])
                for f in features
                if f in CATEGORICAL_FEATURES and frame[f].notna().any()
            },
            sample=values.iloc[rows].astype("float32").reset_index(drop=True),
            rows=len(frame),
        )

    def typical(self, feature: str) -> str:
        """ "0.00 (normal -0.41 … 0.52)": what a person reads next to a value."""
        if feature in self.mode:
            return self.mode[feature]
        if feature not in self.median:
            return "unknown"
        return f"{self.median[feature]:.3g} (normal {self.low[feature]:.3g} … {self.high[feature]:.3g})"


def _finite(row: pd.Series) -> dict[str, float]:
    return {str(k): float(v) for k, v in row.items() if np.isfinite(v)}
