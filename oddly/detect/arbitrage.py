"""Arbitrage: the best prices across books on a complete outcome set imply less than 100 %, so
backing every outcome at its best book returns the same whatever happens.

Reads a prices frame (see `oddly.detect.frames`). Prices are compared after an exchange's
commission on net winnings (rules `exchange_commission`), over complete, mutually exclusive sets
(1X2, two-way markets on one line; never double chance), as marts.fct_arbitrage does. Fires when
margin = 1 - Σ 1 / best net price is at least `min_margin`. With a boolean `is_fresh` column only
sets with a fresh leg fire (an ingestion run's ticks made or changed the arbitrage).

One detection per set, reported at its newest leg — the move that opened it (ties: a fresh leg,
then the book's name) — with every leg and its stake share in the reasons.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from oddly.detect.detection import Detection, build, number
from oddly.detect.frames import Frame, at_least, prices_frame, small_map
from oddly.detect.rules import Rules

TYPE = "arbitrage"
# Legs are listed in the set's own order (home, draw, away; over, under; yes, no).
OUTCOME_ORDER = {"home": 0, "over": 0, "yes": 0, "draw": 1, "under": 1, "no": 1, "away": 2}


def detect_arbitrage(prices: Frame, rules: Rules) -> list[Detection]:
    cfg = rules.arbitrage
    frame = prices_frame(prices, "arbitrage prices")
    if not cfg.enabled or frame.empty:
        return []
    rows = frame.loc[frame["is_open"] & frame["in_set"]]
    # With `is_fresh` given, only sets the fresh ticks touch are judged (the rest is context).
    restrict = "is_fresh" in rows.columns
    fresh = rows["is_fresh"].fillna(False).astype(bool) if restrict else pd.Series(False, index=rows.index)
    commission = small_map(rows["bookmaker"], rules.exchange_commission, 0.0)
    net_price = 1.0 + (rows["price"] - 1.0) * (1.0 - commission)
    rows = rows.assign(
        is_fresh=fresh, commission=commission, net_price=net_price, net_implied=1.0 / net_price
    )
    best = rows.sort_values(
        ["net_price", "bookmaker"], ascending=[False, True], kind="stable"
    ).drop_duplicates("outcome_id", keep="first")
    by_set = best.groupby("market_id", sort=False)
    implied_total = by_set["net_implied"].transform("sum")
    best = best.assign(implied_total=implied_total, margin=1.0 - implied_total)
    fires = by_set["outcome"].transform("size").eq(best["set_size"]) & at_least(
        best["margin"], cfg.min_margin
    )
    if restrict:
        fires &= by_set["is_fresh"].transform("any")
    legs = best.loc[fires]
    if legs.empty:
        return []
    legs = legs.assign(
        stake_share=legs["net_implied"] / legs["implied_total"],
        detected_at=legs.groupby("market_id", sort=False)["observed_at"].transform("max"),
        _order=legs["outcome"].map(OUTCOME_ORDER),
    )
    in_set_order = legs.sort_values(["market_id", "_order"], kind="stable")
    leg_lists = (
        in_set_order.groupby("market_id", sort=False).apply(_legs, include_groups=False).rename("legs")
    )
    trigger = legs.sort_values(
        ["observed_at", "is_fresh", "bookmaker"], ascending=[False, False, True], kind="stable"
    ).drop_duplicates("market_id", keep="first")
    hits = trigger.join(leg_lists, on="market_id")
    return build(
        TYPE,
        hits,
        rules,
        strength=hits["margin"] / cfg.min_margin,
        reasons=lambda r: _reasons(r, rules),
        explain=lambda r: _explain(r, rules),
    )


def _legs(group: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {
            "outcome": outcome,
            "bookmaker": book,
            "price": number(price),
            "net_price": number(net),
            "commission": number(commission),
            "stake_share": number(share, 4),
        }
        for outcome, book, price, net, commission, share in zip(
            group["outcome"],
            group["bookmaker"],
            group["price"],
            group["net_price"],
            group["commission"],
            group["stake_share"],
            strict=True,
        )
    ]


def _reasons(r: Mapping[str, Any], rules: Rules) -> dict[str, Any]:
    return {
        "legs": r["legs"],
        "implied_total": number(r["implied_total"]),
        "margin": number(r["margin"]),
        "threshold_margin": rules.arbitrage.min_margin,
        "opened_by": {"bookmaker": r["bookmaker"], "outcome": r["outcome"], "price": number(r["price"])},
    }


def _explain(r: Mapping[str, Any], rules: Rules) -> str:
    line = "" if pd.isna(r["line"]) else f" {r['line']:g}"
    legs = ", ".join(f"{leg['outcome']} {leg['price']:.2f} at {leg['bookmaker']}" for leg in r["legs"])
    return (
        f"arbitrage on {r['market']}{line}: {legs} imply {r['implied_total']:.1%}, "
        f"a {r['margin']:.2%} guaranteed return (threshold {rules.arbitrage.min_margin:.2%}); "
        f"opened by {r['bookmaker']} {r['outcome']}"
    )
