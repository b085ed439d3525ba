"""Model features of every (observation time, book, selection), computed in DuckDB.

Input is a panel of what each book showed at each observation (one feed cycle): the canonical
price row's `observed_at, bookmaker, event_id, market, line, outcome, price, status, is_live,
starts_at`, where `event_id` is the canonical event (the same match at every book). The
definitions follow the marts — implied-probability points as in `fct_line_movements`,
leave-one-out consensus and z-score as in `fct_divergence`, lag behind the sharp book and margin
as in `fct_bookmaker_quality` — so a model sees in training what the marts show live.
"""

from __future__ import annotations

from collections.abc import Collection

import duckdb
import pandas as pd

# Bumped whenever a definition here or a data set column changes, so cached sets are rebuilt.
FEATURE_VERSION = "3"

NUMERIC_FEATURES: tuple[str, ...] = (
    "move_pp",  # implied probability now minus 5 minutes ago, in points
    "move_pp_cycle",  # the same since the previous observation
    "velocity_pp_per_min",  # points per minute over the last minute
    "books_moved",  # books whose price of this selection moved ≥ MOVE_POINTS in 5 minutes
    "sharp_moved_first",  # the sharp book moved it in 5 minutes, no later than this book
    "sharp_move_pp",  # the sharp book's 5-minute move of this selection
    "move_vs_sharp_pp",  # this book's move minus the sharp book's
    "z_score",  # fair probability against the other books' (leave-one-out)
    "divergence_pp",  # fair probability minus the other books' mean, in points
    "edge",  # price × the other books' fair probability − 1
    "edge_vs_sharp",  # price × the sharp book's fair probability − 1 (none for the sharp book)
    "minutes_to_kick_off",  # negative once the match is live
    "book_lag_seconds",  # the book's median lag behind the sharp book (per market)
    "book_margin",  # the book's mean overround (per market)
    "overround",  # this market's overround at this book now
    "arb_margin",  # 1 − Σ best implied probability over the market's outcomes (> 0: arbitrage)
    "is_best_price",  # this book offers the best price of the selection
    "minutes_since_change",  # since this book last changed this selection
    "suspended",
    "is_live",
    "is_sharp",
)
CATEGORICAL_FEATURES: tuple[str, ...] = ("market",)
FEATURES: tuple[str, ...] = NUMERIC_FEATURES + CATEGORICAL_FEATURES

# A price move at least this big (implied-probability points) counts as "moved".
MOVE_POINTS = 1.0
# A sharp move the lag statistic follows (points), and how long a follower may take.
LAG_MOVE_POINTS = 0.25
FOLLOW_WINDOW_SECONDS = 300
# Floor of the other books' spread in the z-score (probability): books often agree to the
# third decimal, and a z-score against nothing would say more than the prices do.
MIN_SPREAD = 0.005
# Markets whose outcomes are not mutually exclusive have no arbitrage margin.
NOT_EXCLUSIVE = ("double_chance",)

PANEL_COLUMNS = (
    "observed_at",
    "bookmaker",
    "event_id",
    "market",
    "line",
    "outcome",
    "price",
    "status",
    "is_live",
    "starts_at",
)

_SELECTION = "event_id, market, line_key, outcome"
_BOOK_SELECTION = f"partition by bookmaker, {_SELECTION} order by observed_at"


def _sql_list(values: Collection[str]) -> str:
    quoted = ", ".join("'" + v.replace("'", "''") + "'" for v in sorted(values))
    return f"({quoted})" if quoted else "(null)"


def _prices_sql(sharp: str) -> str:
    """Every panel row with its price carried over suspensions, implied and fair probability."""
    return f"""
        with base as (
            select
                row_id, observed_at, bookmaker, event_id, market, coalesce(line, -999.0) as line_key,
                outcome, starts_at, is_live, status = 'suspended' as suspended, changed_before, keep,
                bookmaker in {sharp} as is_sharp,
                last_value(case when status = 'open' then price end ignore nulls)
                    over ({_BOOK_SELECTION} rows between unbounded preceding and current row) as price_now
            from panel
        ),
        implied as (
            select *, 1.0 / price_now as q from base
        ),
        changes as (
            select *,
                q - lag(q) over ({_BOOK_SELECTION}) as dq_cycle,
                q - first_value(q) over (
                    {_BOOK_SELECTION} range between interval 5 minutes preceding and current row) as dq_5m,
                q - first_value(q) over (
                    {_BOOK_SELECTION} range between interval 1 minute preceding and current row) as dq_1m,
                coalesce(q <> lag(q) over ({_BOOK_SELECTION}), changed_before is null) as changed
            from implied
        )
        select *,
            coalesce(
                max(case when changed then observed_at end)
                    over ({_BOOK_SELECTION} rows between unbounded preceding and current row),
                changed_before
            ) as last_change_at,
            sum(q) over (partition by observed_at, bookmaker, event_id, market, line_key) as q_sum
        from changes
    """


def book_profiles(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Per book and market: median lag behind the sharp book's moves (seconds; 0 for the sharp
    book) and mean overround, from the `prices` relation — what `fct_bookmaker_quality` reports."""
    return con.execute(
        f"""
        with moves as (
            select bookmaker, is_sharp, {_SELECTION}, observed_at, sign(dq_cycle) as direction
            from prices
            where changed and abs(dq_cycle) * 100 >= {LAG_MOVE_POINTS}
        ),
        sharp_moves as (
            select m.*, f.bookmaker as follower
            from moves as m
            cross join (select distinct bookmaker from prices where not is_sharp) as f
            where m.is_sharp
        ),
        follows as (
            select s.follower as bookmaker, s.market,
                   epoch(f.observed_at - s.observed_at) as lag_seconds, f.direction = s.direction as same_way
            from sharp_moves as s
            asof join moves as f
                on f.bookmaker = s.follower and f.event_id = s.event_id and f.market = s.market
                and f.line_key = s.line_key and f.outcome = s.outcome and f.observed_at >= s.observed_at
        ),
        lags as (
            select bookmaker, market, median(lag_seconds) as lag_seconds
            from follows
            where same_way and lag_seconds <= {FOLLOW_WINDOW_SECONDS}
            group by bookmaker, market
        ),
        margins as (
            select bookmaker, market, bool_or(is_sharp) as is_sharp, avg(q_sum - 1) as margin
            from prices
            where not suspended and price_now is not null
            group by bookmaker, market
        )
        select margins.bookmaker, margins.market,
               case when margins.is_sharp then 0.0 else lags.lag_seconds end as lag_seconds,
               margins.margin
        from margins
        left join lags on margins.bookmaker = lags.bookmaker and margins.market = lags.market
        order by margins.bookmaker, margins.market
        """
    ).df()


def compute_features(
    panel: pd.DataFrame,
    sharp_books: Collection[str],
    profiles: pd.DataFrame | None = None,
    *,
    threads: int = 1,
    keep: pd.Series | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """FEATURES for every panel row, in the panel's order, with `usable` (false while a selection
    has never had an open price); and the book profiles used (from the panel itself unless given,
    e.g. from `marts.fct_bookmaker_quality`: columns bookmaker, market, lag_seconds, margin).

    A panel cut out of a longer history (live scoring) may carry `changed_before`: when each
    selection last changed before the panel's first row, so its first row is not taken for a
    change. `threads` above 1 is faster but not bit-for-bit reproducible (see below). With `keep`
    (a boolean mask over the panel), only those rows get features (in panel order); the others
    are history the windows look back on — what live scoring needs, at a fraction of the work."""
    missing = [c for c in PANEL_COLUMNS if c not in panel.columns]
    if missing:
        raise ValueError(f"panel lacks columns {missing}; it needs {list(PANEL_COLUMNS)}")
    if not sharp_books:
        raise ValueError("no sharp book given: consensus and lag features are measured against one")
    sharp = _sql_list(sharp_books)
    # One thread: parallel sums add in varying order, and last-bit differences move a gradient
    # boosting model's bin edges, so the same seed would not give the same model.
    con = duckdb.connect(config={"threads": threads})
    try:
        con.execute("set TimeZone = 'UTC'")
        changed_before = (
            pd.to_datetime(panel["changed_before"], utc=True)
            if "changed_before" in panel.columns
            else pd.Series(pd.NaT, index=panel.index, dtype="datetime64[us, UTC]")
        )
        kept = pd.Series(True, index=panel.index) if keep is None else keep.astype(bool)
        rows = panel[list(PANEL_COLUMNS)].assign(
            row_id=range(len(panel)), changed_before=changed_before, keep=kept.to_numpy()
        )
        con.register("panel", rows)
        con.execute(f"create temp table prices as {_prices_sql(sharp)}")
        used = book_profiles(con) if profiles is None else profiles
        con.register("profiles", used[["bookmaker", "market", "lag_seconds", "margin"]])
        features = con.execute(_features_sql()).df()
    finally:
        con.close()
    if len(features) != int(kept.sum()):
        raise AssertionError(f"feature rows {len(features)} != panel rows kept {int(kept.sum())}")
    return features.drop(columns="row_id"), used


def _features_sql() -> str:
    by_selection = f"partition by observed_at, {_SELECTION}"
    not_exclusive = _sql_list(NOT_EXCLUSIVE)
    return f"""
        with fair as (
            select *, q / q_sum as p, q_sum - 1 as overround from prices where keep
        ),
        across_books as (
            select *,
                count(*) over ({by_selection}) as n_books,
                sum(p) over ({by_selection}) as p_sum,
                sum(p * p) over ({by_selection}) as p_square_sum,
                max(case when is_sharp then p end) over ({by_selection}) as sharp_p,
                max(case when is_sharp then dq_5m end) over ({by_selection}) as sharp_dq_5m,
                max(case when is_sharp then last_change_at end) over ({by_selection}) as sharp_changed_at,
                count(case when abs(dq_5m) * 100 >= {MOVE_POINTS} then 1 end) over ({by_selection})
                    as books_moved,
                min(case when not suspended then q end) over ({by_selection}) as best_q
            from fair
        ),
        best_sets as (
            select observed_at, event_id, market, line_key, 1 - sum(best_q) as arb_margin
            from (select distinct observed_at, {_SELECTION}, best_q from across_books) as best
            where market not in {not_exclusive}
            group by observed_at, event_id, market, line_key
        ),
        loo as (
            select *,
                (p_sum - p) / nullif(n_books - 1, 0) as consensus,
                (p_square_sum - p * p) / nullif(n_books - 1, 0) as consensus_square
            from across_books
        )
        select
            loo.row_id,
            price_now is not null as usable,
            100 * coalesce(dq_5m, 0) as move_pp,
            100 * coalesce(dq_cycle, 0) as move_pp_cycle,
            100 * coalesce(dq_1m, 0) as velocity_pp_per_min,
            cast(books_moved as double) as books_moved,
            cast(coalesce(abs(sharp_dq_5m) * 100 >= {MOVE_POINTS}
                 and (abs(dq_5m) * 100 < {MOVE_POINTS} or sharp_changed_at <= last_change_at), false)
                 as double) as sharp_moved_first,
            100 * sharp_dq_5m as sharp_move_pp,
            100 * (dq_5m - sharp_dq_5m) as move_vs_sharp_pp,
            case when n_books >= 3 then (p - consensus)
                / sqrt(greatest(consensus_square - consensus * consensus, {MIN_SPREAD * MIN_SPREAD})) end
                as z_score,
            100 * (p - consensus) as divergence_pp,
            price_now * consensus - 1 as edge,
            case when not is_sharp then price_now * sharp_p - 1 end as edge_vs_sharp,
            epoch(starts_at - loo.observed_at) / 60 as minutes_to_kick_off,
            profiles.lag_seconds as book_lag_seconds,
            profiles.margin as book_margin,
            loo.overround,
            best_sets.arb_margin,
            cast(not suspended and q <= best_q + 1e-12 as double) as is_best_price,
            least(epoch(loo.observed_at - last_change_at) / 60, 120) as minutes_since_change,
            cast(suspended as double) as suspended,
            cast(is_live as double) as is_live,
            cast(is_sharp as double) as is_sharp,
            loo.market
        from loo
        left join profiles on loo.bookmaker = profiles.bookmaker and loo.market = profiles.market
        left join best_sets
            on loo.observed_at = best_sets.observed_at and loo.event_id = best_sets.event_id
            and loo.market = best_sets.market and loo.line_key = best_sets.line_key
        order by loo.row_id
    """
