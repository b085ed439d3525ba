"""`oddly scan --once`: one ingestion cycle of every feed through the same code, as a table."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from oddly.cli import main
from oddly.ports import free_port
from oddly.simulator.config import SimConfig
from oddly.simulator.server import RunningSimulator, start_in_thread
from oddly.warehouse.store import Warehouse


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    with start_in_thread(SimConfig(seed=4, n_events=6, markets_per_event=3, manual_clock=True)) as running:
        yield running


def settings_file(tmp_path: Path, sim: RunningSimulator, *, with_dead_feed: bool) -> Path:
    dead = f"http://127.0.0.1:{free_port()}"
    fast = {"retries": 0, "timeout_seconds": 2}
    feeds = [
        {
            "name": "sim_22bet",
            "agent": "linefeed",
            "bookmaker": "22bet",
            "base_url": sim.book_url("22bet"),
            "http": fast,
        },
        {
            "name": "sim_pinnacle",
            "agent": "linefeed",
            "bookmaker": "pinnacle",
            "base_url": sim.book_url("pinnacle"),
        },
    ]
    if with_dead_feed:
        feeds.append(
            {"name": "gone", "agent": "linefeed", "bookmaker": "gone", "base_url": dead, "http": fast}
        )
    path = tmp_path / "oddly.yaml"
    path.write_text(yaml.safe_dump({"feeds": feeds}))
    return path


def scan(tmp_path: Path, config: Path, *args: str) -> tuple[int, str]:
    env = {"ODDLY_HOME": str(tmp_path), "ODDLY_CONFIG_FILE": str(config), "ODDLY_WAREHOUSE_URL": ""}
    result = CliRunner().invoke(main, ["scan", "--once", *args], env=env)
    return result.exit_code, result.output


def test_scan_once_prints_a_table_and_fills_the_warehouse(sim: RunningSimulator, tmp_path: Path) -> None:
    code, output = scan(tmp_path, settings_file(tmp_path, sim, with_dead_feed=False))
    assert code == 0, output
    header, _rule, *rows = output.strip().splitlines()
    assert header.split()[:4] == ["feed", "status", "prices", "ticks"]
    assert [r.split()[:2] for r in rows] == [["sim_22bet", "ok"], ["sim_pinnacle", "ok"]]
    warehouse = Warehouse.from_url(f"duckdb:///{tmp_path}/warehouse.duckdb")
    assert warehouse.count_ticks() == sum(int(r.split()[3]) for r in rows) > 0


def test_a_dead_feed_is_reported_in_words_and_exits_1(sim: RunningSimulator, tmp_path: Path) -> None:
    code, output = scan(tmp_path, settings_file(tmp_path, sim, with_dead_feed=True), "--json")
    reports = {r["feed"]: r for r in map(json.loads, output.strip().splitlines())}
    assert code == 1
    assert reports["gone"]["status"] == "failed" and "connection refused" in reports["gone"]["error"]
    assert reports["sim_22bet"]["status"] == "ok"


def test_unknown_feed_and_bad_settings_file_are_clear_errors(sim: RunningSimulator, tmp_path: Path) -> None:
    code, output = scan(tmp_path, settings_file(tmp_path, sim, with_dead_feed=False), "--feed", "nope")
    assert code == 2 and "unknown feed(s) nope; configured: sim_22bet, sim_pinnacle" in output
    bad = tmp_path / "bad.yaml"
    bad.write_text("feeds:\n  - name: Bad Name\n    agent: linefeed\n")
    code, output = scan(tmp_path, bad)
    assert code == 1 and f"settings file {bad} is invalid" in output and "bookmaker" in output
