"""Readers are never blocked: a process reads the marts continuously while ingestion cycles and
incremental dbt builds write the warehouse, and sees no error and no half-built table — on the
embedded warehouse (through the published snapshot) and on PostgreSQL (through dbt's
transactions)."""

from __future__ import annotations

import json
import multiprocessing
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from oddly.config import Settings
from oddly.ingest import ingest_feeds
from oddly.matching.run import update_event_map
from oddly.simulator.config import SimConfig
from oddly.simulator.server import RunningSimulator, start_in_thread
from oddly.warehouse.reader import MartsReader
from oddly.warehouse.store import Warehouse
from tests.integration.test_dbt_project import dbt
from tests.simulated import simulator_feeds

pytestmark = pytest.mark.slow

# One statement, so every figure comes from the same snapshot or transaction: rows of two marts,
# selections listed twice (a half-applied delete+insert), arbitrage sets whose stake shares do not
# add up to 1 (a half-built table).
CONSISTENCY = """
select
    (select count(*) from marts.fct_prices_current) as prices,
    (select count(*) from marts.fct_consensus) as consensus,
    (select count(*) - count(distinct selection_key) from marts.fct_prices_current) as repeated,
    (select count(*) from (
        select canonical_event_id, market, period, line
        from marts.fct_arbitrage
        group by canonical_event_id, market, period, line
        having abs(sum(stake_share) - 1) > 1e-9
    ) as sets) as broken_sets
"""
SNAPSHOT_ROWS = "select (select max(load_seq) from main.snapshot_info) as load_seq, " + (
    "(select row_count from main.snapshot_info where relation = 'marts.fct_prices_current') as expected"
)


def read_until_stopped(warehouse_url: str | None, home: str, stop: str, out: str) -> None:
    """The reader process: query as fast as it can until `stop` exists; write what it saw."""
    reader = MartsReader(warehouse_url=warehouse_url, home=Path(home))
    reads, errors, snapshots, problems = 0, [], set(), []
    while not Path(stop).exists():
        try:
            row = reader.query(CONSISTENCY).iloc[0].to_dict()
            if warehouse_url is None:
                # the snapshot's own bookkeeping must match what it holds
                info = reader.query(CONSISTENCY.rstrip() + ", " + SNAPSHOT_ROWS.removeprefix("select "))
                info_row = info.iloc[0].to_dict()
                snapshots.add(int(info_row["load_seq"]))
                if info_row["expected"] != info_row["prices"]:
                    problems.append(
                        f"snapshot says {info_row['expected']} prices, holds {info_row['prices']}"
                    )
            if row["prices"] == 0 or row["consensus"] == 0 or row["repeated"] or row["broken_sets"]:
                problems.append(json.dumps(row, default=str))
            reads += 1
            time.sleep(0.01)  # leave the writer some CPU on a 2-core machine
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}"[:500])
    Path(out).write_text(
        json.dumps(
            {"reads": reads, "errors": errors, "snapshots": sorted(snapshots), "problems": problems[:20]}
        )
    )


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    config = SimConfig(seed=9, n_events=12, markets_per_event=6, manual_clock=True, moves_per_hour=600)
    with start_in_thread(config) as running:
        yield running


def cycle(sim: RunningSimulator, warehouse: Warehouse, settings: Settings) -> None:
    """One platform cycle: ingest every feed, match events, build the marts incrementally."""
    reports = ingest_feeds(simulator_feeds(sim), warehouse)
    assert all(r.status == "ok" for r in reports), [r.error for r in reports]
    update_event_map(warehouse)
    warehouse.dispose()
    built = dbt(settings, "build")
    assert built.returncode == 0, built.stdout[-3000:]
    httpx.post(f"{sim.url}/_sim/advance", params={"seconds": 120}).raise_for_status()


@pytest.mark.parametrize("target", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_reader_never_sees_an_error_or_a_half_built_mart_during_builds(
    tmp_path: Path, target: str, sim: RunningSimulator, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("pg_url") if target == "postgres" else None
    settings = Settings(home=tmp_path, warehouse_url=url)
    warehouse = Warehouse.from_settings(settings)
    cycle(sim, warehouse, settings)  # the first marts exist before anyone reads

    stop, out = tmp_path / "stop", tmp_path / "reader.json"
    context = multiprocessing.get_context("spawn")
    reader = context.Process(target=read_until_stopped, args=(url, str(tmp_path), str(stop), str(out)))
    reader.start()
    try:
        time.sleep(1.0)  # the reader is up and reading before the writes start
        for _ in range(2):
            cycle(sim, warehouse, settings)
    finally:
        stop.touch()
        reader.join(timeout=60)
    seen = json.loads(out.read_text())
    assert seen["errors"] == [], seen["errors"][:3]
    assert seen["problems"] == []
    assert seen["reads"] >= 20, f"only {seen['reads']} reads: the reader was not reading throughout"
    if target == "duckdb":
        # the reader moved on to newer snapshots as they were published
        assert len(seen["snapshots"]) >= 2, seen["snapshots"]
    warehouse.dispose()
