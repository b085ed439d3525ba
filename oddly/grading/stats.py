"""What a run of graded bets adds up to, per source, type and horizon: how many, closing-line value
(mean and share beating the close), return on investment at level stakes, each with a bootstrap
95 % confidence interval.

The unit is the signal (one unit staked on it; an arbitrage spreads its unit over its legs).
Signals about the same match are not independent (five books' value on one outcome, two alert
types on one move), so the bootstrap resamples matches, not bets: each of `resamples` draws picks
as many matches as there are, with replacement, and takes the ratio of their summed profit (or
CLV) to their summed stakes. The interval is the 2.5th and 97.5th percentile of those draws. It
is seeded, so the same bets always give the same interval, and vectorized: the draws are integer
index matrices, a few thousand rows at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 20171009  # arXiv 1710.02824, the reference strategy's paper, posted 9 Oct 2017
LEVEL = 0.95
# Index matrices are drawn this many cells at a time (about 16 MB of int64).
_CELLS_PER_CHUNK = 2_000_000

# A signal taken in the last hour before kick-off is judged against a close minutes away (and a
# value signal found against the sharp book then is that close, nearly): each type is summed up
# over all its signals and over the early and late ones apart.
HORIZONS = ("all", "early", "late")
HORIZON_NAMES = {"all": "all", "early": "1 h or more before kick-off", "late": "in the last hour"}
LATE = pd.Timedelta(hours=1)

SUMMARY_COLUMNS = [
    "source",
    "type",
    "horizon",
    "signals",
    "with_close",
    "mean_clv",
    "clv_ci_low",
    "clv_ci_high",
    "beat_close_share",
    "settled",
    "profit",
    "roi",
    "roi_ci_low",
    "roi_ci_high",
    "mean_price",
    "matches",
    "resamples",
]


def clv(effective_price: pd.Series, fair_probability: pd.Series) -> pd.Series:
    """Closing-line value of a price taken: price x the close's fair probability - 1 (what the bet
    was worth in expectation if the sharp close is the truth); NaN without a close."""
    return effective_price * fair_probability - 1.0


def net_price(price: pd.Series, commission: pd.Series) -> pd.Series:
    """What a price pays after an exchange's commission on net winnings: 1 + (price - 1)(1 - c)."""
    return 1.0 + (price - 1.0) * (1.0 - commission.fillna(0.0))


@dataclass(frozen=True)
class Interval:
    point: float
    low: float
    high: float
    resamples: int


def bootstrap_ratio(
    values: np.ndarray | pd.Series,
    weights: np.ndarray | pd.Series | None = None,
    clusters: np.ndarray | pd.Series | None = None,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    level: float = LEVEL,
) -> Interval:
    """Σ weights x values / Σ weights (the weighted mean; a plain mean without weights) with a
    percentile bootstrap interval, resampling whole clusters (rows alone without `clusters`).
    NaN values are left out. An empty input gives NaN everywhere. The result does not depend on the
    order of the rows."""
    x = np.asarray(values, dtype="float64")
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype="float64")
    keep = ~np.isnan(x) & ~np.isnan(w)
    x, w = x[keep], w[keep]
    if x.size == 0 or w.sum() == 0:
        return Interval(float("nan"), float("nan"), float("nan"), resamples)
    # Codes in sorted order, so the same bets in another order draw the same resamples.
    if clusters is None:
        order = np.lexsort((w, x))
        x, w, codes = x[order], w[order], np.arange(x.size)
    else:
        codes = pd.factorize(np.asarray(clusters)[keep], sort=True)[0]
    sums = np.bincount(codes, weights=w * x)
    totals = np.bincount(codes, weights=w)
    point = float(sums.sum() / totals.sum())
    groups = sums.size
    rng = np.random.default_rng(seed)
    estimates = np.empty(resamples)
    chunk = max(1, _CELLS_PER_CHUNK // groups)
    for start in range(0, resamples, chunk):
        rows = min(chunk, resamples - start)
        drawn = rng.integers(0, groups, size=(rows, groups))
        estimates[start : start + rows] = sums[drawn].sum(axis=1) / totals[drawn].sum(axis=1)
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.nanpercentile(estimates, [tail, 100.0 - tail])
    return Interval(point, float(low), float(high), resamples)


def per_signal(bets: pd.DataFrame) -> pd.DataFrame:
    """One row per signal from its legs: stake, profit (NaN unless every leg is settled), CLV
    (stake-weighted over the legs, NaN unless every leg has a close), the match it is about, the
    stake-weighted price and its horizon (early: taken 1 h or more before kick-off, else late)."""
    keys = ["source", "type", "signal_key"]
    legs = bets.assign(
        _stake_clv=bets["stake"] * bets["clv"],
        _stake_price=bets["stake"] * bets["effective_price"],
        _no_close=bets["clv"].isna(),
        _unsettled=bets["profit"].isna(),
    )
    grouped = legs.groupby(keys, sort=False, dropna=False)
    out = grouped.agg(
        canonical_event_id=("canonical_event_id", "first"),
        taken_at=("taken_at", "min"),
        kick_off=("kick_off", "first"),
        stake=("stake", "sum"),
        profit=("profit", "sum"),
        stake_clv=("_stake_clv", "sum"),
        stake_price=("_stake_price", "sum"),
        no_close=("_no_close", "any"),
        unsettled=("_unsettled", "any"),
    ).reset_index()
    out["clv"] = (out["stake_clv"] / out["stake"]).where(~out["no_close"])
    out["profit"] = out["profit"].where(~out["unsettled"])
    out["price"] = out["stake_price"] / out["stake"]
    lead = pd.to_datetime(out["kick_off"], utc=True) - pd.to_datetime(out["taken_at"], utc=True)
    out["horizon"] = np.where(lead >= LATE, "early", "late")
    return out[[*keys, "canonical_event_id", "horizon", "stake", "price", "clv", "profit"]]


def summarize(
    bets: pd.DataFrame, *, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
) -> pd.DataFrame:
    """SUMMARY_COLUMNS of graded bets (`grade` output): one row per source, type and horizon ("all",
    and "early" / "late" where the type has such signals)."""
    if bets.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    signals = per_signal(bets)
    rows = []
    for (source, kind), group in signals.groupby(["source", "type"], sort=True):
        rows.append(_summary_row(group, source, kind, "all", resamples, seed))
        for horizon in HORIZONS[1:]:
            part = group.loc[group["horizon"] == horizon]
            if len(part):
                rows.append(_summary_row(part, source, kind, horizon, resamples, seed))
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def _summary_row(
    group: pd.DataFrame, source: str, kind: str, horizon: str, resamples: int, seed: int
) -> dict[str, object]:
    closed = group.loc[group["clv"].notna()]
    settled = group.loc[group["profit"].notna()]
    clv_ci = bootstrap_ratio(
        closed["clv"], closed["stake"], closed["canonical_event_id"], resamples=resamples, seed=seed
    )
    roi_ci = bootstrap_ratio(
        settled["profit"] / settled["stake"],
        settled["stake"],
        settled["canonical_event_id"],
        resamples=resamples,
        seed=seed,
    )
    return {
        "source": source,
        "type": kind,
        "horizon": horizon,
        "signals": len(group),
        "with_close": len(closed),
        "mean_clv": clv_ci.point,
        "clv_ci_low": clv_ci.low,
        "clv_ci_high": clv_ci.high,
        "beat_close_share": float((closed["clv"] > 0).mean()) if len(closed) else float("nan"),
        "settled": len(settled),
        "profit": float(settled["profit"].sum()),
        "roi": roi_ci.point,
        "roi_ci_low": roi_ci.low,
        "roi_ci_high": roi_ci.high,
        "mean_price": float(group["price"].mean()),
        "matches": int(group["canonical_event_id"].nunique()),
        "resamples": resamples,
    }
