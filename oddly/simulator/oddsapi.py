"""The Odds API v4, simulated: `/oddsapi/v4/sports` and `/oddsapi/v4/sports/{sport}/odds` in the
real format, with the real usage headers over a quota that runs down.

Its own books (`SimConfig.aggregator_books`) price the same latent market as the LineFeed books,
each with its own margin, bias and lag, drawn from a random stream of their own: serving them never
changes what the LineFeed books show for a seed. `regions` select only these books, so the demo
never gets one book through two feeds; the LineFeed books can still be asked for by name
(`bookmakers=pinnacle`), and then quote exactly what they quote over LineFeed.

Markets: `h2h` (home, away, Draw), `spreads` (the main handicap, each side's own point) and
`totals` (the main total), from the catalogue in `markets.py`; an exchange also answers `h2h_lay`
when asked for `h2h`, as the real API does. A market a book has suspended is left out, as the
real API leaves it out.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from oddly.simulator.config import AggregatorBook, BookSpec
from oddly.simulator.market import (
    GOAL_SUSPENSION_SECONDS,
    MATCH_SECONDS,
    Event,
    Market,
    apply_margin,
    round_price,
)

PREFIX = "/oddsapi"
# The name `POST /_sim/fault` knows this API by.
FAULT_BOOK = "oddsapi"
REGIONS = ("us", "us2", "uk", "eu", "au")
MARKETS = ("h2h", "spreads", "totals")
UPCOMING = "upcoming"
# The simulated leagues as The Odds API keys them: league id → (sport key, title).
SPORTS: dict[int, tuple[str, str]] = {
    88637: ("soccer_epl", "EPL"),
    127733: ("soccer_spain_la_liga", "La Liga - Spain"),
    96463: ("soccer_germany_bundesliga", "Bundesliga - Germany"),
    110163: ("soccer_italy_serie_a", "Serie A - Italy"),
    104553: ("soccer_azerbaijan_premier_league", "Premier League - Azerbaijan"),
}
# Seeds the aggregator's own random stream, apart from the market's three.
_STREAM = 0x0DD5A91
# An exchange's lay price stands this much above its back price.
LAY_SPREAD = 0.02


class OddsApiError(Exception):
    """A refused request, answered as the real API answers it: {"message", "error_code"}."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> dict[str, str]:
        return {
            "message": self.message,
            "error_code": self.code,
            "details_url": f"https://the-odds-api.com/liveapi/guides/v4/api-error-codes.html#{self.code.lower()}",
        }


@dataclass
class Usage:
    """The simulated key's credits, reported on every answer as the real API reports them."""

    remaining: int
    used: int = 0
    last: int = 0

    def charge(self, cost: int) -> None:
        self.remaining -= cost
        self.used += cost
        self.last = cost

    def headers(self) -> dict[str, str]:
        return {
            "x-requests-remaining": str(self.remaining),
            "x-requests-used": str(self.used),
            "x-requests-last": str(self.last),
        }


class OddsApi:
    def __init__(self, market: Market) -> None:
        config = market.config
        self.market = market
        self.key = config.odds_api_key
        self.usage = Usage(config.odds_api_quota)
        self.books: dict[str, BookSpec] = {b.name: b for b in (*config.aggregator_books, *config.books)}
        # each served market → its spec in the market's catalogue (left out when the catalogue is short)
        self.specs = {
            key: m
            for key, m in (
                ("h2h", _first(market, lambda s: s.kind == "1x2")),
                ("spreads", _first(market, lambda s: s.kind == "handicap" and s.main and s.g == 2)),
                ("totals", _first(market, lambda s: s.kind == "total" and s.main and s.g == 17)),
            )
            if m is not None
        }
        rng = np.random.default_rng(np.random.SeedSequence([config.seed, _STREAM]))
        n = len(market.events)
        self.bias = {
            book.name: [
                rng.normal(0.0, 1.0, (n, len(market.specs[m].types))) * (0.004 if book.sharp else 0.02)
                for m in self.specs.values()
            ]
            for book in config.aggregator_books
        }
        self.event_ids = {
            e.index: hashlib.md5(f"{config.seed}:{e.index}".encode()).hexdigest() for e in market.events
        }

    # --- requests ----------------------------------------------------------------------------

    def check_key(self, query: Mapping[str, str]) -> None:
        key = query.get("apiKey", "").strip()
        if not key:
            raise OddsApiError(401, "MISSING_KEY", "API key is missing. Add the apiKey query parameter.")
        if self.key is not None and key != self.key:
            raise OddsApiError(401, "INVALID_KEY", "API key is not valid.")

    def sports(self, query: Mapping[str, str]) -> Callable[[], list[dict[str, Any]]]:
        """The in-season sports (free: costs no credit)."""
        self.check_key(query)

        def answer() -> list[dict[str, Any]]:
            self.usage.charge(0)
            live = {e.league_id for e in self._events(None)}
            return [
                {
                    "key": key,
                    "group": "Soccer",
                    "title": title,
                    "description": next(e.league_name for e in self.market.events if e.league_id == league),
                    "active": league in live,
                    "has_outrights": False,
                }
                for league, (key, title) in SPORTS.items()
                if any(e.league_id == league for e in self.market.events)
            ]

        return answer

    def odds(self, sport: str, query: Mapping[str, str]) -> Callable[[], list[dict[str, Any]]]:
        """Admit one odds request (key, parameters, credits) or raise OddsApiError; the answer,
        called later, builds the events and charges markets × regions (nothing when empty)."""
        self.check_key(query)
        regions, names, markets = (_split(query.get(p)) for p in ("regions", "bookmakers", "markets"))
        markets = markets or ["h2h"]
        if not regions and not names:
            raise OddsApiError(422, "MISSING_REGION", "Missing regions. Specify regions or bookmakers.")
        if bad := [r for r in regions if r not in REGIONS]:
            raise OddsApiError(422, "INVALID_REGION", f"Invalid regions: {','.join(bad)}")
        if bad := [m for m in markets if m not in MARKETS]:
            raise OddsApiError(
                422, "INVALID_MARKET", f"Markets not supported by this endpoint: {','.join(bad)}"
            )
        if query.get("oddsFormat", "decimal") != "decimal":
            raise OddsApiError(422, "INVALID_ODDS_FORMAT", "The simulator serves decimal odds only.")
        unix = query.get("dateFormat", "iso") == "unix"
        league = next((league for league, (key, _) in SPORTS.items() if key == sport), None)
        if league is None and sport != UPCOMING:
            raise OddsApiError(404, "UNKNOWN_SPORT", f"Unknown sport {sport!r}. See GET /v4/sports.")
        if names:
            books = [self.books[n] for n in names if n in self.books]
            cost = len(markets) * math.ceil(len(names) / 10)
        else:
            books = [
                b
                for b in self.books.values()
                if isinstance(b, AggregatorBook) and set(b.regions) & set(regions)
            ]
            cost = len(markets) * len(regions)
        if self.usage.remaining < cost:
            raise OddsApiError(401, "OUT_OF_USAGE_CREDITS", "Usage quota has been reached.")

        def answer() -> list[dict[str, Any]]:
            events = self.odds_document(league, books, markets, unix)
            self.usage.charge(cost if events else 0)
            return events

        return answer

    # --- the format --------------------------------------------------------------------------

    def odds_document(
        self, league: int | None, books: list[BookSpec], markets: list[str], unix: bool = False
    ) -> list[dict[str, Any]]:
        """Every unfinished event of `league` (all leagues: None) with each book's markets."""
        market = self.market
        stamp = _unix if unix else _iso
        served = [k for k in MARKETS if k in markets and k in self.specs]
        quotes = {b.name: self._quotes(b, served) for b in books}
        documents = []
        for ev in self._events(league):
            sport_key, title = SPORTS[ev.league_id]
            home, away = ev.home[0], ev.away[0]
            bookmakers = []
            for book in books:
                updated, by_market = quotes[book.name]
                lines = []
                for key in served:
                    prices = by_market[key][ev.index]
                    if np.isnan(prices).any():  # suspended: the real API leaves the market out
                        continue
                    lines.append(_market(key, prices, home, away, self._line(key), stamp(updated)))
                    if key == "h2h" and isinstance(book, AggregatorBook) and book.exchange:
                        lay = round_price(prices * (1 + LAY_SPREAD)).round(2)
                        lines.append(_market("h2h_lay", lay, home, away, None, stamp(updated)))
                if lines:
                    bookmakers.append(
                        {
                            "key": book.name,
                            "title": _title(book),
                            "last_update": stamp(updated),
                            "markets": lines,
                        }
                    )
            documents.append(
                {
                    "id": self.event_ids[ev.index],
                    "sport_key": sport_key,
                    "sport_title": title,
                    "commence_time": stamp(market.epoch + ev.starts_at),
                    "home_team": home,
                    "away_team": away,
                    "bookmakers": bookmakers,
                }
            )
        return documents

    def _events(self, league: int | None) -> list[Event]:
        elapsed = self.market.elapsed()
        return [
            e
            for e in self.market.events
            if elapsed[e.index] < MATCH_SECONDS and (league is None or e.league_id == league)
        ]

    def _line(self, key: str) -> float | None:
        return self.market.specs[self.specs[key]].line

    def _quotes(self, book: BookSpec, served: list[str]) -> tuple[float, dict[str, np.ndarray]]:
        """When the book last priced (unix seconds) and its prices per served market: one
        (E, outcomes) array by event index, NaN where suspended."""
        market = self.market
        updated = market.epoch + max(0.0, market.now - book.lag_seconds)
        specs = [self.specs[k] for k in served]
        if not isinstance(book, AggregatorBook):  # a LineFeed book: what it quotes there
            b = market.book_index[book.name]
            everything = market.book_prices(book.name)
            out = {}
            for key, m in zip(served, specs, strict=True):
                prices = everything[m].astype(float)
                blocked = [e.index for e in market.events if market.suspended(b, e.index, m)]
                prices[blocked] = np.nan
                out[key] = prices
            return updated, out
        suspended = np.array(
            [
                market.now - market.last_goal_at.get(e, -math.inf)
                < GOAL_SUSPENSION_SECONDS + book.lag_seconds
                for e in range(len(market.events))
            ]
        )
        bias = dict(zip(self.specs, self.bias[book.name], strict=True))
        out = {}
        for key, p in zip(served, market.probabilities_seen(book.lag_seconds, specs), strict=True):
            p = p * np.exp(bias[key])
            p /= p.sum(axis=1, keepdims=True)
            q = apply_margin(p, book.margin)
            prices = round_price(1.0 / q).round(2)
            prices[suspended] = np.nan
            out[key] = prices
        return updated, out


def break_odds(document: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The answer as a misbehaving API would send it (a copy; the market is untouched)."""
    if kind == "empty":
        return []
    if kind not in ("schema_drift", "zero_prices", "absurd_prices"):
        return document
    broken = [dict(e, bookmakers=[_deep(b) for b in e["bookmakers"]]) for e in document]
    outcomes = [o for e in broken for b in e["bookmakers"] for m in b["markets"] for o in m["outcomes"]]
    if kind == "schema_drift":
        for i, event in enumerate(broken):
            if i % 3 == 0:
                event.pop("home_team")  # events without their home team
        for j, outcome in enumerate(outcomes):
            if j % 2 == 0:
                outcome["odds"] = outcome.pop("price")  # a renamed price field
    else:
        bad = (0, 0.0) if kind == "zero_prices" else (0.5, -3, 1e7)
        for j, outcome in enumerate(outcomes):
            if j % 7 == 0:
                outcome["price"] = bad[j % len(bad)]
    return broken


def _market(
    key: str, prices: np.ndarray, home: str, away: str, line: float | None, updated: str | int
) -> dict[str, Any]:
    if key in ("h2h", "h2h_lay"):
        names = [home, away, "Draw"]
        outcomes = [{"name": n, "price": float(prices[i])} for n, i in zip(names, (0, 2, 1), strict=True)]
    elif key == "spreads":  # the catalogue's line is the home side's; the away side quotes its own
        point = 0.0 if line is None else line
        outcomes = [
            {"name": home, "price": float(prices[0]), "point": point},
            {"name": away, "price": float(prices[1]), "point": -point + 0.0},
        ]
    else:
        outcomes = [
            {"name": "Over", "price": float(prices[0]), "point": line},
            {"name": "Under", "price": float(prices[1]), "point": line},
        ]
    return {"key": key, "last_update": updated, "outcomes": outcomes}


def _first(market: Market, wanted: Callable[[Any], bool]) -> int | None:
    return next((m for m, spec in enumerate(market.specs) if wanted(spec)), None)


def _title(book: BookSpec) -> str:
    return book.title if isinstance(book, AggregatorBook) else book.name.title()


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(round(seconds), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _unix(seconds: float) -> int:
    return round(seconds)


def _deep(book: dict[str, Any]) -> dict[str, Any]:
    return dict(book, markets=[dict(m, outcomes=[dict(o) for o in m["outcomes"]]) for m in book["markets"]])
