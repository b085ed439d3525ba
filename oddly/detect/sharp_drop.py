"""Sharp drop: one tick shortens a price a lot — the market suddenly rates the outcome likelier.

Reads ticks (each with the price before it): the fresh ticks of an ingestion run, or any tick
history (raw.odds_ticks, marts int_price_moves) when replaying. A tick fires when it is open, both
prices are decimal odds, and it gains at least `min_probability_points` implied-probability points
while the price falls by at least `min_price_drop` of itself. First ticks (no previous price),
suspensions and drifts never fire.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from oddly.detect.detection import Detection, build, number, selection_label
from oddly.detect.frames import (
    PRICE_COLUMNS,
    Frame,
    at_least,
    require,
    require_event,
    to_frame,
    utc_times,
    valid_price,
)
from oddly.detect.rules import Rules

TYPE = "sharp_drop"


def detect_sharp_drops(ticks: Frame, rules: Rules) -> list[Detection]:
    cfg = rules.sharp_drop
    frame = to_frame(ticks)
    if not cfg.enabled or frame.empty:
        return []
    require(frame, [*PRICE_COLUMNS, "previous_price", "observed_at"], "sharp_drop ticks")
    require_event(frame, "sharp_drop ticks")
    price = pd.to_numeric(frame["price"], errors="coerce").astype("float64")
    previous = pd.to_numeric(frame["previous_price"], errors="coerce").astype("float64")
    points = 100.0 * (1.0 / price - 1.0 / previous)
    drop = 1.0 - price / previous
    fires = (
        valid_price(price)
        & valid_price(previous)
        & _open(frame)
        & at_least(points, cfg.min_probability_points)
        & at_least(drop, cfg.min_price_drop)
    )
    if cfg.sharp_books_only:
        fires &= frame["bookmaker"].isin(rules.sharp_books)
    hits = frame.loc[fires].assign(
        price=price[fires],
        previous_price=previous[fires],
        probability_points=points[fires],
        price_drop=drop[fires],
        detected_at=utc_times(frame.loc[fires, "observed_at"]),
        is_sharp_book=frame.loc[fires, "bookmaker"].isin(rules.sharp_books),
    )
    strength = hits["probability_points"] / cfg.min_probability_points
    return build(
        TYPE,
        hits,
        rules,
        strength=strength,
        reasons=lambda r: _reasons(r, rules),
        explain=lambda r: _explain(r, rules),
    )


def _open(frame: pd.DataFrame) -> pd.Series:
    if "status" in frame.columns:
        return frame["status"].eq("open")
    return pd.Series(True, index=frame.index)


def _reasons(r: Mapping[str, Any], rules: Rules) -> dict[str, Any]:
    cfg = rules.sharp_drop
    return {
        "previous_price": number(r["previous_price"]),
        "price": number(r["price"]),
        "previous_probability": number(1.0 / r["previous_price"]),
        "probability": number(1.0 / r["price"]),
        "probability_points": number(r["probability_points"], 3),
        "price_drop": number(r["price_drop"], 4),
        "threshold_probability_points": cfg.min_probability_points,
        "threshold_price_drop": cfg.min_price_drop,
        "is_sharp_book": bool(r["is_sharp_book"]),
    }


def _explain(r: Mapping[str, Any], rules: Rules) -> str:
    cfg = rules.sharp_drop
    sharp = " (sharp book)" if r["is_sharp_book"] else ""
    return (
        f"{r['bookmaker']}{sharp} {selection_label(r)} shortened "
        f"{r['previous_price']:.2f} → {r['price']:.2f} "
        f"(-{r['price_drop']:.1%}): +{r['probability_points']:.1f} probability points in one tick "
        f"(threshold {cfg.min_probability_points:g} points and -{cfg.min_price_drop:.0%})"
    )
