"""Labelled data from the market simulator, generated in-process for fixed seeds.

Each seed is one simulated world (`oddly.simulator.market.Market`): it is advanced one feed
interval at a time and every book's prices are read as a feed poll would see them, giving a panel
of one row per (cycle, book, selection). The simulator's ground truth (its injected scenarios)
labels the rows:

- 1, positive: a book the scenario names, on the scenario's selection (event, market, line and
  outcome, as far as the scenario names them), between its start and its end; for suspensions,
  the suspended rows (books lagging behind the sharp one stay suspended up to their lag longer);
  a row two scenarios name belongs to the one that started last;
- -1, ignored: rows the scenario moved without naming them — every selection of the event for
  scenarios that move the true price (sharp drop, steam, stale line, a goal), the rest of the
  book's market for one-book scenarios — and the price snapping back afterwards, up to
  `AFTERMATH` after the end; they are kept out of training and of every metric;
- 0, negative: everything else (ordinary price moves, margins, lags, live play).

Train and held-out sets are different seeds, so no world is in both.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from ml.features import FEATURE_VERSION, compute_features
from oddly.feeds.linefeed_codes import CODE_BY_GT, raw_market, raw_outcome
from oddly.simulator.config import SimConfig
from oddly.simulator.market import MATCH_SECONDS, SUSPENDED_PRICE, Market
from oddly.simulator.scenarios import SCENARIO_TYPES

# Scenarios that move the latent (true) price, so every selection of the event moves at every book.
EVENT_WIDE = ("sharp_drop", "steam", "stale_line")
AFTERMATH = timedelta(minutes=5)
DEFAULT_START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
# What identifies a row, and the price and status the book showed (rule detectors read those).
KEY_COLUMNS = ["seed", "observed_at", "bookmaker", "event_id", "market", "line", "outcome", "price", "status"]
SCENARIO_COLUMNS = [
    "scenario_id",
    "seed",
    "type",
    "start_at",
    "end_at",
    "event_id",
    "g",
    "line",
    "t",
    "books",
    "cause",
]


@dataclass(frozen=True)
class DatasetSpec:
    """Which simulated worlds, how big and for how long."""

    seeds: tuple[int, ...]
    hours: float = 1.0
    n_events: int = 20
    markets_per_event: int = 3
    live_share: float = 0.25
    scenarios_per_hour: float = 90.0
    # The natural re-pricing the models were trained and judged on (busier than the simulator's
    # default: more background for the scenarios to stand out from).
    moves_per_hour: float = 40.0
    cycle_seconds: float = 10.0
    start: datetime = DEFAULT_START

    def with_seeds(self, seeds: tuple[int, ...]) -> DatasetSpec:
        return replace(self, seeds=seeds)

    def params(self) -> dict[str, str]:
        """As MLflow parameters."""
        row = asdict(self)
        row["seeds"] = ",".join(map(str, self.seeds))
        row["start"] = self.start.isoformat()
        return {k: str(v) for k, v in row.items()}

    def fingerprint(self) -> str:
        """Names this exact set (and the feature definitions computed on it)."""
        text = json.dumps({**self.params(), "features": FEATURE_VERSION}, sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:12]

    def sim_config(self, seed: int) -> SimConfig:
        return SimConfig(
            seed=seed,
            n_events=self.n_events,
            markets_per_event=self.markets_per_event,
            live_share=self.live_share,
            scenarios_per_hour=self.scenarios_per_hour,
            moves_per_hour=self.moves_per_hour,
            manual_clock=True,
            start=self.start,
        )


@dataclass
class LabelledSet:
    """Features and labels of every (cycle, book, selection) of some seeds, and their scenarios."""

    spec: DatasetSpec
    frame: pd.DataFrame
    scenarios: pd.DataFrame
    profiles: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def scored(self) -> pd.DataFrame:
        """The rows metrics and training use (ignored rows left out)."""
        return self.frame[self.frame["label"] >= 0]

    @property
    def window(self) -> tuple[datetime, datetime]:
        times = self.frame["observed_at"]
        return times.min().to_pydatetime(), times.max().to_pydatetime()

    def summary(self) -> dict[str, int]:
        labels = self.frame["label"]
        return {
            "rows": len(self.frame),
            "positives": int((labels == 1).sum()),
            "negatives": int((labels == 0).sum()),
            "ignored": int((labels == -1).sum()),
            "scenarios": len(self.scenarios),
        }


def simulate(seed: int, spec: DatasetSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What every book showed at every cycle of one seed's world, and the scenarios injected."""
    market = Market(spec.sim_config(seed))
    books = [b.name for b in market.config.books]
    n_events = len(market.by_index)
    # One book's prices flattened: per market spec, every event × its outcomes (row-major).
    ev_idx, spec_idx, out_idx = [], [], []
    for m, mspec in enumerate(market.specs):
        n_out = len(mspec.types)
        ev_idx.append(np.repeat(np.arange(n_events), n_out))
        spec_idx.append(np.full(n_events * n_out, m))
        out_idx.append(np.tile(np.arange(n_out), n_events))
    ev = np.concatenate(ev_idx)
    sp = np.concatenate(spec_idx)
    oc = np.concatenate(out_idx)
    cycles = round(spec.hours * 3600 / spec.cycle_seconds)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("t", "book", "row", "price", "susp", "live")}
    for _ in range(cycles):
        market.advance(spec.cycle_seconds)
        elapsed = market.elapsed()
        on_offer = elapsed[ev] < MATCH_SECONDS
        rows = np.flatnonzero(on_offer)
        for b, name in enumerate(books):
            prices = np.concatenate([p.reshape(-1) for p in market.book_prices(name)])
            blocked = _suspended(market, b, n_events)[ev[rows], sp[rows]]
            parts["t"].append(np.full(len(rows), market.now))
            parts["book"].append(np.full(len(rows), b))
            parts["row"].append(rows)
            parts["price"].append(np.where(blocked, SUSPENDED_PRICE, prices[rows]))
            parts["susp"].append(blocked)
            parts["live"].append(elapsed[ev[rows]] > 0)
    cols = {k: np.concatenate(v) for k, v in parts.items()}
    row = cols["row"]
    names = [_canonical(mspec.g, t) for mspec in market.specs for t in mspec.types]
    name_index = np.cumsum([0] + [len(s.types) for s in market.specs])[sp[row]] + oc[row]
    starts = np.array([e.starts_at for e in market.by_index])
    epoch = pd.Timestamp(market.epoch, unit="s", tz="UTC")
    panel = pd.DataFrame(
        {
            "seed": seed,
            "observed_at": epoch + pd.to_timedelta(cols["t"], unit="s"),
            "bookmaker": np.array(books)[cols["book"]],
            "event_id": np.char.add(f"s{seed}:", _event_keys(ev[row])),
            "market": np.array([n[0] for n in names])[name_index],
            "line": np.array([np.nan if s.line is None else s.line for s in market.specs])[sp[row]],
            "outcome": np.array([n[1] for n in names])[name_index],
            "g": np.array([s.g for s in market.specs])[sp[row]],
            "t": np.array([t for s in market.specs for t in s.types])[name_index],
            "price": cols["price"],
            "status": np.where(cols["susp"], "suspended", "open"),
            "is_live": cols["live"],
            "starts_at": epoch + pd.to_timedelta(starts[ev[row]], unit="s"),
        }
    )
    scenarios = pd.DataFrame(
        [
            {
                "scenario_id": seed * 1_000_000 + s.id,
                "seed": seed,
                "type": s.type,
                "start_at": pd.Timestamp(s.start_at),
                "end_at": pd.Timestamp(s.end_at),
                "event_id": f"s{seed}:{s.event_key}",
                "g": s.g,
                "line": s.line,
                "t": s.t,
                "books": list(s.books),
                "cause": s.cause,
            }
            for s in market.scenarios
        ],
        columns=SCENARIO_COLUMNS,
    ).astype({"g": "Int64", "t": "Int64", "line": "float64"})
    return panel, scenarios


def _suspended(market: Market, book: int, n_events: int) -> np.ndarray:
    """(events, market specs) → suspended now at `book`."""
    mask = np.zeros((n_events, len(market.specs)), dtype=bool)
    for (b, e, m), until in market.suspended_until.items():
        if b == book and until > market.now:
            if m is None:
                mask[e, :] = True
            else:
                mask[e, m] = True
    return mask


def _canonical(g: int, t: int) -> tuple[str, str]:
    code = CODE_BY_GT.get((g, t))
    if code is None:
        return raw_market(g), raw_outcome(t)
    return code.market.value, code.outcome.value


def _event_keys(events: np.ndarray) -> np.ndarray:
    return np.char.mod("ev%05d", events)


def label(panel: pd.DataFrame, scenarios: pd.DataFrame, cycle_seconds: float) -> pd.DataFrame:
    """`label`, `scenario_id` and `scenario_type` for every panel row (see the module docstring)."""
    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        rows = panel[["observed_at", "bookmaker", "event_id", "g", "line", "t", "status"]].assign(
            row_id=np.arange(len(panel)), line_key=panel["line"].fillna(-999.0)
        )
        scen = scenarios.assign(line_key=scenarios["line"].astype(float).fillna(-999.0))
        con.register("rows", rows)
        con.register("scenarios", scen)
        # Lagging books stay suspended up to their lag after a suspension's end.
        settle = f"interval '{int(_max_lag_seconds() + cycle_seconds)} seconds'"
        aftermath = f"interval '{int(AFTERMATH.total_seconds())} seconds'"
        event_wide = ", ".join(f"'{t}'" for t in EVENT_WIDE)
        labelled = con.execute(
            f"""
            with named as (
                select scenario_id, type, start_at, end_at, event_id, g, line_key, t,
                       unnest(books) as bookmaker
                from scenarios
            ),
            positives as (
                -- ids grow with start time: the highest is the scenario that started last
                select r.row_id, max(s.scenario_id) as scenario_id
                from rows as r
                join named as s
                    on r.event_id = s.event_id and r.bookmaker = s.bookmaker
                    and r.observed_at >= s.start_at
                    and r.observed_at <= case when s.type = 'suspension' then s.end_at + {settle}
                                              else s.end_at end
                where (s.g is null or (r.g = s.g and r.line_key = s.line_key))
                  and (s.t is null or r.t = s.t)
                  and (s.type <> 'suspension' or r.status = 'suspended')
                group by r.row_id
            ),
            ignored as (
                select distinct r.row_id
                from rows as r
                join scenarios as s
                    on r.event_id = s.event_id
                    and r.observed_at >= s.start_at and r.observed_at <= s.end_at + {aftermath}
                where s.type in ({event_wide}) or s.g is null
                   or (list_contains(s.books, r.bookmaker) and r.g = s.g and r.line_key = s.line_key)
            )
            select
                case when p.row_id is not null then 1 when i.row_id is not null then -1 else 0 end as label,
                p.scenario_id,
                kinds.type as scenario_type
            from rows as r
            left join positives as p on r.row_id = p.row_id
            left join scenarios as kinds on p.scenario_id = kinds.scenario_id
            left join ignored as i on r.row_id = i.row_id
            order by r.row_id
            """
        ).df()
    finally:
        con.close()
    labelled["label"] = labelled["label"].astype("int8")
    labelled["scenario_id"] = labelled["scenario_id"].astype("Int64")
    return labelled


def _max_lag_seconds() -> float:
    return max(b.lag_seconds for b in SimConfig().books)


def build_seed(seed: int, spec: DatasetSpec) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Features and labels of one seed's world: (frame, scenarios, book profiles)."""
    panel, scenarios = simulate(seed, spec)
    sharp = {b.name for b in spec.sim_config(seed).books if b.sharp}
    features, profiles = compute_features(panel, sharp_books=sharp)
    labels = label(panel, scenarios, spec.cycle_seconds)
    frame = pd.concat(
        [panel[KEY_COLUMNS].reset_index(drop=True), features.drop(columns="market"), labels], axis=1
    )
    frame = frame[features["usable"].to_numpy()].drop(columns="usable").reset_index(drop=True)
    return frame, scenarios, profiles.assign(seed=seed)


def build(spec: DatasetSpec, cache_dir: Path | None = None) -> LabelledSet:
    """The labelled set of `spec.seeds`; with `cache_dir`, each seed is generated once and kept
    as Parquet named by the spec's fingerprint."""
    frames, scenario_frames, profile_frames = [], [], []
    for seed in spec.seeds:
        one = spec.with_seeds((seed,))
        cached = cache_dir / f"{one.fingerprint()}" if cache_dir is not None else None
        if cached is not None and (cached / "frame.parquet").exists():
            frame = pd.read_parquet(cached / "frame.parquet")
            scenarios = pd.read_parquet(cached / "scenarios.parquet")
            profiles = pd.read_parquet(cached / "profiles.parquet")
        else:
            frame, scenarios, profiles = build_seed(seed, spec)
            if cached is not None:
                cached.mkdir(parents=True, exist_ok=True)
                frame.to_parquet(cached / "frame.parquet")
                scenarios.to_parquet(cached / "scenarios.parquet")
                profiles.to_parquet(cached / "profiles.parquet")
        frames.append(frame)
        scenario_frames.append(scenarios)
        profile_frames.append(profiles)
    scenarios = pd.concat(scenario_frames, ignore_index=True)
    scenarios = scenarios[scenarios["type"].isin(SCENARIO_TYPES)]
    return LabelledSet(
        spec,
        pd.concat(frames, ignore_index=True),
        scenarios.reset_index(drop=True),
        pd.concat(profile_frames, ignore_index=True),
    )
