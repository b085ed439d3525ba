"""The closing line: per canonical event × market × period × line, the sharp book's last open price
of every outcome before kick-off, made fair by the multiplicative method over the market's complete
outcome set (`oddly.detect.frames.COMPLETE_OUTCOMES`, the marts' definition).

The first sharp book in preference order with a complete closing set wins (rules `sharp_books`:
Pinnacle, then Betfair Exchange); the books are never mixed within one market. Double chance has
no set of its own: its fair close is the sum of the two 1X2 outcomes it covers, from the 1X2 close
of the same event and period. Change-only ticks mean the last tick before kick-off may be days
old when the price never changed; `closing_at` says when it was set. In-play ticks never count.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from oddly.detect.frames import COMPLETE_OUTCOMES, NO_LINE, valid_price

CLOSE_KEY = ["canonical_event_id", "market", "period", "line_key"]
CLOSING_COLUMNS = [
    *CLOSE_KEY,
    "outcome",
    "closing_bookmaker",
    "closing_price",
    "closing_at",
    "closing_overround",
    "fair_probability",
]
# Double chance outcomes as sums of 1X2 outcomes.
DOUBLE_CHANCE = {"home_draw": ("home", "draw"), "home_away": ("home", "away"), "draw_away": ("draw", "away")}
_SET_SIZE = {market: len(outcomes) for market, outcomes in COMPLETE_OUTCOMES.items()}


def line_key(line: pd.Series) -> pd.Series:
    """A line as a join key: NaN (no line) becomes NO_LINE, since NaN never equals itself."""
    return pd.to_numeric(line, errors="coerce").astype("float64").fillna(NO_LINE)


def closing_lines(ticks: pd.DataFrame, sharp_books: Sequence[str]) -> pd.DataFrame:
    """CLOSING_COLUMNS from ticks carrying canonical_event_id, kick_off, bookmaker, market, period,
    line, outcome, price, status, observed_at (is_live optional): one row per outcome of each
    closed market, plus double chance derived from 1X2."""
    books = list(dict.fromkeys(sharp_books))
    if ticks.empty or not books:
        return pd.DataFrame(columns=CLOSING_COLUMNS)
    rows = ticks.loc[
        ticks["bookmaker"].isin(books)
        & ticks["status"].eq("open")
        & valid_price(ticks["price"])
        & (pd.to_datetime(ticks["observed_at"], utc=True) <= pd.to_datetime(ticks["kick_off"], utc=True))
    ]
    if "is_live" in rows.columns:
        rows = rows.loc[~rows["is_live"].fillna(False).astype(bool)]
    rows = rows.assign(
        line_key=line_key(rows["line"]),
        observed_at=pd.to_datetime(rows["observed_at"], utc=True),
        price=rows["price"].astype("float64"),
    )
    in_set = [(market, outcome) for market, outcomes in COMPLETE_OUTCOMES.items() for outcome in outcomes]
    members = pd.DataFrame(in_set, columns=["market", "outcome"])
    rows = rows.merge(members, on=["market", "outcome"], how="inner")
    last = rows.sort_values("observed_at", kind="stable").drop_duplicates(
        [*CLOSE_KEY, "bookmaker", "outcome"], keep="last"
    )
    book_market = [*CLOSE_KEY, "bookmaker"]
    by_market = last.groupby(book_market, sort=False)
    implied = 1.0 / last["price"]
    total = implied.groupby([last[c] for c in book_market], sort=False).transform("sum")
    quoted = by_market["outcome"].transform("size")
    last = last.assign(
        fair_probability=implied / total,
        closing_overround=total - 1.0,
        _complete=quoted.eq(last["market"].map(_SET_SIZE)),
        _preference=last["bookmaker"].map({book: i for i, book in enumerate(books)}),
    )
    complete = last.loc[last["_complete"]]
    first_book = complete.groupby(CLOSE_KEY, sort=False)["_preference"].transform("min")
    chosen = complete.loc[complete["_preference"].eq(first_book)].rename(
        columns={"bookmaker": "closing_bookmaker", "price": "closing_price", "observed_at": "closing_at"}
    )
    closes = chosen[CLOSING_COLUMNS].reset_index(drop=True)
    return pd.concat([closes, _double_chance(closes)], ignore_index=True)


def _double_chance(closes: pd.DataFrame) -> pd.DataFrame:
    one_x_two = closes.loc[closes["market"].eq("1x2")]
    if one_x_two.empty:
        return pd.DataFrame(columns=CLOSING_COLUMNS)
    wide = one_x_two.pivot_table(
        index=["canonical_event_id", "period", "closing_bookmaker"],
        columns="outcome",
        values="fair_probability",
        aggfunc="first",
    )
    meta = one_x_two.groupby(["canonical_event_id", "period", "closing_bookmaker"]).agg(
        closing_at=("closing_at", "max"), closing_overround=("closing_overround", "first")
    )
    parts = []
    for outcome, (first, second) in DOUBLE_CHANCE.items():
        part = (wide[first] + wide[second]).rename("fair_probability").to_frame().join(meta)
        parts.append(part.reset_index().assign(outcome=outcome))
    derived = pd.concat(parts, ignore_index=True)
    return derived.assign(market="double_chance", line_key=NO_LINE, closing_price=np.nan)[CLOSING_COLUMNS]


def attach_close(bets: pd.DataFrame, closes: pd.DataFrame) -> pd.DataFrame:
    """The bets with their outcome's close (closing_bookmaker, closing_price, closing_at,
    closing_overround, fair_probability; NaN where no close exists), rows in the same order."""
    keys = [*CLOSE_KEY, "outcome"]
    left = bets.assign(line_key=line_key(bets["line"]))
    right = closes.reindex(columns=CLOSING_COLUMNS).drop_duplicates(keys)
    joined = left.merge(right, on=keys, how="left", validate="many_to_one")
    joined.index = bets.index
    return joined.drop(columns="line_key")
