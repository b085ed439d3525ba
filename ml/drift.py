"""Feature drift: the population stability index (PSI) of each numeric feature between the training
window and a recent window (the last 24 h when scoring live).

PSI = sum over bins of (recent share - reference share) * ln(recent share / reference share), with
bins at the reference's deciles, so each holds a tenth of the training rows. Rule of thumb used
here: under 0.1 stable, 0.1-0.2 moderate, above 0.2 (`WARN_ABOVE`) a shift worth a warning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

WARN_ABOVE = 0.2
BINS = 10
# A bin empty on one side would make ln(0): its share is floored at this.
EPSILON = 1e-4


@dataclass(frozen=True)
class DriftReport:
    psi: dict[str, float]  # per feature, NaN where a window had no finite values
    warn_above: float = WARN_ABOVE

    @property
    def drifted(self) -> list[str]:
        """The features above the threshold, most shifted first."""
        over = [(name, value) for name, value in self.psi.items() if value > self.warn_above]
        return [name for name, _ in sorted(over, key=lambda item: -item[1])]

    def summary(self) -> str:
        if not self.drifted:
            return f"no feature drifted (PSI ≤ {self.warn_above} for all {len(self.psi)})"
        shown = ", ".join(f"{name} {self.psi[name]:.2f}" for name in self.drifted)
        return f"{len(self.drifted)} feature(s) drifted (PSI > {self.warn_above}): {shown}"


def psi(reference: np.ndarray, recent: np.ndarray, bins: int = BINS) -> float:
    """PSI of one feature; non-finite values are left out; NaN when either side has none."""
    reference = reference[np.isfinite(reference)]
    recent = recent[np.isfinite(recent)]
    if reference.size == 0 or recent.size == 0:
        return float("nan")
    # Inner edges at the reference's quantiles; repeated edges (a feature that is often 0) merge.
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    ref_share = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=edges.size + 1)
    new_share = np.bincount(np.searchsorted(edges, recent, side="right"), minlength=edges.size + 1)
    p = np.maximum(ref_share / reference.size, EPSILON)
    q = np.maximum(new_share / recent.size, EPSILON)
    return float(np.sum((q - p) * np.log(q / p)))


def feature_drift(
    reference: pd.DataFrame, recent: pd.DataFrame, features: Sequence[str], warn_above: float = WARN_ABOVE
) -> DriftReport:
    """PSI of each of `features` (numeric columns of both frames) from `reference` to `recent`."""
    missing = [f for f in features if f not in reference.columns or f not in recent.columns]
    if missing:
        raise ValueError(f"drift check: feature columns {missing} are missing from a window")
    return DriftReport(
        psi={
            name: psi(
                reference[name].to_numpy(dtype=float, na_value=np.nan),
                recent[name].to_numpy(dtype=float, na_value=np.nan),
            )
            for name in features
        },
        warn_above=warn_above,
    )
