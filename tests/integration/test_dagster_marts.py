"""Dagster, warehouse domain: event matching and the dbt models follow the feeds, dbt's data tests are
asset checks, the code location loads them from the prepared manifest without parsing dbt. After
real ingestion from the simulator, the marts sensor runs a cycle itself — matching, the models in
the warm in-process dbt, the marts published, the data tests when due, scoring and alerts — and
reports each as a materialization or check, once per batch of ingestion, on DuckDB and PostgreSQL;
the refresh_marts job does the same in a run by hand."""

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
from orchestration.alerts.assets import ALERTS_KEY
from orchestration.alerts.definitions import alerts_definitions
from orchestration.ingestion.assets import feed_asset_key
from orchestration.ingestion.definitions import ingestion_definitions
from orchestration.ml.assets import SCORES_KEY
from orchestration.ml.definitions import ml_definitions
from orchestration.resources import AppDatabaseResource, MlflowResource, WarehouseResource
from orchestration.warehouse.assets import EVENT_MAP_KEY, ODDS_TICKS_KEY, match_table
from orchestration.warehouse.dbt_project import DBT_PROJECT, dbt_resource
from orchestration.warehouse.definitions import warehouse_definitions
from orchestration.warehouse.sensors import MartsCursor, latest_materialization
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


def cycle_models() -> set[dg.AssetKey]:
    """The models a cycle runs after the first (its selector leaves out the views)."""
    return {
        dg.AssetKey([node["schema"], node["alias"]])
        for node in manifest()["nodes"].values()
        if node["resource_type"] == "model" and node["config"]["materialized"] != "view"
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
        ml_definitions(),
        alerts_definitions(),
        dg.Definitions(
            resources={
                "warehouse": warehouse,
                "dbt": dbt_resource(),
                "app_db": AppDatabaseResource(),
                "mlflow": MlflowResource(),
            }
        ),
    )


def tick(defs: dg.Definitions, name: str, instance: dg.DagsterInstance, cursor: str | None = None) -> Any:
    """One evaluation of sensor `name`, its asset events stored as the daemon stores them."""
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, definitions=defs, resources=defs.resources
    )
    result = defs.resolve_sensor_def(name).evaluate_tick(context)
    for event in result.asset_events:
        instance.report_runless_asset_event(event)
    return result


def ingest_every_feed(defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
    for sensor in defs.get_repository_def().sensor_defs:
        if sensor.name.startswith("poll_"):
            [event] = tick(defs, sensor.name, instance).asset_events
            assert isinstance(event, dg.AssetMaterialization), event


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
    assert set(job.asset_layer.executable_asset_keys) == {EVENT_MAP_KEY, *models, SCORES_KEY, ALERTS_KEY}


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


def test_the_cursor_keeps_the_ingestion_taken_in_and_when_the_tests_ran() -> None:
    assert MartsCursor.parse(None) == MartsCursor(0, 0.0)
    assert MartsCursor.parse("42") == MartsCursor(42, 0.0)  # an earlier version's cursor
    cursor = MartsCursor(7, 1_700_000_000.5)
    assert MartsCursor.parse(cursor.dump()) == cursor


def test_the_sensor_waits_while_a_refresh_is_queued_or_running_and_when_nothing_was_ingested() -> None:
    defs = definitions([feed("f1", "http://127.0.0.1:9")], WarehouseResource())
    with dg.instance_for_test() as instance:
        nothing = tick(defs, SENSOR, instance)
        assert "no feed has been ingested" in nothing.skip_message and nothing.cursor is None
        instance.create_run_for_job(defs.resolve_job_def("refresh_marts"), status=dg.DagsterRunStatus.STARTED)
        instance.report_runless_asset_event(
            dg.AssetMaterialization(feed_asset_key(feed("f1", "http://127.0.0.1:9")))
        )
        waiting = tick(defs, SENSOR, instance, "0")
        assert "refresh_marts run is queued or running" in waiting.skip_message
        assert waiting.cursor == "0" and not waiting.asset_events  # nothing taken in, nothing skipped


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    with start_in_thread(SimConfig(seed=17, n_events=8, markets_per_event=4, manual_clock=True)) as running:
        yield running


def materialized(result: Any) -> dict[dg.AssetKey, dict[str, Any]]:
    return {
        e.asset_key: {k: v.value for k, v in e.metadata.items()}
        for e in result.asset_events
        if isinstance(e, dg.AssetMaterialization)
    }


def checks(result: Any) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.asset_events if isinstance(e, dg.AssetCheckEvaluation)}


def assert_refreshed(result: Any, *, first: bool, tested: bool) -> None:
    """Matching (on a first cycle: later ones find no new event), the models (all of them on a
    first cycle), scoring and alerts materialized; with `tested`, every cycle test passed; the
    cycle's timings observed on the tick table."""
    done = materialized(result)
    if first:
        assert done[EVENT_MAP_KEY]["events"] > 0 and done[EVENT_MAP_KEY]["matched_across_books"] > 0
    else:
        assert EVENT_MAP_KEY not in done
    [cycle] = [
        e for e in result.asset_events if isinstance(e, dg.AssetObservation) and e.asset_key == ODDS_TICKS_KEY
    ]
    timings = {k: v.value for k, v in cycle.metadata.items()}
    # the polls wait for the matching only, not for dbt
    assert 0 < timings["warehouse_held_seconds"] == timings["match_seconds"]
    assert timings["match_seconds"] + timings["dbt_models_seconds"] < timings["cycle_seconds"]
    models = set(dbt_models()) if first else cycle_models()
    assert models and models == set(done) & set(dbt_models())
    assert done[SCORES_KEY]["rows_scored"] == 0 and done[SCORES_KEY]["champion"] == "none"
    assert "decisions" in done[ALERTS_KEY] and "score_cursor" in done[ALERTS_KEY]
    if tested:
        assert set(checks(result)) >= dbt_tests() and not set(checks(result)) & dbt_tests("raw_history")
        assert [name for name, passed in checks(result).items() if not passed] == []
    else:
        assert checks(result) == {}


@pytest.mark.slow
def test_after_ingestion_the_sensor_refreshes_tests_and_publishes_the_marts_on_duckdb(
    sim: RunningSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ODDLY_HOME", str(tmp_path))
    monkeypatch.delenv("ODDLY_WAREHOUSE_URL", raising=False)
    defs = definitions(simulator_feeds(sim), WarehouseResource())
    with dg.instance_for_test() as instance:
        ingest_every_feed(defs, instance)
        first = tick(defs, SENSOR, instance)
        assert_refreshed(first, first=True, tested=True)
        assert instance.get_runs_count() == 0  # the cycle ran in the sensor, not in a run
        cursor = MartsCursor.parse(first.cursor)
        assert cursor.ingested == latest_materialization(
            instance, [feed_asset_key(f) for f in simulator_feeds(sim)]
        )
        assert "no feed has been ingested" in tick(defs, SENSOR, instance, first.cursor).skip_message

        # the next batch: the models again, the tests only when they are due again (5 minutes)
        sim.call(lambda: sim.market.advance(30))
        ingest_every_feed(defs, instance)
        second = tick(defs, SENSOR, instance, first.cursor)
        assert_refreshed(second, first=False, tested=False)
        assert MartsCursor.parse(second.cursor).checked_at == cursor.checked_at

    reader = MartsReader(warehouse_url=None, home=tmp_path)
    prices = int(reader.query("select count(*) as n from marts.fct_prices_current")["n"][0])
    assert prices > 0
    observed = {
        e.asset_key: {k: v.value for k, v in e.metadata.items()}
        for e in second.asset_events
        if isinstance(e, dg.AssetObservation)
    }
    assert observed[dg.AssetKey(["marts", "fct_prices_current"])]["published_rows"] == prices
    assert snapshot_path(tmp_path).exists()


@pytest.mark.slow
def test_the_refresh_marts_job_builds_tests_and_publishes_by_hand(
    sim: RunningSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ODDLY_HOME", str(tmp_path))
    monkeypatch.delenv("ODDLY_WAREHOUSE_URL", raising=False)
    defs = definitions(simulator_feeds(sim), WarehouseResource())
    with dg.instance_for_test() as instance:
        ingest_every_feed(defs, instance)
        result = defs.resolve_job_def("refresh_marts").execute_in_process(instance=instance)
    assert result.success
    [matching] = result.asset_materializations_for_node("raw__event_map")
    assert matching.metadata["events"].value > 0  # type: ignore[attr-defined]
    built = {m.asset_key for m in result.get_asset_materialization_events() if m.asset_key}
    assert set(dbt_models()) <= built
    evaluations = result.get_asset_check_evaluations()
    assert {e.check_name for e in evaluations} >= dbt_tests()
    assert [e.check_name for e in evaluations if not e.passed] == []
    info = MartsReader(warehouse_url=None, home=tmp_path).published()
    assert int(dict(zip(info["relation"], info["row_count"], strict=True))["marts.fct_prices_current"]) > 0


@pytest.mark.slow
@pytest.mark.postgres
def test_after_ingestion_the_sensor_refreshes_and_tests_the_marts_on_postgres(
    sim: RunningSimulator, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ODDLY_HOME", str(tmp_path))
    defs = definitions(simulator_feeds(sim), WarehouseResource(url=pg_url))
    with dg.instance_for_test() as instance:
        ingest_every_feed(defs, instance)
        assert_refreshed(tick(defs, SENSOR, instance), first=True, tested=True)
    reader = MartsReader(warehouse_url=pg_url, home=tmp_path)
    assert int(reader.query("select count(*) as n from marts.fct_prices_current")["n"][0]) > 0
    reader.dispose()
    assert not snapshot_path(tmp_path).exists()  # PostgreSQL readers read the warehouse itself
