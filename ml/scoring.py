"""Live scoring: the champion model over the fresh grid times of the warehouse; the rows kept
(candidates and the drift sample) explained and written to the app database with the model version.

`score_fresh` is what the Dagster scoring asset calls after every marts refresh; it loads nothing
itself, so the asset loads `models:/oddly-anomaly@champion` once per run and passes it in.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import sqlalchemy as sa

from ml import scores_store
from ml.drift import DriftReport, feature_drift
from ml.explain import explain
from ml.features import NUMERIC_FEATURES, compute_features
from ml.live_panel import book_profiles, live_panel
from ml.models import AnomalyScorer
from oddly.warehouse.store import Warehouse

# Live scoring need not be bit-for-bit reproducible as training is: use the cores.
SCORING_THREADS = max(1, min(4, os.cpu_count() or 1))
# Share of all scored rows kept (with features) for the drift check.
SAMPLE_PERCENT = 5
# Without an operating point from training, the top this-share of a run's rows are candidates.
FALLBACK_TOP_SHARE = 0.01


@dataclass(frozen=True)
class ScoringReport:
    model_version: str
    latest: datetime | None
    rows_scored: int
    candidates: int
    rows_written: int
    seconds: float
    top: pd.DataFrame = field(default_factory=pd.DataFrame)  # this run's candidates, highest first

    def describe(self) -> str:
        if self.latest is None or self.rows_scored == 0:
            return f"nothing new to score (model version {self.model_version})"
        return (
            f"model version {self.model_version} scored {self.rows_scored:,} rows up to "
            f"{self.latest.isoformat()}: {self.candidates} candidate(s), {self.rows_written} rows kept "
            f"in {self.seconds:.2f} s"
        )


def score_rows(scorer: AnomalyScorer, features: pd.DataFrame) -> tuple[np.ndarray, float]:
    """Scores of usable rows and the candidate threshold (the model's operating point)."""
    scores = scorer.predict(features)
    threshold = getattr(scorer, "threshold_", None)
    if threshold is None or not np.isfinite(threshold):
        threshold = float(np.quantile(scores, 1 - FALLBACK_TOP_SHARE)) if len(scores) else np.inf
    return scores, float(threshold)


def score_fresh(
    warehouse: Warehouse,
    app_engine: sa.Engine,
    scorer: AnomalyScorer,
    model_version: str,
    sharp_books: Collection[str],
    *,
    cycle_seconds: float = 10.0,
    now: datetime | None = None,
) -> ScoringReport:
    started = time.perf_counter()
    scored_at = now or datetime.now(UTC)
    live = live_panel(warehouse, after=scores_store.last_latest(app_engine), cycle_seconds=cycle_seconds)
    if live.panel.empty or not live.fresh.any():
        return ScoringReport(model_version, live.latest, 0, 0, 0, time.perf_counter() - started)
    profiles = book_profiles(warehouse, set(sharp_books))
    fresh = live.fresh.reset_index(drop=True)
    features, _ = compute_features(
        live.panel.reset_index(drop=True), sharp_books, profiles, threads=SCORING_THREADS, keep=fresh
    )
    panel = live.panel.reset_index(drop=True)[fresh.to_numpy()].reset_index(drop=True)
    panel = panel.drop(columns=[c for c in NUMERIC_FEATURES if c in panel.columns])  # is_live: the feature's
    rows = pd.concat([panel, features[list(NUMERIC_FEATURES)]], axis=1)[features["usable"].to_numpy()]
    rows = rows.reset_index(drop=True)
    scores, threshold = score_rows(scorer, rows)
    rows["score"] = scores
    rows["threshold"] = threshold
    rows["is_candidate"] = scores > threshold
    rows["in_sample"] = _sampled(rows)
    # every score written carries its reasons (candidates and the drift sample alike)
    kept = rows[rows["is_candidate"] | rows["in_sample"]].copy()
    explainable = getattr(scorer, "reference_", None) is not None  # models trained before it: no reasons
    reasons = explain(scorer, kept) if explainable and len(kept) else [[] for _ in range(len(kept))]
    kept["reasons"] = [json.dumps([r.as_dict() for r in rs]) for rs in reasons]
    kept = kept.rename(columns={f: f"f_{f}" for f in NUMERIC_FEATURES}).assign(
        scored_at=scored_at, model_version=model_version
    )
    report = ScoringReport(
        model_version,
        live.latest,
        len(rows),
        int(rows["is_candidate"].sum()),
        len(kept),
        time.perf_counter() - started,
        kept[kept["is_candidate"]].sort_values("score", ascending=False).reset_index(drop=True),
    )
    scores_store.write(
        app_engine,
        kept,
        {
            "scored_at": scored_at,
            "latest_observed_at": report.latest,
            "model_version": model_version,
            "rows_scored": report.rows_scored,
            "candidates": report.candidates,
            "seconds": report.seconds,
        },
    )
    return report


def _sampled(rows: pd.DataFrame) -> np.ndarray:
    """A uniform, reproducible sample: by a hash of the selection and the grid time."""
    hashed = pd.util.hash_pandas_object(rows[["selection_key", "observed_at"]], index=False).to_numpy()
    return (hashed % 100) < SAMPLE_PERCENT


# The drift check reads at most this many of the sampled rows (evenly spread over the window).
DRIFT_MAX_ROWS = 20_000
DRIFT_MIN_ROWS = 200


@dataclass(frozen=True)
class DriftOutcome:
    report: DriftReport | None  # None when there was too little to compare
    rows: int
    note: str


def live_drift(
    app_engine: sa.Engine, scorer: AnomalyScorer, *, now: datetime | None = None, hours: float = 24.0
) -> DriftOutcome:
    """PSI of each numeric feature the model uses: the sampled rows of the last `hours` against
    the training window's reference sample kept in the model."""
    reference = getattr(scorer, "reference_", None)
    if reference is None:
        return DriftOutcome(None, 0, "the champion has no training reference; retrain it (`oddly train`)")
    since = (now or datetime.now(UTC)) - timedelta(hours=hours)
    recent = scores_store.recent_sample(app_engine, since, max_rows=DRIFT_MAX_ROWS)
    if len(recent) < DRIFT_MIN_ROWS:
        note = f"only {len(recent)} sampled rows in the last {hours:g} h (need {DRIFT_MIN_ROWS}); not judged"
        return DriftOutcome(None, len(recent), note)
    features = [f for f in scorer.features if f in reference.sample.columns]
    report = feature_drift(reference.sample, recent, features)
    return DriftOutcome(report, len(recent), report.summary())
