"""How well scores find the labelled scenarios, per scenario type and overall.

Rows are (observation, book, selection) with labels 1 and 0 (ignored rows are left out by the
caller, see `ml.dataset`). One operating point serves every scope: the score above which at most
`fpr` of the negative rows lie.

- PR-AUC: average precision of the ranking (a type's positives against all negatives);
- precision@k: share of positives among the k highest scores (ties counted at their share);
- recall at the fixed false-positive rate: share of positive rows above the operating point;
- time to detect: from a scenario's start to its first positive row above the operating point
  (median over the scenarios detected), and the share of scenarios detected at all.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import average_precision_score, precision_recall_curve

OVERALL = "overall"
COLUMNS = (
    "positives",
    "scenarios",
    "pr_auc",
    "precision_at_k",
    "recall_at_fpr",
    "detected_share",
    "median_ttd_seconds",
)


def pr_auc(labels: np.ndarray | pd.Series, scores: np.ndarray) -> float:
    y = np.asarray(labels) == 1
    if not y.any() or y.all():
        return math.nan
    return float(average_precision_score(y, scores))


def precision_at_k(positive: np.ndarray, scores: np.ndarray, k: int) -> float:
    """Share of positives among the k highest scores. Rows tied with the k-th score count by
    their group's share of positives: the expected precision when ties are broken at random
    (a saturated classifier gives many rows the same score; row order must not decide)."""
    k = min(k, len(scores))
    if k <= 0:
        return math.nan
    kth = np.partition(scores, len(scores) - k)[len(scores) - k]
    above, tied = scores > kth, scores == kth
    from_tied = k - int(above.sum())
    return float((positive[above].sum() + from_tied * positive[tied].mean()) / k)


@dataclass
class Report:
    """The metrics table (one row per scope), per-scenario detections and the operating point."""

    table: pd.DataFrame
    detections: pd.DataFrame
    threshold: float
    k: int
    fpr: float

    def metric(self, name: str, scope: str = OVERALL) -> float:
        return float(self.table.loc[scope, name])

    def mlflow_metrics(self, prefix: str = "heldout") -> dict[str, float]:
        out = {}
        for scope, row in self.table.iterrows():
            for name in COLUMNS:
                value = float(row[name])
                if not math.isnan(value):
                    out[f"{prefix}.{scope}.{name}"] = value
        return out

    def format(self, title: str = "") -> str:
        header = f"{'scope':<12}" + "".join(f"{c:>20}" for c in COLUMNS)
        lines = [title] if title else []
        lines += [
            f"k = {self.k}, operating point: false-positive rate {self.fpr:.2%}"
            f" (score > {self.threshold:.4g})",
            header,
            "-" * len(header),
        ]
        for scope, row in self.table.iterrows():
            cells = []
            for name in COLUMNS:
                value = float(row[name])
                if math.isnan(value):
                    cells.append(f"{'-':>20}")
                elif name in ("positives", "scenarios"):
                    cells.append(f"{int(value):>20d}")
                elif name == "median_ttd_seconds":
                    cells.append(f"{value:>19.0f}s")
                else:
                    cells.append(f"{value:>20.3f}")
            lines.append(f"{scope!s:<12}" + "".join(cells))
        return "\n".join(lines)


def evaluate(
    rows: pd.DataFrame, scores: np.ndarray, scenarios: pd.DataFrame, *, k: int = 100, fpr: float = 0.01
) -> Report:
    """Metrics of `scores` (higher: more anomalous) on labelled `rows` (columns observed_at, label
    0/1, scenario_id, scenario_type) against the `scenarios` they came from."""
    scores = np.asarray(scores, dtype=float)
    if len(scores) != len(rows):
        raise ValueError(f"{len(scores)} scores for {len(rows)} rows")
    labels = rows["label"].to_numpy()
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("rows must be labelled 0 or 1 (leave ignored rows out)")
    positive = labels == 1
    negatives = scores[~positive]
    threshold = float(np.quantile(negatives, 1 - fpr, method="higher")) if len(negatives) else math.inf
    flagged = scores > threshold
    types = rows["scenario_type"].to_numpy()
    detections = _detections(rows, flagged, scenarios)

    table = {}
    scopes = [OVERALL, *sorted(scenarios["type"].unique())]
    for scope in scopes:
        in_scope = positive if scope == OVERALL else positive & (types == scope)
        mask = ~positive | in_scope
        y, s = positive[mask], scores[mask]
        found = detections if scope == OVERALL else detections[detections["type"] == scope]
        table[scope] = {
            "positives": float(in_scope.sum()),
            "scenarios": float(len(found)),
            "pr_auc": pr_auc(y, s),
            "precision_at_k": precision_at_k(y, s, k) if in_scope.any() else math.nan,
            "recall_at_fpr": float(flagged[in_scope].mean()) if in_scope.any() else math.nan,
            "detected_share": float(found["detected"].mean()) if len(found) else math.nan,
            "median_ttd_seconds": (
                float(found["ttd_seconds"].median()) if found["detected"].any() else math.nan
            ),
        }
    return Report(pd.DataFrame.from_dict(table, orient="index")[list(COLUMNS)], detections, threshold, k, fpr)


def _detections(rows: pd.DataFrame, flagged: np.ndarray, scenarios: pd.DataFrame) -> pd.DataFrame:
    """Per scenario with at least one positive row: its first flagged row's delay from its start."""
    positives = rows.loc[rows["label"].to_numpy() == 1, ["scenario_id", "observed_at"]].assign(
        flagged=flagged[rows["label"].to_numpy() == 1]
    )
    per = positives.groupby("scenario_id").agg(rows=("observed_at", "size"))
    first = positives[positives["flagged"]].groupby("scenario_id")["observed_at"].min().rename("first_at")
    per = per.join(first).join(scenarios.set_index("scenario_id")[["type", "start_at"]], how="inner")
    per["detected"] = per["first_at"].notna()
    per["ttd_seconds"] = (per["first_at"] - per["start_at"]).dt.total_seconds()
    return per.reset_index()


def batch_latency_ms(
    scorer: Any, rows: pd.DataFrame, batch: int = 1_000, batches: int = 50, seed: int = 0
) -> dict[str, float]:
    """Wall time of `scorer.predict` on random batches of `batch` rows: p50 and p95 in ms."""
    rng = np.random.default_rng(seed)
    times = []
    for _ in range(batches):
        sample = rows.iloc[rng.choice(len(rows), size=min(batch, len(rows)), replace=False)]
        started = time.perf_counter()
        scorer.predict(sample)
        times.append(1e3 * (time.perf_counter() - started))
    return {"p50": float(np.percentile(times, 50)), "p95": float(np.percentile(times, 95))}


def pr_curves_figure(rows: pd.DataFrame, scores: np.ndarray, title: str) -> Figure:
    """Precision-recall curves, overall and per scenario type, with their PR-AUC."""
    fig = Figure(figsize=(7, 5), dpi=110)
    ax = fig.add_subplot()
    positive = rows["label"].to_numpy() == 1
    types = rows["scenario_type"].to_numpy()
    scopes = [OVERALL, *sorted(pd.unique(types[positive]))]
    for scope in scopes:
        mask = ~positive | (positive if scope == OVERALL else types == scope)
        if not positive[mask].any():
            continue
        precision, recall, _ = precision_recall_curve(positive[mask], scores[mask])
        ap = pr_auc(positive[mask], scores[mask])
        ax.plot(recall, precision, lw=2.2 if scope == OVERALL else 1.2, label=f"{scope} ({ap:.3f})")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title(title)
    ax.legend(loc="lower left", fontsize=8, title="PR-AUC")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def importances_figure(importances: pd.DataFrame, title: str) -> Figure:
    """Horizontal bars of permutation importance (mean ± std)."""
    ordered = importances.sort_values("importance")
    fig = Figure(figsize=(7, 0.28 * len(ordered) + 1.2), dpi=110)
    ax = fig.add_subplot()
    ax.barh(ordered["feature"], ordered["importance"], xerr=ordered["std"], color="#4C72B0")
    ax.set_xlabel("drop in PR-AUC when the feature is shuffled")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def side_by_side(model: Report, rules: dict[str, Report]) -> pd.DataFrame:
    """Per scope: the model's PR-AUC and time to detect next to the best rule's (by PR-AUC)."""
    table = {}
    for scope in model.table.index:
        best_name, best = max(
            ((name, report) for name, report in rules.items() if scope in report.table.index),
            key=lambda pair: _or_minus_one(pair[1].metric("pr_auc", scope)),
            default=(None, None),
        )
        model_auc = model.metric("pr_auc", scope)
        rule_auc = best.metric("pr_auc", scope) if best is not None else math.nan
        table[scope] = {
            "model_pr_auc": model_auc,
            "best_rule": best_name or "-",
            "rule_pr_auc": rule_auc,
            "model_beats_rule": bool(model_auc > rule_auc) if not math.isnan(rule_auc) else math.nan,
            "model_median_ttd_seconds": model.metric("median_ttd_seconds", scope),
            "rule_median_ttd_seconds": best.metric("median_ttd_seconds", scope)
            if best is not None
            else math.nan,
        }
    return pd.DataFrame.from_dict(table, orient="index")


def _or_minus_one(value: float) -> float:
    return -1.0 if math.isnan(value) else value
