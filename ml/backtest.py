"""Backtests in MLflow: one run per `oddly backtest` in experiment `oddly-backtest`.

Params: the rules and alert-policy versions, the kick-off window, the types replayed, the
reference strategy's α, minimum books and lead, the bootstrap's resamples and seed. Metrics per
type (`<type>.<metric>`, the strategy as `kaunitz.…`; `<type>.early.<metric>` and
`<type>.late.<metric>` over the signals taken 1 h or more before kick-off and in the last hour):
n (signals), with_close, mean_clv, clv_ci_low, clv_ci_high, beat_close_share, settled, roi,
roi_ci_low, roi_ci_high, profit. Artifacts: every graded bet (`graded_bets.csv`), the summary
(`summary.csv`) and what was skipped and why (`skipped.json`).
"""

from __future__ import annotations

import math

import pandas as pd

from ml.tracking import Tracking
from oddly.grading.run import GradingRun

EXPERIMENT = "oddly-backtest"
METRICS = {
    "signals": "n",
    "with_close": "with_close",
    "mean_clv": "mean_clv",
    "clv_ci_low": "clv_ci_low",
    "clv_ci_high": "clv_ci_high",
    "beat_close_share": "beat_close_share",
    "settled": "settled",
    "roi": "roi",
    "roi_ci_low": "roi_ci_low",
    "roi_ci_high": "roi_ci_high",
    "profit": "profit",
}


def metrics(summary: pd.DataFrame) -> dict[str, float]:
    """`<type>.<metric>` over all of a type's signals and `<type>.<horizon>.<metric>` over its early
    and late ones, for every finite figure of the summary (a type without settled bets has no
    ROI, and MLflow would refuse a NaN as a metric in some stores)."""
    out: dict[str, float] = {}
    for row in summary.to_dict("records"):
        prefix = row["type"] if row.get("horizon", "all") == "all" else f"{row['type']}.{row['horizon']}"
        for column, name in METRICS.items():
            value = row.get(column)
            if value is not None and math.isfinite(float(value)):
                out[f"{prefix}.{name}"] = float(value)
    return out


def log_backtest(tracking: Tracking, run: GradingRun) -> str:
    """Log a backtest to MLflow; returns the MLflow run id."""
    import mlflow

    tracking.activate()
    experiment = tracking.experiment(EXPERIMENT)
    with mlflow.start_run(experiment_id=experiment, run_name=run.run_id) as active:
        mlflow.set_tags({"grading_run_id": run.run_id, "source": run.source})
        mlflow.log_params({key: str(value) for key, value in run.params.items()})
        mlflow.log_metrics(metrics(run.summary) | {f"count.{k}": float(v) for k, v in run.counts.items()})
        mlflow.log_text(run.bets.to_csv(index=False), "graded_bets.csv")
        mlflow.log_text(run.summary.to_csv(index=False), "summary.csv")
        mlflow.log_dict(dict(run.skipped.most_common()), "skipped.json")
        return str(active.info.run_id)
