"""The LineFeed agent: 22Bet and the rest of the 1xBet platform (1xBet, Melbet, Betwinner …),
one JSON API under different domains.

Endpoints (under the feed's base URL and optional `/service-api` prefix): pre-match list
`/LineFeed/Get1x2_VZip`, live list `/LiveFeed/Get1x2_VZip`, one game with every market
`/LineFeed/GetGameZip` and `/LiveFeed/GetGameZip`. Field meanings: ../shared/data/SOURCES.md.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, ClassVar

import orjson
from pydantic import BaseModel, ConfigDict, Field

from oddly.feeds.base import FeedAgent, FeedError, FetchOutcome, ParseResult, Payload
from oddly.feeds.http import FeedHttpClient
from oddly.feeds.linefeed_codes import CODE_BY_GT, SPORTS, CodeNames, load_code_names
from oddly.model import PriceColumns, Reject

# The platform's placeholder for a blocked price.
SUSPENDED_AT_OR_BELOW = 1.001
# How much of an unreadable body is kept in quarantine.
BODY_SAMPLE = 2048

PREMATCH, LIVE = "prematch", "live"
# (G, T) → (market, outcome, line sign, default line) as plain values for the inner loop.
_LOOKUP = {gt: (c.market.value, c.outcome.value, c.line_sign, c.default_line) for gt, c in CODE_BY_GT.items()}
_FEED_PATH = {PREMATCH: "LineFeed", LIVE: "LiveFeed"}


class LineFeedOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path_prefix: str = ""
    sports: list[int] = Field(default_factory=lambda: [1])
    champs: list[int] = Field(default_factory=list)
    count: int = Field(50, ge=10, le=5000)
    lng: str = "en"
    mode: int = 4
    country: int | None = None
    partner: int | None = None
    tf: int | None = None
    tz: int | None = None
    prematch: bool = True
    live: bool = False
    full_markets: bool = False
    max_games: int = Field(50, ge=1, le=2000)
    names_dir: Path | None = None


class LineFeedAgent(FeedAgent):
    name: ClassVar[str] = "linefeed"
    Options: ClassVar[type[BaseModel]] = LineFeedOptions
    options: LineFeedOptions

    def __init__(self, feed: Any) -> None:
        super().__init__(feed)
        self.names: CodeNames | None = (
            load_code_names(self.options.names_dir) if self.options.names_dir is not None else None
        )

    # --- fetching ----------------------------------------------------------------------------

    def url(self, kind: str, endpoint: str) -> str:
        prefix = "/" + self.options.path_prefix.strip("/") if self.options.path_prefix.strip("/") else ""
        return f"{self.feed.base_url}{prefix}/{_FEED_PATH[kind]}/{endpoint}"

    def list_params(self) -> dict[str, str | int]:
        o = self.options
        params: dict[str, str | int] = {
            "sports": ",".join(map(str, o.sports)),
            "count": o.count,
            "lng": o.lng,
            "mode": o.mode,
            "getEmpty": "true",
        }
        if o.champs:
            params["champs"] = ",".join(map(str, o.champs))
        for name in ("country", "partner", "tf", "tz"):
            value = getattr(o, name)
            if value is not None:
                params[name] = value
        return params

    async def fetch(self, http: FeedHttpClient) -> FetchOutcome:
        kinds = [k for k, on in ((PREMATCH, self.options.prematch), (LIVE, self.options.live)) if on]
        outcome = FetchOutcome()
        lists = await asyncio.gather(
            *(http.get(self.url(k, "Get1x2_VZip"), self.list_params(), kind=k) for k in kinds),
            return_exceptions=True,
        )
        for result in lists:
            if isinstance(result, FeedError):
                outcome.errors.append(str(result))
            elif isinstance(result, BaseException):
                raise result
            else:
                outcome.payloads.append(result)
        if self.options.full_markets:
            games = [(p.kind, gid) for p in outcome.payloads for gid in _event_ids(p.body)][
                : self.options.max_games
            ]
            answers = await asyncio.gather(
                *(
                    http.get(
                        self.url(kind, "GetGameZip"),
                        {"id": gid, "isSubGames": "true", "grouped": "true", "lng": self.options.lng},
                        kind=f"game-{kind}",
                    )
                    for kind, gid in games
                ),
                return_exceptions=True,
            )
            for result in answers:
                if isinstance(result, FeedError):
                    outcome.errors.append(str(result))
                elif isinstance(result, BaseException):
                    raise result
                else:
                    outcome.payloads.append(result)
        outcome.requests = http.requests
        if not outcome.payloads:
            raise FeedError("; ".join(outcome.errors) or "no endpoint enabled (set prematch or live)")
        return outcome

    # --- parsing -----------------------------------------------------------------------------

    def parse(self, payload: Payload) -> ParseResult:
        result = ParseResult()
        events, problem = _events(payload.body)
        if problem is not None:
            result.rejects.append(Reject(problem, payload.body[:BODY_SAMPLE], self.feed.bookmaker))
            return result
        is_live = payload.kind.endswith(LIVE)
        for event in events:
            self._parse_event(event, is_live, result)
        return result

    def _parse_event(self, event: Any, is_live: bool, result: ParseResult) -> None:
        bookmaker = self.feed.bookmaker
        rejects = result.rejects
        if not isinstance(event, dict):
            rejects.append(Reject(f"event is a {type(event).__name__}, not an object", event, bookmaker))
            return
        event_id = event.get("I")
        if event_id is None:
            rejects.append(Reject("event without id (I)", _event_header(event), bookmaker))
            return
        event_id = str(event_id)
        home = event.get("O1E") or event.get("O1")
        away = event.get("O2E") or event.get("O2")
        starts = event.get("S")
        if not home or not away:
            rejects.append(
                Reject("event without team names (O1/O2)", _event_header(event), bookmaker, event_id)
            )
            return
        if not isinstance(starts, int | float):
            rejects.append(
                Reject(
                    f"event start S={starts!r} is not unix seconds", _event_header(event), bookmaker, event_id
                )
            )
            return

        markets: list[str] = []
        outcomes: list[str] = []
        lines: list[float | None] = []
        prices: list[Any] = []
        statuses: list[str] = []
        seen: set[tuple[Any, Any, Any]] = set()
        unmapped = result.unmapped
        lookup = _LOOKUP
        number = (int, float)
        for o in _outcomes(event):
            try:
                g = o["G"]
                t = o["T"]
            except (KeyError, TypeError, IndexError):
                g = t = None
            if type(g) is not int or type(t) is not int:
                reason = (
                    "outcome is not an object" if type(o) is not dict else "outcome without integer G and T"
                )
                rejects.append(Reject(reason, o, bookmaker, event_id))
                continue
            p = o.get("P")
            key = (g, t, p)
            if key in seen:  # E[] and AE[] both list the main lines
                continue
            seen.add(key)
            code = lookup.get((g, t))
            if code is None:
                market, outcome = f"raw:g{g}", f"raw:t{t}"
                line = float(p) if type(p) in number else None
                unmapped[f"g{g}/t{t}"] += 1
            else:
                market, outcome, sign, default = code
                if sign is None:
                    line = None
                elif type(p) in number:
                    line = sign * p + 0.0  # + 0.0 turns -0.0 into 0.0
                elif p is None and default is not None:
                    line = default
                else:
                    rejects.append(
                        Reject(f"{market} {outcome} without a line (P={p!r})", o, bookmaker, event_id)
                    )
                    continue
            price = o.get("C")
            if price is None:
                price = _number(o.get("CV"))
            markets.append(market)
            outcomes.append(outcome)
            lines.append(line)
            prices.append(price)
            if o.get("B") is True or (type(price) in number and price <= SUSPENDED_AT_OR_BELOW):
                statuses.append("suspended")
            else:
                statuses.append("open")

        n = len(prices)
        if not n:
            return
        rows: PriceColumns = result.rows
        sport_id = event.get("SI")
        sport = SPORTS.get(sport_id) if type(sport_id) is int else None
        if sport is None:
            sport = str(event.get("SE") or f"sport{sport_id}").strip().lower().replace(" ", "_")
        updated = event.get("U")
        rows.add_event(
            n,
            bookmaker=bookmaker,
            source_event_id=event_id,
            sport=sport,
            league=event.get("LE") or event.get("L"),
            country=event.get("CE") or event.get("CN"),
            home=str(home),
            away=str(away),
            starts_at=float(starts),
            is_live=is_live,
            period=_period(event.get("P")),
            source_ts=float(updated) if isinstance(updated, int | float) else None,
        )
        rows.market.extend(markets)
        rows.outcome.extend(outcomes)
        rows.line.extend(lines)
        rows.price.extend(prices)
        rows.status.extend(statuses)


def _events(body: bytes) -> tuple[list[Any], str | None]:
    """The events of a response, or why there are none to read."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return [], f"malformed JSON ({exc}); {len(body)} bytes received"
    if not isinstance(document, dict):
        return [], f"unexpected JSON envelope: a {type(document).__name__}, not an object"
    if document.get("Success") is False or document.get("Error"):
        return [], f"error envelope: Success={document.get('Success')}, Error={document.get('Error')!r}"
    if "Value" not in document:
        keys = ", ".join(sorted(document)[:8])
        return [], f"envelope without Value (schema drift? keys: {keys})"
    value = document["Value"]
    if isinstance(value, list):
        return value, None
    if isinstance(value, dict):
        return [value], None
    if value is None:
        return [], None
    return [], f"Value is a {type(value).__name__}, expected a list of events or one event"


def _outcomes(event: dict[str, Any]) -> list[Any]:
    """Main outcomes `E[]`, alternative lines `AE[].ME[]`, and the grouped form `GE[].E[][]`."""
    found: list[Any] = list(event.get("E") or ())
    for group in event.get("AE") or ():
        if isinstance(group, dict):
            found.extend(group.get("ME") or ())
    for group in event.get("GE") or ():
        if isinstance(group, dict):
            for row in group.get("E") or ():
                found.extend(row if isinstance(row, list) else (row,))
    return found


def _period(p: Any) -> str:
    if type(p) is not int or p <= 0:
        return "ft"
    return {1: "1h", 2: "2h"}.get(p, f"p{p}")


def _number(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return float(text)
    except ValueError:
        return text


def _event_header(event: dict[str, Any]) -> dict[str, Any]:
    """The event without its (long) outcome lists, for quarantine."""
    return {k: v for k, v in event.items() if k not in ("E", "AE", "GE", "SG", "MIS", "SC")}


def _event_ids(body: bytes) -> list[int]:
    events, _ = _events(body)
    return [e["I"] for e in events if isinstance(e, dict) and type(e.get("I")) is int]
