"""Incremental marts equal a full refresh: several ingestion cycles of the simulator, each followed
by an incremental `dbt build`, then `dbt run --full-refresh` must rebuild exactly the same tables,
on DuckDB and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from oddly.config import Settings
from oddly.ingest import ingest_feeds
from oddly.matching.run import update_event_map
from oddly.simulator.config import SimConfig
from oddly.simulator.server import RunningSimulator, start_in_thread
from oddly.warehouse.store import Warehouse
from tests.integration.test_dbt_project import dbt
from tests.marts_tables import assert_same_relation, read_relation, relations
from tests.simulated import simulator_feeds

pytestmark = pytest.mark.slow

# The incremental models and everything built on them.
INCREMENTAL = ["intermediate.int_selection_state", "intermediate.int_price_moves", "marts.fct_steam_moves"]


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    config = SimConfig(
        seed=5,
        n_events=10,
        markets_per_event=5,
        manual_clock=True,
        scenarios_per_hour=900,
        moves_per_hour=600,
    )
    with start_in_thread(config) as running:
        yield running


def snapshot(warehouse: Warehouse) -> dict[str, object]:
    names = [f"marts.{t}" for t in relations(warehouse, "marts")] + INCREMENTAL[:2]
    return {name: read_relation(warehouse, name) for name in names}


@pytest.mark.parametrize("target", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_incremental_cycles_equal_a_full_refresh(
    tmp_path: Path, target: str, sim: RunningSimulator, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("pg_url") if target == "postgres" else None
    settings = Settings(home=tmp_path, warehouse_url=url)
    warehouse = Warehouse.from_settings(settings)
    for cycle in range(3):
        reports = ingest_feeds(simulator_feeds(sim), warehouse)
        assert all(r.status == "ok" for r in reports), [r.error for r in reports]
        update_event_map(warehouse)
        warehouse.dispose()
        built = dbt(settings, "build")
        assert built.returncode == 0, built.stdout[-3000:]
        if cycle:
            # the incremental models really ran incrementally after the first build
            assert "incremental model intermediate.int_selection_state" in built.stdout.replace("  ", " ")
        httpx.post(f"{sim.url}/_sim/advance", params={"seconds": 240}).raise_for_status()

    incremental = snapshot(warehouse)
    moves = incremental["intermediate.int_price_moves"]
    assert len(moves) > 0, "the cycles produced no significant moves; the comparison would prove little"
    state = incremental["intermediate.int_selection_state"]
    assert (state["ticks"] > 1).any()
    assert len(incremental["marts.fct_steam_moves"]) > 0  # type: ignore[arg-type]
    warehouse.dispose()

    refreshed = dbt(settings, "run", "--full-refresh")
    assert refreshed.returncode == 0, refreshed.stdout[-3000:]
    full = snapshot(warehouse)
    assert set(full) == set(incremental)
    for name in sorted(full):
        # processed_load_seq is bookkeeping: the watermark when a row was last rebuilt
        left, right = (
            frame.drop(columns=["processed_load_seq"], errors="ignore")  # type: ignore[attr-defined]
            for frame in (incremental[name], full[name])
        )
        assert_same_relation(name, left, right)
    warehouse.dispose()
