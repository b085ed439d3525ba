"""Grading bets: each leg of each signal with its closing-line value and, where the match result is
known, its settlement and profit at its stake.

A bet frame has BET_COLUMNS: which signal (`source` backtest / live / strategy, `signal_key`, its
`type`, `leg` for arbitrage legs), what was backed (event, market, period, line, outcome) where
(`bookmaker`; `signal_bookmaker` is the book the signal named, which for a move followed at the
best price elsewhere is another), at what `price` (before an exchange's `commission`), with what
`stake` (1 unit per signal, an arbitrage's unit split over its legs) and when (`taken_at`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from oddly.grading.closing import attach_close
from oddly.grading.history import RESULT_COLUMNS
from oddly.grading.settle import profit, settle
from oddly.grading.stats import clv, net_price

BET_COLUMNS = [
    "source",
    "signal_key",
    "type",
    "leg",
    "canonical_event_id",
    "event_name",
    "kick_off",
    "market",
    "period",
    "line",
    "outcome",
    "bookmaker",
    "signal_bookmaker",
    "price",
    "commission",
    "stake",
    "taken_at",
    "strength",
    "severity",
    "action",
    "rules_version",
    "note",
]
GRADE_COLUMNS = [
    "effective_price",
    "closing_bookmaker",
    "closing_price",
    "closing_at",
    "fair_probability",
    "fair_price",
    "clv",
    "beat_close",
    "result",
    "profit",
    "unsettled_reason",
]
GRADED_COLUMNS = [*BET_COLUMNS, *GRADE_COLUMNS]
_NUMBERS = ("line", "price", "commission", "stake", "strength")


def empty_bets() -> pd.DataFrame:
    return pd.DataFrame(columns=BET_COLUMNS)


def bet_frame(rows: list[dict[str, object]] | pd.DataFrame) -> pd.DataFrame:
    """Rows as a bet frame with every column, numbers as floats and times as UTC."""
    frame = pd.DataFrame(rows) if not isinstance(rows, pd.DataFrame) else rows.copy()
    for column in BET_COLUMNS:
        if column not in frame.columns:
            frame[column] = None
    for column in _NUMBERS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    frame["commission"] = frame["commission"].fillna(0.0)
    frame["stake"] = frame["stake"].fillna(1.0)
    frame["leg"] = pd.to_numeric(frame["leg"], errors="coerce").fillna(0).astype("int64")
    for column in ("kick_off", "taken_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame[BET_COLUMNS].reset_index(drop=True)


def grade(bets: pd.DataFrame, closes: pd.DataFrame, results: pd.DataFrame) -> pd.DataFrame:
    """GRADED_COLUMNS: the bets with their close (`closing_*`, `fair_probability` and its
    `fair_price`), `clv` (price
    after commission x fair closing probability - 1), `beat_close` (CLV above zero), the settled
    `result` and `profit` at the stake (missing, with `unsettled_reason`, where no result is known).
    A bet taken after kick-off (an in-play alert) has no close: its result alone judges it."""
    if bets.empty:
        return pd.DataFrame(columns=GRADED_COLUMNS)
    graded = attach_close(bets, closes)
    # A bet taken after kick-off came after the close: it is judged by its result only.
    in_play = (
        graded["taken_at"].notna() & graded["kick_off"].notna() & (graded["taken_at"] > graded["kick_off"])
    )
    graded.loc[in_play, ["closing_bookmaker", "closing_price", "closing_at", "fair_probability"]] = None
    graded["fair_price"] = 1.0 / graded["fair_probability"].astype("float64")
    graded["effective_price"] = net_price(graded["price"], graded["commission"])
    graded["clv"] = clv(graded["effective_price"], graded["fair_probability"].astype("float64"))
    graded["beat_close"] = np.where(graded["clv"].isna(), None, graded["clv"] > 0)
    known = results[RESULT_COLUMNS] if not results.empty else pd.DataFrame(columns=RESULT_COLUMNS)
    with_goals = graded.merge(known, on="canonical_event_id", how="left", validate="many_to_one")
    with_goals.index = graded.index
    settled = settle(with_goals)
    graded["result"] = settled["result"]
    graded["profit"] = profit(graded["effective_price"], graded["stake"], settled)
    graded["unsettled_reason"] = settled["unsettled_reason"]
    return graded[GRADED_COLUMNS]
