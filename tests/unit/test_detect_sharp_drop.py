"""Sharp drop: one tick shortening a price by enough probability points and enough of itself."""

from __future__ import annotations

import math

import pandas as pd
import pyarrow as pa
import pytest

from oddly.detect import DetectionInputError, detect_sharp_drops
from tests.detect_rows import VERSION, at, rules, tick

RULES = rules()


def test_a_big_shortening_fires_with_its_reasons() -> None:
    # 2.00 → 1.60: implied 50 % → 62.5 %, +12.5 points, the price 20 % lower.
    [found] = detect_sharp_drops([tick("22bet", "home", 1.6, previous=2.0, seconds=30)], RULES)
    assert (found.type, found.bookmaker, found.outcome, found.market) == (
        "sharp_drop",
        "22bet",
        "home",
        "1x2",
    )
    assert found.canonical_event_id == "ev1" and found.source_event_id == "22bet-ev1"
    assert found.detected_at == at(30)
    assert found.rules_version == VERSION
    assert found.strength == pytest.approx(12.5 / 3.0)
    assert found.reasons == {
        "previous_price": 2.0,
        "price": 1.6,
        "previous_probability": 0.5,
        "probability": 0.625,
        "probability_points": 12.5,
        "price_drop": 0.2,
        "threshold_probability_points": 3.0,
        "threshold_price_drop": 0.05,
        "is_sharp_book": False,
    }
    assert found.explanation == (
        "22bet 1x2 home shortened 2.00 → 1.60 (-20.0%): +12.5 probability points in one tick "
        "(threshold 3 points and -5%)"
    )


def test_small_moves_drifts_and_first_ticks_do_not_fire() -> None:
    ticks = [
        tick("a", "home", 1.98, previous=2.0),  # +0.5 points
        tick("a", "away", 4.0, previous=3.0),  # drifting
        tick("a", "draw", 3.0, previous=None),  # first appearance
        tick("b", "home", 1.6, previous=1.6),  # status-only change
    ]
    assert detect_sharp_drops(ticks, RULES) == []


def test_exactly_at_the_points_threshold_fires_and_just_below_does_not() -> None:
    drop = [tick("a", "home", 1.6, previous=2.0)]  # +12.5 points, -20 %
    assert len(detect_sharp_drops(drop, rules(sharp_drop={"min_probability_points": 12.5}))) == 1
    assert detect_sharp_drops(drop, rules(sharp_drop={"min_probability_points": 12.51})) == []


def test_exactly_at_the_price_drop_threshold_fires_and_just_below_does_not() -> None:
    drop = [tick("a", "home", 1.6, previous=2.0)]
    assert len(detect_sharp_drops(drop, rules(sharp_drop={"min_price_drop": 0.2}))) == 1
    assert detect_sharp_drops(drop, rules(sharp_drop={"min_price_drop": 0.2001})) == []


def test_both_thresholds_must_hold() -> None:
    # A longshot 21 → 15: -28.6 % of the price but only +1.9 points.
    assert detect_sharp_drops([tick("a", "away", 15.0, previous=21.0)], RULES) == []
    # A favourite 1.20 → 1.15: +3.6 points but only -4.2 % of the price.
    assert detect_sharp_drops([tick("a", "home", 1.15, previous=1.2)], RULES) == []


def test_a_suspension_tick_never_fires() -> None:
    assert detect_sharp_drops([tick("a", "home", 1.6, previous=2.0, status="suspended")], RULES) == []


@pytest.mark.parametrize(
    ("price", "previous"),
    [(0.0, 2.0), (math.nan, 2.0), (1.6, math.nan), (1.6, 0.0), (math.inf, 2.0), (1.0, 2.0), (-1.6, 2.0)],
)
def test_bad_prices_give_no_detection(price: float, previous: float) -> None:
    good = tick("b", "home", 1.6, previous=2.0)
    found = detect_sharp_drops([tick("a", "home", price, previous=previous), good], RULES)
    assert [d.bookmaker for d in found] == ["b"]


def test_empty_input_gives_nothing() -> None:
    assert detect_sharp_drops([], RULES) == []
    assert detect_sharp_drops(pd.DataFrame(), RULES) == []


def test_missing_column_is_a_clear_error() -> None:
    frame = pd.DataFrame([tick("a", "home", 1.6, previous=2.0)]).drop(columns="previous_price")
    with pytest.raises(DetectionInputError, match=r"sharp_drop ticks: missing column\(s\) previous_price"):
        detect_sharp_drops(frame, RULES)


def test_sharp_books_only_and_disabled() -> None:
    ticks = [tick("pinnacle", "home", 1.6, previous=2.0), tick("22bet", "home", 1.6, previous=2.0)]
    found = detect_sharp_drops(ticks, rules(sharp_drop={"sharp_books_only": True}))
    assert [(d.bookmaker, d.reasons["is_sharp_book"]) for d in found] == [("pinnacle", True)]
    assert "pinnacle (sharp book)" in found[0].explanation
    assert detect_sharp_drops(ticks, rules(sharp_drop={"enabled": False})) == []


def test_reads_arrow_ticks_and_names_lines() -> None:
    ticks = pa.Table.from_pylist(
        [tick("a", "over", 1.5, previous=1.9, market="total", line=2.5, event=None, seconds=5)]
    )
    [found] = detect_sharp_drops(ticks, RULES)
    assert (found.line, found.canonical_event_id, found.detected_at) == (2.5, None, at(5))
    assert found.explanation.startswith("a total 2.5 over shortened 1.90 → 1.50")
