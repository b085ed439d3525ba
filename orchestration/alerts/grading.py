"""Grading live alerts, continuously: every 15 minutes the alerts whose events have kicked off are
graded against the sharp book's close and, once the result is in the warehouse, settled
(`oddly.grading.live`). Thin: the asset reports counts, mean CLV and ROI per type as metadata.

It reads the audit trail the alerts/decisions asset writes and the ticks for the closing line, but
declares only raw/odds_ticks upstream: downstream of the decisions it would join every
refresh_marts run, and grading does not need to run after every marts cycle."""

import math

import dagster as dg
import pandas as pd

from oddly.alerts.policy import load_policy
from oddly.dagster_home import WAREHOUSE_WRITER_POOL
from oddly.detect.rules import load_rules
from oddly.grading.live import grade_live
from orchestration.resources import AppDatabaseResource, WarehouseResource
from orchestration.warehouse.assets import ODDS_TICKS_KEY

GRADES_KEY = dg.AssetKey(["alerts", "grades"])
GRADE_CRON = "*/15 * * * *"


def summary_table(summary: pd.DataFrame) -> str:
    """The live standing per type as a markdown table."""
    if summary.empty:
        return "no live alert graded yet (none has had its event kick off)"

    def pct(value: float) -> str:
        return "—" if not math.isfinite(value) else f"{value:+.2%}"

    lines = [
        "| type | alerts | closed | mean CLV | 95 % CI | beat close | settled | ROI | 95 % CI |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in summary.itertuples():
        beat = "—" if not math.isfinite(r.beat_close_share) else f"{r.beat_close_share:.0%}"
        lines.append(
            f"| {r.type} | {int(r.signals)} | {int(r.with_close)} | {pct(r.mean_clv)} | "
            f"{pct(r.clv_ci_low)} … {pct(r.clv_ci_high)} | {beat} | {int(r.settled)} | {pct(r.roi)} | "
            f"{pct(r.roi_ci_low)} … {pct(r.roi_ci_high)} |"
        )
    return "\n".join(lines)


def _finite(value: float) -> float | None:
    return round(float(value), 6) if math.isfinite(value) else None


@dg.asset(
    key=GRADES_KEY,
    deps=[ODDS_TICKS_KEY],
    group_name="alerts",
    kinds={"python"},
    pool=WAREHOUSE_WRITER_POOL,
    description="Live alerts graded once their events have kicked off: closing-line value against "
    "the sharp book's no-vig close, then profit at level stakes when the result arrives, with "
    "bootstrap 95 % intervals per type (app database signal_grades; the app's Backtest page). "
    "Every 15 minutes (grade_alerts_every_15_minutes).",
)
def alert_grades(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, app_db: AppDatabaseResource
) -> dg.MaterializeResult:
    settings = warehouse.settings()
    rules = load_rules(settings.rules_file)
    policy = load_policy(settings.alert_policy_file)
    engine = app_db.engine()
    wh = warehouse.get()
    try:
        run = grade_live(wh, engine, rules, policy_version=policy.version)
    finally:
        engine.dispose()  # the warehouse is the process's shared one: left open
    context.log.info(run.describe())
    summary = run.summary.loc[run.summary["horizon"] == "all"]
    closed = summary.loc[summary["with_close"] > 0]
    overall_clv = (
        float((closed["mean_clv"] * closed["with_close"]).sum() / closed["with_close"].sum())
        if len(closed)
        else float("nan")
    )
    per_type = {
        f"mean_clv_{r.type}": _finite(r.mean_clv) for r in summary.itertuples() if math.isfinite(r.mean_clv)
    }
    return dg.MaterializeResult(
        metadata={
            "grading_run": run.run_id if run.stored else "none: nothing new to grade",
            **{key: int(value) for key, value in run.counts.items()},
            "mean_clv": _finite(overall_clv),
            **per_type,
            "skipped": dg.MetadataValue.json(dict(run.skipped)),
            "standing": dg.MetadataValue.md(summary_table(summary)),
        }
    )
