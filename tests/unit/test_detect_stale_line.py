"""Stale line: a book unchanged while the others moved, and now off their prices."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from oddly.detect import DetectionInputError, detect_stale_lines
from tests.detect_rows import VERSION, at, book_market, rules

RULES = rules()
BEFORE = {"home": 2.0, "draw": 4.0, "away": 4.0}  # 50 / 25 / 25 %
AFTER = {"home": 1.6, "draw": 5.0, "away": 1 / 0.175}  # 62.5 / 20 / 17.5 %


def moved(stale_for: float = 300, stale_prices: dict | None = None) -> list[dict]:
    """Book a last changed at 12:00; b and c moved `stale_for` seconds later."""
    return [
        *book_market("a", stale_prices or BEFORE),
        *book_market("b", AFTER, seconds=stale_for),
        *book_market("c", AFTER, seconds=stale_for - 10),
    ]


def quality(median: float) -> list[dict]:
    return [{"bookmaker": "a", "market": "1x2", "median_stale_seconds": median}]


def test_a_stale_book_off_the_others_fires_when_they_moved() -> None:
    [found] = detect_stale_lines(moved(), RULES)
    assert (found.type, found.bookmaker, found.outcome, found.rules_version) == (
        "stale_line",
        "a",
        "home",
        VERSION,
    )
    assert found.detected_at == at(300)
    assert found.reasons == {
        "stale_seconds": 300.0,
        "last_changed_at": at(0).isoformat(),
        "others_changed_at": at(300).isoformat(),
        "normal_stale_seconds": None,
        "threshold_stale_seconds": 120.0,
        "price": 2.0,
        "book_probability": 0.5,
        "consensus_probability": 0.625,
        "probability_points": -12.5,
        "other_books": 2,
        "threshold_probability_points": 2.0,
    }
    assert found.strength == pytest.approx(300 / 120)
    assert found.explanation == (
        "a 1x2 home unchanged at 2.00 for 300 s while other books moved (threshold 120 s); "
        "now 12.5 points below their 62.5%"
    )


def test_exactly_at_the_stale_threshold_fires_and_just_below_does_not() -> None:
    assert len(detect_stale_lines(moved(stale_for=120), RULES)) == 1
    assert detect_stale_lines(moved(stale_for=119), RULES) == []


def test_the_books_usual_staleness_raises_the_bar() -> None:
    found = detect_stale_lines(moved(stale_for=300), RULES, quality(median=100))  # 3 x 100 s
    assert [d.reasons["threshold_stale_seconds"] for d in found] == [300.0]
    assert "usually 100 s" in found[0].explanation
    assert detect_stale_lines(moved(stale_for=300), RULES, quality(median=101)) == []


def test_exactly_at_the_points_threshold_fires_and_just_below_does_not() -> None:
    assert len(detect_stale_lines(moved(), rules(stale_line={"min_probability_points": 12.5}))) == 1
    assert detect_stale_lines(moved(), rules(stale_line={"min_probability_points": 12.51})) == []


def test_an_unchanged_price_still_in_line_is_not_stale() -> None:
    assert detect_stale_lines(moved(stale_prices=AFTER), RULES) == []


def test_a_book_alone_or_the_books_that_moved_never_fire() -> None:
    assert detect_stale_lines(book_market("a", BEFORE), RULES) == []
    found = detect_stale_lines(moved(), RULES)
    assert {d.bookmaker for d in found} == {"a"}  # c is 10 s behind b: far under the threshold


def test_with_fresh_rows_only_markets_they_touch_are_judged() -> None:
    prices = pd.DataFrame(moved())
    prices["is_fresh"] = False
    assert detect_stale_lines(prices, RULES) == []
    prices.loc[prices["bookmaker"] == "b", "is_fresh"] = True
    assert [d.bookmaker for d in detect_stale_lines(prices, RULES)] == ["a"]


@pytest.mark.parametrize("bad", [0.0, math.nan, None, 1.0])
def test_a_bad_price_leaves_the_market_out(bad: float | None) -> None:
    prices = moved()
    prices[0]["price"] = bad  # a's home
    assert detect_stale_lines(prices, RULES) == []


def test_empty_input_gives_nothing_and_missing_columns_are_named() -> None:
    assert detect_stale_lines([], RULES) == []
    assert detect_stale_lines(moved(), RULES, quality=[]) != []
    with pytest.raises(
        DetectionInputError, match=r"bookmaker quality: missing column\(s\) median_stale_seconds"
    ):
        detect_stale_lines(moved(), RULES, [{"bookmaker": "a", "market": "1x2"}])
