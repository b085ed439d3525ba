"""Stale line: a book has not touched a market while the other books moved, and its price now
disagrees with theirs — a price the book will likely correct, still on offer.

Reads a prices frame (see `oddly.detect.frames`) and, optionally, rows of
marts.fct_bookmaker_quality (bookmaker, market, median_stale_seconds) for what is normal per book.
Staleness of a book's market is the time from its own last change to the latest change of any other
book on the same market (as the quality mart measures it). Fires when that is at least
`min_stale_seconds` and `normal_multiple` x the book's usual staleness, at least `min_other_books`
others quote the market, and an outcome's no-vig probability is `min_probability_points` or more
off the others' mean. One detection per stale book market, at its most-off outcome, detected when
the other book moved. With a boolean `is_fresh` column only markets with fresh ticks are judged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from oddly.detect.detection import Detection, build, number, selection_label
from oddly.detect.frames import (
    Frame,
    against_others,
    at_least,
    no_vig,
    prices_frame,
    require,
    to_frame,
)
from oddly.detect.rules import Rules

TYPE = "stale_line"


def detect_stale_lines(prices: Frame, rules: Rules, quality: Frame | None = None) -> list[Detection]:
    cfg = rules.stale_line
    frame = prices_frame(prices, "stale_line prices")
    if not cfg.enabled or frame.empty:
        return []
    changes = _staleness(frame)
    changes = changes.merge(_normal_staleness(quality), on=["bookmaker", "market"], how="left")
    changes["threshold_seconds"] = np.maximum(
        cfg.min_stale_seconds, cfg.normal_multiple * changes["normal_stale_seconds"].fillna(0.0)
    )
    if "is_fresh" in frame.columns:
        touched = frame.loc[frame["is_fresh"].fillna(False).astype(bool), "market_id"].unique()
        changes = changes.loc[changes["market_id"].isin(touched)]
    stale = changes.loc[at_least(changes["stale_seconds"], changes["threshold_seconds"])]
    columns = [
        "book_changed_at",
        "others_changed_at",
        "stale_seconds",
        "normal_stale_seconds",
        "threshold_seconds",
    ]
    judged = against_others(no_vig(frame)).join(
        stale.set_index("book_market_id")[columns], on="book_market_id"
    )
    judged = judged.loc[judged["stale_seconds"].notna()]
    judged["gap"] = judged["probability_points"].abs()
    fires = judged["other_books"].ge(cfg.min_other_books) & at_least(
        judged["gap"], cfg.min_probability_points
    )
    hits = (
        judged.loc[fires]
        .sort_values(["gap", "outcome"], ascending=[False, True], kind="stable")
        .drop_duplicates("book_market_id", keep="first")
    )
    hits = hits.assign(detected_at=hits["others_changed_at"])
    return build(
        TYPE,
        hits,
        rules,
        strength=hits["stale_seconds"] / hits["threshold_seconds"],
        reasons=lambda r: _reasons(r, rules),
        explain=lambda r: _explain(r, rules),
    )


def _staleness(frame: pd.DataFrame) -> pd.DataFrame:
    """Per book market: its last change, the latest change of any other book on the market
    (leave-one-out maximum: the newest book is compared with the runner-up), and the gap in seconds."""
    last = frame.groupby("book_market_id", sort=False).agg(
        bookmaker=("bookmaker", "first"),
        market=("market", "first"),
        market_id=("market_id", "first"),
        book_changed_at=("observed_at", "max"),
    )
    last = last.reset_index().sort_values(
        ["market_id", "book_changed_at"], ascending=[True, False], kind="stable"
    )
    rank = last.groupby("market_id", sort=False).cumcount()
    by_market = last.groupby("market_id", sort=False)["book_changed_at"]
    newest = by_market.transform("first")
    runner_up = (
        last["book_changed_at"].where(rank.eq(1)).groupby(last["market_id"], sort=False).transform("max")
    )
    last["others_changed_at"] = runner_up.where(rank.eq(0), newest)
    last["stale_seconds"] = (last["others_changed_at"] - last["book_changed_at"]).dt.total_seconds()
    return last.loc[last["stale_seconds"].notna()]


def _normal_staleness(quality: Frame | None) -> pd.DataFrame:
    empty = pd.DataFrame(
        {
            "bookmaker": pd.Series(dtype="object"),
            "market": pd.Series(dtype="object"),
            "normal_stale_seconds": pd.Series(dtype="float64"),
        }
    )
    if quality is None:
        return empty
    rows = to_frame(quality)
    if rows.empty:
        return empty
    require(rows, ["bookmaker", "market", "median_stale_seconds"], "bookmaker quality")
    out = rows[["bookmaker", "market", "median_stale_seconds"]].rename(
        columns={"median_stale_seconds": "normal_stale_seconds"}
    )
    out["normal_stale_seconds"] = pd.to_numeric(out["normal_stale_seconds"], errors="coerce").astype(
        "float64"
    )
    return out.drop_duplicates(["bookmaker", "market"])


def _reasons(r: Mapping[str, Any], rules: Rules) -> dict[str, Any]:
    return {
        "stale_seconds": number(r["stale_seconds"], 1),
        "last_changed_at": r["book_changed_at"].isoformat(),
        "others_changed_at": r["others_changed_at"].isoformat(),
        "normal_stale_seconds": number(r["normal_stale_seconds"], 1),
        "threshold_stale_seconds": number(r["threshold_seconds"], 1),
        "price": number(r["price"]),
        "book_probability": number(r["fair_probability"]),
        "consensus_probability": number(r["consensus_probability"]),
        "probability_points": number(r["probability_points"], 3),
        "other_books": int(r["other_books"]),
        "threshold_probability_points": rules.stale_line.min_probability_points,
    }


def _explain(r: Mapping[str, Any], rules: Rules) -> str:
    normal = "" if pd.isna(r["normal_stale_seconds"]) else f", usually {r['normal_stale_seconds']:.0f} s"
    side = "below" if r["probability_points"] < 0 else "above"
    return (
        f"{r['bookmaker']} {selection_label(r)} unchanged at {r['price']:.2f} for {r['stale_seconds']:.0f} s "
        f"while other books moved (threshold {r['threshold_seconds']:.0f} s{normal}); now "
        f"{abs(r['probability_points']):.1f} points {side} their {r['consensus_probability']:.1%}"
    )
