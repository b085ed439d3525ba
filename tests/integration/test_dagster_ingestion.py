"""Dagster: the definitions load, and each feed's sensor polls its feed itself — over HTTP from the
simulator into the warehouse, in the sensor's evaluation, no run — and reports the poll as the feed
asset's materialization (an observation when the feed is down), counting polls in its cursor; the
asset materialized by hand runs the same poll. On SQLite and on dagster-postgres instance storage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from oddly.config import FeedConfig, HttpPolicy, OddlyConfig
from oddly.dagster_home import dagster_postgres_url
from oddly.ports import free_port
from oddly.simulator.config import SimConfig
from oddly.simulator.server import RunningSimulator, start_in_thread
from oddly.warehouse.store import Warehouse
from orchestration.ingestion.definitions import ingestion_definitions
from orchestration.ingestion.sensors import PollCursor
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


def test_the_poll_cursor_counts_polls_and_keeps_when_the_last_one_started() -> None:
    assert PollCursor.parse(None) == PollCursor(0, 0.0)
    assert PollCursor.parse("12") == PollCursor(12, 0.0)  # an earlier version's cursor
    assert PollCursor.parse(PollCursor(3, 1_700_000_000.25).dump()) == PollCursor(3, 1_700_000_000.25)


def test_the_code_location_loads_with_an_asset_sensor_and_checks_per_feed() -> None:
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
        sensor = repo.get_sensor_def(f"poll_{name}")
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING and not sensor.targets
        assert defs.get_assets_def(dg.AssetKey(["raw", "feed", name])) is not None
    feed_keys = {dg.AssetKey(["raw", "feed", name]) for name in names}
    check_keys = {k.name for k in defs.resolve_asset_graph().asset_check_keys if k.asset_key in feed_keys}
    assert check_keys == {"prices_above_one", "fresh"}


def tick(defs: dg.Definitions, sensor: str, instance: dg.DagsterInstance, cursor: str | None = None) -> Any:
    """One evaluation of `sensor`, its asset events stored as the daemon stores them."""
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, definitions=defs, resources=defs.resources
    )
    result = defs.resolve_sensor_def(sensor).evaluate_tick(context)
    for event in result.asset_events:
        instance.report_runless_asset_event(event)
    return result


def metadata(event: dg.AssetMaterialization | dg.AssetObservation) -> dict[str, Any]:
    return {k: v.value for k, v in event.metadata.items()}


@pytest.mark.slow
def test_the_sensor_polls_its_feed_over_http_into_duckdb_and_reports_it(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    url = f"duckdb:///{tmp_path}/w.duckdb"
    defs = definitions([feed("sim_22bet", sim.book_url("22bet"))], url)
    with dg.instance_for_test() as instance:
        first = tick(defs, "poll_sim_22bet", instance)
        assert not first.run_requests and PollCursor.parse(first.cursor).polls == 1
        [materialization] = first.asset_events
        assert isinstance(materialization, dg.AssetMaterialization)
        assert materialization.asset_key == dg.AssetKey(["raw", "feed", "sim_22bet"])
        meta = metadata(materialization)
        assert meta["status"] == "ok" and meta["poll"] == 1
        assert meta["ticks_written"] > 0 and meta["prices_seen"] >= meta["ticks_written"]
        assert "| ticks written |" in meta["report"]

        # evaluated again before the feed's interval is up: no poll (the daemon comes every 5 s)
        early = tick(defs, "poll_sim_22bet", instance, first.cursor)
        assert "next poll of sim_22bet in" in early.skip_message and early.cursor == first.cursor
        # an interval later; the market has not moved (manual clock): the poll writes nothing twice
        later = PollCursor(1, PollCursor.parse(first.cursor).started - 10).dump()
        second = tick(defs, "poll_sim_22bet", instance, later)
        assert PollCursor.parse(second.cursor).polls == 2
        assert metadata(second.asset_events[0])["ticks_written"] == 0
        recorded = instance.fetch_materializations(dg.AssetKey(["raw", "feed", "sim_22bet"]), limit=10)
        assert len(recorded.records) == 2
        assert instance.get_runs_count() == 0  # polled by the sensor itself, not by runs

    warehouse = Warehouse.from_url(url)
    assert warehouse.count_ticks() == meta["ticks_written"]
    runs = warehouse.feed_runs()
    assert [r["status"] for r in runs] == ["ok", "ok"] and runs[0]["feed"] == "sim_22bet"


@pytest.mark.slow
def test_a_feed_that_is_down_is_reported_with_the_reason_and_polled_again(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path}/w.duckdb"
    defs = definitions([feed("down", closed_port_url(), "nowhere")], url)
    with dg.instance_for_test() as instance:
        result = tick(defs, "poll_down", instance, cursor="6")
        [observation] = result.asset_events
        assert isinstance(observation, dg.AssetObservation)
        assert metadata(observation)["status"] == "failed"
        assert "connection refused" in result.skip_message and PollCursor.parse(result.cursor).polls == 7
        assert instance.get_latest_materialization_event(dg.AssetKey(["raw", "feed", "down"])) is None
    [run] = Warehouse.from_url(url).feed_runs()
    assert run["status"] == "failed" and "connection refused" in run["error"]
    assert "keeping last prices" in run["error"]


@pytest.mark.slow
def test_materializing_a_feed_by_hand_runs_the_same_poll_with_its_checks(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    url = f"duckdb:///{tmp_path}/w.duckdb"
    domain = ingestion_definitions(OddlyConfig(feeds=[feed("sim_melbet", sim.book_url("melbet"), "melbet")]))
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [*domain.assets, *domain.asset_checks],  # type: ignore[list-item]
            resources={"warehouse": WarehouseResource(url=url), "app_db": AppDatabaseResource()},
            instance=instance,
        )
        assert result.success
        [materialization] = result.asset_materializations_for_node("raw__feed__sim_melbet")
        assert metadata(materialization)["ticks_written"] > 0
        checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
        assert checks == {"prices_above_one": True, "fresh": True}
    [run] = Warehouse.from_url(url).feed_runs()
    assert run["feed_run_id"].startswith("sim_melbet-") and run["status"] == "ok"


@pytest.mark.slow
@pytest.mark.postgres
def test_polls_on_a_dagster_postgres_instance_with_a_postgres_warehouse(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    dagster_db = make_pg_database("oddly_dagster")
    warehouse_db = make_pg_database("oddly_wh")
    try:
        overrides = {"storage": {"postgres": {"postgres_url": dagster_postgres_url(dagster_db)}}}
        defs = definitions([feed("sim_melbet", sim.book_url("melbet"), "melbet")], warehouse_db)
        with dg.instance_for_test(overrides=overrides) as instance:
            assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
            result = tick(defs, "poll_sim_melbet", instance)
            assert metadata(result.asset_events[0])["status"] == "ok"
            record = instance.get_latest_materialization_event(dg.AssetKey(["raw", "feed", "sim_melbet"]))
            assert record is not None
        warehouse = Warehouse.from_url(warehouse_db)
        assert warehouse.dialect == "postgresql" and warehouse.count_ticks() > 0
        warehouse.dispose()
    finally:
        drop_pg_database(dagster_db)
        drop_pg_database(warehouse_db)
