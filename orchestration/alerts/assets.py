"""The alerts domain: after every marts refresh, the model's candidates and the mart detectors'
findings become decisions (green / yellow / red) in the audit trail and messages in the outbox
(`oddly.alerts.run`); the ingestion runs already did the same for the fast detectors. The
sender (`oddly send`) delivers the outbox."""

import logging
from datetime import UTC, datetime, timedelta

import dagster as dg
import pandas as pd

from oddly.alerts.policy import load_policy
from oddly.alerts.run import run_alerts
from oddly.dagster_home import WAREHOUSE_WRITER_POOL
from oddly.detect.pipeline import MART_DETECTORS, detect_in_marts
from oddly.detect.rules import load_rules
from orchestration.ml.assets import SCORES_KEY
from orchestration.resources import AppDatabaseResource, WarehouseResource

ALERTS_KEY = dg.AssetKey(["alerts", "decisions"])
# On the first run, mart detections this recent are still worth deciding.
FIRST_LOOKBACK = timedelta(minutes=10)


def previous_cursor(instance: dg.DagsterInstance) -> tuple[int, datetime | None]:
    """Where the previous run stopped: the last model-score row decided and the newest mart
    detection time. A run that crashed after committing decisions re-decides them; the decision
    engine's dedup then holds them, so nothing is sent twice."""
    event = instance.get_latest_materialization_event(ALERTS_KEY)
    materialization = event.asset_materialization if event else None
    if materialization is None:
        return 0, None
    meta = materialization.metadata
    score_id = meta.get("score_cursor")
    detected = meta.get("detected_until")
    return (
        int(score_id.value) if score_id is not None else 0,  # type: ignore[arg-type]
        pd.Timestamp(str(detected.value)).to_pydatetime() if detected is not None else None,
    )


@dg.asset(
    key=ALERTS_KEY,
    deps=[SCORES_KEY, dg.AssetKey(["marts", "fct_value_bets"]), dg.AssetKey(["marts", "fct_steam_moves"])],
    group_name="alerts",
    kinds={"python"},
    pool=WAREHOUSE_WRITER_POOL,
    description="Model candidates and the mart detectors (steam, value, stale line) decided by the "
    "alert policy: every decision in the audit trail, red and yellow alerts in the Telegram outbox "
    "in the same transaction; due digests flushed.",
)
def alert_decisions(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, app_db: AppDatabaseResource
) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata=decide_alerts(context.instance, warehouse, app_db, context.log))


def decide_alerts(
    instance: dg.DagsterInstance,
    warehouse: WarehouseResource,
    app_db: AppDatabaseResource,
    log: logging.Logger | dg.DagsterLogManager,
) -> dict[str, object]:
    """Decide what the last refresh brought (model candidates past the score cursor, mart
    detections since the last one); the materialization's metadata, whose cursors the next call
    starts from. The asset and the marts sensor both call this."""
    from ml.scores_store import candidates_after  # scikit-learn: only where a model is used

    settings = warehouse.settings()
    rules = load_rules(settings.rules_file)
    policy = load_policy(settings.alert_policy_file)
    now = datetime.now(UTC)
    score_cursor, detected_until = previous_cursor(instance)
    since = detected_until or now - FIRST_LOOKBACK
    wh = warehouse.get()
    engine = app_db.engine()
    try:
        scores = candidates_after(engine, score_cursor)
        detections = detect_in_marts(wh, rules, since=since, only=MART_DETECTORS)
        candidates: list[object] = [*detections, *scores.to_dict("records")]
        summary = run_alerts(
            engine,
            candidates,  # type: ignore[arg-type]
            policy,
            now,
            app_url=settings.app_url,
            warehouse=wh,
            sharp_books=rules.sharp_books,
        )
    finally:
        engine.dispose()
    log.info(summary.describe())
    newest = max((pd.Timestamp(d.detected_at) for d in detections), default=pd.Timestamp(since))
    return {
        **summary.as_metadata(),
        "model_candidates": len(scores),
        "mart_detections": len(detections),
        "score_cursor": int(scores["id"].max()) if len(scores) else score_cursor,
        "detected_until": newest.isoformat(),
        "policy_version": policy.version,
        "queued": dg.MetadataValue.md("\n".join(f"- {e}" for e in summary.examples) or "none"),
    }
