"""`oddly bench marts` at a small size: the benchmark's history, ingestion rounds and the warm marts
worker's cycles work end to end, and what it reports adds up (the figures themselves belong in
BENCHMARKS.md)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from benchmarks.marts import marts

pytestmark = pytest.mark.slow


def test_bench_marts_builds_a_history_and_times_its_cycles(tmp_path: Path) -> None:
    home = tmp_path / "bench"
    result = CliRunner().invoke(
        marts, ["--ticks", "200000", "--new-ticks", "5000", "--cycles", "2", "--home", str(home)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["ticks"] == 200_000 and report["cycles"] == 2
    parts = report["cycle_parts_s"]
    timed = parts["match_seconds"] + parts["dbt_models_seconds"] + parts["publish_seconds"]
    assert 0 < timed <= report["cycle_s"]
    assert parts["warehouse_held_seconds"] == parts["match_seconds"]  # what a poll waits for
    assert report["cycle_min_s"] <= report["cycle_s"] <= report["cycle_max_s"]
    assert parts["match_seconds"] > 0 and parts["publish_seconds"] > 0
    assert report["full_refresh_peak_rss_mb"] > 0 and report["cycle_peak_rss_mb"] > 0
    assert report["new_ticks_per_cycle"] > 0 and report["worker_start_s"] > 0
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as db:
        [(ticks,)] = db.execute("select count(*) from raw.odds_ticks").fetchall()
        [(folded,)] = db.execute("select sum(ticks) from intermediate.int_selection_state").fetchall()
        [(current,)] = db.execute("select count(*) from marts.fct_prices_current").fetchall()
    # the history plus both rounds, every tick folded into the selection state by the last cycle
    assert ticks > 200_000 and folded == ticks
    # a history this short is all on offer still
    assert 0 < current <= report["selections"]


def test_bench_marts_refuses_a_home_that_already_holds_a_warehouse(tmp_path: Path) -> None:
    (tmp_path / "warehouse.duckdb").write_bytes(b"")
    result = CliRunner().invoke(marts, ["--ticks", "1000", "--home", str(tmp_path)])
    assert result.exit_code != 0 and "give an empty --home" in result.output
