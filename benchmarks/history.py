"""Simulated tick history for `oddly bench marts`: five books pricing rolling football events over
weeks, generated vectorized in NumPy and bulk-loaded into the warehouse in commit order.

Events kick off at a steady rate, each listed a few days before; the market moves more and more
near kick-off and in play (goals suspend every book), and not at all once the match is over. The
sharp book reprices each move within seconds, the soft books minutes later, skipping some moves.
Every book quotes 17 selections per event with its own margin (2–8 %, longshots carrying more of
it). A tick is written only when a selection's price or status changes, polled every 10 s per book:
one load (and `raw.feed_runs` row) per book and poll that changed something.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from oddly.matching.matcher import canonical_event_id
from oddly.model import PRICE_COLUMNS, PRICE_SCHEMA
from oddly.simulator.teams import LEAGUES, spelling
from oddly.warehouse.store import _SELECTION_KEY, FeedRunRecord, Warehouse


@dataclass(frozen=True)
class Book:
    name: str
    margin: float  # overround on the 1X2; its other markets carry up to 1 point more
    lag: tuple[float, float]  # seconds behind a market move, drawn once per book and market
    follow: float  # share of moves it reprices (it catches up on the next one it follows)
    bias: float  # spread of its lasting opinion on a market, in logit units
    decimals: int
    event_base: int  # its own event ids start here


BOOKS = (
    Book("pinnacle", 0.025, (2, 20), 0.98, 0.01, 3, 1_600_000_000),
    Book("22bet", 0.06, (40, 420), 0.80, 0.04, 2, 600_000_000),
    Book("1xbet", 0.05, (30, 300), 0.85, 0.03, 2, 500_000_000),
    Book("melbet", 0.07, (60, 600), 0.75, 0.05, 2, 400_000_000),
    Book("betwinner", 0.055, (45, 480), 0.80, 0.04, 2, 300_000_000),
)
# (market, line, outcomes); a handicap line is the home side's
MARKETS: tuple[tuple[str, float | None, tuple[str, ...]], ...] = (
    ("1x2", None, ("home", "draw", "away")),
    ("total", 1.5, ("over", "under")),
    ("total", 2.5, ("over", "under")),
    ("total", 3.5, ("over", "under")),
    ("handicap", -1.5, ("home", "away")),
    ("handicap", -0.5, ("home", "away")),
    ("handicap", 0.5, ("home", "away")),
    ("btts", None, ("yes", "no")),
)
N_BOOKS, N_MARKETS, MAX_OUTCOMES = len(BOOKS), len(MARKETS), 3
OUTCOMES = np.array([len(m[2]) for m in MARKETS])
MARGIN = np.array([b.margin for b in BOOKS])
DECIMALS = np.array([b.decimals for b in BOOKS])

DAY = 86_400.0
POLL_SECONDS = 10
EVENTS_PER_DAY = 400
LEAD_DAYS = (2.0, 7.0)  # listed this long before kick-off
IN_PLAY_SECONDS = 115 * 60  # then finished: no more ticks
PRE_MATCH_MOVES, LIVE_MOVES, GOAL_SHARE = 40, 10, 0.25
STEP_PRE, STEP_LIVE, STEP_GOAL, STEP_NEW = 0.045, 0.12, 0.45, 0.08  # logit steps of the market
# Ticks per day the rates above give (measured), to size the history before cutting it at N.
TICKS_PER_DAY = 1_350_000


@dataclass
class History:
    """The generated history (seconds since `t0`), and what the benchmark needs to extend it."""

    t0: datetime
    last_s: float  # observed_at of the last tick
    ticks: dict[str, np.ndarray]  # in load order (sel, observed_s, price, …); emptied once written
    tick_count: int
    load_count: int
    events: pd.DataFrame  # per event: starts_s, ends_s, draw share, names
    price: np.ndarray  # current price (NaN: never quoted) and suspension per sparse selection id
    suspended: np.ndarray
    names: pa.Table = field(default_factory=lambda: pa.table({}))  # per event and book, as the book writes it
    selections: pa.Table = field(default_factory=lambda: pa.table({}))  # per selection: PRICE_SCHEMA fields

    def at(self, seconds: float) -> datetime:
        return self.t0 + timedelta(seconds=seconds)


def sel_id(instance: np.ndarray, book: np.ndarray, outcome: np.ndarray) -> np.ndarray:
    """Sparse selection id from the market instance (event x market), book and outcome."""
    return (instance * N_BOOKS + book) * MAX_OUTCOMES + outcome


def simulate(n_ticks: int, seed: int, now: datetime) -> History:
    """The first `n_ticks` ticks of a market history, shifted so that the last one is at `now`."""
    rng = np.random.default_rng(seed)
    horizon = max(n_ticks / TICKS_PER_DAY * 1.1, 1.0) * DAY
    events = _events(rng, horizon)
    ticks = _ticks(_reprices(rng, events, horizon), events["draw"].to_numpy(), n_ticks)
    if len(ticks["sel"]) < n_ticks:
        raise ValueError(f"the simulated market made {len(ticks['sel']):,} ticks, short of {n_ticks:,}")
    last_s = float(ticks["observed_s"][-1])
    t0 = (now - timedelta(seconds=last_s)).replace(second=0, microsecond=0)  # kick-offs on the minute
    events["starts_at"] = pd.Timestamp(t0) + pd.to_timedelta(events["starts_s"], unit="s")
    size = len(events) * N_MARKETS * N_BOOKS * MAX_OUTCOMES
    price, suspended = np.full(size, np.nan), np.zeros(size, bool)
    price[ticks["sel"]] = ticks["price"]  # in time order, so the last tick of each wins
    suspended[ticks["sel"]] = ticks["suspended"]
    return History(t0, last_s, ticks, len(ticks["sel"]), int(ticks["load_seq"][-1]), events, price, suspended)


def _events(rng: np.random.Generator, horizon: float) -> pd.DataFrame:
    """Kick-offs at distinct minutes (so canonical ids cannot collide) over the history and the
    listing lead after it."""
    span_minutes = int((horizon + LEAD_DAYS[1] * DAY) / 60)
    n = int(EVENTS_PER_DAY * span_minutes / 1440)
    starts = np.sort(rng.choice(span_minutes, n, replace=False)).astype(np.float64) * 60
    league = rng.integers(len(LEAGUES), size=n)
    sizes = np.array([len(LEAGUES[i][3]) for i in league])
    home = (rng.random(n) * sizes).astype(int)
    frame = pd.DataFrame(
        {
            "starts_s": starts,
            "listed_s": np.maximum(starts - rng.uniform(*LEAD_DAYS, n) * DAY, 0.0),
            "ends_s": starts + IN_PLAY_SECONDS,
            "draw": rng.uniform(0.22, 0.30, n),
            "league": league,
            "home": home,
            "away": (home + 1 + (rng.random(n) * (sizes - 1)).astype(int)) % sizes,
        }
    )
    return frame[frame["listed_s"] < horizon].reset_index(drop=True)


def _reprices(rng: np.random.Generator, events: pd.DataFrame, horizon: float) -> dict[str, np.ndarray]:
    """Every book's repricing of every market: its opening, the moves it follows (after its lag),
    and around goals a suspension, then the new price. One row per market instance and moment."""
    n_inst = len(events) * N_MARKETS
    opening = _opening_logits(rng, n_inst)
    moves = _moves(rng, events, horizon, opening)
    listed = events["listed_s"].to_numpy()[np.arange(n_inst) // N_MARKETS]
    parts = [_book_reprices(rng, b, moves, listed, opening, horizon) for b in range(N_BOOKS)]
    rows = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    bias = rng.normal(0, 1, (n_inst, N_BOOKS)) * np.array([b.bias for b in BOOKS])
    extra = np.where(np.arange(n_inst) % N_MARKETS == 0, 0.0, rng.uniform(0, 0.01, n_inst))
    rows["latent"] += bias[rows["inst"], rows["book"]]
    rows["margin"] = MARGIN[rows["book"]] + extra[rows["inst"]]
    return rows


def _opening_logits(rng: np.random.Generator, n_inst: int) -> np.ndarray:
    """Opening latent logit per market instance: home side favoured, totals and handicaps by line."""
    market = np.arange(n_inst) % N_MARKETS
    line = np.array([m[1] or 0.0 for m in MARKETS])[market]
    kind = np.array([m[0] for m in MARKETS])[market]
    base = rng.normal(0.0, 0.5, n_inst)
    return np.select(
        [kind == "1x2", kind == "total", kind == "handicap"],
        [0.3 + base * 1.4, base - (line - 2.5) * 1.2, base + 0.3 + line * 1.1],
        default=base * 0.6,
    )


def _moves(
    rng: np.random.Generator, events: pd.DataFrame, horizon: float, opening: np.ndarray
) -> dict[str, np.ndarray]:
    """Moves of every market's latent logit, by market instance and time: most of them in the last
    hours before kick-off (time to kick-off ~ lead x u^2.5), bigger in play, goals among them."""
    n_inst = len(opening)
    event = np.arange(n_inst) // N_MARKETS
    starts, listed = events["starts_s"].to_numpy()[event], events["listed_s"].to_numpy()[event]
    pre = np.repeat(np.arange(n_inst, dtype=np.int32), rng.poisson(PRE_MATCH_MOVES, n_inst))
    live = np.repeat(np.arange(n_inst, dtype=np.int32), rng.poisson(LIVE_MOVES, n_inst))
    goal = rng.random(len(live)) < GOAL_SHARE
    inst = np.concatenate([pre, live])
    t = np.concatenate(
        [
            starts[pre] - (starts[pre] - listed[pre]) * rng.random(len(pre)) ** 2.5,
            starts[live] + rng.uniform(0, IN_PLAY_SECONDS - 300, len(live)),
        ]
    )
    live_step = np.where(goal, STEP_GOAL, STEP_LIVE) * rng.standard_normal(len(live))
    step = np.concatenate([STEP_PRE * rng.standard_normal(len(pre)), live_step])
    is_goal = np.concatenate([np.zeros(len(pre), bool), goal])
    keep = np.flatnonzero(t <= horizon)
    order = keep[np.lexsort((t[keep], inst[keep]))]
    inst, step = inst[order], step[order]
    latent = opening[inst] + _group_cumsum(inst, step)
    return {"inst": inst, "t": t[order], "latent": latent, "before": latent - step, "goal": is_goal[order]}


def _group_cumsum(group: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Running sum of `values` within runs of equal (sorted) `group`."""
    total = np.cumsum(values)
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    lengths = np.diff(np.r_[starts, len(group)])
    return total - np.repeat(total[starts] - values[starts], lengths)


def _book_reprices(
    rng: np.random.Generator,
    b: int,
    moves: dict[str, np.ndarray],
    listed: np.ndarray,
    opening: np.ndarray,
    horizon: float,
) -> dict[str, np.ndarray]:
    """One book's reprices: the opening within 2 minutes of listing, followed moves after its lag
    (goals always: suspended within seconds, reopened 1–2.5 minutes later)."""
    book, n_inst = BOOKS[b], len(listed)
    lag = rng.uniform(*book.lag, n_inst)
    opens = listed + rng.uniform(0, 120, n_inst)
    follows = np.flatnonzero(moves["goal"] | (rng.random(len(moves["t"])) < book.follow))
    inst, t, goal = moves["inst"][follows], moves["t"][follows], moves["goal"][follows]
    goals = np.flatnonzero(goal)
    reopen = np.where(goal, rng.uniform(60, 150, len(t)), 0.0)
    part = {
        "inst": np.concatenate([np.arange(n_inst, dtype=np.int32), inst, inst[goals]]),
        "t": np.concatenate([opens, t + lag[inst] + reopen, t[goals] + rng.uniform(0, 8, len(goals))]),
        "latent": np.concatenate([opening, moves["latent"][follows], moves["before"][follows][goals]]),
        "suspended": np.r_[np.zeros(n_inst + len(t), bool), np.ones(len(goals), bool)],
    }
    part["book"] = np.full(len(part["t"]), b, np.int8)
    valid = (part["t"] <= horizon) & (part["t"] >= opens[part["inst"]])
    return {name: values[valid] for name, values in part.items()}


def fair_probabilities(latent: np.ndarray, market: np.ndarray, draw: np.ndarray) -> np.ndarray:
    """(rows, 3) fair probabilities of a market's outcomes (the third 0 on two-way markets)."""
    s = np.clip(1 / (1 + np.exp(-latent)), 0.08, 0.92)
    three = market == 0
    return np.stack(
        [
            np.where(three, s * (1 - draw), s),
            np.where(three, draw, 1 - s),
            np.where(three, (1 - s) * (1 - draw), 0.0),
        ],
        axis=1,
    )


def book_prices(fair: np.ndarray, margin: np.ndarray, decimals: np.ndarray) -> np.ndarray:
    """Decimal prices with the margin spread in proportion to sqrt(p), so longshots carry more."""
    root = np.sqrt(fair)
    implied = fair + margin[:, None] * root / root.sum(axis=1, keepdims=True)
    scale = (10.0**decimals)[:, None]
    with np.errstate(divide="ignore"):
        return np.maximum(np.round(scale / implied) / scale, 1.01)


def _ticks(rows: dict[str, np.ndarray], draw: np.ndarray, n_ticks: int) -> dict[str, np.ndarray]:
    """Outcome rows polled every 10 s per book (offset 2 s per book), change-only, with the
    previous price, in load order, cut after the first `n_ticks`."""
    cols = _outcome_rows(rows, draw)
    rows.clear()  # the reprices are no longer needed: free them before the sorts
    sel, poll = cols["sel"], cols["poll"]
    # one state per selection and poll (the last), then only changes of price or status
    cols = _where(cols, np.r_[(sel[1:] != sel[:-1]) | (poll[1:] != poll[:-1]), True])
    sel, price, suspended = cols["sel"], cols["price"], cols["suspended"]
    first = np.r_[True, sel[1:] != sel[:-1]]
    cols = _where(cols, first | np.r_[True, (price[1:] != price[:-1]) | (suspended[1:] != suspended[:-1])])
    previous = np.r_[np.nan, cols["price"][:-1]]
    previous[np.r_[True, cols["sel"][1:] != cols["sel"][:-1]]] = np.nan
    book = ((cols["sel"] // MAX_OUTCOMES) % N_BOOKS).astype(np.int8)
    load_key = cols["poll"].astype(np.int64) * N_BOOKS + book
    order = np.lexsort((cols["sel"], load_key))[:n_ticks]
    load_key = load_key[order]
    return {
        "sel": cols["sel"][order],
        "observed_s": cols["poll"][order],
        "price": cols["price"][order],
        "previous_price": previous[order],
        "suspended": cols["suspended"][order],
        "book": book[order],
        "load_seq": np.cumsum(np.r_[True, load_key[1:] != load_key[:-1]]),
    }


def _outcome_rows(rows: dict[str, np.ndarray], draw: np.ndarray) -> dict[str, np.ndarray]:
    """One row per outcome of each reprice (selection, poll, price, status), by selection and time."""
    market = rows["inst"] % N_MARKETS
    fair = fair_probabilities(rows["latent"], market, draw[rows["inst"] // N_MARKETS])
    prices = book_prices(fair, rows["margin"], DECIMALS[rows["book"]])
    del fair
    n_out = OUTCOMES[market]
    row = np.repeat(np.arange(len(market), dtype=np.int32), n_out)
    outcome = np.arange(len(row), dtype=np.int32) - np.repeat(
        (np.cumsum(n_out) - n_out).astype(np.int32), n_out
    )
    book = rows["book"][row]
    t = rows["t"][row]
    offset = 2 * book.astype(np.int32)
    poll = (np.ceil((t - offset) / POLL_SECONDS) * POLL_SECONDS + offset).astype(np.int32)
    sel = sel_id(rows["inst"][row], book.astype(np.int32), outcome)
    order = np.lexsort((t, sel))
    del t, offset
    cols = {"sel": sel, "poll": poll, "price": prices[row, outcome], "suspended": rows["suspended"][row]}
    return {name: values[order] for name, values in cols.items()}


def _where(columns: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    return {name: values[mask] for name, values in columns.items()}


# --- writing ----------------------------------------------------------------------------------

CHUNK = 4_000_000  # ticks per insert: one transaction each, as the ingestion commits run by run


def write(warehouse: Warehouse, history: History) -> None:
    """Bulk-load the history: ticks in load order, their feed-run rows, the latest prices and the
    event map, through the warehouse's own connections."""
    warehouse.ensure_schema()
    history.names = _event_names(history)
    with warehouse.begin() as conn:
        history.selections = _selections(conn.connection.driver_connection, history)
    for start in range(0, len(history.ticks["sel"]), CHUNK):
        chunk = {name: values[start : start + CHUNK] for name, values in history.ticks.items()}
        with warehouse.begin() as conn:
            _insert_ticks(conn.connection.driver_connection, history, chunk)
    with warehouse.begin() as conn:
        duck = conn.connection.driver_connection
        _insert_feed_runs(duck, history)
        _insert_latest(duck, history)
        _insert_event_map(duck, history)
    history.ticks = {}  # gigabytes at 50 M ticks, and dbt's full refresh comes next


def _ts(history: History, seconds: np.ndarray) -> pa.Array:
    t0_us = int(history.t0.timestamp() * 1_000_000)
    return pa.array(t0_us + seconds.astype(np.int64) * 1_000_000, pa.timestamp("us", tz="UTC"))


def _event_names(history: History) -> pa.Table:
    """Per event and book: the book's own event id and spelling of the teams, and the canonical
    event id (as `oddly match` derives it from the sharp book's names and kick-off)."""
    rows: dict[str, list[Any]] = {
        k: [] for k in ("event_book", "bookmaker", "source_event_id", "league", "country", "home", "away")
    }
    canonical: list[str] = []
    ev = history.events
    for e, (league, home, away, starts_at) in enumerate(
        zip(ev["league"], ev["home"], ev["away"], ev["starts_at"], strict=True)
    ):
        country, league_name, _, teams = LEAGUES[league]
        canonical += [canonical_event_id("football", teams[home][0], teams[away][0], starts_at)] * N_BOOKS
        for b, book in enumerate(BOOKS):
            for name, value in (
                ("event_book", e * N_BOOKS + b),
                ("bookmaker", book.name),
                ("source_event_id", str(book.event_base + e)),
                ("league", league_name),
                ("country", country),
                ("home", spelling(teams[home], b)),
                ("away", spelling(teams[away], b)),
            ):
                rows[name].append(value)
    table = pa.table(rows)
    starts = _ts(history, np.repeat(ev["starts_s"].to_numpy(), N_BOOKS))
    return table.append_column("starts_at", starts).append_column("canonical_event_id", pa.array(canonical))


def _selections(duck: Any, history: History) -> pa.Table:
    """One row per selection with ticks: the selection's fields of the canonical price row as its
    book writes them, and its selection key by the ingestion's own hash expression."""
    sel = np.unique(history.ticks["sel"])
    inst, book, outcome = sel // (MAX_OUTCOMES * N_BOOKS), (sel // MAX_OUTCOMES) % N_BOOKS, sel % MAX_OUTCOMES
    ids = pa.table(
        {
            "sel": sel,
            "event_book": inst // N_MARKETS * N_BOOKS + book,
            "market_outcome": inst % N_MARKETS * MAX_OUTCOMES + outcome,
        }
    )
    specs = [(m * MAX_OUTCOMES + o, spec) for m, spec in enumerate(MARKETS) for o in range(len(spec[2]))]
    markets = pa.table(
        {
            "market_outcome": [key for key, _ in specs],
            "market": [spec[0] for _, spec in specs],
            "line": pa.array([spec[1] for _, spec in specs], pa.float64()),
            "outcome": [spec[2][key % MAX_OUTCOMES] for key, spec in specs],
        }
    )
    duck.register("_bench_ids", ids)
    duck.register("_bench_names", history.names)
    duck.register("_bench_markets", markets)
    table: pa.Table = duck.sql(
        f"""
        select sel, {_SELECTION_KEY["duckdb"]} as selection_key, * exclude (sel)
        from (
            select i.sel, n.bookmaker, n.source_event_id, 'football' as sport, n.league, n.country,
                n.home, n.away, n.starts_at, m.market, 'ft' as period, m.line, m.outcome
            from _bench_ids i
            join _bench_names n using (event_book)
            join _bench_markets m using (market_outcome)
        )
        order by sel
        """
    ).to_arrow_table()
    for name in ("_bench_ids", "_bench_names", "_bench_markets"):
        duck.unregister(name)
    return table


def _insert_ticks(duck: Any, history: History, chunk: dict[str, np.ndarray]) -> None:
    """Append ticks in their load order (so zone maps on load_seq and observed_at stay tight)."""
    ticks = pa.table(
        {
            "pos": np.arange(len(chunk["sel"])),
            "sel": chunk["sel"],
            "observed_at": _ts(history, chunk["observed_s"]),
            "price": chunk["price"],
            "previous_price": pa.array(chunk["previous_price"], from_pandas=True),
            "suspended": chunk["suspended"],
            "load_seq": chunk["load_seq"],
        }
    )
    duck.register("_bench_ticks", ticks)
    duck.register("_bench_sels", history.selections)
    duck.execute(
        """
        insert into raw.odds_ticks (selection_key, bookmaker, source_event_id, sport, league, country, home,
            away, starts_at, is_live, market, period, line, outcome, price, status, source_ts, observed_at,
            feed_run_id, previous_price, load_seq)
        select s.selection_key, s.bookmaker, s.source_event_id, s.sport, s.league, s.country, s.home, s.away,
            s.starts_at, t.observed_at >= s.starts_at, s.market, s.period, s.line, s.outcome, t.price,
            case when t.suspended then 'suspended' else 'open' end, null, t.observed_at,
            'sim_' || s.bookmaker || '-' || t.load_seq, t.previous_price, t.load_seq
        from _bench_ticks t
        join _bench_sels s using (sel)
        order by t.pos
        """
    )
    duck.unregister("_bench_ticks")
    duck.unregister("_bench_sels")


def _insert_feed_runs(duck: Any, history: History) -> None:
    """One ok run per load, with its tick count."""
    seqs, first, counts = np.unique(history.ticks["load_seq"], return_index=True, return_counts=True)
    loads = pa.table(
        {
            "load_seq": seqs,
            "bookmaker": pa.array([b.name for b in BOOKS]).take(pa.array(history.ticks["book"][first])),
            "finished_at": _ts(history, history.ticks["observed_s"][first]),
            "ticks": counts,
        }
    )
    duck.register("_bench_loads", loads)
    duck.execute(
        """
        insert into raw.feed_runs (feed_run_id, feed, bookmaker, status, started_at, finished_at, requests,
            prices_seen, ticks_written, rejected, unmapped, unmapped_codes, fetch_seconds, parse_seconds,
            write_seconds, http_outcome, error, load_seq)
        select 'sim_' || bookmaker || '-' || load_seq, 'sim_' || bookmaker, bookmaker, 'ok',
            finished_at - interval 1 second, finished_at, 1, ticks, ticks, 0, 0, '{}', 0.6, 0.2, 0.1,
            '1 requests: 1× HTTP 200', null, load_seq
        from _bench_loads
        order by load_seq
        """
    )
    duck.unregister("_bench_loads")


def _insert_latest(duck: Any, history: History) -> None:
    """The last tick of every selection, as the ingestion keeps it for its diff."""
    ticks = history.ticks
    last = len(ticks["sel"]) - 1 - np.unique(ticks["sel"][::-1], return_index=True)[1]
    latest = pa.table(
        {
            "sel": ticks["sel"][last],
            "price": ticks["price"][last],
            "status": np.where(ticks["suspended"][last], "suspended", "open"),
            "observed_at": _ts(history, ticks["observed_s"][last]),
        }
    )
    duck.register("_bench_latest", latest)
    duck.register("_bench_sels", history.selections)
    duck.execute(
        "insert into raw.latest_prices (selection_key, price, status, observed_at) "
        "select s.selection_key, l.price, l.status, l.observed_at "
        "from _bench_latest l join _bench_sels s using (sel)"
    )
    duck.unregister("_bench_latest")
    duck.unregister("_bench_sels")


def _insert_event_map(duck: Any, history: History) -> None:
    """Every listed book event mapped to its canonical event (the sharp book's names normalized)."""
    sel = history.ticks["sel"]
    listed = np.unique(
        sel // (MAX_OUTCOMES * N_BOOKS) // N_MARKETS * N_BOOKS + (sel // MAX_OUTCOMES) % N_BOOKS
    )
    names = history.names.filter(pc.is_in(history.names["event_book"], pa.array(listed)))
    duck.register("_bench_names", names)
    duck.execute(
        """
        insert into raw.event_map (bookmaker, source_event_id, canonical_event_id, method, score, sport,
            home_normalized, away_normalized, starts_at, matched_at)
        select bookmaker, source_event_id, canonical_event_id,
            case when bookmaker = 'pinnacle' then 'new' else 'exact' end, 1.0, 'football',
            lower(first(home) over e), lower(first(away) over e), starts_at, $matched_at
        from _bench_names
        window e as (partition by canonical_event_id order by event_book)
        """,
        {"matched_at": history.at(history.last_s)},
    )
    duck.unregister("_bench_names")


# --- the next ingestion rounds ----------------------------------------------------------------


def ingest_round(
    warehouse: Warehouse, history: History, rng: np.random.Generator, n: int, at_s: float
) -> int:
    """Up to `n` price changes of the markets of unfinished events, `at_s` seconds after t0, written
    as one load per book through the ingestion's own write path (diff against the latest prices,
    append, feed-run row). Returns the ticks written."""
    sel, price = _next_prices(history, rng, n, at_s)
    written = 0
    for b, book in enumerate(BOOKS):
        mine = (sel // MAX_OUTCOMES) % N_BOOKS == b
        observed = history.at(at_s + 2 * b)
        run_id = f"sim_{book.name}-bench-{observed:%Y%m%dT%H%M%S}"
        table = _price_table(history, sel[mine], price[mine], observed, run_id)
        run = FeedRunRecord(
            run_id, f"sim_{book.name}", book.name, "ok", observed, observed, 1, table.num_rows,
            0, 0, 0, "{}", 0.0, 0.0, 0.0, "1 requests: 1× HTTP 200", None,
        )  # fmt: skip
        written += warehouse.write_run(table, [], run)
    history.last_s = at_s + 2 * (N_BOOKS - 1)
    return written


def _next_prices(
    history: History, rng: np.random.Generator, n: int, at_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """The first `n` changed selections of randomly chosen open markets, each market moved by a
    logit step of its fair price and repriced with the book's current margin; updates the current
    prices."""
    combos = rng.permutation(_open_markets(history, at_s))
    market, book = combos // N_BOOKS % N_MARKETS, combos % N_BOOKS
    sel = combos[:, None] * MAX_OUTCOMES + np.arange(MAX_OUTCOMES)
    quoted = np.arange(MAX_OUTCOMES)[None, :] < OUTCOMES[market][:, None]
    current = np.where(quoted, history.price[sel], np.inf)
    implied = 1 / current
    fair = implied / implied.sum(axis=1, keepdims=True)
    three = market == 0
    side = np.where(three, fair[:, 0] / (fair[:, 0] + fair[:, 2]), fair[:, 0])
    latent = np.log(side / (1 - side)) + STEP_NEW * rng.standard_normal(len(side))
    draw = np.where(three, fair[:, 1], 0.0)
    new = book_prices(fair_probabilities(latent, market, draw), implied.sum(axis=1) - 1, DECIMALS[book])
    moved = quoted & ((new != current) | history.suspended[sel])
    sel, new = sel[moved][:n], new[moved][:n]
    history.price[sel], history.suspended[sel] = new, False
    return sel, new


def _open_markets(history: History, at_s: float) -> np.ndarray:
    """Market instance x book combos quoted in full whose event is not finished at `at_s`."""
    n_inst = len(history.events) * N_MARKETS
    combos = np.arange(n_inst * N_BOOKS)
    unfinished = history.events["ends_s"].to_numpy()[combos // N_BOOKS // N_MARKETS] > at_s
    quotes = history.price[combos[:, None] * MAX_OUTCOMES + np.arange(MAX_OUTCOMES)]
    outcomes = OUTCOMES[combos // N_BOOKS % N_MARKETS]
    complete = ~np.isnan(quotes[:, 0]) & ~np.isnan(quotes[:, 1]) & ((outcomes == 2) | ~np.isnan(quotes[:, 2]))
    return combos[unfinished & complete]


def _price_table(
    history: History, sel: np.ndarray, price: np.ndarray, observed: datetime, run_id: str
) -> pa.Table:
    """Canonical price rows (PRICE_SCHEMA) of these selections at `observed`, all open."""
    rows = history.selections.take(np.searchsorted(history.selections["sel"].to_numpy(), sel))
    n = len(sel)
    ts = pa.timestamp("us", tz="UTC")
    columns = {
        "is_live": pc.less_equal(rows["starts_at"], pa.scalar(observed, ts)),
        "price": pa.array(price),
        "status": pa.array(["open"] * n),
        "source_ts": pa.nulls(n, ts),
        "observed_at": pa.repeat(pa.scalar(observed, ts), n),
        "feed_run_id": pa.repeat(pa.scalar(run_id), n),
    }
    arrays = [columns[name] if name in columns else rows[name] for name in PRICE_COLUMNS]
    return pa.Table.from_arrays(arrays, schema=PRICE_SCHEMA)
