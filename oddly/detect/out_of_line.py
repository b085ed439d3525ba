"""One book out of line: its no-vig probability for an outcome is far from the other books'.

Reads a prices frame (see `oddly.detect.frames`): every book's current prices on the markets to
judge. Each book's complete open market is made fair by the multiplicative method and each outcome
compared with the mean of the other books' fair probabilities (leave-one-out, as
marts.fct_divergence does). Fires when at least `min_other_books` others quote it, the gap is
`min_probability_points` or more either way, and it is `min_z_score` of the others' standard
deviations or more (always, when the others agree exactly). The sharp reference books are not
judged unless `judge_sharp_books` (they move first). With a boolean `is_fresh` column only
those rows are judged (the fresh ticks of an ingestion run; the rest is context), otherwise every
row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from oddly.detect.detection import Detection, build, number, selection_label
from oddly.detect.frames import Frame, against_others, at_least, no_vig, prices_frame
from oddly.detect.rules import Rules

TYPE = "out_of_line"


def detect_out_of_line(prices: Frame, rules: Rules) -> list[Detection]:
    cfg = rules.out_of_line
    frame = prices_frame(prices, "out_of_line prices")
    if not cfg.enabled or frame.empty:
        return []
    judged = against_others(no_vig(frame))
    # The gap exists from the later of this book's tick and the others' latest one.
    judged["detected_at"] = judged.groupby("market_id", sort=False)["observed_at"].transform("max")
    z = judged["z_score"].abs()
    fires = (
        judged["other_books"].ge(cfg.min_other_books)
        & at_least(judged["probability_points"].abs(), cfg.min_probability_points)
        & (z.isna() | at_least(z, cfg.min_z_score))
    )
    if not cfg.judge_sharp_books:
        fires &= ~judged["bookmaker"].isin(rules.sharp_books)
    if "is_fresh" in judged.columns:
        fires &= judged["is_fresh"].fillna(False).astype(bool)
    hits = judged.loc[fires]
    return build(
        TYPE,
        hits,
        rules,
        strength=hits["probability_points"].abs() / cfg.min_probability_points,
        reasons=lambda r: _reasons(r, rules),
        explain=lambda r: _explain(r, rules),
    )


def _reasons(r: Mapping[str, Any], rules: Rules) -> dict[str, Any]:
    return {
        "price": number(r["price"]),
        "book_probability": number(r["fair_probability"]),
        "consensus_probability": number(r["consensus_probability"]),
        "consensus_fair_price": number(1.0 / r["consensus_probability"]),
        "probability_points": number(r["probability_points"], 3),
        "z_score": number(r["z_score"], 3),
        "other_books": int(r["other_books"]),
        "book_overround": number(r["overround"]),
        "threshold_probability_points": rules.out_of_line.min_probability_points,
        "min_other_books": rules.out_of_line.min_other_books,
        "threshold_z_score": rules.out_of_line.min_z_score,
    }


def _explain(r: Mapping[str, Any], rules: Rules) -> str:
    side = "below" if r["probability_points"] < 0 else "above"
    z = "" if pd.isna(r["z_score"]) else f", z {r['z_score']:+.1f}"
    return (
        f"{r['bookmaker']} {selection_label(r)} at {r['price']:.2f}: no-vig {r['fair_probability']:.1%}, "
        f"{abs(r['probability_points']):.1f} points {side} the {int(r['other_books'])} other books' "
        f"{r['consensus_probability']:.1%} (fair price {1.0 / r['consensus_probability']:.2f}{z}); "
        f"threshold {rules.out_of_line.min_probability_points:g} points"
    )
