"""Steam move: several books move one outcome the same way within minutes.

Reads rows of marts.fct_steam_moves (one per steam, at its first mover; the mart already requires
dbt var `steam_min_books` books within var `steam_window_minutes`, so `min_books` here can only
raise that bar). Fires when `books` ≥ `min_books` and the books' mean move is at least
`min_mean_probability_points` either way; with `require_sharp_first`, only steams a sharp
reference book started. Reported at the first mover, detected when the last joining book moved.
Tombstone rows (books null, the mart's incremental bookkeeping) are skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from oddly.detect.detection import Detection, build, number, selection_label
from oddly.detect.frames import Frame, at_least, require, to_frame, utc_times
from oddly.detect.rules import Rules

TYPE = "steam"
COLUMNS = (
    "canonical_event_id",
    "market",
    "period",
    "line",
    "outcome",
    "direction",
    "started_at",
    "last_moved_at",
    "first_bookmaker",
    "books",
    "bookmakers",
    "mean_probability_points",
)


def detect_steam(steam_moves: Frame, rules: Rules) -> list[Detection]:
    cfg = rules.steam
    frame = to_frame(steam_moves)
    if not cfg.enabled or frame.empty:
        return []
    require(frame, COLUMNS, "steam moves")
    books = pd.to_numeric(frame["books"], errors="coerce")
    points = pd.to_numeric(frame["mean_probability_points"], errors="coerce").astype("float64")
    detected_at = utc_times(frame["last_moved_at"])
    fires = (
        books.ge(cfg.min_books)
        & at_least(points.abs(), cfg.min_mean_probability_points)
        & detected_at.notna()
    )
    sharp_first = (
        frame["first_mover_is_sharp"].fillna(False).astype(bool)
        if "first_mover_is_sharp" in frame.columns
        else frame["first_bookmaker"].isin(rules.sharp_books)
    )
    if cfg.require_sharp_first:
        fires &= sharp_first
    hits = frame.loc[fires].assign(
        bookmaker=frame.loc[fires, "first_bookmaker"],
        books=books[fires].astype("int64"),
        mean_probability_points=points[fires],
        sharp_first=sharp_first[fires],
        detected_at=detected_at[fires],
        started_at=utc_times(frame.loc[fires, "started_at"]),
    )
    return build(
        TYPE,
        hits,
        rules,
        strength=hits["books"] / cfg.min_books,
        reasons=lambda r: _reasons(r, rules),
        explain=lambda r: _explain(r, rules),
    )


def _book_list(value: Any) -> list[str]:
    return [b for b in str(value).split(",") if b] if isinstance(value, str) else []


def _reasons(r: Mapping[str, Any], rules: Rules) -> dict[str, Any]:
    seconds = (r["detected_at"] - r["started_at"]).total_seconds()
    return {
        "direction": r["direction"],
        "books": int(r["books"]),
        "bookmakers": _book_list(r["bookmakers"]),
        "first_bookmaker": r["first_bookmaker"],
        "first_mover_is_sharp": bool(r["sharp_first"]),
        "mean_probability_points": number(r["mean_probability_points"], 3),
        "started_at": r["started_at"].isoformat(),
        "seconds_to_last_book": number(seconds, 1),
        "threshold_books": rules.steam.min_books,
        "threshold_mean_probability_points": rules.steam.min_mean_probability_points,
    }


def _explain(r: Mapping[str, Any], rules: Rules) -> str:
    books = _book_list(r["bookmakers"])
    sharp = " (sharp)" if r["sharp_first"] else ""
    seconds = (r["detected_at"] - r["started_at"]).total_seconds()
    return (
        f"steam: {r['books']} books {r['direction']} {selection_label(r)} within {seconds:.0f} s "
        f"({', '.join(books) or r['first_bookmaker']}), first {r['first_bookmaker']}{sharp}, "
        f"mean {r['mean_probability_points']:+.1f} points (threshold {rules.steam.min_books} books)"
    )
