"""Value against the sharp reference, from rows of marts.fct_value_bets."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest

from oddly.detect import DetectionInputError, detect_value
from tests.detect_rows import T0, VERSION, at, rules

RULES = rules()


def bet(
    outcome: str, price: float | None, fair: float | None, book: str = "b", **extra: Any
) -> dict[str, Any]:
    return {
        "canonical_event_id": "ev",
        "bookmaker": book,
        "market": "1x2",
        "period": "ft",
        "line": None,
        "outcome": outcome,
        "price": price,
        "fair_probability": fair,
        "observed_at": at(45),
        **extra,
    }


# The sharp book's fair probabilities 7/16, 1/4, 5/16 (as in the mart's own unit test).
BETS = [bet("home", 2.5, 0.4375), bet("draw", 4.0, 0.25), bet("away", 3.25, 0.3125)]


def test_an_edge_over_the_threshold_fires_with_its_reasons() -> None:
    [found] = detect_value(BETS, RULES)  # home 2.5 x 0.4375 - 1 = +9.375 %; draw 0; away +1.5625 %
    assert (found.type, found.bookmaker, found.outcome, found.detected_at) == ("value", "b", "home", at(45))
    assert found.rules_version == VERSION
    assert found.reasons == {
        "price": 2.5,
        "fair_probability": 0.4375,
        "fair_price": pytest.approx(2.285714),
        "edge": 0.09375,
        "threshold_edge": 0.02,
        "max_price": None,
        "sharp_reference": ["pinnacle", "betfair_ex"],
    }
    assert found.strength == pytest.approx(0.09375 / 0.02)
    assert found.explanation == (
        "b 1x2 home at 2.50 against a sharp fair price of 2.29 (43.8%): edge +9.4% (threshold 2.0%)"
    )


def test_exactly_at_the_edge_threshold_fires_and_just_below_does_not() -> None:
    assert [d.outcome for d in detect_value(BETS, rules(value={"min_edge": 0.015625}))] == ["home", "away"]
    assert [d.outcome for d in detect_value(BETS, rules(value={"min_edge": 0.0157}))] == ["home"]
    assert detect_value(BETS, rules(value={"min_edge": 0.09376})) == []


def test_the_edge_is_recomputed_not_taken_from_the_row() -> None:
    assert detect_value([bet("draw", 4.0, 0.25, edge=0.5)], RULES) == []


def test_longshots_over_max_price_and_the_sharp_book_itself_never_fire() -> None:
    assert detect_value([bet("away", 21.0, 0.06)], rules(value={"max_price": 15})) == []
    assert len(detect_value([bet("away", 21.0, 0.06)], RULES)) == 1
    assert detect_value([bet("home", 2.5, 0.4375, book="pinnacle")], RULES) == []


@pytest.mark.parametrize(
    ("price", "fair"), [(0.0, 0.5), (math.nan, 0.5), (None, 0.5), (3.0, 0.0), (3.0, math.nan), (3.0, 1.2)]
)
def test_bad_prices_or_fair_probabilities_give_no_detection(price: float | None, fair: float | None) -> None:
    assert detect_value([bet("home", price, fair)], RULES) == []


def test_time_comes_from_the_tick_or_as_of_and_is_required() -> None:
    rows = pd.DataFrame(BETS).drop(columns="observed_at")
    with pytest.raises(DetectionInputError, match=r"no observed_at .* pass as_of"):
        detect_value(rows, RULES)
    assert detect_value(rows, RULES, as_of=T0)[0].detected_at == T0
    mart = rows.assign(last_changed_at=at(7))
    assert detect_value(mart, RULES)[0].detected_at == at(7)


def test_empty_input_gives_nothing_and_missing_columns_are_named() -> None:
    assert detect_value([], RULES) == []
    with pytest.raises(DetectionInputError, match=r"value bets: missing column\(s\) fair_probability"):
        detect_value(pd.DataFrame(BETS).drop(columns="fair_probability"), RULES)
