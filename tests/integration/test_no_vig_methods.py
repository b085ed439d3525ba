"""The no-vig methods solved in SQL (int_no_vig_by_book) against independent solutions: Shin's
method against the maintained `shin` package, the power method against a bisection, on markets
from even two-way lines to heavy favourites with 15 % margins."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import shin

from oddly.config import Settings
from oddly.matching.run import update_event_map
from oddly.model import PriceColumns, now_utc
from oddly.warehouse.store import FeedRunRecord, Warehouse
from tests.integration.test_dbt_project import dbt

pytestmark = pytest.mark.slow

OUTCOMES = {"1x2": ("home", "draw", "away"), "total": ("over", "under")}


def markets(seed: int = 7, count: int = 40) -> dict[str, tuple[str, list[float]]]:
    """Random markets, source event id → (market, prices): true probabilities from a Dirichlet,
    a margin of 1–15 % spread more on longshots, and a few extreme favourites."""
    rng = np.random.default_rng(seed)
    found: dict[str, tuple[str, list[float]]] = {}
    for i in range(count):
        market = "1x2" if i % 2 else "total"
        n = len(OUTCOMES[market])
        margin = rng.uniform(0.01, 0.15)
        implied = np.ones(n)
        while implied.max() >= 0.95:  # a price must stay above 1.05
            truth = rng.dirichlet(np.full(n, 0.6 if i % 5 == 0 else 3.0)).clip(0.02)
            implied = truth ** (1 - margin) / (truth ** (1 - margin)).sum() * (1 + margin)
        found[str(1000 + i)] = (market, [round(float(1 / q), 3) for q in implied])
    found["9999"] = ("1x2", [1.05, 15.0, 34.0])  # a heavy favourite: the longshots carry the margin
    return found


def seed(warehouse: Warehouse, found: dict[str, tuple[str, list[float]]]) -> None:
    kick_off = (now_utc() + timedelta(hours=3)).replace(microsecond=0).timestamp()
    rows = [
        {
            "bookmaker": "b",
            "source_event_id": event,
            "sport": "football",
            "home": f"Home {event}",
            "away": f"Away {event}",
            "starts_at": kick_off,
            "market": market,
            "line": 2.5 if market == "total" else None,
            "outcome": outcome,
            "price": price,
        }
        for event, (market, prices) in found.items()
        for outcome, price in zip(OUTCOMES[market], prices, strict=True)
    ]
    now = now_utc()
    run = FeedRunRecord(
        "r1", "f", "b", "ok", now, now, 1, len(rows), 0, 0, 0, "{}", 0.0, 0.0, 0.0, "ok", None
    )
    warehouse.write_run(PriceColumns.from_records(rows).to_table(now, "r1"), [], run)
    update_event_map(warehouse)


def power_exponent(implied: np.ndarray) -> float:
    """k with sum(q^k) = 1, by bisection (sum q^k falls as k grows, since every q < 1)."""
    low, high = 0.5, 2.0
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if (implied**middle).sum() > 1 else (low, middle)
    return (low + high) / 2


def test_sql_no_vig_agrees_with_the_shin_package_and_a_bisection(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    warehouse = Warehouse.from_settings(settings)
    found = markets()
    seed(warehouse, found)
    warehouse.dispose()
    built = dbt(settings, "run", "--select", "+int_no_vig_by_book")
    assert built.returncode == 0, built.stdout[-3000:]

    rows = warehouse.query(
        "select n.*, e.source_event_id from intermediate.int_no_vig_by_book n "
        "join raw.event_map e on e.canonical_event_id = n.canonical_event_id"
    )
    by_event: dict[str, dict[str, dict[str, float]]] = {}
    for row in rows:
        by_event.setdefault(row["source_event_id"], {})[row["outcome"]] = row
    assert set(by_event) == set(found), "every seeded market is complete and open"

    for event, (market, prices) in found.items():
        sql = [by_event[event][outcome] for outcome in OUTCOMES[market]]
        expected = shin.calculate_implied_probabilities(prices, full_output=True)
        assert [r["fair_probability_shin"] for r in sql] == pytest.approx(
            expected.implied_probabilities, abs=1e-9
        ), f"Shin, market {event} {prices}"
        assert sql[0]["shin_z"] == pytest.approx(expected.z, abs=1e-9)

        implied = 1 / np.array(prices)
        k = power_exponent(implied)
        assert sql[0]["power_exponent"] == pytest.approx(k, abs=1e-9), f"power, market {event} {prices}"
        assert [r["fair_probability_power"] for r in sql] == pytest.approx(list(implied**k), abs=1e-9)
        assert [r["fair_probability_multiplicative"] for r in sql] == pytest.approx(
            list(implied / implied.sum()), abs=1e-12
        )
        assert sql[0]["overround"] == pytest.approx(implied.sum() - 1, abs=1e-12)

    # the methods differ where they should: on the heavy favourite, power and Shin give the
    # favourite more than the multiplicative method does
    favourite = by_event["9999"]["home"]
    assert favourite["fair_probability_shin"] > favourite["fair_probability_multiplicative"]
    assert favourite["fair_probability_power"] > favourite["fair_probability_multiplicative"]
    warehouse.dispose()
