"""The simulated market: latent scoring rates that move, books that price them with their own
margin, bias and lag, live goals with suspensions, and injected labeled scenarios.

Everything is a function of the seed and the sequence of `advance` calls, so a run can be
reproduced exactly. Time is simulated: the server advances it on a wall clock (or on request).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson

from oddly.simulator.config import SimConfig
from oddly.simulator.markets import MarketSpec, catalogue, grid, probabilities
from oddly.simulator.scenarios import SCENARIO_TYPES, Overlay, Scenario
from oddly.simulator.teams import LEAGUES, spelling

LOG_RATE_LOW, LOG_RATE_HIGH = float(np.log(0.05)), float(np.log(6.0))
MATCH_SECONDS = 90 * 60
GOAL_SUSPENSION_SECONDS = 45.0
SIDED_TYPES = ("sharp_drop", "steam", "stale_line")  # they shorten the home or the away win
SIDES = ("home", "away")
SUSPENDED_PRICE = 1.001


def round_price(price: np.ndarray) -> np.ndarray:
    """Prices as the platform prints them: 3 decimals under 10, 2 under 100, then 1."""
    price = np.clip(price, 1.01, 1000.0)
    return np.where(
        price < 10, np.round(price, 3), np.where(price < 100, np.round(price, 2), np.round(price, 1))
    )


def apply_margin(p: np.ndarray, margin: float) -> np.ndarray:
    """Implied probabilities q = p^k with sum(q) = 1 + margin: longshots are shortened more
    than favourites (the favourite–longshot bias), as the power method models it."""
    p = np.clip(p, 1e-6, 1.0)
    target = 1.0 + margin
    k = np.ones(p.shape[0])
    log_p = np.log(p)
    for _ in range(8):  # Newton on sum(p^k) - target; converges in a few steps from k = 1
        q = p ** k[:, None]
        f = q.sum(axis=1) - target
        df = (q * log_p).sum(axis=1)
        k = np.clip(k - f / np.where(np.abs(df) < 1e-12, -1e-12, df), 0.3, 1.0)
    return p ** k[:, None]


@dataclass
class Snapshot:
    t: float
    log_home: np.ndarray
    log_away: np.ndarray
    goals_home: np.ndarray
    goals_away: np.ndarray


@dataclass
class Event:
    index: int
    country: str
    league_name: str
    league_id: int
    home: tuple[str, ...]
    away: tuple[str, ...]
    starts_at: float  # simulated seconds since time zero (negative: already kicked off)


@dataclass
class Market:
    config: SimConfig
    now: float = 0.0
    events: list[Event] = field(init=False)
    specs: list[MarketSpec] = field(init=False)

    def __post_init__(self) -> None:
        cfg = self.config
        seeds = np.random.SeedSequence(cfg.seed).spawn(3)
        world, noise_rng = np.random.default_rng(seeds[0]), np.random.default_rng(seeds[1])
        self.rng = np.random.default_rng(seeds[2])
        start = cfg.start or datetime.now(UTC).replace(microsecond=0)
        self.epoch = start.astimezone(UTC).timestamp()
        self.specs = catalogue(cfg.markets_per_event)
        self.by_index = self._make_events(world)
        self.events = sorted(self.by_index, key=lambda e: (e.starts_at, e.index))  # the order books list them
        self.starts = np.array([e.starts_at for e in self.by_index])
        n, n_books = len(self.events), len(cfg.books)
        strength = world.normal(0.0, 0.35, n)
        self.log_home = np.log(1.45) + strength / 2 + world.normal(0, 0.1, n)
        self.log_away = np.log(1.15) - strength / 2 + world.normal(0, 0.1, n)
        self.goals_home = np.zeros(n)
        self.goals_away = np.zeros(n)
        # A small lasting opinion of each book on each outcome (log scale): sharp books err less.
        spread = np.array([0.004 if b.sharp else 0.02 for b in cfg.books])
        self.bias = [
            noise_rng.normal(0.0, 1.0, (n_books, n, len(spec.types))) * spread[:, None, None]
            for spec in self.specs
        ]
        max_lag = max(b.lag_seconds for b in cfg.books)
        self.history: deque[Snapshot] = deque(maxlen=int(max_lag / cfg.step_seconds) + 3)
        self.history.append(self._snapshot())
        self.suspended_until: dict[tuple[int, int, int | None], float] = {}  # (book, event, market|None)
        self.frozen: dict[tuple[int, int], Snapshot] = {}
        self.frozen_until: dict[tuple[int, int], float] = {}
        self.fast_follow: dict[int, float] = {}  # event → until when soft books follow within seconds
        self.last_goal_at: dict[int, float] = {}  # event → when its latest goal fell
        self.overlays: list[Overlay] = []
        self.scenarios: list[Scenario] = []
        self.book_index = {b.name: i for i, b in enumerate(cfg.books)}

    # --- the world ---------------------------------------------------------------------------

    def _make_events(self, world: np.random.Generator) -> list[Event]:
        events = []
        n_live = round(self.config.n_events * self.config.live_share)
        kickoffs: dict[frozenset[str], list[float]] = {}
        for i in range(self.config.n_events):
            for _ in range(20):  # a fixture again within 3 hours would be no real schedule
                country, league_name, league_id, teams = LEAGUES[int(world.integers(len(LEAGUES)))]
                h, a = world.choice(len(teams), size=2, replace=False)
                if i < n_live:
                    starts = -float(world.integers(60, MATCH_SECONDS - 900))
                else:
                    starts = float(world.integers(15, 12 * 60)) * 60
                pair = frozenset((teams[h][0], teams[a][0]))
                if all(abs(starts - other) > 3 * 3600 for other in kickoffs.get(pair, [])):
                    break
            kickoffs.setdefault(pair, []).append(starts)
            events.append(Event(i, country, league_name, league_id, teams[h], teams[a], starts))
        return events

    def event_id(self, book: int, event: int) -> int:
        """Each book numbers events its own way, as real books do."""
        return 300_000_000 + book * 7_000_000 + event * 37 + 11

    def _snapshot(self) -> Snapshot:
        return Snapshot(
            self.now,
            self.log_home.copy(),
            self.log_away.copy(),
            self.goals_home.copy(),
            self.goals_away.copy(),
        )

    def elapsed(self) -> np.ndarray:
        """Seconds played per event (0 before kick-off)."""
        return np.clip(self.now - self.starts, 0, MATCH_SECONDS)

    def at(self) -> datetime:
        return datetime.fromtimestamp(self.epoch + self.now, tz=UTC)

    # --- time --------------------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        step = self.config.step_seconds
        steps = max(1, round(seconds / step))
        for _ in range(steps):
            self._step(step)

    def _step(self, dt: float) -> None:
        cfg = self.config
        n = len(self.events)
        self.now += dt
        moving = self.rng.random(n) < cfg.moves_per_hour * dt / 3600
        self.log_home += moving * self.rng.normal(0.0, cfg.move_size, n)
        self.log_away += moving * self.rng.normal(0.0, cfg.move_size, n)
        # a random walk over a long run must not leave football: 0.05 to 6 expected goals a side
        np.clip(self.log_home, LOG_RATE_LOW, LOG_RATE_HIGH, out=self.log_home)
        np.clip(self.log_away, LOG_RATE_LOW, LOG_RATE_HIGH, out=self.log_away)
        live = (self.elapsed() > 0) & (self.elapsed() < MATCH_SECONDS)
        for goals, log_rate, side in (
            (self.goals_home, self.log_home, "home"),
            (self.goals_away, self.log_away, "away"),
        ):
            chance = np.exp(log_rate) / MATCH_SECONDS * dt
            scored = live & (self.rng.random(n) < chance)
            for e in np.flatnonzero(scored):
                goals[e] += 1
                self._goal(int(e), side)
        for _ in range(self.rng.poisson(cfg.scenarios_per_hour * dt / 3600)):
            self._inject(SCENARIO_TYPES[int(self.rng.integers(len(SCENARIO_TYPES)))])
        self.history.append(self._snapshot())
        self.overlays = [o for o in self.overlays if o.until > self.now]

    def _goal(self, event: int, side: str) -> None:
        self.last_goal_at[event] = self.now
        for b, book in enumerate(self.config.books):
            self.suspended_until[(b, event, None)] = self.now + GOAL_SUSPENSION_SECONDS + book.lag_seconds
        self._record(
            "suspension",
            event,
            None,
            None,
            list(range(len(self.config.books))),
            "none",
            0.0,
            GOAL_SUSPENSION_SECONDS,
            cause=f"goal {side}",
        )

    # --- scenarios ---------------------------------------------------------------------------

    def inject(self, kind: str, event_key: str | None = None, side: str | None = None) -> Scenario:
        """One labeled scenario now, on request (benchmarks, demos): on `event_key` ("ev00012") or
        a random playable event; `side` ("home" or "away") picks the shortened outcome of the
        kinds that shorten one. The current state takes it at once, so a book without lag shows
        it on its next request rather than after the next clock step."""
        if kind not in SCENARIO_TYPES:
            raise ValueError(f"unknown scenario type {kind!r}; one of {', '.join(SCENARIO_TYPES)}")
        if side is not None and (kind not in SIDED_TYPES or side not in SIDES):
            raise ValueError(f"side is {' or '.join(SIDES)}, and only for {', '.join(SIDED_TYPES)}")
        event = None
        if event_key is not None:
            event = next((e.index for e in self.events if f"ev{e.index:05d}" == event_key), None)
            if event is None or self.elapsed()[event] >= MATCH_SECONDS - 600:
                raise ValueError(f"no playable event {event_key!r}; see GET /_sim/events")
        count = len(self.scenarios)
        self._inject(kind, event, None if side is None else SIDES.index(side))
        if len(self.scenarios) == count:
            raise ValueError("no playable event left to inject a scenario on")
        self.history[-1] = self._snapshot()
        return self.scenarios[-1]

    def event_list(self) -> list[dict[str, Any]]:
        """The events still in the feeds: key, teams (canonical names), kick-off, live or not."""
        elapsed = self.elapsed()
        return [
            {
                "event_key": f"ev{e.index:05d}",
                "home": e.home[0],
                "away": e.away[0],
                "league": e.league_name,
                "starts_at": datetime.fromtimestamp(self.epoch + e.starts_at, tz=UTC).isoformat(),
                "is_live": bool(elapsed[e.index] > 0),
            }
            for e in self.events
            if elapsed[e.index] < MATCH_SECONDS
        ]

    def _inject(self, kind: str, event: int | None = None, side: int | None = None) -> None:
        rng = self.rng
        n_books = len(self.config.books)
        if event is None:
            playable = np.flatnonzero(self.elapsed() < MATCH_SECONDS - 600)
            if not len(playable):
                return
            event = int(rng.choice(playable))
        soft = [i for i, b in enumerate(self.config.books) if not b.sharp] or list(range(n_books))
        before = self._true_1x2(event)
        if kind in SIDED_TYPES:
            side = int(rng.integers(2)) if side is None else side
            jump = {"sharp_drop": 0.35, "steam": 0.25, "stale_line": 0.3}[kind]
            (self.log_home if side == 0 else self.log_away)[event] += jump
            (self.log_away if side == 0 else self.log_home)[event] -= jump / 2
            outcome = 0 if side == 0 else 2
            magnitude = float(self._true_1x2(event)[outcome] - before[outcome])
            books = list(range(n_books))
            duration = 300.0
            if kind == "steam":
                self.fast_follow[event] = self.now + 180.0
            if kind == "stale_line":
                book = int(rng.choice(soft))
                self.frozen[(book, event)] = self.history[-1]
                self.frozen_until[(book, event)] = self.now + 600.0
                books, duration = [book], 600.0
            self._record(kind, event, 0, outcome, books, "down", magnitude, duration)
        elif kind == "out_of_line":
            book = int(rng.choice(soft))
            market = int(rng.integers(min(2, len(self.specs))))
            outcome = int(rng.integers(len(self.specs[market].types)))
            duration = float(rng.integers(120, 300))
            self.overlays.append(Overlay(book, event, market, outcome, "factor", 1.35, self.now + duration))
            self._record(kind, event, market, outcome, [book], "up", 0.35, duration)
        elif kind == "arbitrage":
            book = int(rng.choice(soft))
            outcome = int(np.argmax(before))
            duration = float(rng.integers(60, 180))
            self.overlays.append(Overlay(book, event, 0, outcome, "implied", 0.85, self.now + duration))
            self._record(kind, event, 0, outcome, [book], "up", 0.15, duration)
        elif kind == "suspension":
            market = int(rng.integers(len(self.specs)))
            books = list(range(n_books)) if rng.random() < 0.5 else [int(rng.integers(n_books))]
            duration = float(rng.integers(30, 120))
            for b in books:
                self.suspended_until[(b, event, market)] = self.now + duration
            self._record(kind, event, market, None, books, "none", 0.0, duration)

    def _true_1x2(self, event: int) -> np.ndarray:
        g = grid(*self._rates(self._snapshot(), np.array([event])))
        return probabilities(self.specs[0], g)[0] if self.specs[0].kind == "1x2" else np.zeros(3)

    def _record(
        self,
        kind: str,
        event: int,
        market: int | None,
        outcome: int | None,
        books: list[int],
        direction: str,
        magnitude: float,
        duration: float,
        cause: str = "",
    ) -> None:
        spec = self.specs[market] if market is not None else None
        ev = self.by_index[event]
        self.scenarios.append(
            Scenario(
                id=len(self.scenarios) + 1,
                type=kind,
                start_seconds=self.now,
                start_at=self.at(),
                end_at=self.at() + timedelta(seconds=duration),
                event_key=f"ev{event:05d}",
                home=ev.home[0],
                away=ev.away[0],
                event_ids={
                    self.config.books[b].name: self.event_id(b, event) for b in range(len(self.config.books))
                },
                g=spec.g if spec else None,
                line=spec.line if spec else None,
                t=spec.types[outcome] if spec is not None and outcome is not None else None,
                books=[self.config.books[b].name for b in books],
                direction=direction,
                magnitude=round(magnitude, 4),
                cause=cause,
            )
        )

    def ground_truth(self) -> list[dict[str, Any]]:
        return [s.as_dict() for s in self.scenarios]

    # --- what a book shows -------------------------------------------------------------------

    def _view(self, book: int) -> Snapshot:
        """The state book `book` prices now: the true state `lag` seconds ago, with per-event
        exceptions (fast followers during steam, frozen events of a stale book)."""
        view = self.lagged_view(self.config.books[book].lag_seconds)
        for (b, e), snap in self.frozen.items():
            if b == book and self.frozen_until[(b, e)] > self.now:
                _copy_events(snap, view, [e])
        return view

    def lagged_view(self, lag: float) -> Snapshot:
        """The true state `lag` seconds ago (at most the history kept: the slowest book's lag),
        except events in a steam move, which every book follows within seconds."""
        view = self._snapshot_at(self.now - lag)
        fast = [e for e, until in self.fast_follow.items() if until > self.now]
        if fast and lag > 0:
            quick = self._snapshot_at(self.now - min(lag, 5.0))
            _copy_events(quick, view, fast)
        return view

    def probabilities_seen(self, lag: float, markets: list[int]) -> list[np.ndarray]:
        """True probabilities of the market specs `markets` (indexes into `specs`) for every event
        by index, as a book `lag` seconds behind sees them: one (E, outcomes) array per spec."""
        g = grid(*self._rates(self.lagged_view(lag), np.arange(len(self.events))))
        return [probabilities(self.specs[m], g) for m in markets]

    def _snapshot_at(self, t: float) -> Snapshot:
        chosen = self.history[0]
        for snap in self.history:
            if snap.t <= t + 1e-9:
                chosen = snap
            else:
                break
        return Snapshot(
            chosen.t,
            chosen.log_home.copy(),
            chosen.log_away.copy(),
            chosen.goals_home.copy(),
            chosen.goals_away.copy(),
        )

    def _rates(self, snap: Snapshot, events: np.ndarray) -> tuple[np.ndarray, ...]:
        remaining = 1.0 - self.elapsed()[events] / MATCH_SECONDS
        return (
            np.exp(snap.log_home[events]) * remaining,
            np.exp(snap.log_away[events]) * remaining,
            snap.goals_home[events],
            snap.goals_away[events],
        )

    def book_prices(self, book: str) -> list[np.ndarray]:
        """Decimal prices of every market for every event at one book: one (E, outcomes) array
        per market spec; NaN where suspended."""
        b = self.book_index[book]
        spec_book = self.config.books[b]
        everything = np.arange(len(self.events))
        g = grid(*self._rates(self._view(b), everything))
        out = []
        for m, spec in enumerate(self.specs):
            p = probabilities(spec, g) * np.exp(self.bias[m][b])
            p /= p.sum(axis=1, keepdims=True)
            q = apply_margin(p, spec_book.margin)
            for o in self.overlays:
                if o.book == b and o.market == m:
                    q[o.event, o.outcome] = (
                        q[o.event, o.outcome] / o.value
                        if o.kind == "factor"
                        else p[o.event, o.outcome] * o.value
                    )
            out.append(round_price(1.0 / q))
        return out

    def suspended(self, book: int, event: int, market: int) -> bool:
        return (
            self.suspended_until.get((book, event, None), -1.0) > self.now
            or self.suspended_until.get((book, event, market), -1.0) > self.now
        )

    # --- the LineFeed format -----------------------------------------------------------------

    def linefeed_document(
        self, book: str, *, live: bool | None = None, count: int | None = None, event_id: int | None = None
    ) -> dict[str, Any]:
        """The list endpoint's JSON document (or one game's with `event_id`)."""
        b = self.book_index[book]
        prices = self.book_prices(book)
        elapsed = self.elapsed()
        events = []
        for ev in self.events:
            e = ev.index
            if elapsed[e] >= MATCH_SECONDS:
                continue  # finished: gone from the feed
            is_live = bool(elapsed[e] > 0)
            if live is not None and is_live != live:
                continue
            if event_id is not None and self.event_id(b, e) != event_id:
                continue
            events.append(self._event_json(b, ev, prices, is_live))
            if count is not None and len(events) >= count:
                break
        value: Any = events if event_id is None else (events[0] if events else None)
        return {"Error": "", "ErrorCode": 0, "Guid": "", "Id": 0, "Success": True, "Value": value}

    def linefeed_payload(self, book: str, *, live: bool | None = None, count: int | None = None) -> bytes:
        return orjson.dumps(self.linefeed_document(book, live=live, count=count))

    def game_payload(self, book: str, event_id: int) -> bytes:
        return orjson.dumps(self.linefeed_document(book, event_id=event_id))

    def _event_json(self, b: int, ev: Event, prices: list[np.ndarray], is_live: bool) -> dict[str, Any]:
        e = ev.index
        main: list[dict[str, Any]] = []
        alternative: dict[int, list[dict[str, Any]]] = {}
        for m, spec in enumerate(self.specs):
            blocked = self.suspended(b, e, m)
            row = prices[m][e]
            for o, t in enumerate(spec.types):
                item: dict[str, Any] = {
                    "C": SUSPENDED_PRICE if blocked else float(row[o]),
                    "G": spec.g,
                    "T": t,
                }
                if spec.line is not None:
                    # the second side of a handicap quotes its own (negated) handicap
                    item["P"] = -spec.line if spec.kind == "handicap" and o == 1 else spec.line
                    if spec.main:
                        item["CE"] = 1
                if blocked:
                    item["B"] = True
                (main if spec.main else alternative.setdefault(spec.g, [])).append(item)
        home, away = spelling(ev.home, b), spelling(ev.away, b)
        doc: dict[str, Any] = {
            "I": self.event_id(b, e),
            "O1": home,
            "O2": away,
            "O1E": home,
            "O2E": away,
            "L": ev.league_name,
            "LE": ev.league_name,
            "LI": ev.league_id,
            "CN": ev.country,
            "S": int(self.epoch + ev.starts_at),
            "SI": 1,
            "SE": "Football",
            "SN": "Football",
            "EC": sum(len(s.types) for s in self.specs),
            "E": main,
            "AE": [{"G": g, "ME": items} for g, items in alternative.items()],
        }
        if is_live:
            doc["SC"] = {
                "FS": {"S1": int(self.goals_home[e]), "S2": int(self.goals_away[e])},
                "TS": int(self.elapsed()[e]),
            }
            doc["U"] = int(self.epoch + self.now)
        return doc

    def price_count(self, book: str) -> int:
        doc = self.linefeed_document(book)
        return sum(len(ev["E"]) + sum(len(g["ME"]) for g in ev["AE"]) for ev in doc["Value"])

    def state(self) -> dict[str, Any]:
        elapsed = self.elapsed()
        counts: dict[str, int] = {}
        for s in self.scenarios:
            counts[s.type] = counts.get(s.type, 0) + 1
        return {
            "sim_seconds": self.now,
            "sim_time": self.at().isoformat(),
            "books": [b.model_dump() for b in self.config.books],
            "events": len(self.events),
            "live_events": int(((elapsed > 0) & (elapsed < MATCH_SECONDS)).sum()),
            "finished_events": int((elapsed >= MATCH_SECONDS).sum()),
            "markets_per_event": len(self.specs),
            "scenarios": counts,
        }


def _copy_events(source: Snapshot, target: Snapshot, events: list[int]) -> None:
    for name in ("log_home", "log_away", "goals_home", "goals_away"):
        getattr(target, name)[events] = getattr(source, name)[events]
