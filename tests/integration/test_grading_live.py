"""Live alerts graded once their events have closed and again when a result arrives, on a small
seeded warehouse and app database: alerts decided by the real alert path (`run_alerts`, context
from the warehouse) before kick-off, then the closing ticks, then the results; and the Dagster
asset alerts/grades materialized on the same stores.

The seed (times relative to now; 1X2 prices home / draw / away):

- Arsenal v Chelsea, kicked off 1 h ago. 3 h ago: pinnacle 2.00 / 3.50 / 4.00, bet365 2.20 / 3.40 /
  3.60, bwin 1.95 / 3.45 / 4.10. Alerts: value at bet365 home 2.20 (a weaker value at bwin in the
  same burst is held), out of line at bwin away 4.10 (generous), a drifting steam. Pinnacle closed
  at 1.90 / 3.60 / 4.40 (an in-play 1.30 after kick-off must not count). Result 2-1.
- Leeds v Everton, kicked off 1 h ago. Pinnacle 2.00 → 1.90 (a sharp drop, followed at bet365's
  2.05), bet365 2.05 / 3.30 / 3.90, bwin 1.98 / 3.50 / 4.20; out of line at bet365 draw 3.30
  (short: no bet) and an arbitrage. Pinnacle closed at 1.85 / 3.70 / 4.50. Result only later: 0-0.
- Spurs v Fulham, kicking off in 2 h: a steam, still waiting for its close.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from oddly.alerts.policy import load_policy
from oddly.alerts.run import run_alerts
from oddly.appdb import open_app_db
from oddly.config import SHIPPED_CONFIG
from oddly.detect.detection import Detection
from oddly.detect.rules import load_rules
from oddly.grading import views
from oddly.grading.live import grade_live
from oddly.grading.signals import DRIFTING, SHORT_BOOK
from oddly.grading.store import live_grades
from oddly.matching.run import update_event_map
from oddly.model import PriceColumns, now_utc
from oddly.warehouse import schema
from oddly.warehouse.store import FeedRunRecord, Warehouse
from orchestration.alerts.grading import alert_grades
from orchestration.resources import AppDatabaseResource, WarehouseResource

NOW = now_utc().replace(microsecond=0)
KICK_OFF = NOW - timedelta(hours=1)
LATER = NOW + timedelta(hours=2)
ARSENAL = ("1", "Arsenal", "Chelsea", KICK_OFF)
LEEDS = ("2", "Leeds United", "Everton", KICK_OFF)
SPURS = ("3", "Tottenham Hotspur", "Fulham", LATER)
PREMATCH = {
    ("pinnacle", ARSENAL): (2.00, 3.50, 4.00),
    ("bet365", ARSENAL): (2.20, 3.40, 3.60),
    ("bwin", ARSENAL): (1.95, 3.45, 4.10),
    ("pinnacle", LEEDS): (2.00, 3.60, 4.20),
    ("bet365", LEEDS): (2.05, 3.30, 3.90),
    ("bwin", LEEDS): (1.98, 3.50, 4.20),
    ("pinnacle", SPURS): (2.50, 3.30, 2.90),
    ("bet365", SPURS): (2.45, 3.30, 2.95),
}
OUTCOMES = ("home", "draw", "away")
RULES = load_rules(SHIPPED_CONFIG / "rules.yaml")


def write(warehouse: Warehouse, run_id: str, at: datetime, prices: dict, is_live: bool = False) -> None:  # type: ignore[type-arg]
    rows = [
        {
            "bookmaker": book,
            "source_event_id": f"{book}-{event[0]}",
            "sport": "football",
            "league": "Premier League",
            "home": event[1],
            "away": event[2],
            "starts_at": event[3].timestamp(),
            "is_live": is_live,
            "market": "1x2",
            "outcome": outcome,
            "price": price,
        }
        for (book, event), triple in prices.items()
        for outcome, price in zip(OUTCOMES, triple, strict=True)
        if price is not None
    ]
    run = FeedRunRecord(
        run_id, "f", "x", "ok", at, at, 1, len(rows), 0, 0, 0, "{}", 0.0, 0.0, 0.0, "ok", None
    )
    warehouse.write_run(PriceColumns.from_records(rows).to_table(at, run_id), [], run)


def canonical(warehouse: Warehouse, event: tuple[str, str, str, datetime]) -> str:
    return str(
        warehouse.scalar(
            "select canonical_event_id from raw.event_map where source_event_id = :s",
            {"s": f"pinnacle-{event[0]}"},
        )
    )


def result(
    warehouse: Warehouse, event_id: str, event: tuple[str, str, str, datetime], goals: tuple[int, int]
) -> None:
    with warehouse.begin() as conn:
        conn.execute(
            schema.results.insert().values(
                source="test",
                source_event_id=event[0],
                canonical_event_id=event_id,
                sport="football",
                home=event[1],
                away=event[2],
                starts_at=event[3],
                home_goals=goals[0],
                away_goals=goals[1],
                result="H" if goals[0] > goals[1] else "A" if goals[1] > goals[0] else "D",
                imported_at=NOW,
            )
        )


def found(kind: str, event_id: str, book: str, outcome: str, strength: float, **reasons: object) -> Detection:
    return Detection(
        type=kind,
        canonical_event_id=event_id,
        source_event_id=None,
        bookmaker=book,
        market="1x2",
        period="ft",
        line=None,
        outcome=outcome,
        detected_at=NOW - timedelta(hours=3) + timedelta(minutes=1),
        strength=strength,
        reasons=reasons,
        explanation=f"{kind} at {book}",
        rules_version=RULES.version,
    )


@pytest.fixture
def seeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Warehouse, sa.Engine, dict[str, str]]:
    monkeypatch.setenv("ODDLY_HOME", str(tmp_path))
    for name in ("ODDLY_WAREHOUSE_URL", "ODDLY_APP_DATABASE_URL", "ODDLY_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    warehouse = Warehouse(f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    opened = NOW - timedelta(hours=3)
    write(warehouse, "pre", opened, PREMATCH)
    write(warehouse, "drop", opened + timedelta(minutes=1), {("pinnacle", LEEDS): (1.90, 3.70, 4.40)})
    update_event_map(warehouse)
    ids = {
        "arsenal": canonical(warehouse, ARSENAL),
        "leeds": canonical(warehouse, LEEDS),
        "spurs": canonical(warehouse, SPURS),
    }
    engine = open_app_db(f"sqlite:///{tmp_path / 'app.db'}")
    legs = [
        {"outcome": "home", "bookmaker": "bet365", "price": 2.05, "commission": 0.0, "stake_share": 0.4878},
        {"outcome": "draw", "bookmaker": "pinnacle", "price": 3.70, "commission": 0.0, "stake_share": 0.2703},
        {"outcome": "away", "bookmaker": "bwin", "price": 4.20, "commission": 0.0, "stake_share": 0.2419},
    ]
    detections = [
        found("value", ids["arsenal"], "bet365", "home", 2.5, price=2.20, fair_probability=0.49, edge=0.078),
        found("value", ids["arsenal"], "bwin", "away", 1.1, price=4.10, fair_probability=0.25, edge=0.025),
        found("out_of_line", ids["arsenal"], "bwin", "away", 1.3, price=4.10, probability_points=-3.9),
        found("steam", ids["arsenal"], "bet365", "draw", 1.2, direction="drifting"),
        found("sharp_drop", ids["leeds"], "pinnacle", "home", 1.7, price=1.90, previous_price=2.00),
        found("out_of_line", ids["leeds"], "bet365", "draw", 1.2, price=3.30, probability_points=3.2),
        found("arbitrage", ids["leeds"], "bet365", "home", 1.1, legs=legs, margin=0.0014),
        found("steam", ids["spurs"], "pinnacle", "home", 1.3, direction="shortening"),
    ]
    policy = load_policy(SHIPPED_CONFIG / "alert_policy.yaml")
    run_alerts(
        engine,
        detections,
        policy,
        NOW - timedelta(hours=3) + timedelta(minutes=2),
        app_url="http://app",
        warehouse=warehouse,
        sharp_books=RULES.sharp_books,
    )
    closing = KICK_OFF - timedelta(minutes=5)
    write(
        warehouse,
        "close",
        closing,
        {("pinnacle", ARSENAL): (1.90, 3.60, 4.40), ("pinnacle", LEEDS): (1.85, 3.70, 4.50)},
    )
    write(
        warehouse,
        "inplay",
        KICK_OFF + timedelta(minutes=30),
        {("pinnacle", ARSENAL): (1.30, 5.0, 11.0)},
        is_live=True,
    )
    result(warehouse, ids["arsenal"], ARSENAL, (2, 1))
    return warehouse, engine, ids


def fair(prices: tuple[float, float, float], outcome: str) -> float:
    implied = [1 / p for p in prices]
    return implied[OUTCOMES.index(outcome)] / sum(implied)


def test_alerts_are_graded_once_closed_and_again_when_the_result_arrives(
    seeded: tuple[Warehouse, sa.Engine, dict[str, str]],
) -> None:
    warehouse, engine, ids = seeded
    first = grade_live(warehouse, engine, RULES, now=NOW)
    grades = live_grades(engine).set_index(["type", "outcome"])

    value = grades.loc[("value", "home")]
    assert (value["bookmaker"], value["price"], value["closing_bookmaker"]) == ("bet365", 2.20, "pinnacle")
    assert value["fair_probability"] == pytest.approx(
        fair((1.90, 3.60, 4.40), "home")
    )  # not the in-play 1.30
    assert value["clv"] == pytest.approx(2.20 * fair((1.90, 3.60, 4.40), "home") - 1)
    assert value["fair_price"] == pytest.approx(1 / fair((1.90, 3.60, 4.40), "home"))
    assert (value["result"], value["profit"]) == ("win", pytest.approx(1.20))
    assert ("value", "away") not in grades.index  # held as a repeat in the same burst: not an alert again

    generous = grades.loc[("out_of_line", "away")]
    assert (generous["bookmaker"], generous["price"], generous["result"], generous["profit"]) == (
        "bwin",
        4.10,
        "loss",
        -1.0,
    )
    assert generous["clv"] == pytest.approx(4.10 * fair((1.90, 3.60, 4.40), "away") - 1)

    # the sharp drop is followed at the best price the alert listed: bet365's 2.05, not pinnacle's 1.90
    drop = grades.loc[("sharp_drop", "home")]
    assert (drop["bookmaker"], drop["signal_bookmaker"], drop["price"]) == ("bet365", "pinnacle", 2.05)
    assert drop["clv"] == pytest.approx(2.05 * fair((1.85, 3.70, 4.50), "home") - 1)
    assert pd.isna(drop["profit"]) and drop["unsettled_reason"] == "no result yet"

    arbitrage = grades.xs("arbitrage", level="type")
    assert arbitrage["stake"].sum() == pytest.approx(1.0)
    expected_clv = sum(
        share * (price * fair((1.85, 3.70, 4.50), outcome) - 1)
        for outcome, price, share in (("home", 2.05, 0.4878), ("draw", 3.70, 0.2703), ("away", 4.20, 0.2419))
    )
    overall = first.summary.query("horizon == 'all'").set_index("type")
    signal = overall.loc["arbitrage"]
    assert signal["mean_clv"] == pytest.approx(expected_clv)

    assert first.skipped == {f"out_of_line: {SHORT_BOOK}": 1, f"steam: {DRIFTING}": 1}
    assert first.counts["waiting_for_kick_off"] == 1  # the Spurs steam: its event has not kicked off
    assert "steam" not in set(grades.index.get_level_values("type"))
    summary = overall
    assert summary.loc["value", ["signals", "with_close", "settled"]].tolist() == [1, 1, 1]
    assert summary.loc["sharp_drop", ["signals", "with_close", "settled"]].tolist() == [1, 1, 0]
    assert set(summary["source"]) == {"live"}
    assert set(first.summary["horizon"]) == {"all", "early"}  # every alert came 4 h before kick-off

    # the Leeds result arrives: only its alerts are graded again, the Arsenal grades are final
    arsenal_runs = set(live_grades(engine).query("canonical_event_id == @ids['arsenal']")["run_id"])
    result(warehouse, ids["leeds"], LEEDS, (0, 0))
    second = grade_live(warehouse, engine, RULES, now=NOW)
    after = live_grades(engine)
    assert set(after.query("canonical_event_id == @ids['arsenal']")["run_id"]) == arsenal_runs
    leeds = after.query("canonical_event_id == @ids['leeds']")
    assert set(leeds["run_id"]) == {second.run_id}
    assert leeds.set_index("type").loc["sharp_drop", ["result", "profit"]].tolist() == ["loss", -1.0]
    assert len(after) == len(
        live_grades(engine).drop_duplicates(["signal_key", "leg"])
    )  # replaced, not added
    assert second.counts["graded_now"] == 2 and second.counts["live_signals"] == 4
    standing = views.summary(engine, second.run_id).set_index("type")
    assert standing.loc["sharp_drop", "settled"] == 1 and standing.loc["arbitrage", "settled"] == 1
    # the draw won the arbitrage's draw leg: its return is the leg's share x price - 1
    assert standing.loc["arbitrage", "roi"] == pytest.approx(0.2703 * 3.70 - 1)
    assert views.runs(engine, "live")["run_id"].tolist() == [second.run_id, first.run_id]
    # nothing new to grade (the Spurs steam still waits for its kick-off): nothing is stored
    third = grade_live(warehouse, engine, RULES, now=NOW)
    assert not third.stored and third.counts["graded_now"] == 0 and third.counts["waiting_for_kick_off"] == 1
    assert views.runs(engine, "live")["run_id"].tolist() == [second.run_id, first.run_id]
    assert third.summary.equals(second.summary)
    warehouse.dispose()


@pytest.mark.slow
def test_the_dagster_asset_grades_and_reports_the_standing(
    seeded: tuple[Warehouse, sa.Engine, dict[str, str]],
) -> None:
    warehouse, engine, _ = seeded
    warehouse.dispose()
    resources = {"warehouse": WarehouseResource(), "app_db": AppDatabaseResource()}
    with dg.instance_for_test() as instance:
        outcome = dg.materialize([alert_grades], resources=resources, instance=instance)
        assert outcome.success
        [event] = outcome.asset_materializations_for_node("alerts__grades")
    meta = {key: value.value for key, value in event.metadata.items()}
    assert meta["graded_now"] == 4 and meta["waiting_for_kick_off"] == 1
    assert meta["mean_clv_value"] == pytest.approx(2.20 * fair((1.90, 3.60, 4.40), "home") - 1, abs=1e-6)
    assert "| value | 1 | 1 |" in meta["standing"]
    assert len(live_grades(engine)["signal_key"].unique()) == 4
