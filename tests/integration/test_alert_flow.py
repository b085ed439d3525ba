"""Detections and scores reach the outbox: the ingestion run's fast path (a red sharp drop queued
in the same run, with its chart), a failure there that costs no tick, and the Dagster alert asset
after a marts refresh (model candidates and mart detections decided once, by cursor)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from ml import scores_store
from ml.features import NUMERIC_FEATURES
from oddly.alerts import audit
from oddly.alerts.outbox import outbox
from oddly.alerts.run import alert_fast_path
from oddly.alerts.subscriptions import register_chat
from oddly.appdb import open_app_db
from oddly.config import REPO_ROOT, Settings
from oddly.detect.pipeline import detect_ingested
from oddly.detect.rules import parse_rules
from oddly.matching.run import update_event_map
from oddly.model import now_utc
from oddly.warehouse.store import Warehouse
from orchestration.alerts.assets import alert_decisions
from orchestration.resources import AppDatabaseResource, WarehouseResource
from tests.integration.test_dbt_project import dbt
from tests.integration.test_detect_ingest import IN_LINE, book_prices

POLICY = REPO_ROOT / "config" / "alert_policy.yaml"
RULES = parse_rules({"version": "flow-1", "sharp_books": ["a"]})


def outbox_rows(engine: sa.Engine) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql_query(sa.select(outbox), conn)


def decisions(engine: sa.Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        return audit.search_decisions(conn, limit=1000)


def a_sharp_drop(warehouse: Warehouse) -> list:  # type: ignore[type-arg]
    """Four books in line, then book x shortens its home 2.0 → 1.6 (12.5 points)."""
    now = now_utc() - timedelta(seconds=30)
    for book in ("a", "b", "c", "x"):
        table, record = book_prices(book, IN_LINE, now, f"{book}-1")
        warehouse.write_run(table, [], record)
    update_event_map(warehouse)
    moved = {**IN_LINE, ("1x2", None, "home"): 1.6}
    table, record = book_prices("x", moved, now + timedelta(seconds=10), "x-2")
    ticks = warehouse.write_run_ticks(table, [], record)
    return detect_ingested(warehouse, ticks, RULES)


def fast_path(open_engine, detections, warehouse: Warehouse, policy: Path = POLICY):  # type: ignore[no-untyped-def]
    """The ingestion run's alerting step as the ingestion asset calls it."""
    return alert_fast_path(
        open_engine,
        detections,
        policy_file=policy,
        app_url="http://app",
        warehouse=warehouse,
        sharp_books=["a"],
        now=now_utc(),
    )


def test_the_fast_path_queues_a_red_sharp_drop_with_its_chart_in_the_same_run(tmp_path: Path) -> None:
    warehouse = Warehouse.from_url(f"duckdb:///{tmp_path}/wh.duckdb")
    detections = a_sharp_drop(warehouse)
    assert "sharp_drop" in {d.type for d in detections}
    engine = open_app_db(f"sqlite:///{tmp_path}/app.db")
    with engine.begin() as conn:
        register_chat(conn, 42, now_utc())

    summary, error = fast_path(lambda: engine, detections, warehouse)
    assert error is None and summary is not None
    assert summary.decisions == len(detections) and summary.by_action.get("queued", 0) >= 1
    made = decisions(engine)
    drop = next(d for d in made if d["type"] == "sharp_drop")
    assert drop["severity"] == "red" and drop["action"] == "queued" and drop["rules_version"] == "flow-1"
    queued = outbox_rows(engine)
    sent = queued[queued["alert_id"] == drop["alert_id"]]
    assert list(sent["chat_id"]) == ["42"]
    [photo] = sent["photo"]
    assert photo is not None and bytes(photo).startswith(b"\x89PNG")  # the line-movement chart
    [text] = sent["text"]
    assert "Manta" in text and "1.6" in text and "http://app/event?" in text

    # the same detections again (a retried run): decided, held, nothing queued twice
    again, _ = fast_path(lambda: engine, detections, warehouse)
    assert again is not None and again.by_action.get("queued", 0) == 0
    assert len(outbox_rows(engine)) == len(queued)
    warehouse.dispose()


def test_a_broken_policy_or_app_database_is_reported_and_costs_no_tick(tmp_path: Path) -> None:
    warehouse = Warehouse.from_url(f"duckdb:///{tmp_path}/wh.duckdb")
    detections = a_sharp_drop(warehouse)
    ticks = warehouse.count_ticks()
    broken = tmp_path / "policy.yaml"
    broken.write_text("version: x\ntypes: {sharp_drop: {red_strenght: 2}}\n")
    engine = open_app_db(f"sqlite:///{tmp_path}/app.db")
    summary, error = fast_path(lambda: engine, detections, warehouse, policy=broken)
    assert summary is None and error is not None
    assert f"alerts not decided for {len(detections)} detection(s)" in error and "red_strenght" in error
    assert decisions(engine) == [] and outbox_rows(engine).empty

    def unreachable() -> sa.Engine:
        return open_app_db("postgresql://nobody@127.0.0.1:9/none")

    summary, error = fast_path(unreachable, detections, warehouse)
    assert summary is None and error is not None and "alerts not decided" in error
    assert warehouse.count_ticks() == ticks
    warehouse.dispose()


def candidate_row(event: str, score: float, at: datetime) -> dict[str, object]:
    return {
        "scored_at": at,
        "observed_at": at,
        "selection_key": 1,
        "canonical_event_id": event,
        "bookmaker": "x",
        "market": "1x2",
        "period": "ft",
        "line": None,
        "outcome": "home",
        "price": 1.6,
        "score": score,
        "threshold": 0.1,
        "is_candidate": True,
        "in_sample": False,
        "model_version": "3",
        "reasons": '[{"feature": "move_pp", "value": 12.5, "normal": "0 (normal -0.5 … 0.5)", '
        '"contribution": 0.8}]',
        **{f"f_{name}": 0.0 for name in NUMERIC_FEATURES},
    }


@pytest.mark.slow
def test_the_alert_asset_decides_model_candidates_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ODDLY_HOME", str(tmp_path))
    monkeypatch.delenv("ODDLY_WAREHOUSE_URL", raising=False)
    warehouse = Warehouse.from_url(f"duckdb:///{tmp_path}/warehouse.duckdb")
    a_sharp_drop(warehouse)
    event = warehouse.scalar("select canonical_event_id from raw.event_map where bookmaker = 'x'")
    warehouse.dispose()
    built = dbt(Settings(home=tmp_path), "build", "--exclude-resource-type", "unit_test")
    assert built.returncode == 0, built.stdout[-2000:]

    engine = open_app_db(f"sqlite:///{tmp_path}/app.db")
    with engine.begin() as conn:
        register_chat(conn, 7, now_utc())
    now = datetime.now(UTC)
    scores_store.write(
        engine,
        pd.DataFrame([candidate_row(event, 0.97, now)]),
        {
            "scored_at": now,
            "latest_observed_at": now,
            "model_version": "3",
            "rows_scored": 1,
            "candidates": 1,
            "seconds": 0.1,
        },
    )
    resources = {
        "warehouse": WarehouseResource(),
        "app_db": AppDatabaseResource(url=f"sqlite:///{tmp_path}/app.db"),
    }
    with dg.instance_for_test() as instance:
        first = dg.materialize([alert_decisions], resources=resources, instance=instance)
        assert first.success
        [event_1] = first.asset_materializations_for_node("alerts__decisions")
        meta = {k: v.value for k, v in event_1.metadata.items()}
        assert meta["model_candidates"] == 1 and meta["score_cursor"] >= 1
        anomaly = [d for d in decisions(engine) if d["type"] == "anomaly"]
        assert [(d["severity"], d["action"], d["model_version"]) for d in anomaly] == [("red", "queued", "3")]
        queued = outbox_rows(engine)
        assert list(queued[queued["alert_id"] == anomaly[0]["alert_id"]]["chat_id"]) == ["7"]
        assert "move_pp = 12.5" in queued["text"].iloc[-1] or queued["photo"].iloc[-1] is not None

        # the next run starts after the cursor: the same candidate is not decided again
        second = dg.materialize([alert_decisions], resources=resources, instance=instance)
        [event_2] = second.asset_materializations_for_node("alerts__decisions")
        meta = {k: v.value for k, v in event_2.metadata.items()}
        assert meta["model_candidates"] == 0
        assert len([d for d in decisions(engine) if d["type"] == "anomaly"]) == 1
