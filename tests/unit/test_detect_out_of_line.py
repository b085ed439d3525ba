"""One book out of line: its no-vig probability against the mean of the other books'."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from oddly.detect import DetectionInputError, detect_out_of_line
from tests.detect_rows import VERSION, at, book_market, rules, tick

RULES = rules()
# Margin-free books, so the no-vig probabilities are the implied ones: 50 / 25 / 25 %.
IN_LINE = {"home": 2.0, "draw": 4.0, "away": 4.0}
# 40 / 30 / 30 %: home 10 points under the others, draw and away 5 points over.
OUTLIER = {"home": 2.5, "draw": 10 / 3, "away": 10 / 3}


def market(**kw: object) -> list[dict]:
    return [*book_market("a", IN_LINE), *book_market("b", IN_LINE), *book_market("c", IN_LINE, **kw)]


def test_the_outlier_fires_and_the_books_agreeing_do_not() -> None:
    found = detect_out_of_line([*market(), *book_market("x", OUTLIER)], RULES)
    assert [(d.bookmaker, d.outcome) for d in found] == [("x", "home"), ("x", "draw"), ("x", "away")]
    home = found[0]
    assert (home.type, home.canonical_event_id, home.rules_version) == ("out_of_line", "ev1", VERSION)
    assert home.reasons["book_probability"] == pytest.approx(0.4)
    assert home.reasons["consensus_probability"] == pytest.approx(0.5)
    assert home.reasons["consensus_fair_price"] == pytest.approx(2.0)
    assert home.reasons["probability_points"] == pytest.approx(-10.0)
    assert home.reasons["other_books"] == 3
    assert home.reasons["z_score"] is None  # the others agree exactly: any gap counts
    assert home.reasons["threshold_probability_points"] == 3.0
    assert home.strength == pytest.approx(10 / 3)
    assert home.explanation == (
        "x 1x2 home at 2.50: no-vig 40.0%, 10.0 points below the 3 other books' 50.0% (fair price 2.00); "
        "threshold 3 points"
    )


def test_the_z_score_keeps_books_in_line_from_firing_against_the_outlier() -> None:
    # Book a against b, c and x: home 46.7 %, a gap of 3.3 points, but within 0.7 of their spread.
    loose = rules(out_of_line={"min_z_score": 0})
    flagged = {d.bookmaker for d in detect_out_of_line([*market(), *book_market("x", OUTLIER)], loose)}
    assert flagged == {"a", "b", "c", "x"}


def test_exactly_at_the_threshold_fires_and_just_below_does_not() -> None:
    prices = [*market(), *book_market("x", OUTLIER)]
    at_ten = detect_out_of_line(prices, rules(out_of_line={"min_probability_points": 10}))
    assert [(d.bookmaker, d.outcome) for d in at_ten] == [("x", "home")]
    assert detect_out_of_line(prices, rules(out_of_line={"min_probability_points": 10.01})) == []


def test_books_agreeing_give_nothing() -> None:
    assert detect_out_of_line([*market(), *book_market("d", IN_LINE)], RULES) == []


def test_needs_enough_other_books() -> None:
    two = [*book_market("a", IN_LINE), *book_market("x", OUTLIER)]
    assert detect_out_of_line(two, RULES) == []  # one other book: who is out of line?
    both = detect_out_of_line(two, rules(out_of_line={"min_other_books": 1}))
    assert {d.bookmaker for d in both} == {"a", "x"}


def test_only_fresh_rows_are_judged_when_marked() -> None:
    prices = pd.DataFrame([*market(), *book_market("x", OUTLIER)])
    prices["is_fresh"] = (prices["bookmaker"] == "x") & (prices["outcome"] == "home")
    assert [(d.bookmaker, d.outcome) for d in detect_out_of_line(prices, RULES)] == [("x", "home")]


def test_detected_when_the_gap_arose() -> None:
    # x quoted at 12:00, the others moved to their prices at 12:01: the gap exists from 12:01.
    prices = [*market(seconds=60), *book_market("x", OUTLIER)]
    assert {d.detected_at for d in detect_out_of_line(prices, RULES)} == {at(60)}


def test_incomplete_or_suspended_markets_are_not_judged() -> None:
    partial = [*market(), tick("x", "home", 2.5), tick("x", "draw", 10 / 3)]
    assert detect_out_of_line(partial, RULES) == []
    suspended = [*market(), *book_market("x", OUTLIER)]
    suspended[-1]["status"] = "suspended"
    assert detect_out_of_line(suspended, RULES) == []


def test_other_events_markets_and_lines_are_not_mixed() -> None:
    prices = [
        *market(),
        *book_market("x", OUTLIER, event="ev2"),
        *book_market("a", {"over": 2.0, "under": 2.0}, market="total", line=2.5),
        *book_market("b", {"over": 2.0, "under": 2.0}, market="total", line=2.5),
        *book_market("x", {"over": 1.5, "under": 3.0}, market="total", line=3.5),
    ]
    assert detect_out_of_line(prices, RULES) == []


@pytest.mark.parametrize("bad", [0.0, math.nan, 1.0, math.inf, None])
def test_a_bad_price_leaves_its_market_out_without_poisoning_the_others(bad: float | None) -> None:
    prices = [*market(), *book_market("x", OUTLIER)]
    prices[0]["price"] = bad  # book a's home
    found = detect_out_of_line(prices, RULES)
    assert [(d.bookmaker, d.outcome) for d in found] == [("x", "home"), ("x", "draw"), ("x", "away")]
    assert {d.reasons["other_books"] for d in found} == {2}
    assert found[0].reasons["consensus_probability"] == pytest.approx(0.5)


def test_empty_input_gives_nothing_and_missing_columns_are_named() -> None:
    assert detect_out_of_line([], RULES) == []
    assert detect_out_of_line(pd.DataFrame(), RULES) == []
    frame = pd.DataFrame(market()).drop(columns=["observed_at"])
    with pytest.raises(DetectionInputError, match=r"out_of_line prices: missing column\(s\) observed_at"):
        detect_out_of_line(frame, RULES)
    no_event = pd.DataFrame(market()).drop(columns=["canonical_event_id", "source_event_id"])
    with pytest.raises(DetectionInputError, match="needs canonical_event_id or source_event_id"):
        detect_out_of_line(no_event, RULES)


def test_reads_mart_rows_of_fct_prices_current() -> None:
    rows = pd.DataFrame([*market(), *book_market("x", OUTLIER)])
    mart = rows.drop(columns=["status", "previous_price"]).rename(columns={"observed_at": "last_changed_at"})
    mart["is_suspended"] = False
    assert len(detect_out_of_line(mart, RULES)) == 3


def test_the_sharp_reference_is_not_judged_unless_asked() -> None:
    prices = [*market(), *book_market("pinnacle", OUTLIER)]
    assert detect_out_of_line(prices, RULES) == []
    judged = detect_out_of_line(prices, rules(out_of_line={"judge_sharp_books": True}))
    assert {d.bookmaker for d in judged} == {"pinnacle"}
