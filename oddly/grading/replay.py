"""The rule detectors run over the warehouse's history as they run live, all at once.

Live, each poll judges its fresh ticks against every book's latest price on the same markets. Here
every moment some book's price changed on a canonical market (a distinct tick time) becomes a
*snapshot*: each book's latest price of each outcome of that market as of that moment, the ticks
of that moment marked fresh. The snapshots of a batch of events are one frame in which each
snapshot is its own market (its key stands in for the canonical event), so one call of each
detector judges every moment of the history, vectorized, exactly as the polls would have:

- out of line, arbitrage and stale line on the snapshots (fresh rows judged, the rest context);
- value: each snapshot's soft prices against the sharp books' power-method no-vig probability
  (averaged over the sharp books quoting the complete market), as marts.fct_value_bets does;
- sharp drop on the ticks themselves (each tick carries its previous price);
- steam on the significant moves, grouped into steams as marts.fct_steam_moves groups them.

A snapshot frame is as large as the moments times the selections of each market, so callers feed
events in batches (`oddly.grading.backtest`). The best price on offer at a moment (what a bettor
following a move could take) is read from the same snapshots.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from oddly.detect.arbitrage import detect_arbitrage
from oddly.detect.detection import Detection
from oddly.detect.frames import NO_LINE, prices_frame, small_map, valid_price
from oddly.detect.out_of_line import detect_out_of_line
from oddly.detect.rules import Rules
from oddly.detect.sharp_drop import detect_sharp_drops
from oddly.detect.stale_line import detect_stale_lines
from oddly.detect.steam import detect_steam
from oddly.detect.value import detect_value

# The detector types a backtest replays (every rule detector).
REPLAYED_TYPES = ("value", "sharp_drop", "steam", "out_of_line", "arbitrage", "stale_line")
MARKET = ["canonical_event_id", "market", "period", "line_key"]
SELECTION = ["bookmaker", "source_event_id", "market", "period", "line_key", "outcome"]
# Steam grouping, mirroring dbt vars significant_move_points, steam_window_minutes, steam_min_books
# (dbt_project/dbt_project.yml); rules.yaml's steam section then filters as it does live.
SIGNIFICANT_MOVE_POINTS = 1.0
STEAM_WINDOW_MINUTES = 5
STEAM_MIN_BOOKS = 3
_SNAPSHOT_PREFIX = "snapshot:"
_NEWTON_STEPS = 30


@dataclass(frozen=True)
class Snapshots:
    """Every moment of every market of a batch of ticks: `prices` is a normalized prices frame
    (`oddly.detect.frames.prices_frame`) whose `canonical_event_id` is the snapshot key and whose
    `is_fresh` marks the ticks of that moment; `moments` maps each key to its canonical event,
    market and time."""

    prices: pd.DataFrame
    moments: pd.DataFrame

    @property
    def empty(self) -> bool:
        return self.prices.empty


def with_keys(ticks: pd.DataFrame) -> pd.DataFrame:
    out = ticks.copy()
    out["line_key"] = pd.to_numeric(out["line"], errors="coerce").astype("float64").fillna(NO_LINE)
    out["observed_at"] = pd.to_datetime(out["observed_at"], utc=True)
    return out


def snapshots(ticks: pd.DataFrame) -> Snapshots:
    """The snapshots of `ticks` (canonical_event_id, bookmaker, source_event_id, market, period,
    line, outcome, price, status, observed_at; pre-match, in time order or not)."""
    empty = Snapshots(pd.DataFrame(), pd.DataFrame(columns=["snapshot", *MARKET, "moment"]))
    if ticks.empty:
        return empty
    t = with_keys(ticks)
    t["mk"] = t.groupby(MARKET, sort=False).ngroup()
    t["sel"] = t.groupby(SELECTION, sort=False).ngroup()
    # One tick per selection and time (a later load of the same moment wins).
    t = t.drop_duplicates(["sel", "observed_at"], keep="last")
    moments = t[["mk", "observed_at"]].drop_duplicates().rename(columns={"observed_at": "moment"})
    moments = moments.sort_values(["mk", "moment"], kind="stable").reset_index(drop=True)
    moments["snapshot"] = _SNAPSHOT_PREFIX + moments.index.astype(str)
    grid = moments.merge(t[["mk", "sel"]].drop_duplicates(), on="mk").sort_values("moment", kind="stable")
    columns = ["sel", "observed_at", "bookmaker", "source_event_id", "market", "period", "line", "outcome"]
    columns += ["price", "status"]
    state = pd.merge_asof(
        grid,
        t.sort_values("observed_at", kind="stable")[columns],
        left_on="moment",
        right_on="observed_at",
        by="sel",
        direction="backward",
    ).dropna(subset=["observed_at"])
    state["is_fresh"] = state["observed_at"].eq(state["moment"])
    state = state.rename(columns={"snapshot": "canonical_event_id"})
    prices = prices_frame(state.drop(columns=["mk", "sel", "moment"]), "history snapshots")
    keys = t.drop_duplicates("mk").set_index("mk")[MARKET]
    moments = moments.join(keys, on="mk")
    return Snapshots(prices, moments[["snapshot", *MARKET, "moment"]])


def detect_history(
    ticks: pd.DataFrame, rules: Rules, types: Collection[str] = REPLAYED_TYPES
) -> tuple[list[Detection], Snapshots]:
    """Every detection the named detectors make over these ticks, with canonical event ids (the
    snapshot detectors' keys mapped back), and the snapshots (for the prices on offer)."""
    shots = snapshots(ticks)
    found: list[Detection] = []
    if not shots.empty:
        prices = shots.prices
        if "out_of_line" in types:
            found += detect_out_of_line(prices, rules)
        if "arbitrage" in types:
            found += detect_arbitrage(prices, rules)
        if "stale_line" in types:
            found += detect_stale_lines(prices, rules, None)
        if "value" in types:
            found += detect_value(value_rows(prices, rules.sharp_books), rules)
        found = _to_canonical(found, shots.moments)
    if "sharp_drop" in types and not ticks.empty:
        found += detect_sharp_drops(ticks, rules)
    if "steam" in types and not ticks.empty:
        found += detect_steam(steam_moves(ticks, rules.sharp_books), rules)
    return found, shots


def _to_canonical(found: list[Detection], moments: pd.DataFrame) -> list[Detection]:
    events = dict(zip(moments["snapshot"], moments["canonical_event_id"], strict=True))
    return [replace(d, canonical_event_id=events.get(d.canonical_event_id or "")) for d in found]


def power_fair(implied: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """The power method's no-vig probabilities: q_i^k with k solved per group (Newton's method)
    so that Σ q_i^k = 1, as int_no_vig_by_book solves it in SQL."""
    k = np.ones(groups.max() + 1 if groups.size else 0)
    logs = np.log(implied)
    for _ in range(_NEWTON_STEPS):
        powered = implied ** k[groups]
        excess = np.bincount(groups, weights=powered, minlength=k.size) - 1.0
        slope = np.bincount(groups, weights=powered * logs, minlength=k.size)
        k = k - np.divide(excess, slope, out=np.zeros_like(k), where=slope != 0)
    return implied ** k[groups]


def value_rows(prices: pd.DataFrame, sharp_books: Collection[str]) -> pd.DataFrame:
    """marts.fct_value_bets' input per snapshot: each soft book's open price with the sharp fair
    probability of its outcome (power method per complete sharp market, averaged over the sharp
    books) and the snapshot's moment as `observed_at` (the value exists from then)."""
    if prices.empty:
        return pd.DataFrame()
    sharp = prices.loc[prices["is_open"] & prices["in_set"] & prices["bookmaker"].isin(sharp_books)]
    quoted = sharp.groupby("book_market_id", sort=False)["outcome_id"].transform("size")
    sharp = sharp.loc[quoted.eq(sharp["set_size"])]
    if sharp.empty:
        return pd.DataFrame()
    codes = pd.factorize(sharp["book_market_id"])[0]
    fair = pd.Series(power_fair(sharp["implied"].to_numpy(), codes), index=sharp.index)
    by_outcome = fair.groupby(sharp["outcome_id"]).mean().rename("fair_probability")
    soft = prices.loc[prices["is_open"] & ~prices["bookmaker"].isin(sharp_books)]
    rows = soft.join(by_outcome, on="outcome_id", how="inner")
    # the snapshot's moment: its newest tick, whichever book's (a sharp move makes value too)
    moments = prices.groupby("market_id", sort=False)["observed_at"].max().rename("moment")
    return rows.join(moments, on="market_id").assign(observed_at=lambda f: f["moment"]).drop(columns="moment")


def best_prices(shots: Snapshots, commission: dict[str, float]) -> pd.DataFrame:
    """The best price on offer for each outcome of each snapshot, after an exchange's commission:
    canonical_event_id, market, period, line_key, moment, outcome, bookmaker, price, commission,
    books (how many open books quoted it)."""
    columns = [*MARKET, "moment", "outcome", "bookmaker", "price", "commission", "books"]
    if shots.empty:
        return pd.DataFrame(columns=columns)
    rows = shots.prices.loc[shots.prices["is_open"]]
    rate = small_map(rows["bookmaker"], commission, 0.0)
    rows = rows.assign(commission=rate, net=1.0 + (rows["price"] - 1.0) * (1.0 - rate))
    books = rows.groupby(["canonical_event_id", "outcome"], sort=False)["bookmaker"].transform("nunique")
    best = (
        rows.assign(books=books)
        .sort_values(["net", "bookmaker"], ascending=[False, True], kind="stable")
        .drop_duplicates(["canonical_event_id", "outcome"], keep="first")
    )
    best = best[["canonical_event_id", "outcome", "bookmaker", "price", "commission", "books"]]
    joined = best.rename(columns={"canonical_event_id": "snapshot"}).merge(shots.moments, on="snapshot")
    return joined[columns].reset_index(drop=True)


def steam_moves(ticks: pd.DataFrame, sharp_books: Collection[str]) -> pd.DataFrame:
    """marts.fct_steam_moves from ticks: every book's first significant same-way move on one
    canonical outcome within the window after a first mover; starts with at least
    STEAM_MIN_BOOKS books, less those within a window after an earlier qualifying start."""
    columns = [
        "canonical_event_id",
        "market",
        "period",
        "line",
        "outcome",
        "direction",
        "started_at",
        "last_moved_at",
        "first_bookmaker",
        "first_mover_is_sharp",
        "books",
        "bookmakers",
        "mean_probability_points",
    ]
    t = with_keys(ticks)
    price = t["price"].astype("float64")
    previous = pd.to_numeric(t["previous_price"], errors="coerce").astype("float64")
    points = 100.0 * (1.0 / price - 1.0 / previous)
    significant = (
        t["status"].eq("open")
        & valid_price(price)
        & valid_price(previous)
        & points.abs().ge(SIGNIFICANT_MOVE_POINTS)
        & t["canonical_event_id"].notna()
    )
    moves = t.loc[significant].assign(
        probability_points=points[significant],
        direction=np.where(price[significant] < previous[significant], "shortening", "drifting"),
    )
    if moves.empty:
        return pd.DataFrame(columns=columns)
    window = pd.Timedelta(minutes=STEAM_WINDOW_MINUTES)
    group = [*MARKET, "outcome", "direction"]
    moves["group"] = moves.groupby(group, sort=False).ngroup()
    moves["bucket"] = moves["observed_at"].astype("int64") // window.value
    moves = moves.reset_index(drop=True)
    moves["move"] = moves.index
    anchors = pd.concat([moves.assign(follower_bucket=moves["bucket"] + shift) for shift in (0, 1)])
    pairs = anchors[["group", "move", "observed_at", "bookmaker", "follower_bucket"]].merge(
        moves[["group", "bucket", "observed_at", "bookmaker", "probability_points"]],
        left_on=["group", "follower_bucket"],
        right_on=["group", "bucket"],
        suffixes=("", "_f"),
    )
    later = (pairs["observed_at_f"] > pairs["observed_at"]) | (
        pairs["observed_at_f"].eq(pairs["observed_at"]) & (pairs["bookmaker_f"] >= pairs["bookmaker"])
    )
    pairs = pairs.loc[later & (pairs["observed_at_f"] <= pairs["observed_at"] + window)]
    firsts = pairs.sort_values(["move", "bookmaker_f", "observed_at_f"], kind="stable").drop_duplicates(
        ["move", "bookmaker_f"], keep="first"
    )
    ordered = firsts.sort_values(["move", "observed_at_f", "bookmaker_f"], kind="stable")
    windows = ordered.groupby("move", sort=False).agg(
        books=("bookmaker_f", "size"),
        last_moved_at=("observed_at_f", "max"),
        bookmakers=("bookmaker_f", ",".join),
        mean_probability_points=("probability_points", "mean"),
    )
    qualifying = moves.join(windows, on="move", how="inner")
    qualifying = qualifying.loc[qualifying["books"] >= STEAM_MIN_BOOKS]
    qualifying = qualifying.sort_values(["group", "observed_at", "bookmaker"], kind="stable")
    before = qualifying.groupby("group", sort=False)["observed_at"].shift(1)
    steams = qualifying.loc[before.isna() | (before < qualifying["observed_at"] - window)]
    out = steams.rename(columns={"observed_at": "started_at", "bookmaker": "first_bookmaker"})
    out["first_mover_is_sharp"] = out["first_bookmaker"].isin(sharp_books)
    return out[columns].reset_index(drop=True)
