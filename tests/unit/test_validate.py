"""Vectorized validation: the same rules as PriceRow, with reasons a person can read."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from oddly.model import PriceColumns, PriceRow
from oddly.validate import latest_per_selection, validate_batch

OBSERVED = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
BASE = {
    "bookmaker": "22bet",
    "source_event_id": "335841758",
    "sport": "football",
    "home": "Manta",
    "away": "9 de Octubre",
    "starts_at": 1636416000.0,
    "market": "1x2",
    "outcome": "home",
    "price": 3.84,
}


def run(*overrides: dict) -> tuple[list[dict], list[str]]:
    cols = PriceColumns.from_records([{**BASE, **o} for o in overrides])
    result = validate_batch(cols.to_table(OBSERVED, "run-1"), cols)
    return result.table.to_pylist(), [r.reason for r in result.rejects]


def test_valid_rows_pass_unchanged() -> None:
    rows, reasons = run({}, {"market": "total", "line": 2.5, "outcome": "over", "price": 2.136})
    assert reasons == []
    assert [(r["market"], r["line"], r["price"]) for r in rows] == [
        ("1x2", None, 3.84),
        ("total", 2.5, 2.136),
    ]
    assert rows[0]["starts_at"] == datetime(2021, 11, 9, tzinfo=UTC)
    assert rows[0]["observed_at"] == OBSERVED and rows[0]["feed_run_id"] == "run-1"


@pytest.mark.parametrize(
    ("price", "reason"),
    [
        (0, "price 0 is not a decimal odd (must be > 1)"),
        (1.0, "price 1 is not a decimal odd (must be > 1)"),
        (-3, "price -3 is not a decimal odd (must be > 1)"),
        (1e7, "price 1e+07 is absurd (above 5000)"),
        (math.nan, "price nan is not finite"),
        ("abc", "price 'abc' is not a number"),
        (None, "price None is not a number"),
    ],
)
def test_bad_prices_are_rejected_with_their_value(price: object, reason: str) -> None:
    rows, reasons = run({"price": 2.0}, {"price": price, "outcome": "away"})
    assert [r["outcome"] for r in rows] == ["home"]
    assert reasons == [reason]


def test_vocabulary_lines_and_blank_fields() -> None:
    rows, reasons = run(
        {"market": "corners"},
        {"market": "raw:g136", "outcome": "raw:t731"},
        {"market": "total", "outcome": "over", "line": None},
        {"home": "  "},
        {"status": "closed"},
        {"line": math.inf, "market": "handicap"},
    )
    assert [r["market"] for r in rows] == ["raw:g136"]
    assert reasons == [
        "unknown market 'corners'",
        "market total needs a line",
        "home is missing",
        "unknown status 'closed'",
        "line is not finite",
    ]


def test_rejected_record_keeps_the_raw_values() -> None:
    cols = PriceColumns.from_records([{**BASE, "price": "3,84"}])
    result = validate_batch(cols.to_table(OBSERVED, "r"), cols)
    assert result.table.num_rows == 0
    assert result.rejects[0].record["price"] == "3,84"
    assert result.rejects[0].source_event_id == "335841758"


def test_single_row_model_applies_the_same_rules() -> None:
    row = PriceRow(
        **{**BASE, "starts_at": datetime(2021, 11, 9), "observed_at": OBSERVED, "feed_run_id": "r"}
    )
    assert row.starts_at.tzinfo is not None and row.status == "open"
    with pytest.raises(ValidationError, match="not a decimal odd"):
        PriceRow(**{**BASE, "price": 0, "starts_at": OBSERVED, "observed_at": OBSERVED, "feed_run_id": "r"})
    with pytest.raises(ValidationError, match="needs a line"):
        PriceRow(
            **{
                **BASE,
                "market": "total",
                "outcome": "over",
                "starts_at": OBSERVED,
                "observed_at": OBSERVED,
                "feed_run_id": "r",
            }
        )


def test_latest_per_selection_keeps_the_last_quote_of_each_selection() -> None:
    cols = PriceColumns.from_records(
        [
            {**BASE, "price": 3.84},
            {**BASE, "market": "total", "line": 2.5, "outcome": "over", "price": 2.1},
            {**BASE, "price": 3.90},  # the game endpoint's later quote of the same selection
            {**BASE, "market": "total", "line": 3.5, "outcome": "over", "price": 3.6},
        ]
    )
    table = latest_per_selection(cols.to_table(OBSERVED, "r"))
    assert [(r["market"], r["line"], r["price"]) for r in table.to_pylist()] == [
        ("total", 2.5, 2.1),
        ("1x2", None, 3.90),
        ("total", 3.5, 3.6),
    ]
    unique = cols.to_table(OBSERVED, "r").slice(1, 3)
    assert latest_per_selection(unique) is unique
