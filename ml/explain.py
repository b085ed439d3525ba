"""Why a row scored high: the features that contributed most, with their values and what is normal.

Attribution by occlusion against the model's own training reference: a feature's contribution is
how much the score falls when that feature alone is set to its normal value (the training median,
or the most common category). It works the same for every model family — the champion may be an
Isolation Forest, LOF or gradient boosting — and costs one batched `predict` of rows × features.
SHAP would give additive attributions for the tree models only (LOF has no tree explainer and
KernelExplainer takes seconds per row), so one method for all families was preferred; README's
"anomaly models" section says the same.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from ml.features import CATEGORICAL_FEATURES
from ml.models import AnomalyScorer

TOP = 3


@dataclass(frozen=True)
class Reason:
    feature: str
    value: float | str | None
    normal: str  # "0.0 (normal -0.4 … 0.5)"
    contribution: float  # score minus the score with this feature at its normal value

    def text(self) -> str:
        value = self.value if isinstance(self.value, str) or self.value is None else f"{self.value:.3g}"
        return f"{self.feature} = {value}, normal {self.normal} (+{self.contribution:.3g} to the score)"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def explain(scorer: AnomalyScorer, rows: pd.DataFrame, top: int = TOP) -> list[list[Reason]]:
    """For each row, up to `top` features that raised its score, largest contribution first."""
    reference = getattr(scorer, "reference_", None)
    if reference is None:
        raise ValueError(
            f"this {scorer.family} model was trained before models kept a feature reference; "
            "retrain it (`oddly train`) to get explanations"
        )
    features = [f for f in scorer.features if f in reference.median or f in reference.mode]
    if rows.empty or not features:
        return [[] for _ in range(len(rows))]
    base = scorer.predict(rows)
    frame = rows[list(scorer.features)].reset_index(drop=True)
    # one stacked frame: block j is every row with feature j set to its normal value
    stacked = pd.concat([frame] * len(features), ignore_index=True)
    n = len(frame)
    for j, feature in enumerate(features):
        normal = reference.mode[feature] if feature in CATEGORICAL_FEATURES else reference.median[feature]
        stacked.loc[j * n : (j + 1) * n - 1, feature] = normal
    occluded = scorer.predict(stacked).reshape(len(features), n)
    contributions = base[np.newaxis, :] - occluded  # features × rows
    order = np.argsort(-contributions, axis=0)[:top]
    reasons: list[list[Reason]] = []
    for i in range(n):
        row_reasons = []
        for j in order[:, i]:
            gain = float(contributions[j, i])
            if gain <= 0:
                break
            feature = features[j]
            raw = frame.at[i, feature]
            value: float | str | None = (
                str(raw) if feature in CATEGORICAL_FEATURES else (None if pd.isna(raw) else float(raw))
            )
            row_reasons.append(Reason(feature, value, reference.typical(feature), gain))
        reasons.append(row_reasons)
    return reasons
