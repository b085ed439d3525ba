"""Dagster, warehouse domain: event matching and the dbt models follow the feeds, dbt's data tests are
asset checks, the code location loads them from the prepared manifest without parsing dbt, the
sensor requests one refresh per batch of ingestion with a cursor, and a refresh after real
ingestion from the simulator builds, tests and publishes the marts — on DuckDB and PostgreSQL."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster_dbt import DbtProject

from oddly.config import REPO_ROOT, OddlyConfig
from oddly.matching.run import MatchReport
from oddly.simulator.config import SimConfig
from oddly.simulator.server import RunningSimulator, start_in_thread
from oddly.warehouse.reader import MartsReader
from oddly.warehouse.snapshot import snapshot_path
from oddly.warehouse.store import Warehouse
from orchestration.ingestion.assets import feed_asset_key
from orchestration.ingestion.definitions import ingestion_definitions
from orchestration.resources import AppDatabaseResource, WarehouseResource
from orchestration.warehouse.assets import EVENT_MAP_KEY, ODDS_TICKS_KEY, match_table
from orchestration.warehouse.dbt_project import DBT_PROJECT, dbt_resource
from orchestration.warehouse.definitions import warehouse_definitions
from tests.integration.test_dagster_ingestion import feed
from tests.simulated import simulator_feeds

SENSOR = "refresh_marts_after_ingestion"


def manifest() -> dict[str, Any]:
    return dict(json.loads(DBT_PROJECT.manifest_path.read_text()))


def dbt_models() -> dict[dg.AssetKey, str]:
    """Every dbt model of the prepared manifest: its relation as asset key → its folder."""
    return {
        dg.AssetKey([node["schema"], node["alias"]]): node["fqn"][1]
        for node in manifest()["nodes"].values()
        if node["resource_type"] == "model"
    }


def dbt_tests(tag: str | None = None) -> set[str]:
    """The data tests; with `tag`, those carrying it, else those without raw_history (the tests over
    every tick ever written, run daily rather than each cycle)."""
    tests = [node for node in manifest()["nodes"].values() if node["resource_type"] == "test"]
    if tag:
        return {node["name"] for node in tests if tag in node["tags"]}
    return {node["name"] for node in tests if "raw_history" not in node["tags"]}


def definitions(feeds: list[Any], warehouse: WarehouseResource) -> dg.Definitions:
    config = OddlyConfig(feeds=feeds)
    return dg.Definitions.merge(
        ingestion_definitions(config),
        warehouse_definitions(config),
        dg.Definitions(
            resources={"warehouse": warehouse, "dbt": dbt_resource(), "app_db": AppDatabaseResource()}
        ),
    )


def tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None = None) -> Any:
    context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs)
    return defs.resolve_sensor_def(SENSOR).evaluate_tick(context)


def ingested(instance: dg.DagsterInstance, name: str) -> int:
    """A materialization of feed `name`, as its ingestion run reports it; returns its storage id."""
    key = dg.AssetKey(["raw", "feed", name])
    instance.report_runless_asset_event(dg.AssetMaterialization(key))
    record = instance.get_asset_records([key])[0]
    return int(record.asset_entry.last_materialization_storage_id or 0)


def test_the_code_location_loads_the_dbt_assets_from_the_prepared_manifest_without_running_dbt() -> None:
    """In a fresh process, as `dagster dev` (where dagster-dbt's own helper would parse) loads it."""
    before = DBT_PROJECT.manifest_path.stat().st_mtime_ns
    script = textwrap.dedent(
        """
        import json, pathlib, subprocess

        class NoDbt(subprocess.Popen):
            def __init__(self, args, *rest, **kwargs):
                if pathlib.Path(args[0]).name in ("dbt", "dbtf"):
                    raise AssertionError(f"loading the code location ran dbt: {args!r}")
                super().__init__(args, *rest, **kwargs)

        subprocess.Popen = NoDbt
        from orchestration.definitions import defs

        graph = defs.resolve_asset_graph()
        repo = defs.get_repository_def()
        print(json.dumps({
            "assets": sorted(k.to_user_string() for k in graph.get_all_asset_keys()),
            "checks": sorted(k.name for k in graph.asset_check_keys),
            "job": repo.has_job("refresh_marts"),
            "sensor": repo.get_sensor_def("refresh_marts_after_ingestion").default_status.value,
        }))
        """
    )
    env = {**os.environ, "DAGSTER_IS_DEV_CLI": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert {k.to_user_string() for k in dbt_models()} | {"raw/event_map", "raw/odds_ticks"} <= set(
        loaded["assets"]
    )
    assert dbt_tests() <= set(loaded["checks"])
    assert loaded["job"] and loaded["sensor"] == "RUNNING"
    assert DBT_PROJECT.manifest_path.stat().st_mtime_ns == before


def test_lineage_reads_feeds_then_raw_tables_then_models_grouped_by_folder_with_tests_as_checks() -> None:
    feeds = [feed("f1", "http://127.0.0.1:9"), feed("f2", "http://127.0.0.1:9", "melbet")]
    graph = definitions(feeds, WarehouseResource()).resolve_asset_graph()
    feed_keys = {feed_asset_key(f) for f in feeds}
    assert graph.get(ODDS_TICKS_KEY).parent_keys == feed_keys
    assert not graph.get(ODDS_TICKS_KEY).is_materializable  # written by the feed assets, not by itself
    assert graph.get(EVENT_MAP_KEY).parent_keys == feed_keys
    assert graph.get(dg.AssetKey(["staging", "stg_raw__odds_ticks"])).parent_keys == {ODDS_TICKS_KEY}
    assert graph.get(dg.AssetKey(["staging", "stg_raw__event_map"])).parent_keys == {EVENT_MAP_KEY}
    models = dbt_models()
    assert {graph.get(key).group_name for key in models} == {"staging", "intermediate", "marts"}
    assert all(graph.get(key).group_name == folder for key, folder in models.items())
    checks = {k.name: k.asset_key for k in graph.asset_check_keys}
    assert dbt_tests() <= set(checks)
    assert checks["no_vig_probabilities_sum_to_one"] == dg.AssetKey(["intermediate", "int_no_vig_by_book"])
    job = definitions(feeds, WarehouseResource()).resolve_job_def("refresh_marts")
    assert set(job.asset_layer.executable_asset_keys) == {EVENT_MAP_KEY, *models}


def test_a_missing_manifest_says_which_command_prepares_it(tmp_path: Path) -> None:
    for name in ("dbt_project.yml", "profiles.yml"):
        shutil.copy(DBT_PROJECT.project_dir / name, tmp_path / name)
    unprepared = DbtProject(project_dir=tmp_path, profiles_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"manifest\.json is missing: run `make manifest`"):
        warehouse_definitions(OddlyConfig(), unprepared)


def test_the_match_table_lists_what_matching_left_open() -> None:
    event = {"bookmaker": "22bet", "source_event_id": "7", "home": "Man Utd", "away": "Spurs"}
    report = MatchReport(
        events=3,
        canonical_events=2,
        matched_across_books=1,
        unmatched=[{**event, "reason": "home and away swapped against another book"}],
        ambiguous=[{**event, "source_event_id": "8", "reason": "two candidates about as good"}],
    )
    table = match_table(report).splitlines()
    assert (
        table[2] == "| unmatched | 22bet | 7 | Man Utd v Spurs | home and away swapped against another book |"
    )
    assert table[3].startswith("| ambiguous | 22bet | 8 |") and len(table) == 4


def test_the_sensor_requests_one_refresh_per_batch_of_ingestion_with_a_cursor_and_run_key() -> None:
    defs = definitions(
        [feed("f1", "http://127.0.0.1:9"), feed("f2", "http://127.0.0.1:9")], WarehouseResource()
    )
    with dg.instance_for_test() as instance:
        nothing = tick(defs, instance)
        assert not nothing.run_requests and nothing.cursor is None
        assert "no feed has been ingested" in nothing.skip_message

        first = ingested(instance, "f1")
        requested = tick(defs, instance)
        assert [r.run_key for r in requested.run_requests] == [f"marts:{first}"]
        assert requested.cursor == str(first)
        # a daemon restarted before it stored the cursor asks again with the same run_key (deduplicated)
        assert [r.run_key for r in tick(defs, instance).run_requests] == [f"marts:{first}"]

        idle = tick(defs, instance, requested.cursor)
        assert not idle.run_requests and idle.cursor == requested.cursor

        ingested(instance, "f1")
        latest = ingested(instance, "f2")
        batch = tick(defs, instance, requested.cursor)
        assert [r.run_key for r in batch.run_requests] == [f"marts:{latest}"] and batch.cursor == str(latest)


def test_the_sensor_waits_while_a_refresh_is_queued_or_running_and_then_takes_in_what_landed() -> None:
    defs = definitions([feed("f1", "http://127.0.0.1:9")], WarehouseResource())
    with dg.instance_for_test() as instance:
        running = instance.create_run_for_job(
            defs.resolve_job_def("refresh_marts"), status=dg.DagsterRunStatus.STARTED
        )
        latest = ingested(instance, "f1")
        waiting = tick(defs, instance, "0")
        assert not waiting.run_requests and "still queued or running" in waiting.skip_message
        assert waiting.cursor == "0"  # nothing handed over, so nothing is skipped later
        instance.report_run_canceled(running)
        after = tick(defs, instance, "0")
        assert [r.run_key for r in after.run_requests] == [f"marts:{latest}"]


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    with start_in_thread(SimConfig(seed=17, n_events=8, markets_per_event=4, manual_clock=True)) as running:
        yield running


def ingest_then_refresh(
    defs: dg.Definitions, instance: dg.DagsterInstance
) -> tuple[dg.ExecuteInProcessResult, str]:
    """Every feed's ingestion run, then the refresh the sensor requests, in process; returns the
    refresh's result and the sensor's cursor."""
    for job in defs.get_repository_def().get_all_jobs():
        if job.name.startswith("ingest_"):
            assert job.execute_in_process(instance=instance).success
    requested = tick(defs, instance)
    [request] = requested.run_requests
    result = defs.resolve_job_def("refresh_marts").execute_in_process(
        instance=instance, tags=request.tags, raise_on_error=False
    )
    return result, requested.cursor


def assert_refreshed(result: dg.ExecuteInProcessResult) -> None:
    """Matching and every model materialized, and every dbt test passed as an asset check."""
    assert result.success
    [matching] = result.asset_materializations_for_node("raw__event_map")
    meta = {k: v.value for k, v in matching.metadata.items()}
    assert meta["events"] > 0 and meta["matched_across_books"] > 0
    materialized = {m.asset_key for m in result.get_asset_materialization_events() if m.asset_key}
    assert set(dbt_models()) <= materialized
    evaluations = result.get_asset_check_evaluations()
    checked = {e.check_name for e in evaluations}
    assert checked >= dbt_tests()
    assert dbt_tests("raw_history") and not checked & dbt_tests("raw_history")
    assert [e.check_name for e in evaluations if not e.passed] == []


@pytest.mark.slow
def test_a_refresh_after_ingestion_builds_tests_and_publishes_the_marts_on_duckdb(
    sim: RunningSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ODDLY_HOME", str(tmp_path))
    monkeypatch.delenv("ODDLY_WAREHOUSE_URL", raising=False)
    defs = definitions(simulator_feeds(sim), WarehouseResource())
    with dg.instance_for_test() as instance:
        result, cursor = ingest_then_refresh(defs, instance)
        assert_refreshed(result)
        # the refresh's own materializations request nothing: the marts are up to date
        assert "no feed has been ingested" in tick(defs, instance, cursor).skip_message

    prices = MartsReader(warehouse_url=None, home=tmp_path).query(
        "select count(*) as n from marts.fct_prices_current"
    )
    assert int(prices["n"][0]) > 0
    observed = {
        o.asset_key: {k: v.value for k, v in o.metadata.items()}
        for o in (
            e.event_specific_data.asset_observation for e in result.all_events if e.is_asset_observation
        )
    }
    assert observed[dg.AssetKey(["marts", "fct_prices_current"])]["published_rows"] == int(prices["n"][0])
    assert snapshot_path(tmp_path).exists()
    warehouse = Warehouse.from_url(f"duckdb:///{tmp_path}/warehouse.duckdb")
    assert {"fct_prices_current", "fct_consensus", "fct_arbitrage"} <= {
        r["table_name"]
        for r in warehouse.query(
            "select table_name from information_schema.tables where table_schema = 'marts'"
        )
    }


@pytest.mark.slow
@pytest.mark.postgres
def test_a_refresh_after_ingestion_builds_and_tests_the_marts_on_postgres(
    sim: RunningSimulator, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ODDLY_HOME", str(tmp_path))
    defs = definitions(simulator_feeds(sim), WarehouseResource(url=pg_url))
    with dg.instance_for_test() as instance:
        assert_refreshed(ingest_then_refresh(defs, instance)[0])
    reader = MartsReader(warehouse_url=pg_url, home=tmp_path)
    assert int(reader.query("select count(*) as n from marts.fct_prices_current")["n"][0]) > 0
    reader.dispose()
    assert not snapshot_path(tmp_path).exists()  # PostgreSQL readers read the warehouse itself
