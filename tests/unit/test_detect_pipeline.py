"""The detector pipeline: the fast detectors on one run's fresh ticks plus state, and every
detector on mart rows."""

from __future__ import annotations

import json

import pandas as pd

from oddly.detect import detections_frame
from oddly.detect.pipeline import detect_fresh, detect_marts
from tests.detect_rows import VERSION, at, book_market, rules, tick

RULES = rules()
IN_LINE = {"home": 2.0, "draw": 4.0, "away": 4.0}


def latest() -> pd.DataFrame:
    """The latest prices around the run: books a, b, c and x all in line."""
    rows = [row for book in ("a", "b", "c", "x") for row in book_market(book, IN_LINE)]
    return pd.DataFrame(rows).drop(columns="previous_price")


def test_fresh_ticks_are_judged_against_the_state_and_replace_it() -> None:
    # x's home drops 2.0 → 1.6 (a sharp drop, and now out of line); its draw and away stand.
    fresh = [tick("x", "home", 1.6, previous=2.0, seconds=10)]
    found = detect_fresh(fresh, latest(), RULES)
    assert sorted((d.type, d.bookmaker, d.outcome) for d in found) == [
        ("out_of_line", "x", "home"),
        ("sharp_drop", "x", "home"),
    ]
    assert {d.detected_at for d in found} == {at(10)}
    assert {d.rules_version for d in found} == {VERSION}
    out = next(d for d in found if d.type == "out_of_line")
    assert out.reasons["price"] == 1.6 and out.reasons["other_books"] == 3


def test_an_arbitrage_opened_by_a_fresh_tick() -> None:
    fresh = [tick("x", "draw", 6.0, previous=4.0, seconds=10)]
    state = latest()
    state.loc[state["bookmaker"] == "a", "price"] = [2.3, 3.8, 4.0]
    state.loc[state["bookmaker"] == "b", "price"] = [1.9, 3.8, 4.6]
    found = detect_fresh(fresh, state, RULES)  # 1/2.3 + 1/6 + 1/4.6 = 0.8188
    arbitrage = [d for d in found if d.type == "arbitrage"]
    assert [(d.bookmaker, d.outcome) for d in arbitrage] == [("x", "draw")]
    assert [leg["bookmaker"] for leg in arbitrage[0].reasons["legs"]] == ["a", "x", "b"]


def test_state_alone_is_never_judged() -> None:
    state = latest()
    state.loc[state["bookmaker"] == "x", "price"] = [2.8, 3.0, 3.5]  # out of line, but not fresh
    assert detect_fresh([tick("a", "home", 2.0, previous=2.02)], state, RULES) == []


def test_unmatched_events_get_the_single_book_detector_only() -> None:
    fresh = [tick("x", "home", 1.6, previous=2.0, event=None)]
    found = detect_fresh(fresh, latest(), RULES)
    assert [(d.type, d.canonical_event_id, d.source_event_id) for d in found] == [("sharp_drop", None, "x-x")]


def test_no_fresh_ticks_no_state_give_nothing() -> None:
    assert detect_fresh([], latest(), RULES) == []
    assert [d.type for d in detect_fresh([tick("x", "home", 1.6, previous=2.0)], None, RULES)] == [
        "sharp_drop"
    ]


def test_marts_run_every_detector_that_has_input() -> None:
    prices = latest().rename(columns={"observed_at": "last_changed_at"})
    prices.loc[prices["bookmaker"] == "x", "price"] = [2.5, 10 / 3, 10 / 3]
    steam = {
        "canonical_event_id": "ev1",
        "market": "1x2",
        "period": "ft",
        "line": None,
        "outcome": "home",
        "direction": "shortening",
        "started_at": at(0),
        "last_moved_at": at(100),
        "first_bookmaker": "a",
        "books": 3,
        "bookmakers": "a,b,c",
        "mean_probability_points": 2.0,
    }
    value = {
        "canonical_event_id": "ev1",
        "bookmaker": "x",
        "market": "1x2",
        "period": "ft",
        "line": None,
        "outcome": "draw",
        "price": 10 / 3,
        "fair_probability": 0.35,
        "edge": 10 / 3 * 0.35 - 1,
    }
    found = detect_marts(RULES, prices=prices, steam_moves=[steam], value_bets=[value], quality=[])
    # Margin-free books: x's home 2.5 with the others' draw and away at 4.0 is also an arbitrage.
    assert sorted((d.type, d.bookmaker, d.outcome) for d in found) == [
        ("arbitrage", "a", "draw"),
        ("out_of_line", "x", "away"),
        ("out_of_line", "x", "draw"),
        ("out_of_line", "x", "home"),
        ("steam", "a", "home"),
        ("value", "x", "draw"),
    ]
    # The value bet took its tick time from fct_prices_current; detections come in time order.
    assert next(d for d in found if d.type == "value").detected_at == at(0)
    assert [d.detected_at for d in found] == sorted(d.detected_at for d in found)
    # Every type's reasons are JSON, as stored.
    stored = detections_frame(found)
    assert all(isinstance(json.loads(text), dict) for text in stored["reasons"])
    assert set(stored["rules_version"]) == {VERSION}


def test_detections_as_a_table() -> None:
    found = detect_fresh([tick("x", "home", 1.6, previous=2.0, seconds=10)], latest(), RULES)
    table = detections_frame(found)
    assert list(table.columns) == [
        "type",
        "canonical_event_id",
        "source_event_id",
        "bookmaker",
        "market",
        "period",
        "line",
        "outcome",
        "detected_at",
        "strength",
        "reasons",
        "explanation",
        "rules_version",
    ]
    assert len(table) == 2
    assert json.loads(table.loc[table["type"] == "sharp_drop", "reasons"].iloc[0])["price"] == 1.6
    assert detections_frame([]).empty


def test_a_value_bet_made_by_the_sharp_book_moving_is_dated_by_that_move() -> None:
    """The soft price stood still since at(0); the sharp book's later move made it a value bet."""
    prices = latest().rename(columns={"observed_at": "last_changed_at"})
    sharp = next(iter(RULES.sharp_books))
    prices.loc[prices["bookmaker"] == "a", "bookmaker"] = sharp
    prices.loc[prices["bookmaker"] == sharp, "last_changed_at"] = at(300)
    value = {
        "canonical_event_id": "ev1",
        "bookmaker": "x",
        "market": "1x2",
        "period": "ft",
        "line": None,
        "outcome": "draw",
        "price": 4.0,
        "fair_probability": 0.27,
        "edge": 4.0 * 0.27 - 1,
    }
    [found] = detect_marts(RULES, prices=prices, value_bets=[value], only=["value"])
    assert found.detected_at == at(300)
