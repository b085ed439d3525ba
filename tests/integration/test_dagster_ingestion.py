"""Dagster: the definitions load, sensors request runs with a cursor and never pile up, and a
sensor-requested run ingests from the simulator over HTTP into the warehouse — on SQLite and on
dagster-postgres instance storage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from oddly.config import FeedConfig, HttpPolicy, OddlyConfig
from oddly.dagster_home import dagster_postgres_url
from oddly.ports import free_port
from oddly.simulator.config import SimConfig
from oddly.simulator.server import RunningSimulator, start_in_thread
from oddly.warehouse.store import Warehouse
from orchestration.ingestion.definitions import ingestion_definitions
from orchestration.resources import AppDatabaseResource, WarehouseResource
from tests.conftest import drop_pg_database, make_pg_database

FAST = HttpPolicy(retries=1, backoff_seconds=0.01, timeout_seconds=2, requests_per_second=100)


def feed(name: str, url: str, book: str = "22bet") -> FeedConfig:
    return FeedConfig(
        name=name,
        agent="linefeed",
        bookmaker=book,
        base_url=url,
        interval_seconds=10,
        http=FAST,
        options={"prematch": True, "live": True},
    )


def definitions(feeds: list[FeedConfig], warehouse_url: str) -> dg.Definitions:
    return dg.Definitions.merge(
        ingestion_definitions(OddlyConfig(feeds=feeds)),
        dg.Definitions(
            resources={"warehouse": WarehouseResource(url=warehouse_url), "app_db": AppDatabaseResource()}
        ),
    )


def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    with start_in_thread(SimConfig(seed=21, n_events=10, markets_per_event=6, manual_clock=True)) as running:
        yield running


def test_the_code_location_loads_with_an_asset_job_sensor_and_checks_per_feed() -> None:
    from orchestration.definitions import defs

    repo = defs.get_repository_def()
    names = [
        f.name
        for f in OddlyConfig.model_validate(
            __import__("yaml").safe_load((Path(__file__).parents[2] / "oddly.yaml").read_text())
        ).enabled_feeds
    ]
    assert names
    for name in names:
        assert repo.has_job(f"ingest_{name}")
        assert repo.has_sensor_def(f"poll_{name}")
        assert defs.get_assets_def(dg.AssetKey(["raw", "feed", name])) is not None
    feed_keys = {dg.AssetKey(["raw", "feed", name]) for name in names}
    check_keys = {k.name for k in defs.resolve_asset_graph().asset_check_keys if k.asset_key in feed_keys}
    assert check_keys == {"prices_above_one", "fresh"}


def run_request(defs: dg.Definitions, sensor: str, instance: dg.DagsterInstance, cursor: str | None = None):  # type: ignore[no-untyped-def]
    sensor_def = defs.resolve_sensor_def(sensor)
    context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs)
    result = sensor_def.evaluate_tick(context)
    return result


def test_sensor_requests_runs_with_a_cursor_and_a_run_key(tmp_path: Path) -> None:
    defs = definitions([feed("f1", "http://127.0.0.1:9")], f"duckdb:///{tmp_path}/w.duckdb")
    with dg.instance_for_test() as instance:
        first = run_request(defs, "poll_f1", instance)
        assert [r.run_key for r in first.run_requests] == ["f1:1"]
        assert first.run_requests[0].tags["oddly/feed"] == "f1"
        assert first.cursor == "1"
        second = run_request(defs, "poll_f1", instance, cursor=first.cursor)
        assert [r.run_key for r in second.run_requests] == ["f1:2"] and second.cursor == "2"


def test_sensor_skips_while_a_run_of_its_feed_is_in_flight(tmp_path: Path) -> None:
    defs = definitions(
        [feed("f1", "http://127.0.0.1:9"), feed("f2", "http://127.0.0.1:9")], f"duckdb:///{tmp_path}/w.duckdb"
    )
    with dg.instance_for_test() as instance:
        job = defs.resolve_job_def("ingest_f1")
        instance.create_run_for_job(job, status=dg.DagsterRunStatus.STARTED)
        skipped = run_request(defs, "poll_f1", instance, cursor="4")
        assert not skipped.run_requests and "still queued or running" in skipped.skip_message
        assert skipped.cursor == "4"  # nothing requested, nothing counted
        other = run_request(defs, "poll_f2", instance)
        assert [r.run_key for r in other.run_requests] == ["f2:1"]


def execute_requested(
    defs: dg.Definitions, sensor: str, instance: dg.DagsterInstance
) -> dg.ExecuteInProcessResult:
    """What the daemon does with a sensor's request, in process."""
    request = run_request(defs, sensor, instance).run_requests[0]
    job = defs.resolve_job_def(sensor.replace("poll_", "ingest_"))
    return job.execute_in_process(instance=instance, tags=request.tags, raise_on_error=False)


@pytest.mark.slow
def test_a_sensor_requested_run_ingests_over_http_into_duckdb(sim: RunningSimulator, tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path}/w.duckdb"
    defs = definitions(
        [feed("sim_22bet", sim.book_url("22bet")), feed("down", closed_port_url(), "nowhere")], url
    )
    with dg.instance_for_test() as instance:
        ok = execute_requested(defs, "poll_sim_22bet", instance)
        assert ok.success
        [materialization] = ok.asset_materializations_for_node("raw__feed__sim_22bet")
        meta = {k: v.value for k, v in materialization.metadata.items()}
        assert (
            meta["status"] == "ok"
            and meta["ticks_written"] > 0
            and meta["prices_seen"] >= meta["ticks_written"]
        )
        assert "| ticks written |" in meta["report"]
        checks = {e.check_name: e.passed for e in ok.get_asset_check_evaluations()}
        assert checks == {"prices_above_one": True, "fresh": True}

        down = execute_requested(defs, "poll_down", instance)
        assert not down.success
        failure = next(e for e in down.all_events if e.is_step_failure)
        assert "connection refused" in failure.step_failure_data.user_failure_data.description

    warehouse = Warehouse.from_url(url)
    assert warehouse.count_ticks() == meta["ticks_written"]
    runs = {r["feed"]: r for r in warehouse.feed_runs()}
    assert runs["sim_22bet"]["status"] == "ok" and runs["sim_22bet"]["feed_run_id"].startswith("sim_22bet-")
    assert runs["down"]["status"] == "failed" and "connection refused" in runs["down"]["error"]


@pytest.mark.slow
@pytest.mark.postgres
def test_runs_on_a_dagster_postgres_instance_with_a_postgres_warehouse(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    dagster_db = make_pg_database("oddly_dagster")
    warehouse_db = make_pg_database("oddly_wh")
    try:
        overrides = {"storage": {"postgres": {"postgres_url": dagster_postgres_url(dagster_db)}}}
        defs = definitions([feed("sim_melbet", sim.book_url("melbet"), "melbet")], warehouse_db)
        with dg.instance_for_test(overrides=overrides) as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            result = execute_requested(defs, "poll_sim_melbet", instance)
            assert result.success
            stored = instance.get_runs(dg.RunsFilter(tags={"oddly/feed": "sim_melbet"}))
            assert [r.status for r in stored] == [dg.DagsterRunStatus.SUCCESS]
        warehouse = Warehouse.from_url(warehouse_db)
        assert warehouse.dialect == "postgresql" and warehouse.count_ticks() > 0
        warehouse.dispose()
    finally:
        drop_pg_database(dagster_db)
        drop_pg_database(warehouse_db)
