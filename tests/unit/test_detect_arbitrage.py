"""Arbitrage: best net prices across books over a complete outcome set imply under 100 %."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from oddly.detect import DetectionInputError, detect_arbitrage
from tests.detect_rows import VERSION, at, book_market, rules, tick

RULES = rules()
# Home 2.2 at a, draw 4.0 and away 4.4 at b: 1/2.2 + 1/4 + 1/4.4 = 0.931818…, a 6.82 % margin.
A = {"home": 2.2, "draw": 3.5, "away": 3.0}
B = {"home": 1.9, "draw": 4.0, "away": 4.4}
MARGIN = 1 - (1 / 2.2 + 1 / 4.0 + 1 / 4.4)


def test_best_prices_under_one_fire_with_legs_and_stakes() -> None:
    prices = [*book_market("a", A), *book_market("b", B, seconds=20)]
    [found] = detect_arbitrage(prices, RULES)
    assert (found.type, found.canonical_event_id, found.market, found.rules_version) == (
        "arbitrage",
        "ev1",
        "1x2",
        VERSION,
    )
    # Reported at its newest leg (b's prices came last), detected then.
    assert (found.bookmaker, found.detected_at) == ("b", at(20))
    assert found.reasons["margin"] == pytest.approx(MARGIN, abs=1e-6)
    assert found.reasons["implied_total"] == pytest.approx(1 - MARGIN, abs=1e-6)
    legs = found.reasons["legs"]
    assert [(leg["outcome"], leg["bookmaker"], leg["price"]) for leg in legs] == [
        ("home", "a", 2.2),
        ("draw", "b", 4.0),
        ("away", "b", 4.4),
    ]
    assert sum(leg["stake_share"] for leg in legs) == pytest.approx(1.0, abs=1e-3)
    assert found.strength == pytest.approx(MARGIN / 0.005)
    assert found.explanation.startswith(
        "arbitrage on 1x2: home 2.20 at a, draw 4.00 at b, away 4.40 at b imply 93.2%, "
        "a 6.82% guaranteed return"
    )


def test_prices_over_one_give_nothing() -> None:
    assert detect_arbitrage([*book_market("a", A), *book_market("b", {**B, "away": 3.2})], RULES) == []


def test_exactly_at_the_margin_threshold_fires_and_just_below_does_not() -> None:
    prices = [*book_market("a", A), *book_market("b", B)]
    assert len(detect_arbitrage(prices, rules(arbitrage={"min_margin": MARGIN}))) == 1
    assert detect_arbitrage(prices, rules(arbitrage={"min_margin": MARGIN + 1e-6})) == []


def test_an_exchange_is_judged_after_its_commission() -> None:
    # Exchange home 2.2 and draw 4.1 look best, but after 5 % commission pay 2.14 and 3.945.
    prices = [
        *book_market("a", {"home": 2.15, "draw": 3.5, "away": 3.0}),
        *book_market("b", B),
        *book_market("betfair_ex", {"home": 2.2, "draw": 4.1, "away": 3.0}),
    ]
    [found] = detect_arbitrage(prices, RULES)
    legs = {leg["outcome"]: (leg["bookmaker"], leg["net_price"]) for leg in found.reasons["legs"]}
    assert legs == {"home": ("a", 2.15), "draw": ("b", 4.0), "away": ("b", 4.4)}
    assert found.reasons["margin"] == pytest.approx(1 - (1 / 2.15 + 1 / 4.0 + 1 / 4.4), abs=1e-6)
    without = rules(exchange_commission={})
    [raw] = detect_arbitrage(prices, without)
    assert {leg["bookmaker"] for leg in raw.reasons["legs"]} == {"betfair_ex", "b"}


def test_incomplete_sets_suspended_legs_and_double_chance_give_nothing() -> None:
    no_away = [*book_market("a", {"home": 2.2, "draw": 3.5}), *book_market("b", {"home": 1.9, "draw": 4.0})]
    assert detect_arbitrage(no_away, RULES) == []
    suspended = [*book_market("a", A), *book_market("b", B)]
    suspended[-1]["status"] = "suspended"  # b's away: the best away is a's 3.0 → 1.0221, no arbitrage
    assert detect_arbitrage(suspended, RULES) == []
    double_chance = [
        tick("a", o, 9.0, market="double_chance") for o in ("home_draw", "home_away", "draw_away")
    ]
    assert detect_arbitrage(double_chance, RULES) == []


def test_two_way_lines_are_sets_of_their_own() -> None:
    prices = [
        tick("a", "over", 2.1, market="total", line=2.5),
        tick("b", "under", 2.1, market="total", line=2.5),
        tick("b", "over", 1.7, market="total", line=2.5),
        tick("a", "under", 2.3, market="total", line=3.5),  # another line: not a leg of 2.5
    ]
    [found] = detect_arbitrage(prices, RULES)
    assert (found.market, found.line) == ("total", 2.5)
    assert [(leg["outcome"], leg["bookmaker"]) for leg in found.reasons["legs"]] == [
        ("over", "a"),
        ("under", "b"),
    ]


def test_with_fresh_rows_only_sets_they_lead_fire() -> None:
    prices = pd.DataFrame([*book_market("a", A), *book_market("b", B)])
    prices["is_fresh"] = False
    assert detect_arbitrage(prices, RULES) == []  # an arbitrage already standing: not new
    prices.loc[(prices["bookmaker"] == "a") & (prices["outcome"] == "draw"), "is_fresh"] = True
    assert detect_arbitrage(prices, RULES) == []  # a's fresh draw is not a best leg
    prices.loc[(prices["bookmaker"] == "b") & (prices["outcome"] == "away"), "is_fresh"] = True
    [found] = detect_arbitrage(prices, RULES)
    assert found.reasons["opened_by"] == {"bookmaker": "b", "outcome": "away", "price": 4.4}


@pytest.mark.parametrize("bad", [0.0, math.nan, -4.4, 1.0, None])
def test_a_bad_best_price_is_left_out(bad: float | None) -> None:
    prices = [*book_market("a", A), *book_market("b", {**B, "away": bad})]
    assert detect_arbitrage(prices, RULES) == []  # a's away 3.0 is then the best: no arbitrage


def test_empty_input_gives_nothing_and_missing_columns_are_named() -> None:
    assert detect_arbitrage([], RULES) == []
    frame = pd.DataFrame(book_market("a", A)).drop(columns=["price"])
    with pytest.raises(DetectionInputError, match=r"arbitrage prices: missing column\(s\) price"):
        detect_arbitrage(frame, RULES)
    assert (
        detect_arbitrage([*book_market("a", A), *book_market("b", B)], rules(arbitrage={"enabled": False}))
        == []
    )
