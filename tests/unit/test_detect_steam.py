"""Steam move, from rows of marts.fct_steam_moves."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest

from oddly.detect import DetectionInputError, detect_steam
from tests.detect_rows import VERSION, at, rules

RULES = rules()


def steam(books: int | None = 3, points: float = 3.0, **extra: Any) -> dict[str, Any]:
    return {
        "steam_id": "k|1",
        "canonical_event_id": "ev",
        "market": "1x2",
        "period": "ft",
        "line": None,
        "outcome": "home",
        "direction": "shortening" if points >= 0 else "drifting",
        "started_at": at(0),
        "last_moved_at": at(240),
        "first_bookmaker": "pinnacle",
        "first_mover_is_sharp": True,
        "books": books,
        "bookmakers": "pinnacle,b,c",
        "mean_probability_points": points,
        **extra,
    }


def test_a_steam_fires_at_its_first_mover_when_the_last_book_moved() -> None:
    [found] = detect_steam([steam()], RULES)
    assert (found.type, found.bookmaker, found.outcome, found.canonical_event_id) == (
        "steam",
        "pinnacle",
        "home",
        "ev",
    )
    assert (found.detected_at, found.rules_version, found.strength) == (at(240), VERSION, 1.0)
    assert found.reasons == {
        "direction": "shortening",
        "books": 3,
        "bookmakers": ["pinnacle", "b", "c"],
        "first_bookmaker": "pinnacle",
        "first_mover_is_sharp": True,
        "mean_probability_points": 3.0,
        "started_at": at(0).isoformat(),
        "seconds_to_last_book": 240.0,
        "threshold_books": 3,
        "threshold_mean_probability_points": 1.0,
    }
    assert found.explanation == (
        "steam: 3 books shortening 1x2 home within 240 s (pinnacle, b, c), first pinnacle (sharp), "
        "mean +3.0 points (threshold 3 books)"
    )


def test_exactly_at_the_thresholds_fires_and_just_below_does_not() -> None:
    assert len(detect_steam([steam(books=4)], rules(steam={"min_books": 4}))) == 1
    assert detect_steam([steam(books=3)], rules(steam={"min_books": 4})) == []
    assert len(detect_steam([steam(points=-2.0)], rules(steam={"min_mean_probability_points": 2.0}))) == 1
    assert detect_steam([steam(points=-1.99)], rules(steam={"min_mean_probability_points": 2.0})) == []


def test_drifting_steams_count_by_size() -> None:
    [found] = detect_steam([steam(points=-4.0)], RULES)
    assert found.reasons["direction"] == "drifting" and "mean -4.0 points" in found.explanation


def test_sharp_first_when_required() -> None:
    soft = steam(first_bookmaker="22bet", first_mover_is_sharp=False)
    strict = rules(steam={"require_sharp_first": True})
    assert detect_steam([soft], strict) == []
    assert len(detect_steam([soft], RULES)) == 1
    # Without the mart's flag, the rules' sharp books decide.
    rows = pd.DataFrame([steam(), soft]).drop(columns="first_mover_is_sharp")
    assert [d.bookmaker for d in detect_steam(rows, strict)] == ["pinnacle"]


@pytest.mark.parametrize(
    "bad", [{"books": None}, {"mean_probability_points": math.nan}, {"last_moved_at": None}]
)
def test_tombstones_and_broken_rows_give_no_detection(bad: dict[str, Any]) -> None:
    assert detect_steam([steam(**bad)], RULES) == []


def test_empty_input_gives_nothing_and_missing_columns_are_named() -> None:
    assert detect_steam([], RULES) == []
    with pytest.raises(DetectionInputError, match=r"steam moves: missing column\(s\) books"):
        detect_steam(pd.DataFrame([steam()]).drop(columns="books"), RULES)
