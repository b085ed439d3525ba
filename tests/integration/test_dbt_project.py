"""The dbt project builds on a warehouse the ingestion wrote, on DuckDB and on PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from oddly.config import Settings
from oddly.matching.run import update_event_map
from oddly.model import PriceColumns, now_utc
from oddly.warehouse.dbt_env import DBT_PROJECT_DIR, dbt_env
from oddly.warehouse.store import FeedRunRecord, Warehouse

pytestmark = pytest.mark.slow


def seed(warehouse: Warehouse) -> None:
    """One match at two books (spelled differently) and a second match at one book."""
    kick_off = (now_utc() + timedelta(hours=2)).replace(microsecond=0).timestamp()
    prices = {
        ("pinnacle", "1", "Manchester United", "Tottenham Hotspur"): (2.0, 4.0, 3.2),
        ("22bet", "77", "Man Utd", "Spurs"): (1.95, 3.8, 3.5),
        ("22bet", "78", "Chelsea", "Arsenal"): (2.5, 3.4, 2.8),
    }
    rows = [
        {
            "bookmaker": b,
            "source_event_id": e,
            "sport": "football",
            "home": h,
            "away": a,
            "starts_at": kick_off,
            "market": "1x2",
            "outcome": o,
            "price": p,
        }
        for (b, e, h, a), triple in prices.items()
        for o, p in zip(("home", "draw", "away"), triple, strict=True)
    ]
    now = now_utc()
    run = FeedRunRecord(
        "r1", "f", "x", "ok", now, now, 1, len(rows), 0, 0, 0, "{}", 0.0, 0.0, 0.0, "ok", None
    )
    warehouse.write_run(PriceColumns.from_records(rows).to_table(now, "r1"), [], run)
    update_event_map(warehouse)


def dbt(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """dbt in its own process, as dagster-dbt runs it (dbt-duckdb keeps the file open in-process)."""
    command = [
        str(Path(sys.executable).parent / "dbt"),
        *args,
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target-path",
        str(settings.home / "dbt_target"),
        "--log-path",
        str(settings.home / "dbt_logs"),
    ]
    return subprocess.run(command, env={**os.environ, **dbt_env(settings)}, capture_output=True, text=True)


@pytest.mark.parametrize("target", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_dbt_build_on_ingested_ticks(tmp_path: Path, target: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("pg_url") if target == "postgres" else None
    settings = Settings(home=tmp_path, warehouse_url=url)
    warehouse = Warehouse.from_settings(settings)
    seed(warehouse)
    warehouse.dispose()
    built = dbt(settings, "build")
    assert built.returncode == 0, built.stdout[-3000:]
    assert "PASS=" in built.stdout and "ERROR=0" in built.stdout
    assert "unit_test fct_prices_current::overround_only_on_complete_outcome_sets" in built.stdout.replace(
        "  ", " "
    )
    warehouse = Warehouse.from_settings(settings)
    staged = warehouse.query(
        "select count(*) as n, max(implied_probability) as p from staging.stg_raw__odds_ticks"
    )
    assert staged == [{"n": 9, "p": pytest.approx(1 / 1.95)}]
    books = {r["bookmaker"]: r["is_sharp"] for r in warehouse.query("select * from marts.dim_bookmakers")}
    assert books == {"pinnacle": True, "22bet": False}
    events = warehouse.query("select * from marts.dim_events order by bookmaker_count desc")
    assert [(e["home_team"], e["away_team"], e["named_by"], e["bookmaker_count"]) for e in events] == [
        ("Manchester United", "Tottenham Hotspur", "pinnacle", 2),
        ("Chelsea", "Arsenal", "22bet", 1),
    ]
    current = warehouse.query(
        "select bookmaker, outcome, price, overround from marts.fct_prices_current "
        "where canonical_event_id = :e order by bookmaker, outcome",
        {"e": events[0]["canonical_event_id"]},
    )
    assert [(r["bookmaker"], r["outcome"], r["price"]) for r in current] == [
        ("22bet", "away", 3.5),
        ("22bet", "draw", 3.8),
        ("22bet", "home", 1.95),
        ("pinnacle", "away", 3.2),
        ("pinnacle", "draw", 4.0),
        ("pinnacle", "home", 2.0),
    ]
    assert current[3]["overround"] == pytest.approx(1 / 2.0 + 1 / 4.0 + 1 / 3.2 - 1)
    warehouse.dispose()
