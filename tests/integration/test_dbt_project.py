"""The dbt project builds on a warehouse the ingestion wrote, on DuckDB and on PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from oddly.config import Settings
from oddly.model import PriceColumns
from oddly.warehouse.dbt_env import DBT_PROJECT_DIR, dbt_env
from oddly.warehouse.store import FeedRunRecord, Warehouse

pytestmark = pytest.mark.slow
T0 = datetime(2026, 11, 22, 12, tzinfo=UTC)


def seed(warehouse: Warehouse) -> None:
    rows = [
        {
            "bookmaker": "22bet",
            "source_event_id": "1",
            "sport": "football",
            "home": "Manta",
            "away": "9 de Octubre",
            "starts_at": 1636416000.0,
            "market": "1x2",
            "outcome": o,
            "price": p,
        }
        for o, p in (("home", 3.84), ("draw", 3.54), ("away", 1.896))
    ]
    run = FeedRunRecord("r1", "f", "22bet", "ok", T0, T0, 1, 3, 0, 0, 0, "{}", 0.0, 0.0, 0.0, "ok", None)
    warehouse.write_run(PriceColumns.from_records(rows).to_table(T0, "r1"), [], run)


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
    warehouse = Warehouse.from_settings(settings)
    rows = warehouse.query(
        "select outcome, price, implied_probability from staging.stg_raw__odds_ticks order by outcome"
    )
    assert [(r["outcome"], r["price"]) for r in rows] == [("away", 1.896), ("draw", 3.54), ("home", 3.84)]
    assert rows[2]["implied_probability"] == pytest.approx(1 / 3.84)
    warehouse.dispose()
