"""The Odds API v4 agent (the-odds-api.com): one aggregator, many bookmakers.

`GET /v4/sports/{sport}/odds?regions=uk,eu&markets=h2h,spreads,totals&oddsFormat=decimal` answers
a JSON list of events, each with every bookmaker's markets:

    [{"id", "sport_key", "sport_title", "commence_time", "home_team", "away_team",
      "bookmakers": [{"key", "title", "last_update",
                      "markets": [{"key", "last_update", "outcomes": [{"name", "price", "point"}]}]}]}]

Every bookmaker in it becomes its own bookmaker in the canonical rows, under the name this project
gives that book (`BOOKMAKER_NAMES`: Betfair's regional exchange keys are the sharp reference
`betfair_ex`, Pinnacle is `pinnacle`), each market's `last_update` its source time.

Each odds request costs credits of the key's quota (markets × regions) and every answer says in
its headers what is left (`x-requests-remaining`), used (`x-requests-used`) and what the request
cost (`x-requests-last`). A cycle first asks the free `/v4/sports` for those headers, then
requests one sport after another while the credits left after the next request stay at or above
`quota_floor`, and reports the budget in the run's metadata (`agent_requests_remaining` …).

The key comes only from the environment variable named by `api_key_env` (ODDLY_THE_ODDS_API_KEY by
default). It travels as the `apiKey` query parameter, which the shared HTTP client hides in every
URL it shows and in httpx's own request log.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, TypeGuard

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from oddly.feeds.base import FeedAgent, FeedError, FetchOutcome, ParseResult, Payload
from oddly.feeds.http import FeedHttpClient, FetchFailedError
from oddly.model import RAW_PREFIX, Market, Outcome, PriceColumns, Reject, utc

API_KEY_ENV = "ODDLY_THE_ODDS_API_KEY"
FEATURED_MARKETS = ("h2h", "spreads", "totals")
HEADER_REMAINING, HEADER_USED, HEADER_LAST = "x-requests-remaining", "x-requests-used", "x-requests-last"
# How much of an unreadable body is kept in quarantine.
BODY_SAMPLE = 2048

# The Odds API's bookmaker keys → the names this project uses for the same book, so one book has
# one name whichever feed or import brings it (the sharp references `pinnacle` and `betfair_ex`
# as in config/rules.yaml and the dbt var `sharp_books`; the others as the football-data import
# names them). Betfair's UK and EU exchange keys are one exchange (its Australian one, kept as
# `betfair_ex_au`, is not). Keys not listed keep their own name; `options.bookmaker_names` adds
# or overrides entries.
BOOKMAKER_NAMES: dict[str, str] = {
    "pinnacle": "pinnacle",
    "betfair_ex_uk": "betfair_ex",
    "betfair_ex_eu": "betfair_ex",
    "williamhill": "william_hill",
    "ladbrokes_uk": "ladbrokes",
    "onexbet": "1xbet",
}
# The sport group (the sport key's first part) → this project's sport names (as the LineFeed
# agent names them, so events match across feeds).
SPORT_NAMES = {
    "soccer": "football",
    "icehockey": "ice_hockey",
    "americanfootball": "american_football",
    "aussierules": "aussie_rules",
    "rugbyleague": "rugby_league",
    "rugbyunion": "rugby_union",
}
# Sports whose head-to-head market is three-way even if a book's copy lacks the draw.
THREE_WAY_SPORTS = frozenset({"football"})

ApiKey = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]+$")]


class TheOddsApiOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Sport keys (GET /v4/sports lists them), in order of priority: when the budget runs short,
    # the last ones are skipped first.
    sports: list[ApiKey] = Field(default_factory=lambda: ["soccer_epl"], min_length=1)
    regions: list[ApiKey] = Field(default_factory=lambda: ["uk", "eu"])
    markets: list[ApiKey] = Field(default_factory=lambda: list(FEATURED_MARKETS), min_length=1)
    odds_format: Literal["decimal"] = "decimal"
    # Bookmaker keys to ask for instead of regions (every 10 of them cost as one region).
    bookmakers: list[ApiKey] = Field(default_factory=list)
    # Stop requesting before the credits left would fall below this.
    quota_floor: int = Field(100, ge=0)
    # The environment variable holding the key (never the key itself).
    api_key_env: str = Field(API_KEY_ENV, pattern=r"^ODDLY_[A-Z0-9_]+$")
    bookmaker_names: dict[str, str] = Field(default_factory=dict)
    # Books to leave out (API keys or our names), e.g. ones another feed already polls directly.
    exclude_bookmakers: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _regions_or_bookmakers(self) -> TheOddsApiOptions:
        if not self.regions and not self.bookmakers:
            raise ValueError("set regions (e.g. [uk, eu]) or bookmakers: The Odds API needs one of them")
        return self

    @property
    def request_cost(self) -> int:
        """Credits one odds request costs at most: markets × regions (an answer without events
        costs nothing)."""
        regions = math.ceil(len(self.bookmakers) / 10) if self.bookmakers else len(self.regions)
        return len(self.markets) * regions


@dataclass
class Budget:
    """The key's usage credits as the last answer's headers told them, and whether one more odds
    request still leaves `floor` of them."""

    floor: int
    cost: int
    remaining: int | None = None
    used: int | None = None
    last: int | None = None

    def read(self, payload: Payload, *, charged: bool) -> None:
        headers = {k.lower(): v for k, v in payload.meta.get("headers", {}).items()}
        remaining = _count(headers.get(HEADER_REMAINING))
        if remaining is not None:
            self.remaining = remaining
        elif charged and self.remaining is not None:
            self.remaining -= self.cost  # no header: assume the most the request can cost
        self.used = _count(headers.get(HEADER_USED), self.used)
        self.last = _count(headers.get(HEADER_LAST), self.last)

    def stop_reason(self) -> str | None:
        """Why no further odds request may be made, in words, or None."""
        if self.remaining is not None and self.remaining - self.cost < self.floor:
            return (
                f"quota floor reached: {self.remaining} requests left (floor {self.floor}, one request "
                f"costs up to {self.cost}); not requesting until the quota resets or quota_floor is lowered"
            )
        return None

    def notes(self) -> dict[str, int | float | str]:
        known = {"requests_remaining": self.remaining, "requests_used": self.used, "requests_last": self.last}
        return {
            **{k: v for k, v in known.items() if v is not None},
            "quota_floor": self.floor,
            "request_cost": self.cost,
        }


class TheOddsApiAgent(FeedAgent):
    name: ClassVar[str] = "the_odds_api"
    Options: ClassVar[type[BaseModel]] = TheOddsApiOptions
    options: TheOddsApiOptions

    def __init__(self, feed: Any) -> None:
        super().__init__(feed)
        self.names = {**BOOKMAKER_NAMES, **self.options.bookmaker_names}
        self.excluded = frozenset(self.options.exclude_bookmakers)

    # --- fetching ----------------------------------------------------------------------------

    def api_key(self) -> str:
        env = self.options.api_key_env
        key = os.environ.get(env, "").strip()
        if not key:
            raise FeedError(
                f"no The Odds API key: set the environment variable {env} to your key "
                "(options.api_key_env names the variable; a key never goes in the settings file)"
            )
        return key

    def sports_url(self) -> str:
        return f"{self.feed.base_url}/v4/sports"

    def odds_url(self, sport: str) -> str:
        return f"{self.feed.base_url}/v4/sports/{sport}/odds"

    def odds_params(self, key: str) -> dict[str, str]:
        o = self.options
        chosen = {"bookmakers": ",".join(o.bookmakers)} if o.bookmakers else {"regions": ",".join(o.regions)}
        return {
            "apiKey": key,
            **chosen,
            "markets": ",".join(o.markets),
            "oddsFormat": o.odds_format,
            "dateFormat": "iso",
        }

    async def fetch(self, http: FeedHttpClient) -> FetchOutcome:
        key = self.api_key()
        budget = Budget(self.options.quota_floor, self.options.request_cost)
        try:  # free of charge, and its headers tell the budget before any credit is spent
            budget.read(await http.get(self.sports_url(), {"apiKey": key}, kind="sports"), charged=False)
        except FetchFailedError as exc:
            if exc.status == 401:
                raise FeedError(self._refused(exc)) from None
            raise FeedError(f"{exc}; the request budget is unknown, so no odds were requested") from None
        outcome = FetchOutcome()
        sports = self.options.sports
        fetched = 0
        for i, sport in enumerate(sports):
            stop = budget.stop_reason()
            if stop is not None:
                outcome.errors.append(f"{stop}; skipped {', '.join(sports[i:])}")
                break
            try:
                payload = await http.get(self.odds_url(sport), self.odds_params(key), kind=f"{sport} odds")
            except FetchFailedError as exc:
                if exc.status == 401:  # the key went bad or ran out mid-cycle: the rest would fail too
                    outcome.errors.append(f"{self._refused(exc)}; skipped {', '.join(sports[i:])}")
                    break
                outcome.errors.append(str(exc))
                continue
            budget.read(payload, charged=True)
            outcome.payloads.append(payload)
            fetched += 1
        outcome.requests = http.requests
        outcome.notes = {**budget.notes(), "sports_fetched": fetched, "sports_requested": len(sports)}
        return outcome

    def _refused(self, exc: FetchFailedError) -> str:
        env = self.options.api_key_env
        return (
            f"{exc}: The Odds API refused the key in {env} (missing, invalid or deactivated, or its usage "
            f"credits are used up); set {env} to a valid key, or wait for the quota to reset"
        )

    # --- parsing -----------------------------------------------------------------------------

    def parse(self, payload: Payload) -> ParseResult:
        result = ParseResult()
        aggregator = self.feed.bookmaker
        try:
            document = orjson.loads(payload.body)
        except orjson.JSONDecodeError as exc:
            reason = f"malformed JSON ({exc}); {len(payload.body)} bytes received"
            result.rejects.append(Reject(reason, payload.body[:BODY_SAMPLE], aggregator))
            return result
        if isinstance(document, dict):  # the API answers errors as {"message", "error_code"}
            said = document.get("message") or document.get("error_code") or ", ".join(sorted(document)[:8])
            result.rejects.append(Reject(f"an error object instead of events: {said}", document, aggregator))
        elif not isinstance(document, list):
            reason = f"unexpected JSON: a {type(document).__name__}, expected a list of events"
            result.rejects.append(Reject(reason, document, aggregator))
        else:
            seen: set[tuple[Any, ...]] = set()
            received = payload.received_at.timestamp()
            requested_sport = payload.kind.split(" ")[0]  # "soccer_epl odds"
            for event in document:
                self._parse_event(event, received, requested_sport, result, seen)
        return result

    def _parse_event(
        self, raw: Any, received: float, requested_sport: str, result: ParseResult, seen: set[tuple[Any, ...]]
    ) -> None:
        aggregator = self.feed.bookmaker
        if not isinstance(raw, dict):
            result.rejects.append(Reject(f"event is a {type(raw).__name__}, not an object", raw, aggregator))
            return
        header = {k: v for k, v in raw.items() if k != "bookmakers"}
        event_id = raw.get("id")
        if not _text(event_id):
            result.rejects.append(Reject("event without id", header, aggregator))
            return
        home, away = raw.get("home_team"), raw.get("away_team")
        if not _text(home) or not _text(away):
            result.rejects.append(Reject("event without home_team/away_team", header, aggregator, event_id))
            return
        starts = _seconds(raw.get("commence_time"))
        if starts is None:
            reason = f"commence_time {raw.get('commence_time')!r} is not a time"
            result.rejects.append(Reject(reason, header, aggregator, event_id))
            return
        books = raw.get("bookmakers", [])
        if not isinstance(books, list):
            reason = f"bookmakers is a {type(books).__name__}, not a list"
            result.rejects.append(Reject(reason, header, aggregator, event_id))
            return
        sport_key = raw["sport_key"] if _text(raw.get("sport_key")) else requested_sport
        group = sport_key.split("_")[0]
        sport = SPORT_NAMES.get(group, group) or "unknown"
        event = Event(
            id=event_id,
            sport=sport,
            league=raw.get("sport_title") if _text(raw.get("sport_title")) else sport_key or None,
            home=home,
            away=away,
            starts_at=starts,
            is_live=starts <= received,
        )
        for name, book in self._books(books, event_id, result):
            self._parse_book(name, book, event, result, seen)

    def _books(
        self, books: list[Any], event_id: str, result: ParseResult
    ) -> list[tuple[str, dict[str, Any]]]:
        """Each book under our name, once: where two API keys are one book (Betfair's UK and EU
        exchange in a uk,eu request), the copy updated last."""
        chosen: dict[str, tuple[float, dict[str, Any]]] = {}
        for book in books:
            if not isinstance(book, dict) or not _text(book.get("key")):
                what = "bookmaker without key" if isinstance(book, dict) else "bookmaker is not an object"
                result.rejects.append(Reject(what, _without(book, "markets"), self.feed.bookmaker, event_id))
                continue
            key: str = book["key"]
            name = self.names.get(key, key)
            if key in self.excluded or name in self.excluded:
                continue
            updated = _seconds(book.get("last_update"))
            updated = -math.inf if updated is None else updated
            if name not in chosen or updated > chosen[name][0]:
                chosen[name] = (updated, book)
        return [(name, book) for name, (_, book) in chosen.items()]

    def _parse_book(
        self, name: str, book: dict[str, Any], event: Event, result: ParseResult, seen: set[tuple[Any, ...]]
    ) -> None:
        markets = book.get("markets", [])
        if not isinstance(markets, list):
            reason = f"{name}: markets is a {type(markets).__name__}, not a list"
            result.rejects.append(Reject(reason, _without(book, "markets"), name, event.id))
            return
        book_ts = _seconds(book.get("last_update"))
        for market in markets:
            if not isinstance(market, dict) or not _text(market.get("key")):
                result.rejects.append(Reject(f"{name}: market without key", market, name, event.id))
                continue
            key = market["key"]
            outcomes = market.get("outcomes")
            if not isinstance(outcomes, list):
                reason = f"{name} {key}: outcomes is a {type(outcomes).__name__}, not a list"
                result.rejects.append(Reject(reason, market, name, event.id))
                continue
            three_way = event.sport in THREE_WAY_SPORTS or any(
                isinstance(o, dict) and _side(o.get("name"), event) == Outcome.DRAW for o in outcomes
            )
            rows: list[tuple[str, str, float | None, Any]] = []
            for outcome in outcomes:
                selection = _selection(key, outcome, event, three_way)
                if isinstance(selection, str):
                    record = {"bookmaker": book["key"], "market": key, "outcome": outcome}
                    result.rejects.append(Reject(f"{name} {key}: {selection}", record, name, event.id))
                    continue
                identity = (name, event.id, *selection[:3])
                if identity in seen:
                    continue
                seen.add(identity)
                rows.append(selection)
            if not rows:
                continue
            if key not in FEATURED_MARKETS:
                result.unmapped[key] += len(rows)
            market_ts = _seconds(market.get("last_update"))
            columns: PriceColumns = result.rows
            columns.add_event(
                len(rows),
                bookmaker=name,
                source_event_id=event.id,
                sport=event.sport,
                league=event.league,
                country=None,
                home=event.home,
                away=event.away,
                starts_at=event.starts_at,
                is_live=event.is_live,
                period="ft",
                source_ts=book_ts if market_ts is None else market_ts,
            )
            markets_, outcomes_, lines, prices = zip(*rows, strict=True)
            columns.market.extend(markets_)
            columns.outcome.extend(outcomes_)
            columns.line.extend(lines)
            columns.price.extend(prices)
            columns.status.extend(["open"] * len(rows))


@dataclass(frozen=True)
class Event:
    id: str
    sport: str
    league: str | None
    home: str
    away: str
    starts_at: float
    is_live: bool


def _selection(
    key: str, outcome: Any, event: Event, three_way: bool
) -> tuple[str, str, float | None, Any] | str:
    """(market, outcome, line, price) of one API outcome, or why it cannot be read. Handicap
    lines are the home side's (the away side quotes its own, negated), as everywhere in the
    warehouse; quarter lines (±0.25, ±0.75 …) are Asian markets, so they meet the same lines of
    books that quote Asian markets apart."""
    if not isinstance(outcome, dict):
        return f"outcome is a {type(outcome).__name__}, not an object"
    name, point, price = outcome.get("name"), outcome.get("point"), outcome.get("price")
    if not _text(name):
        return "outcome without a name"
    side = _side(name, event)
    number = _finite(point)
    if key == "h2h":
        if side not in (Outcome.HOME, Outcome.AWAY, Outcome.DRAW):
            return f"h2h outcome {name!r} is neither {event.home!r}, {event.away!r} nor Draw"
        market = Market.ONE_X_TWO if three_way else Market.MONEYLINE
        return market.value, side.value, None, price
    if key == "spreads":
        if side not in (Outcome.HOME, Outcome.AWAY):
            return f"spreads outcome {name!r} is neither {event.home!r} nor {event.away!r}"
        if number is None:
            return f"spreads outcome {name!r} without a point (point={point!r})"
        line = (number if side == Outcome.HOME else -number) + 0.0  # + 0.0 turns -0.0 into 0.0
        market = Market.ASIAN_HANDICAP if _quarter(line) else Market.HANDICAP
        return market.value, side.value, line, price
    if key == "totals":
        if side not in (Outcome.OVER, Outcome.UNDER):
            return f"totals outcome {name!r} is neither Over nor Under"
        if number is None:
            return f"totals outcome {name!r} without a point (point={point!r})"
        market = Market.ASIAN_TOTAL if _quarter(number) else Market.TOTAL
        return market.value, side.value, number, price
    # A market this agent does not map (h2h_lay of the exchanges, …): kept under its own key.
    known = side.value if side is not None else f"{RAW_PREFIX}{name}"
    return f"{RAW_PREFIX}{key}", known, number, price


def _side(name: Any, event: Event) -> Outcome | None:
    if not isinstance(name, str):
        return None
    if name == event.home:
        return Outcome.HOME
    if name == event.away:
        return Outcome.AWAY
    folded = " ".join(name.split()).casefold()
    for team, side in ((event.home, Outcome.HOME), (event.away, Outcome.AWAY)):
        if folded == " ".join(team.split()).casefold():
            return side
    return {"draw": Outcome.DRAW, "over": Outcome.OVER, "under": Outcome.UNDER}.get(folded)


def _quarter(line: float) -> bool:
    return abs(line * 4 - round(line * 4)) < 1e-9 and abs(line * 2 - round(line * 2)) > 1e-9


def _text(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and bool(value.strip())


def _finite(value: Any) -> float | None:
    return float(value) if type(value) in (int, float) and math.isfinite(value) else None


def _seconds(value: Any) -> float | None:
    """An ISO 8601 time (dateFormat=iso) or unix seconds (dateFormat=unix) as unix seconds."""
    if type(value) in (int, float):
        return float(value) if math.isfinite(value) else None
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return utc(when).timestamp()


def _count(value: str | None, default: int | None = None) -> int | None:
    """A usage header as a whole number of credits (the API may print "499.0")."""
    try:
        return round(float(value)) if value is not None else default
    except ValueError:
        return default


def _without(value: Any, key: str) -> Any:
    return {k: v for k, v in value.items() if k != key} if isinstance(value, dict) else value
