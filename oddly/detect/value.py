"""Value against the sharp reference: a soft book pays more than the sharp book's fair price.

Reads rows of marts.fct_value_bets (canonical_event_id, bookmaker, market, period, line, outcome,
price, fair_probability — the sharp book's power-method no-vig probability). The edge is recomputed
from them, price x fair_probability - 1, and fires at `min_edge` or more (up to `max_price`). The
mart rows carry no time, so each needs `observed_at` (or the mart's `last_changed_at`, joined from
marts.fct_prices_current: `pipeline.detect_marts` does it), or the caller passes `as_of`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pandas as pd

from oddly.detect.detection import Detection, DetectionInputError, build, number, selection_label
from oddly.detect.frames import Frame, at_least, require, to_frame, utc_times, valid_price
from oddly.detect.rules import Rules

TYPE = "value"
COLUMNS = (
    "canonical_event_id",
    "bookmaker",
    "market",
    "period",
    "line",
    "outcome",
    "price",
    "fair_probability",
)


def detect_value(value_bets: Frame, rules: Rules, *, as_of: datetime | None = None) -> list[Detection]:
    cfg = rules.value
    frame = to_frame(value_bets)
    if not cfg.enabled or frame.empty:
        return []
    require(frame, COLUMNS, "value bets")
    if "observed_at" not in frame.columns and "last_changed_at" in frame.columns:
        frame = frame.rename(columns={"last_changed_at": "observed_at"})
    if "observed_at" not in frame.columns:
        if as_of is None:
            raise DetectionInputError(
                "value bets: no observed_at (the price's tick time); join it from "
                "marts.fct_prices_current.last_changed_at or pass as_of (the marts' snapshot time)"
            )
        frame = frame.assign(observed_at=as_of)
    price = pd.to_numeric(frame["price"], errors="coerce").astype("float64")
    fair = pd.to_numeric(frame["fair_probability"], errors="coerce").astype("float64")
    edge = price * fair - 1.0
    fires = valid_price(price) & fair.gt(0) & fair.lt(1) & at_least(edge, cfg.min_edge)
    fires &= ~frame["bookmaker"].isin(rules.sharp_books)
    if cfg.max_price is not None:
        fires &= price.le(cfg.max_price)
    observed = utc_times(frame["observed_at"])
    fires &= observed.notna()
    hits = frame.loc[fires].assign(
        price=price[fires], fair_probability=fair[fires], edge=edge[fires], detected_at=observed[fires]
    )
    return build(
        TYPE,
        hits,
        rules,
        strength=hits["edge"] / cfg.min_edge,
        reasons=lambda r: _reasons(r, rules),
        explain=lambda r: _explain(r, rules),
    )


def _reasons(r: Mapping[str, Any], rules: Rules) -> dict[str, Any]:
    return {
        "price": number(r["price"]),
        "fair_probability": number(r["fair_probability"]),
        "fair_price": number(1.0 / r["fair_probability"]),
        "edge": number(r["edge"]),
        "threshold_edge": rules.value.min_edge,
        "max_price": rules.value.max_price,
        "sharp_reference": list(rules.sharp_books),
    }


def _explain(r: Mapping[str, Any], rules: Rules) -> str:
    return (
        f"{r['bookmaker']} {selection_label(r)} at {r['price']:.2f} against a sharp fair price of "
        f"{1.0 / r['fair_probability']:.2f} ({r['fair_probability']:.1%}): edge {r['edge']:+.1%} "
        f"(threshold {rules.value.min_edge:.1%})"
    )
