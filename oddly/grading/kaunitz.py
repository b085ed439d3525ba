"""The reference strategy of Kaunitz, Zhong & Kreiner (2017), "Beating the bookies with their own
numbers — and how the online sports betting market is rigged" (arXiv:1710.02824).

The rule, as the authors' own simulation code implements it (BeatTheBookie,
`src/strategies/beatTheBookie.m`): for each match, with avg_i the average of the books' odds on
outcome i and max_i the best odds on offer,

    consensus probability  p_i = 1 / avg_i
    expected margin        e_i = (p_i - α) · max_i - 1          (α = 0.05 in the paper)

and outcome i counts only where more than three books quote it. When some e_i > 0 — the best odds
beat the consensus by the margin α, i.e. 1 / max_i < 1 / avg_i - α — the strategy backs the single
outcome with the largest e_i, one unit at max_i. The paper applies it to 1X2 (home, draw, away).

Here `avg_i` is football-data's (or oddsportal's) market average where the warehouse holds one
(bookmakers `market_avg`, `oddsportal_avg`), else the mean of the books the warehouse holds;
`max_i` is the best price at a book the warehouse names (never football-data's `market_max`, a
price over books one may not hold), after an exchange's commission. The prices are each book's
latest before kick-off minus `lead_minutes` (60: the bet is placed an hour before kick-off; 0:
at the close, as in the paper's historical simulation).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from oddly.detect.frames import COMPLETE_OUTCOMES, NO_LINE, small_map, valid_price
from oddly.grading.grade import bet_frame, empty_bets
from oddly.model import AGGREGATE_BOOKMAKERS

TYPE = "kaunitz"
AVERAGE_BOOKS = ("market_avg", "oddsportal_avg")
GROUP = ["canonical_event_id", "market", "period", "line_key"]


@dataclass(frozen=True)
class KaunitzParams:
    alpha: float = 0.05
    # The authors' code counts an outcome only where more than three books quote it.
    min_books: int = 4
    lead_minutes: float = 60.0
    markets: tuple[str, ...] = ("1x2",)

    def __post_init__(self) -> None:
        if not 0 <= self.alpha < 1:
            raise ValueError(f"kaunitz margin α must be in [0, 1); got {self.alpha}")
        if self.min_books < 1:
            raise ValueError(f"kaunitz needs at least one book per outcome; got {self.min_books}")
        unknown = [m for m in self.markets if m not in COMPLETE_OUTCOMES]
        if unknown:
            raise ValueError(f"kaunitz markets {unknown} have no complete outcome set")


def state_before(ticks: pd.DataFrame, lead_minutes: float) -> pd.DataFrame:
    """Each selection's latest tick at or before its event's kick-off less `lead_minutes`."""
    if ticks.empty:
        return ticks
    cutoff = pd.to_datetime(ticks["kick_off"], utc=True) - pd.Timedelta(minutes=lead_minutes)
    rows = ticks.loc[pd.to_datetime(ticks["observed_at"], utc=True) <= cutoff].assign(
        line_key=lambda f: pd.to_numeric(f["line"], errors="coerce").astype("float64").fillna(NO_LINE)
    )
    key = [*GROUP, "bookmaker", "outcome"]
    return rows.sort_values("observed_at", kind="stable").drop_duplicates(key, keep="last")


def kaunitz_bets(state: pd.DataFrame, params: KaunitzParams, commission: Mapping[str, float]) -> pd.DataFrame:
    """The strategy's bets (source "strategy", type "kaunitz") on a state of prices: one latest
    price per book × selection with canonical_event_id, kick_off, bookmaker, market, period, line,
    outcome, price, status, observed_at."""
    if state.empty:
        return empty_bets()
    members = pd.DataFrame(
        [(m, o) for m in params.markets for o in COMPLETE_OUTCOMES[m]], columns=["market", "outcome"]
    )
    rows = state.loc[state["status"].eq("open") & valid_price(state["price"])].merge(
        members, on=["market", "outcome"]
    )
    if "line_key" not in rows.columns:
        rows["line_key"] = pd.to_numeric(rows["line"], errors="coerce").astype("float64").fillna(NO_LINE)
    rows["price"] = rows["price"].astype("float64")
    books = rows.loc[~rows["bookmaker"].isin(AGGREGATE_BOOKMAKERS)].copy()
    rate = small_map(books["bookmaker"], commission, 0.0)
    books = books.assign(commission=rate, net=1.0 + (books["price"] - 1.0) * (1.0 - rate))
    key = [*GROUP, "outcome"]
    per_outcome = books.groupby(key, sort=False).agg(
        books=("bookmaker", "nunique"), book_mean=("price", "mean")
    )
    best = books.sort_values(["net", "bookmaker"], ascending=[False, True], kind="stable").drop_duplicates(
        key, keep="first"
    )
    best = best.set_index(key)[["bookmaker", "price", "commission", "net", "observed_at", "kick_off"]]
    averaged = (
        rows.loc[rows["bookmaker"].isin(AVERAGE_BOOKS)]
        .sort_values("bookmaker", kind="stable")
        .drop_duplicates(key, keep="first")
        .set_index(key)[["price", "bookmaker"]]
        .rename(columns={"price": "aggregate_avg", "bookmaker": "average_of"})
    )
    table = per_outcome.join(best).join(averaged)
    table["avg"] = table["aggregate_avg"].fillna(table["book_mean"])
    table["average_of"] = table["average_of"].fillna("books held")
    table["edge"] = (1.0 / table["avg"] - params.alpha) * table["net"] - 1.0
    table = table.reset_index()
    # Every outcome of the market needs an average and a best price, as in the paper.
    set_size = table["market"].map({m: len(o) for m, o in COMPLETE_OUTCOMES.items()})
    complete = table.groupby(GROUP, sort=False)["outcome"].transform("size").eq(set_size)
    eligible = table.loc[complete & table["books"].ge(params.min_books) & table["edge"].notna()]
    chosen = eligible.sort_values(
        ["edge", "outcome"], ascending=[False, True], kind="stable"
    ).drop_duplicates(GROUP, keep="first")
    chosen = chosen.loc[chosen["edge"] > 0]
    if chosen.empty:
        return empty_bets()
    line = chosen["line_key"].where(chosen["line_key"] != NO_LINE)
    return bet_frame(
        pd.DataFrame(
            {
                "source": "strategy",
                "type": TYPE,
                "signal_key": TYPE
                + "|"
                + chosen["canonical_event_id"].astype(str)
                + "|"
                + chosen["market"]
                + "|"
                + chosen["period"]
                + "|"
                + line.map(lambda v: "" if pd.isna(v) else f"{v:g}")
                + "|"
                + chosen["outcome"],
                "canonical_event_id": chosen["canonical_event_id"],
                "kick_off": chosen["kick_off"],
                "market": chosen["market"],
                "period": chosen["period"],
                "line": line,
                "outcome": chosen["outcome"],
                "bookmaker": chosen["bookmaker"],
                "price": chosen["price"],
                "commission": chosen["commission"],
                "stake": 1.0,
                # the bet is placed when the strategy looks: kick-off less the lead
                "taken_at": pd.to_datetime(chosen["kick_off"], utc=True)
                - pd.Timedelta(minutes=params.lead_minutes),
                "strength": np.round(chosen["edge"].to_numpy(), 6),
                "note": "average "
                + chosen["avg"].map("{:.3f}".format)
                + " ("
                + chosen["average_of"]
                + "), best of "
                + chosen["books"].astype(int).astype(str)
                + " books, expected margin "
                + chosen["edge"].map("{:+.1%}".format),
            }
        )
    )
