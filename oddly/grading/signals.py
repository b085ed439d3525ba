"""From a signal to the bet it stands for: which price could be taken, where, with what stake.

The same rules serve replayed detections and live alerts, so both grade alike:

- value: back the outcome at the book the value was found at, at its price;
- out of line, stale line: back the outcome at the flagged book when that book pays more than the
  others think (its no-vig probability is below theirs); when it pays less, the signal is not a
  bet on that outcome there and is skipped;
- sharp drop and steam (shortening): follow the move — back the outcome at the best price on offer
  across the books at that moment (after an exchange's commission); a drifting steam says what not
  to back and is skipped;
- arbitrage: every leg at its book and price, the one unit split by the legs' stake shares.

Anything else (a model score has no side to back) is skipped with its reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from oddly.detect.detection import Detection
from oddly.grading.grade import bet_frame, empty_bets

FOLLOW_TYPES = ("sharp_drop", "steam")
ONE_BOOK_TYPES = ("value", "out_of_line", "stale_line")
GRADED_TYPES = ("value", "sharp_drop", "steam", "out_of_line", "arbitrage", "stale_line")

NO_SIDE = "no side to back (a model score)"
SHORT_BOOK = "the book pays less than the others think: no bet on this outcome there"
DRIFTING = "drifting steam: no single bet follows it"
NO_PRICE = "no price on offer at that moment"
NO_LEGS = "arbitrage without its legs"


def line_text(line: Any) -> str:
    return "" if line is None or pd.isna(line) else f"{float(line):g}"


def selection_key(kind: str, event: Any, market: Any, period: Any, line: Any, outcome: Any, book: Any) -> str:
    """What makes two signals the same bet: type × event × market × period × line × outcome (× the
    book for one-book types; an arbitrage is its whole market)."""
    parts = [kind, str(event), str(market), str(period), line_text(line)]
    if kind != "arbitrage":
        parts.append(str(outcome or ""))
    if kind in ONE_BOOK_TYPES:
        parts.append(str(book or ""))
    return "|".join(parts)


def detection_key(d: Detection) -> str:
    """One detection's key: its type, selection, the book it names and its time."""
    parts = [d.type, str(d.canonical_event_id), d.market, d.period, line_text(d.line), d.outcome or ""]
    return "|".join([*parts, d.bookmaker or ""]) + "@" + pd.Timestamp(d.detected_at).isoformat()


def arbitrage_legs(reasons: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """An arbitrage's legs (outcome, bookmaker, price, commission, stake_share) from its reasons."""
    legs = reasons.get("legs")
    return [leg for leg in legs if isinstance(leg, Mapping)] if isinstance(legs, list) else []


def bets_from_detections(
    detections: Iterable[Detection],
    best: pd.DataFrame,
    *,
    source: str = "backtest",
    kick_offs: Mapping[str, Any] | None = None,
    commission: Mapping[str, float] | None = None,
) -> tuple[pd.DataFrame, Counter[str]]:
    """The bets of replayed detections and what was skipped, by "type: reason". `best` holds the
    best price on offer per snapshot (`oddly.grading.replay.best_prices`), for the move types."""
    rows: list[dict[str, Any]] = []
    follow: list[dict[str, Any]] = []
    skipped: Counter[str] = Counter()
    for d in detections:
        reasons = dict(d.reasons)
        base = {
            "source": source,
            "type": d.type,
            "canonical_event_id": d.canonical_event_id,
            "kick_off": (kick_offs or {}).get(d.canonical_event_id or ""),
            "market": d.market,
            "period": d.period,
            "line": d.line,
            "outcome": d.outcome,
            "signal_bookmaker": d.bookmaker,
            "taken_at": d.detected_at,
            "strength": d.strength,
            "rules_version": d.rules_version,
            "signal_key": detection_key(d),
        }
        if d.type == "arbitrage":
            legs = arbitrage_legs(reasons)
            if not legs:
                skipped[f"{d.type}: {NO_LEGS}"] += 1
            rows += [_leg_row(base, i, leg) for i, leg in enumerate(legs)]
        elif d.type in ONE_BOOK_TYPES:
            points = reasons.get("probability_points")
            if d.type != "value" and points is not None and float(points) >= 0:
                skipped[f"{d.type}: {SHORT_BOOK}"] += 1
                continue
            rate = (commission or {}).get(d.bookmaker or "", 0.0)
            rows.append({**base, "bookmaker": d.bookmaker, "price": reasons.get("price"), "commission": rate})
        elif d.type in FOLLOW_TYPES:
            if reasons.get("direction") == "drifting":
                skipped[f"{d.type}: {DRIFTING}"] += 1
                continue
            follow.append(base)
        else:
            skipped[f"{d.type}: {NO_SIDE}"] += 1
    bets = bet_frame(rows) if rows else empty_bets()
    if follow:
        taken, missing = _at_best_price(pd.DataFrame(follow), best)
        skipped.update({f"{kind}: {NO_PRICE}": n for kind, n in missing.items()})
        bets = pd.concat([frame for frame in (bets, taken) if not frame.empty], ignore_index=True)
    return bet_frame(bets) if not bets.empty else empty_bets(), skipped


def _leg_row(base: dict[str, Any], index: int, leg: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **base,
        "leg": index,
        "outcome": leg.get("outcome"),
        "bookmaker": leg.get("bookmaker"),
        "price": leg.get("price"),
        "commission": leg.get("commission") or 0.0,
        "stake": leg.get("stake_share"),
    }


def _at_best_price(follow: pd.DataFrame, best: pd.DataFrame) -> tuple[pd.DataFrame, Counter[str]]:
    """Move-following signals at the best price of their outcome in the snapshot of their moment."""
    keys = ["canonical_event_id", "market", "period", "line_key", "outcome", "moment"]
    left = follow.assign(
        line_key=pd.to_numeric(follow["line"], errors="coerce").astype("float64").fillna(-1e9),
        moment=pd.to_datetime(follow["taken_at"], utc=True),
    )
    right = best.rename(columns={"bookmaker": "_book", "price": "_price", "commission": "_commission"})
    joined = left.merge(right[[*keys, "_book", "_price", "_commission", "books"]], on=keys, how="left")
    found = joined["_price"].notna()
    missing = Counter(joined.loc[~found, "type"])
    taken = joined.loc[found].assign(
        bookmaker=joined["_book"],
        price=joined["_price"],
        commission=joined["_commission"],
        note="best of " + joined["books"].fillna(0).astype(int).astype(str) + " books at that moment",
    )
    return bet_frame(taken), missing


def first_signals(bets: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Each selection's first signal of each type only (a bettor bets once; a detection repeating
    on the same selection later is not a new bet), and how many later ones were dropped."""
    if bets.empty:
        return bets, 0
    key = [
        selection_key(k, e, m, p, ln, o, b)
        for k, e, m, p, ln, o, b in zip(
            bets["type"],
            bets["canonical_event_id"],
            bets["market"],
            bets["period"],
            bets["line"],
            bets["outcome"],
            bets["signal_bookmaker"],
            strict=True,
        )
    ]
    frame = bets.assign(_selection=key)
    first = frame.sort_values(["taken_at", "signal_key", "leg"], kind="stable")
    first_key = first.drop_duplicates("_selection", keep="first")[["_selection", "signal_key"]]
    kept = frame.merge(first_key, on=["_selection", "signal_key"], how="inner")
    dropped = frame["signal_key"].nunique() - kept["signal_key"].nunique()
    return kept.drop(columns="_selection")[bets.columns].reset_index(drop=True), int(dropped)
