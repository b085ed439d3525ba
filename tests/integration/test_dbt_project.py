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
from oddly.warehouse.store import FeedRunRecord, Warehouse

pytestmark = pytest.mark.slow


def seed(warehouse: Warehouse) -> None:
    """One match at two books (spelled differently) and a second match at one book."""
    kick_off = (now_utc() + timedelta(hours=2)).replace(microsecond=0).timestamp()
    prices = {
        ("pinnacle", "1", "Manchester United", "Tottenham Hotspur"): (2.0, 4.0, 3.2),
        ("22bet", "77", "Man Utd", "Spurs"): (1.95, 3.8, 3.7),
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
    """`oddly dbt …` in its own process, as dagster-dbt runs dbt (dbt-duckdb keeps the file open)."""
    command = [
        str(Path(sys.executable).parent / "oddly"),
        "dbt",
        *args,
        "--target-path",
        str(settings.home / "dbt_target"),
        "--log-path",
        str(settings.home / "dbt_logs"),
    ]
    env = {
        **os.environ,
        "ODDLY_HOME": str(settings.home),
        "ODDLY_WAREHOUSE_URL": settings.warehouse_url or "",
    }
    return subprocess.run(command, env=env, capture_output=True, text=True)


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
        ("22bet", "away", 3.7),
        ("22bet", "draw", 3.8),
        ("22bet", "home", 1.95),
        ("pinnacle", "away", 3.2),
        ("pinnacle", "draw", 4.0),
        ("pinnacle", "home", 2.0),
    ]
    assert current[3]["overround"] == pytest.approx(1 / 2.0 + 1 / 4.0 + 1 / 3.2 - 1)
    assert "no_vig_probabilities_sum_to_one" in built.stdout

    match = {"e": events[0]["canonical_event_id"]}
    consensus = {
        r["outcome"]: r
        for r in warehouse.query("select * from marts.fct_consensus where canonical_event_id = :e", match)
    }
    # the sharp reference is Pinnacle alone: its multiplicative no-vig, 0.5 / 1.0625 for home
    assert consensus["home"]["fair_probability_sharp_multiplicative"] == pytest.approx(0.5 / 1.0625)
    assert consensus["home"]["bookmakers"] == 2
    assert sum(r["fair_probability_sharp_power"] for r in consensus.values()) == pytest.approx(1, abs=1e-6)
    # the power method takes more of the margin off longshots than the multiplicative one
    power = {o: r["fair_probability_sharp_power"] for o, r in consensus.items()}
    multiplicative = {o: r["fair_probability_sharp_multiplicative"] for o, r in consensus.items()}
    assert power["draw"] < multiplicative["draw"] and power["home"] > multiplicative["home"]

    arbitrage = warehouse.query("select * from marts.fct_arbitrage where canonical_event_id = :e", match)
    best = {r["outcome"]: (r["best_bookmaker"], r["best_price"]) for r in arbitrage}
    assert best == {"home": ("pinnacle", 2.0), "draw": ("pinnacle", 4.0), "away": ("22bet", 3.7)}
    assert arbitrage[0]["implied_total"] == pytest.approx(1 / 2.0 + 1 / 4.0 + 1 / 3.7)
    assert not any(r["is_arbitrage"] for r in arbitrage)

    divergence = warehouse.query(
        "select * from marts.fct_divergence where canonical_event_id = :e and bookmaker = '22bet'", match
    )
    away = next(r for r in divergence if r["outcome"] == "away")
    assert away["consensus_probability"] == pytest.approx(0.3125 / 1.0625)  # Pinnacle's, the only other book
    assert away["edge"] == pytest.approx(3.7 * 0.3125 / 1.0625 - 1)  # 22bet's away price beats it by 8.8 %

    movements = warehouse.query("select * from marts.fct_line_movements where canonical_event_id = :e", match)
    assert len(movements) == 6 and all(m["moves"] == 0 and m["change_5m"] == 0 for m in movements)
    assert all(119 <= m["minutes_to_kick_off"] <= 121 for m in movements)

    value = warehouse.query("select * from marts.fct_value_bets where canonical_event_id = :e", match)
    assert [(r["bookmaker"], r["outcome"]) for r in value] == [("22bet", "away")]
    assert value[0]["edge"] == pytest.approx(3.7 * power["away"] - 1) and value[0]["edge"] >= 0.02
    warehouse.dispose()
