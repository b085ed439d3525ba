"""The LineFeed agent: 22Bet and the rest of the 1xBet platform (1xBet, Melbet, Betwinner …),
one JSON API under different domains.

Endpoints (under the feed's base URL and optional `/service-api` prefix): pre-match list
`/LineFeed/Get1x2_VZip`, live list `/LiveFeed/Get1x2_VZip`, one game with every market
`/LineFeed/GetGameZip` and `/LiveFeed/GetGameZip`. Field meanings: ../shared/data/SOURCES.md.
"""

from __future__ import annotations

from itertools import chain
from pathlib import Path
from typing import Any, ClassVar

import msgspec
import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
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
        lists = await outcome.collect(
            http.get(self.url(k, "Get1x2_VZip"), self.list_params(), kind=k) for k in kinds
        )
        if self.options.full_markets:
            games = [(p.kind, gid) for p in lists for gid in _event_ids(p.body)][: self.options.max_games]
            params = {"isSubGames": "true", "grouped": "true", "lng": self.options.lng}
            await outcome.collect(
                http.get(self.url(kind, "GetGameZip"), {"id": gid, **params}, kind=f"game-{kind}")
                for kind, gid in games
            )
        outcome.requests = http.requests
        if not outcome.payloads:
            raise FeedError("; ".join(outcome.errors) or "no endpoint enabled (set prematch or live)")
        return outcome

    # --- parsing -----------------------------------------------------------------------------

    def parse(self, payload: Payload) -> ParseResult:
        result = ParseResult()
        events, problem = decode_events(payload.body, result.rejects, self.feed.bookmaker)
        if problem is not None:
            result.rejects.append(Reject(problem, payload.body[:BODY_SAMPLE], self.feed.bookmaker))
            return result
        is_live = payload.kind.endswith(LIVE)
        if not result.rejects and _parse_vectorized(events, is_live, self.feed.bookmaker, result):
            return result
        for event in events:
            self._parse_event(event, is_live, result)
        return result

    def _parse_event(self, event: Event, is_live: bool, result: ParseResult) -> None:
        bookmaker = self.feed.bookmaker
        rejects = result.rejects
        if event.I is None:
            rejects.append(Reject("event without id (I)", _event_header(event), bookmaker))
            return
        event_id = str(event.I)
        home = event.O1E or event.O1
        away = event.O2E or event.O2
        starts = event.S
        if not home or not away:
            rejects.append(
                Reject("event without team names (O1/O2)", _event_header(event), bookmaker, event_id)
            )
            return
        if type(starts) not in (int, float):
            reason = f"event start S={starts!r} is not unix seconds"
            rejects.append(Reject(reason, _event_header(event), bookmaker, event_id))
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
            g = o.G
            t = o.T
            if type(g) is not int or type(t) is not int:
                rejects.append(Reject("outcome without integer G and T", _record(o), bookmaker, event_id))
                continue
            p = o.P
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
                    reason = f"{market} {outcome} without a line (P={p!r})"
                    rejects.append(Reject(reason, _record(o), bookmaker, event_id))
                    continue
            price = o.C
            if price is None:
                price = _number(o.CV)
            markets.append(market)
            outcomes.append(outcome)
            lines.append(line)
            prices.append(price)
            if o.B is True or (type(price) in number and price <= SUSPENDED_AT_OR_BELOW):
                statuses.append("suspended")
            else:
                statuses.append("open")

        n = len(prices)
        if not n:
            return
        rows: PriceColumns = result.rows
        sport_id = event.SI
        sport = SPORTS.get(sport_id) if type(sport_id) is int else None
        if sport is None:
            sport = str(event.SE or f"sport{sport_id}").strip().lower().replace(" ", "_")
        updated = event.U
        rows.add_event(
            n,
            bookmaker=bookmaker,
            source_event_id=event_id,
            sport=sport,
            league=event.LE or event.L,
            country=event.CE or event.CN,
            home=str(home),
            away=str(away),
            starts_at=float(starts),
            is_live=is_live,
            period=_period(event.P),
            source_ts=float(updated) if type(updated) in number else None,
        )
        rows.market.extend(markets)
        rows.outcome.extend(outcomes)
        rows.line.extend(lines)
        rows.price.extend(prices)
        rows.status.extend(statuses)


# The platform's JSON, decoded straight into typed structs (no dict per outcome: several times
# faster than generic JSON). Fields stay `Any` where the parser checks them itself, so a feed's
# odd values become rejects with reasons instead of failing the whole payload.
class Outcome(msgspec.Struct, gc=False):
    G: Any = None
    T: Any = None
    C: Any = None
    CV: Any = None
    P: Any = None
    B: Any = None
    CE: Any = None


class AltGroup(msgspec.Struct, gc=False):
    G: Any = None
    ME: list[Outcome] = msgspec.field(default_factory=list)


class GroupedE(msgspec.Struct, gc=False):
    G: Any = None
    E: list[list[Outcome] | Outcome] = msgspec.field(default_factory=list)


class Event(msgspec.Struct, gc=False):
    I: Any = None  # noqa: E741 - the platform's field name
    O1: Any = None
    O2: Any = None
    O1E: Any = None
    O2E: Any = None
    L: Any = None
    LE: Any = None
    CN: Any = None
    CE: Any = None
    S: Any = None
    SI: Any = None
    SE: Any = None
    U: Any = None
    P: Any = None
    E: list[Outcome] = msgspec.field(default_factory=list)
    AE: list[AltGroup] = msgspec.field(default_factory=list)
    GE: list[GroupedE] = msgspec.field(default_factory=list)


class Envelope(msgspec.Struct, gc=False):
    Success: Any = None
    Error: Any = None
    Value: list[Event] | Event | msgspec.UnsetType | None = msgspec.UNSET


_DECODER = msgspec.json.Decoder(Envelope)


def decode_events(body: bytes, rejects: list[Reject], bookmaker: str) -> tuple[list[Event], str | None]:
    """The events of a response, or why there are none to read. Well-formed payloads take the
    typed fast path; anything structurally odd is read generically, and what cannot become an
    event or an outcome is rejected with the reason."""
    try:
        envelope = _DECODER.decode(body)
    except msgspec.ValidationError:
        return _decode_tolerantly(body, rejects, bookmaker)
    except msgspec.DecodeError as exc:
        return [], f"malformed JSON ({exc}); {len(body)} bytes received"
    problem = _envelope_problem(envelope.Success, envelope.Error)
    if problem:
        return [], problem
    value = envelope.Value
    if value is msgspec.UNSET:
        return [], "envelope without Value (schema drift?)"
    return ([] if value is None else value if isinstance(value, list) else [value]), None


def _envelope_problem(success: Any, error: Any) -> str | None:
    if success is False or error:
        return f"error envelope: Success={success}, Error={error!r}"
    return None


def _decode_tolerantly(body: bytes, rejects: list[Reject], bookmaker: str) -> tuple[list[Event], str | None]:
    document = orjson.loads(body)
    if not isinstance(document, dict):
        return [], f"unexpected JSON envelope: a {type(document).__name__}, not an object"
    problem = _envelope_problem(document.get("Success"), document.get("Error"))
    if problem:
        return [], problem
    if "Value" not in document:
        return [], f"envelope without Value (schema drift? keys: {', '.join(sorted(document)[:8])})"
    value = document["Value"]
    raw_events = value if isinstance(value, list) else [value] if isinstance(value, dict) else None
    if raw_events is None:
        return [], f"Value is a {type(value).__name__}, expected a list of events or one event"
    events = []
    for raw in raw_events:
        if not isinstance(raw, dict):
            rejects.append(Reject(f"event is a {type(raw).__name__}, not an object", raw, bookmaker))
            continue
        event_id = str(raw["I"]) if raw.get("I") is not None else None
        for name in ("E", "AE", "GE"):
            raw[name] = _objects_only(raw.get(name), name, rejects, bookmaker, event_id)
        for group in raw["AE"]:
            group["ME"] = _objects_only(group.get("ME"), "AE[].ME", rejects, bookmaker, event_id)
        for group in raw["GE"]:
            rows = group.get("E") if isinstance(group.get("E"), list) else []
            group["E"] = [
                _objects_only(r, "GE[].E", rejects, bookmaker, event_id) if isinstance(r, list) else r
                for r in rows
                if isinstance(r, list | dict)
            ]
        events.append(msgspec.convert(raw, Event))
    return events, None


def _objects_only(
    items: Any, where: str, rejects: list[Reject], bookmaker: str, event_id: str | None
) -> list[Any]:
    if not isinstance(items, list):
        return []
    kept = []
    for item in items:
        if isinstance(item, dict):
            kept.append(item)
        else:
            rejects.append(
                Reject(f"{where} item is a {type(item).__name__}, not an object", item, bookmaker, event_id)
            )
    return kept


def _outcomes(event: Event) -> list[Outcome]:
    """Main outcomes `E[]`, alternative lines `AE[].ME[]`, and the grouped form `GE[].E[][]`."""
    found = list(event.E)
    for group in event.AE:
        found.extend(group.ME)
    for grouped in event.GE:
        for row in grouped.E:
            found.extend(row if isinstance(row, list) else (row,))
    return found


# The code table as sorted arrays for vectorized lookups: key = G << 32 | T.
_CODE_KEYS = np.array(sorted((g << 32) | t for g, t in _LOOKUP), dtype=np.int64)
_CODE_ROWS = [_LOOKUP[(int(k) >> 32, int(k) & 0xFFFFFFFF)] for k in _CODE_KEYS]
_CODE_SIGN = np.array([np.nan if sign is None else sign for _, _, sign, _ in _CODE_ROWS])
_STATUS_NAMES = pa.array(["open", "suspended"])
_CODE_DEFAULT = np.array([np.nan if d is None else d for _, _, _, d in _CODE_ROWS])


def _event_fields(event: Event, bookmaker: str, is_live: bool) -> dict[str, Any] | None:
    """Event-level fields, or None when the event needs the per-row path's reasons."""
    if event.I is None or not (event.O1E or event.O1) or not (event.O2E or event.O2):
        return None
    if type(event.S) not in (int, float):
        return None
    sport = SPORTS.get(event.SI) if type(event.SI) is int else None
    return {
        "bookmaker": bookmaker,
        "source_event_id": str(event.I),
        "sport": sport or str(event.SE or f"sport{event.SI}").strip().lower().replace(" ", "_"),
        "league": event.LE or event.L,
        "country": event.CE or event.CN,
        "home": str(event.O1E or event.O1),
        "away": str(event.O2E or event.O2),
        "starts_at": float(event.S),
        "is_live": is_live,
        "period": _period(event.P),
        "source_ts": float(event.U) if type(event.U) in (int, float) else None,
    }


def _parse_vectorized(events: list[Event], is_live: bool, bookmaker: str, result: ParseResult) -> bool:
    """The whole payload column-wise: codes mapped, lines signed, duplicates dropped and
    statuses set with NumPy instead of per price in Python. Returns False, having added
    nothing, when anything needs the per-row path (which says why a record is rejected)."""
    fields = [_event_fields(e, bookmaker, is_live) for e in events]
    if any(f is None for f in fields):
        return False
    per_event = [_outcomes(e) for e in events]
    flat = list(chain.from_iterable(per_event))
    counts = np.array([len(outs) for outs in per_event], dtype=np.int64)
    try:
        g = np.array([o.G for o in flat], dtype=np.int64)
        t = np.array([o.T for o in flat], dtype=np.int64)
        p = pa.array([o.P for o in flat], pa.float64())
        price = pa.array([o.C for o in flat], pa.float64())
    except (TypeError, ValueError, OverflowError, pa.ArrowInvalid, pa.ArrowTypeError):
        return False  # a missing code, a text price …: the per-row path words it
    if price.null_count:
        return False  # prices given only as text (CV) or missing
    p_np = p.to_numpy(zero_copy_only=False)
    event_of = np.repeat(np.arange(len(events)), counts)
    # E[] and AE[] both list the main lines: keep the first of each (event, G, T, P)
    keys = pd.DataFrame({"e": event_of, "g": g, "t": t, "p": p_np})
    keep = ~keys.duplicated().to_numpy()

    code = (g << 32) | t
    pos = np.minimum(np.searchsorted(_CODE_KEYS, code), len(_CODE_KEYS) - 1)
    known = _CODE_KEYS[pos] == code
    sign = np.where(known, _CODE_SIGN[pos], np.nan)
    needs_line = known & ~np.isnan(sign)
    line = np.where(needs_line, np.where(np.isnan(p_np), _CODE_DEFAULT[pos], sign * p_np) + 0.0, p_np)
    line = np.where(known & np.isnan(sign), np.nan, line)
    if (needs_line & np.isnan(line) & keep).any():
        return False  # a total without its line: rejected with a reason by the per-row path

    blocked = np.array([o.B for o in flat], dtype=object) == True  # noqa: E712 - B=true exactly
    suspended = blocked | (price.to_numpy() <= SUSPENDED_AT_OR_BELOW)

    markets, outcomes = _names(g, t, known, pos)
    kept_counts = np.bincount(event_of[keep], minlength=len(events))
    for fields_of_event, n in zip(fields, kept_counts, strict=True):
        if n:
            result.rows.add_event(int(n), **fields_of_event)  # type: ignore[arg-type]
    mask = pa.array(keep)
    chunk = PriceColumns(
        market=markets.filter(mask),
        outcome=outcomes.filter(mask),
        line=pa.array(line, pa.float64(), from_pandas=True).filter(mask),
        price=price.filter(mask),
        status=pa.DictionaryArray.from_arrays(pa.array(suspended.astype(np.int8)), _STATUS_NAMES)
        .cast(pa.string())
        .filter(mask),
    )
    for name in ("market", "outcome", "line", "price", "status"):
        setattr(result.rows, name, getattr(chunk, name))
    unknown = ~known & keep
    if unknown.any():
        codes, n_rows = np.unique(code[unknown], return_counts=True)
        for c, n in zip(codes.tolist(), n_rows.tolist(), strict=True):
            result.unmapped[f"g{c >> 32}/t{c & 0xFFFFFFFF}"] += n
    return True


def _names(g: np.ndarray, t: np.ndarray, known: np.ndarray, pos: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """Market and outcome names as dictionary-decoded Arrow strings (raw:g…/raw:t… if unknown)."""
    out = []
    for values, column in ((g, 0), (t, 1)):
        prefix = "raw:g" if column == 0 else "raw:t"
        raw_codes, raw_index = np.unique(values[~known], return_inverse=True)
        names = [row[column] for row in _CODE_ROWS] + [f"{prefix}{c}" for c in raw_codes.tolist()]
        index = pos.copy()
        index[~known] = len(_CODE_ROWS) + raw_index
        dictionary = pa.DictionaryArray.from_arrays(pa.array(index, pa.int32()), pa.array(names, pa.string()))
        out.append(dictionary.cast(pa.string()))
    return out[0], out[1]


def _record(o: Outcome) -> dict[str, Any]:
    return {k: v for k, v in msgspec.structs.asdict(o).items() if v is not None}


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


def _event_header(event: Event) -> dict[str, Any]:
    """The event without its (long) outcome lists, for quarantine."""
    return {
        k: v for k, v in msgspec.structs.asdict(event).items() if k not in ("E", "AE", "GE") and v is not None
    }


def _event_ids(body: bytes) -> list[int]:
    events, _ = decode_events(body, [], "")
    return [e.I for e in events if type(e.I) is int]
