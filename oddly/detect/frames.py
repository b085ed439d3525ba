"""What the detectors read, normalized, and the arithmetic several of them share (no-vig
probabilities per book market, each book against the others), all column-wise in pandas.

A *prices frame* holds the current price of selections at books: fresh ticks plus the latest
prices around them, or rows of `marts.fct_prices_current`. A *ticks frame* also carries
`previous_price`. Input may be a DataFrame, an Arrow table or a list of dicts. Rows whose price is
not a decimal odd (missing, NaN, infinite, ≤ 1, absurd) are left out: a detector never fires on
them, and they never enter another book's consensus.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa

from oddly.detect.detection import DetectionInputError
from oddly.model import MAX_PRICE, MIN_PRICE_EXCLUSIVE

Frame: TypeAlias = "pd.DataFrame | pa.Table | Iterable[Mapping[str, Any]]"

# The complete, mutually exclusive outcome set of each market (as the marts define it, see
# dbt_project/macros/market_sets.sql); double chance and raw markets have none.
COMPLETE_OUTCOMES: dict[str, tuple[str, ...]] = {
    "1x2": ("home", "draw", "away"),
    "total": ("over", "under"),
    "asian_total": ("over", "under"),
    "team_total_home": ("over", "under"),
    "team_total_away": ("over", "under"),
    "handicap": ("home", "away"),
    "asian_handicap": ("home", "away"),
    "moneyline": ("home", "away"),
    "btts": ("yes", "no"),
}
_SET_SIZE = {market: len(outcomes) for market, outcomes in COMPLETE_OUTCOMES.items()}

# Stands in for a missing line in grouping keys (pandas drops NaN keys by default).
NO_LINE = -1e9
# One market across books: prices_frame numbers them (`market_id`), and the outcomes of each
# (`outcome_id`) and each book's market (`book_market_id`).
MARKET_KEY = ["event_key", "market", "period", "line_key"]
_NORMALIZED = "oddly.detect.prices_frame"
# Measures equal to a threshold within float rounding count as at the threshold.
TOLERANCE = 1e-9

PRICE_COLUMNS = ("bookmaker", "market", "period", "line", "outcome", "price")


def to_frame(data: Frame) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pa.Table):
        return data.to_pandas()
    return pd.DataFrame(list(data))


def require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        have = ", ".join(map(str, frame.columns)) or "none"
        raise DetectionInputError(f"{what}: missing column(s) {', '.join(missing)} (it has: {have})")


def require_event(frame: pd.DataFrame, what: str) -> None:
    if "canonical_event_id" not in frame.columns and "source_event_id" not in frame.columns:
        raise DetectionInputError(f"{what}: needs canonical_event_id or source_event_id to know the event")


def valid_price(price: pd.Series) -> pd.Series:
    """True where a value is a decimal odd the platform accepts."""
    values = pd.to_numeric(price, errors="coerce").astype("float64")
    return values.gt(MIN_PRICE_EXCLUSIVE) & values.le(MAX_PRICE) & np.isfinite(values)


def utc_times(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True)


def prices_frame(data: Frame, what: str = "prices") -> pd.DataFrame:
    """A prices frame, normalized: `observed_at` (from `last_changed_at`, the mart's name, when
    absent), `is_open`, `event_key` (the canonical event; a book's own event while unmatched),
    `line_key`, `implied`, whether the outcome is part of its market's complete set (`in_set`,
    `set_size`), and integer ids of its market across books (`market_id`), of the outcome across
    books (`outcome_id`) and of the market at the book (`book_market_id`), so the detectors group
    on integers. One row per selection (the newest), kept only when its price is valid. A frame
    normalized already is returned as it is; an empty input gives an empty frame without those
    columns (detectors return nothing for it)."""
    if isinstance(data, pd.DataFrame) and data.attrs.get(_NORMALIZED):
        return data
    frame = to_frame(data)
    if frame.empty:
        return frame.iloc[0:0]
    if "observed_at" not in frame.columns and "last_changed_at" in frame.columns:
        frame = frame.rename(columns={"last_changed_at": "observed_at"})
    require(frame, [*PRICE_COLUMNS, "observed_at"], what)
    require_event(frame, what)
    out = frame.copy()
    out["line"] = pd.to_numeric(out["line"], errors="coerce").astype("float64")
    out["line_key"] = out["line"].fillna(NO_LINE)
    out["observed_at"] = utc_times(out["observed_at"])
    out["event_key"] = _event_key(out)
    out["market_id"] = out.groupby(MARKET_KEY, sort=False, dropna=False).ngroup()
    out["outcome_id"] = out.groupby(["market_id", "outcome"], sort=False, dropna=False).ngroup()
    out["book_market_id"] = out.groupby(["bookmaker", "market_id"], sort=False, dropna=False).ngroup()
    # The newest row of a selection stands, even when it is the bad one.
    out = out.sort_values("observed_at", kind="stable").drop_duplicates(
        ["book_market_id", "outcome_id"], keep="last"
    )
    out = out.loc[valid_price(out["price"])]
    out["price"] = out["price"].astype("float64")
    out["is_open"] = _is_open(out)
    out["implied"] = 1.0 / out["price"]
    out["set_size"] = small_map(out["market"], _SET_SIZE, np.nan)
    out["in_set"] = _in_complete_set(out)
    out = out.reset_index(drop=True)
    out.attrs[_NORMALIZED] = True
    return out


def small_map(values: pd.Series, mapping: Mapping[str, float], default: float) -> pd.Series:
    """`values.map(mapping)` for a column of few distinct values (books, markets): looked up once
    per distinct value, then spread by integer codes."""
    codes, uniques = pd.factorize(values)
    table = np.array([mapping.get(u, default) for u in uniques] + [default], dtype="float64")
    return pd.Series(table[codes], index=values.index)  # code -1 (missing) takes the default


def _is_open(frame: pd.DataFrame) -> pd.Series:
    if "status" in frame.columns:
        return frame["status"].eq("open")
    if "is_suspended" in frame.columns:
        return ~frame["is_suspended"].fillna(False).astype(bool)
    return pd.Series(True, index=frame.index)


def _event_key(frame: pd.DataFrame) -> pd.Series:
    own = (
        "unmatched:" + frame["bookmaker"].astype(str) + ":" + frame["source_event_id"].astype(str)
        if "source_event_id" in frame.columns
        else pd.Series(pd.NA, index=frame.index, dtype="object")
    )
    if "canonical_event_id" not in frame.columns:
        return own
    return frame["canonical_event_id"].astype("object").where(frame["canonical_event_id"].notna(), own)


def _in_complete_set(frame: pd.DataFrame) -> pd.Series:
    """True where (market, outcome) belongs to the market's complete outcome set: decided once
    per distinct pair, spread by integer codes."""
    markets, market_names = pd.factorize(frame["market"])
    outcomes, outcome_names = pd.factorize(frame["outcome"])
    # One extra row and column (all False) for missing values, whose code is -1.
    member = np.zeros((len(market_names) + 1, len(outcome_names) + 1), dtype=bool)
    for i, market in enumerate(market_names):
        for j, outcome in enumerate(outcome_names):
            member[i, j] = outcome in COMPLETE_OUTCOMES.get(market, ())
    return pd.Series(member[markets, outcomes], index=frame.index)


def no_vig(prices: pd.DataFrame) -> pd.DataFrame:
    """The open prices of complete book markets (every outcome of the set quoted and open), with
    each book's multiplicative no-vig probability `fair_probability` and its `overround`."""
    rows = prices.loc[prices["is_open"] & prices["in_set"]].copy()
    if rows.empty:
        return rows.assign(fair_probability=pd.Series(dtype="float64"), overround=pd.Series(dtype="float64"))
    by_market = rows.groupby("book_market_id", sort=False)["implied"]
    quoted = by_market.transform("size")
    total = by_market.transform("sum")
    rows["fair_probability"] = rows["implied"] / total
    rows["overround"] = total - 1.0
    return rows.loc[quoted.eq(rows["set_size"])]


def against_others(fair: pd.DataFrame) -> pd.DataFrame:
    """Each book's no-vig probability against the mean of the other books' on the same outcome
    (leave-one-out): `other_books`, `consensus_probability`, `probability_points`, `z_score`
    (where two or more others disagree among themselves at all)."""
    out = fair.copy()
    p = out["fair_probability"]
    by_outcome = out.assign(_square=p * p).groupby("outcome_id", sort=False)
    books = by_outcome["fair_probability"].transform("size")
    total = by_outcome["fair_probability"].transform("sum")
    squares = by_outcome["_square"].transform("sum")
    others = books - 1
    divisor = others.where(others > 0)
    consensus = (total - p) / divisor
    variance = (squares - p * p) / divisor - consensus * consensus
    spread = np.sqrt(variance.where((others >= 2) & (variance > 1e-12)))
    out["other_books"] = others
    out["consensus_probability"] = consensus
    out["probability_points"] = 100.0 * (p - consensus)
    out["z_score"] = (p - consensus) / spread
    return out


def at_least(measure: pd.Series, threshold: float | pd.Series) -> pd.Series:
    """measure ≥ threshold, counting a float-rounding hair below as at it."""
    return measure.ge(threshold - TOLERANCE)
