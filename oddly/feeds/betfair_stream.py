"""Betfair Exchange stream files as canonical price rows of bookmaker `betfair_ex` (a sharp book).

The files are JSON lines of Exchange Stream API messages (`"op":"mcm"`, `pt` = publish time in
epoch ms): Betfair's official historic files (BASIC: last traded price only; ADVANCED/PRO: price
ladders and traded volume) and streams recorded with betfairlightweight or flumine; plain, `.gz`
or `.bz2`. They are read with betfairlightweight's own stream listener and market-book cache,
which apply images, deltas, ladder updates and market definitions; nothing here parses the stream
protocol. Each market change the cache applies is one **update**.

What an update becomes, for every runner of the market it changed:

- a canonical price row: `price` is the best available **back** price, what a bettor can take
  (a BASIC file has no ladders: there it is the last traded price); `status` is `open` while the
  market is OPEN, the runner ACTIVE and a back offer stands, otherwise `suspended` (suspended or
  closed market, removed or settled runner, nothing on offer), with the last back price kept;
  `is_live` is the market's in-play flag; `source_ts` and `observed_at` are the publish time;
- a row of the **exchange book** (`EXCHANGE_SCHEMA`): best back and lay price with their sizes,
  last traded price, the runner's and the market's traded volume, the runner's and the market's
  own status, and which price the canonical row took. Lay prices and volumes change far more
  often than the back price and are no price a bettor can take, so they do not make ticks of
  their own: they go to `raw.exchange_prices`, keyed like `raw.odds_ticks` (selection key and
  observation time), where nothing of them is lost.

Markets and outcomes: MATCH_ODDS with a draw runner is `1x2` (home, draw, away), without one
`moneyline` (home, away) — home and away found by the event name "Home v Away" where the file or
catalogue has names, else by Betfair's sort priority (home 1, away 2, draw 3); OVER_UNDER_<NN>
is `total` at line NN/10 (over, under); horse and greyhound WIN is `win` and PLACE `raw:place`
(the canonical vocabulary has no place market yet), their outcome the runner's name as
`raw:<name>`. Other market types are kept as `raw:<type>` with `raw:<runner>` outcomes and
counted; never dropped. A race has no teams: `home` holds the meeting (event name) and `away`
the off time, the same for its WIN and PLACE markets, which are one event
(`source_event_id` = event id and market start time). Runner names come from the market
definitions anywhere in the file (recorded files often name runners only in the last one) and
from catalogue files (`catalogue_<market id>.json` beside the stream file is found by itself);
an unnamed runner is `selection <id>`.

`iter_updates` yields the updates of one or more files in publish-time order as
`StreamUpdate(timestamp, rows, exchange)` batches, for replaying them through ingestion;
`read_stream` reads a whole file into one batch for the importer.
"""

from __future__ import annotations

import bz2
import gzip
import heapq
import io
import queue
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, NamedTuple

import numpy as np
import orjson
import pyarrow as pa
from betfairlightweight.resources import MarketCatalogue
from betfairlightweight.streaming import StreamListener

from oddly.model import RAW_PREFIX, Market, Outcome, PriceColumns, Status

BOOKMAKER = "betfair_ex"
# Betfair event type ids → the sport names the warehouse uses; others are kept as `betfair_<id>`.
SPORTS: dict[str, str] = {
    "1": "football",
    "2": "tennis",
    "3": "golf",
    "4": "cricket",
    "5": "rugby_union",
    "6": "boxing",
    "7": "horse_racing",
    "1477": "rugby_league",
    "3503": "darts",
    "4339": "greyhound_racing",
    "6422": "snooker",
    "6423": "american_football",
    "7511": "baseball",
    "7522": "basketball",
    "7524": "ice_hockey",
    "468328": "handball",
    "998917": "volleyball",
    "26420387": "mma",
}
RACING = frozenset({"horse_racing", "greyhound_racing"})
PLACE_MARKET = RAW_PREFIX + "place"
DRAW_NAMES = frozenset({"the draw", "draw"})
_OVER_UNDER = re.compile(r"OVER_UNDER_(\d+)$")
_TEAMS = re.compile(r"^(?P<home>.+?)\s+(?:v|vs|v\.)\s+(?P<away>.+)$", re.IGNORECASE)

# Which price the canonical row took.
BEST_BACK = "best_back"
LAST_TRADED = "last_traded"

EXCHANGE_SCHEMA = pa.schema(
    [
        pa.field("bookmaker", pa.string()),
        pa.field("source_event_id", pa.string()),
        pa.field("market", pa.string()),
        pa.field("period", pa.string()),
        pa.field("line", pa.float64()),
        pa.field("outcome", pa.string()),
        pa.field("market_id", pa.string()),
        pa.field("selection_id", pa.int64()),
        pa.field("handicap", pa.float64()),
        pa.field("observed_at", pa.timestamp("us", tz="UTC")),
        pa.field("in_play", pa.bool_()),
        pa.field("market_status", pa.string()),
        pa.field("runner_status", pa.string()),
        pa.field("back_price", pa.float64()),
        pa.field("back_size", pa.float64()),
        pa.field("lay_price", pa.float64()),
        pa.field("lay_size", pa.float64()),
        pa.field("last_traded_price", pa.float64()),
        pa.field("traded_volume", pa.float64()),
        pa.field("market_traded_volume", pa.float64()),
        pa.field("price_source", pa.string()),
    ]
)
# The exchange-book fields whose change is worth a row (the key and time aside).
BOOK_FIELDS = (
    "in_play",
    "market_status",
    "runner_status",
    "back_price",
    "back_size",
    "lay_price",
    "lay_size",
    "last_traded_price",
    "traded_volume",
    "market_traded_volume",
)

# Reasons counted in the report.
NO_PRICE_YET = "runner without any price yet (no back offer or trade so far)"
NO_BACK_OFFER = "no back offer: suspended at the last back price"
NOT_JSON = "line not JSON (truncated recording?)"
NO_CHANGE = "line without market changes"
NOT_APPLIED = "line the stream cache could not apply"


@dataclass
class StreamReport:
    """What reading stream files saw, in counts, with a first example of each problem."""

    files: list[str] = field(default_factory=list)
    lines: int = 0
    updates: int = 0  # market changes applied by the cache
    markets: set[str] = field(default_factory=set)
    runners: set[tuple[str, int, float]] = field(default_factory=set)
    price_rows: int = 0
    market_types: Counter[str] = field(default_factory=Counter)  # Betfair type → markets
    unknown_market_types: Counter[str] = field(default_factory=Counter)  # kept as raw:<type>
    conflated: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    def skip(self, reason: str, where: str, count: int = 1) -> None:
        self.skipped[reason] += count
        self.examples.setdefault(reason, where)


class StreamUpdate(NamedTuple):
    """One update: its publish time, the canonical rows of every runner of the market(s) it
    changed (`PriceColumns`, ready for ingestion's validate → diff → append) and the same
    runners' exchange book (`EXCHANGE_SCHEMA`)."""

    timestamp: datetime
    rows: PriceColumns
    exchange: pa.Table


@dataclass
class StreamBatch:
    """A whole file (or several) read at once: rows and exchange book in update order, each with
    its own observation time (`observed_ms`, epoch milliseconds per price row)."""

    rows: PriceColumns
    observed_ms: np.ndarray
    exchange: pa.Table


# --- what the definitions and catalogues say --------------------------------------------------


@dataclass
class MarketInfo:
    """One market as its definitions (the latest of each field) and catalogue describe it."""

    market_id: str
    market_type: str = ""
    event_id: str = ""
    event_type_id: str = ""
    event_name: str | None = None
    market_name: str | None = None
    market_time: datetime | None = None
    country_code: str | None = None
    venue: str | None = None
    competition: str | None = None
    # (selection id, handicap) → (name, sort priority)
    runners: dict[tuple[int, float], tuple[str | None, int | None]] = field(default_factory=dict)

    def merge_definition(self, definition: dict[str, Any]) -> None:
        self.market_type = definition.get("marketType") or self.market_type
        self.event_id = str(definition.get("eventId") or self.event_id)
        self.event_type_id = str(definition.get("eventTypeId") or self.event_type_id)
        self.event_name = definition.get("eventName") or self.event_name
        self.market_name = definition.get("name") or self.market_name
        self.country_code = definition.get("countryCode") or self.country_code
        self.venue = definition.get("venue") or self.venue
        self.market_time = _iso(definition.get("marketTime")) or self.market_time
        for runner in definition.get("runners") or []:
            key = (int(runner["id"]), float(runner.get("hc") or 0.0))
            old_name, old_priority = self.runners.get(key, (None, None))
            self.runners[key] = (runner.get("name") or old_name, runner.get("sortPriority") or old_priority)

    def merge_catalogue(self, catalogue: MarketCatalogue) -> None:
        description = catalogue.description
        self.market_name = self.market_name or catalogue.market_name
        if description is not None:
            self.market_type = self.market_type or (description.market_type or "")
        if catalogue.event is not None:
            self.event_id = self.event_id or str(catalogue.event.id)
            self.event_name = self.event_name or catalogue.event.name
            self.country_code = self.country_code or catalogue.event.country_code
            self.venue = self.venue or catalogue.event.venue
        if catalogue.event_type is not None:
            self.event_type_id = self.event_type_id or str(catalogue.event_type.id)
        if catalogue.competition is not None:
            self.competition = catalogue.competition.name
        if self.market_time is None and catalogue.market_start_time is not None:
            self.market_time = catalogue.market_start_time.replace(tzinfo=UTC)
        for runner in catalogue.runners:
            key = (int(runner.selection_id), float(runner.handicap or 0.0))
            name, priority = self.runners.get(key, (None, None))
            self.runners[key] = (name or runner.runner_name, priority or runner.sort_priority)


def _iso(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def read_catalogue(path: Path, report: StreamReport | None = None) -> list[MarketCatalogue]:
    """The market catalogues of a catalogue file (one JSON object, a list of them, or JSON lines),
    parsed by betfairlightweight's `MarketCatalogue`; an unreadable file is counted, never raised."""
    try:
        text = path.read_bytes()
        try:
            data = orjson.loads(text)
            items = data if isinstance(data, list) else [data]
        except orjson.JSONDecodeError:
            items = [orjson.loads(line) for line in text.splitlines() if line.strip()]
        return [MarketCatalogue(**item) for item in items if isinstance(item, dict) and "marketId" in item]
    except (OSError, ValueError, TypeError) as exc:
        if report is not None:
            report.skip("catalogue file unreadable", f"{path}: {exc}")
        return []


def catalogue_beside(path: Path) -> Path | None:
    """`catalogue_<market id>.json` (or `<file>.catalogue.json`) in the stream file's folder."""
    market_id = path.name.split(".bz2")[0].split(".gz")[0].removeprefix("BASIC-")
    for candidate in (path.with_name(f"catalogue_{market_id}.json"), Path(f"{path}.catalogue.json")):
        if candidate.is_file():
            return candidate
    return None


def _open_text(path: Path) -> IO[str]:
    if path.suffix == ".bz2":
        return io.TextIOWrapper(bz2.open(path, "rb"), encoding="utf-8", errors="replace")
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def _listener(out: queue.SimpleQueue[list[dict[str, Any]]]) -> StreamListener:
    listener = StreamListener(output_queue=out, max_latency=None, lightweight=True)
    listener.register_stream(0, "marketSubscription")
    # Recorded streams were conflated by their subscription: expected, not worth a warning per line.
    listener.conflate_ms = 50
    return listener


def scan_markets(path: Path, catalogues: Iterable[MarketCatalogue] = ()) -> dict[str, MarketInfo]:
    """Every market of a file as its definitions describe it (all of them, so names given only in
    the last definition are known from the first update on), completed by the catalogues. Only
    the lines that carry a definition are given to the listener."""
    out: queue.SimpleQueue[list[dict[str, Any]]] = queue.SimpleQueue()
    listener = _listener(out)
    markets: dict[str, MarketInfo] = {}
    with _open_text(path) as lines:
        for line in lines:
            if '"marketDefinition"' not in line:
                continue
            try:
                listener.on_data(line)
            except Exception:  # a broken line is counted by the main pass
                continue
            while not out.empty():
                for book in out.get():
                    definition = (book.get("streaming_update") or {}).get("marketDefinition")
                    if definition:
                        markets.setdefault(book["marketId"], MarketInfo(book["marketId"])).merge_definition(
                            definition
                        )
    for catalogue in catalogues:
        if catalogue.market_id:
            markets.setdefault(catalogue.market_id, MarketInfo(catalogue.market_id)).merge_catalogue(
                catalogue
            )
    return markets


# --- canonical selections ---------------------------------------------------------------------


@dataclass(frozen=True)
class EventFields:
    source_event_id: str
    sport: str
    league: str | None
    country: str | None
    home: str
    away: str
    starts_at: float  # unix seconds


@dataclass(frozen=True)
class MarketMapping:
    """A market's canonical event, market and, per runner, (line, outcome)."""

    event: EventFields
    market: str
    outcomes: dict[tuple[int, float], tuple[float | None, str]]
    known: bool


def _runner_label(info: MarketInfo, key: tuple[int, float]) -> str:
    name = info.runners.get(key, (None, None))[0]
    return name or f"selection {key[0]}"


def _by_priority(info: MarketInfo, keys: Iterable[tuple[int, float]]) -> list[tuple[int, float]]:
    return sorted(keys, key=lambda k: (info.runners.get(k, (None, None))[1] or 10**6, k))


def map_market(info: MarketInfo, runner_keys: Iterable[tuple[int, float]]) -> MarketMapping:
    """The canonical event, market and outcomes of one market's runners."""
    keys = _by_priority(info, set(runner_keys) | set(info.runners))
    sport = SPORTS.get(info.event_type_id, f"betfair_{info.event_type_id or 'unknown'}")
    starts = (info.market_time or datetime.fromtimestamp(0, UTC)).timestamp()
    event_key = f"{info.event_id or info.market_id}_{datetime.fromtimestamp(starts, UTC):%Y%m%dT%H%M}"
    league = info.competition or (info.venue if sport in RACING else None)

    def event(home: str, away: str) -> EventFields:
        return EventFields(f"bf_{event_key}", sport, league, info.country_code, home, away, starts)

    market_type = info.market_type
    if market_type == "MATCH_ODDS" and 2 <= len(keys) <= 3:
        mapped = _match_odds(info, keys)
        if mapped is not None:
            (home, away), outcomes, has_draw = mapped
            market = Market.ONE_X_TWO.value if has_draw else Market.MONEYLINE.value
            return MarketMapping(event(home, away), market, outcomes, True)
    if (over_under := _OVER_UNDER.match(market_type)) and len(keys) == 2:
        line = int(over_under.group(1)) / 10
        outcomes = _over_under(info, keys, line)
        return MarketMapping(event(*_teams(info, keys)), Market.TOTAL.value, outcomes, True)
    raw = {k: (k[1] or None, RAW_PREFIX + _runner_label(info, k)) for k in keys}
    if sport in RACING:
        meeting = info.event_name or info.venue or f"event {info.event_id}"
        off = f"{datetime.fromtimestamp(starts, UTC):%H:%M} UTC"
        if market_type == "WIN":
            return MarketMapping(event(meeting, off), Market.WIN.value, raw, True)
        if market_type == "PLACE":
            return MarketMapping(event(meeting, off), PLACE_MARKET, raw, True)
        return MarketMapping(event(meeting, off), RAW_PREFIX + market_type.lower(), raw, False)
    return MarketMapping(
        event(*_teams(info, keys)), RAW_PREFIX + (market_type.lower() or "unknown"), raw, False
    )


def _teams(info: MarketInfo, keys: Sequence[tuple[int, float]]) -> tuple[str, str]:
    """Home and away: from the event name "Home v Away", else the first two non-draw runners."""
    if info.event_name and (teams := _TEAMS.match(info.event_name.strip())):
        return teams.group("home").strip(), teams.group("away").strip()
    named = [k for k in keys if _runner_label(info, k).strip().lower() not in DRAW_NAMES]
    if len(named) >= 2:
        return _runner_label(info, named[0]), _runner_label(info, named[1])
    return info.event_name or f"market {info.market_id}", info.market_name or "-"


def _match_odds(
    info: MarketInfo, keys: list[tuple[int, float]]
) -> tuple[tuple[str, str], dict[tuple[int, float], tuple[float | None, str]], bool] | None:
    draws = [k for k in keys if (info.runners.get(k, (None, None))[0] or "").strip().lower() in DRAW_NAMES]
    if not draws and len(keys) == 3:
        draws = [keys[2]]  # Betfair lists the draw third
    sides = [k for k in keys if k not in draws]
    if len(sides) != 2 or len(draws) > 1:
        return None
    home, away = _teams(info, keys)
    names = {k: _runner_label(info, k).strip().lower() for k in sides}
    if names[sides[0]] == away.lower() and names[sides[1]] == home.lower():
        sides.reverse()  # the names say otherwise than the sort priority
    outcomes: dict[tuple[int, float], tuple[float | None, str]] = {
        sides[0]: (None, Outcome.HOME.value),
        sides[1]: (None, Outcome.AWAY.value),
    }
    if draws:
        outcomes[draws[0]] = (None, Outcome.DRAW.value)
    return (home, away), outcomes, bool(draws)


def _over_under(
    info: MarketInfo, keys: list[tuple[int, float]], line: float
) -> dict[tuple[int, float], tuple[float | None, str]]:
    labels = {k: _runner_label(info, k).lower() for k in keys}
    over = [k for k in keys if labels[k].startswith("over")]
    under = [k for k in keys if labels[k].startswith("under")]
    if len(over) != 1 or len(under) != 1:
        under, over = [keys[0]], [keys[1]]  # Betfair lists Under first
    return {under[0]: (line, Outcome.UNDER.value), over[0]: (line, Outcome.OVER.value)}


# --- reading the updates ----------------------------------------------------------------------


@dataclass
class _Selection:
    market: int  # index into the collector's markets
    market_id: str
    selection_id: int
    handicap: float
    line: float | None
    outcome: str
    last_back: float | None = None


class _Collector:
    """Per-runner values of every update, appended as plain numbers and strings (the cache's
    output is Python dicts; everything after this is columnar)."""

    def __init__(self, markets: dict[str, MarketInfo], report: StreamReport) -> None:
        self.infos = markets
        self.report = report
        self.mappings: list[MarketMapping] = []
        self.market_index: dict[str, int] = {}
        self.ladders: list[bool] = []  # per market: has any ladder been seen (else BASIC: LTP)
        self.selections: list[_Selection] = []
        self.selection_index: dict[tuple[str, int, float], int] = {}
        # one entry per market book of an update
        self.entry_market: list[int] = []
        self.entry_ms: list[int] = []
        self.entry_live: list[bool] = []
        self.entry_stop: list[int] = []
        # one entry per runner of a market book
        self.sel: list[int] = []
        self.values: dict[str, list[Any]] = {
            name: []
            for name in (
                "back_price",
                "back_size",
                "lay_price",
                "lay_size",
                "last_traded_price",
                "traded_volume",
                "market_traded_volume",
                "market_status",
                "runner_status",
                "price",
                "status",
                "price_source",
            )
        }

    def _market(self, book: dict[str, Any]) -> int:
        market_id = book["marketId"]
        index = self.market_index.get(market_id)
        if index is not None:
            return index
        info = self.infos.get(market_id) or MarketInfo(market_id)
        if not info.market_type and book.get("marketDefinition"):
            info.merge_definition(book["marketDefinition"])
        keys = [(int(r["selectionId"]), float(r.get("handicap") or 0.0)) for r in book.get("runners", [])]
        mapping = map_market(info, keys)
        index = len(self.mappings)
        self.mappings.append(mapping)
        self.ladders.append(False)
        self.market_index[market_id] = index
        self.report.markets.add(market_id)
        self.report.market_types[info.market_type or "unknown"] += 1
        if not mapping.known:
            self.report.unknown_market_types[info.market_type or "unknown"] += 1
        return index

    def _selection(self, market: int, market_id: str, selection_id: int, handicap: float) -> int:
        key = (market_id, selection_id, handicap)
        index = self.selection_index.get(key)
        if index is None:
            mapping = self.mappings[market]
            if (selection_id, handicap) not in mapping.outcomes:
                # a runner the definitions never listed: map the market again with it
                info = self.infos.setdefault(market_id, MarketInfo(market_id))
                runners = [(s.selection_id, s.handicap) for s in self.selections if s.market == market]
                mapping = map_market(info, [*runners, (selection_id, handicap)])
                self.mappings[market] = mapping
            line, outcome = mapping.outcomes[(selection_id, handicap)]
            index = len(self.selections)
            self.selections.append(_Selection(market, market_id, selection_id, handicap, line, outcome))
            self.selection_index[key] = index
            self.report.runners.add(key)
        return index

    def add(self, book: dict[str, Any], where: str) -> None:
        """One market book the cache put out: one row per runner."""
        market = self._market(book)
        market_id = book["marketId"]
        market_status = book.get("status") or "OPEN"
        market_open = market_status == "OPEN"
        market_tv = book.get("totalMatched")
        values = self.values
        for runner in book.get("runners", []):
            ex = runner.get("ex") or {}
            backs, lays, traded = ex.get("availableToBack"), ex.get("availableToLay"), ex.get("tradedVolume")
            if backs or lays or traded:
                self.ladders[market] = True
            index = self._selection(
                market, market_id, int(runner["selectionId"]), float(runner.get("handicap") or 0.0)
            )
            selection = self.selections[index]
            back = backs[0] if backs else None
            lay = lays[0] if lays else None
            ltp = runner.get("lastPriceTraded")
            runner_status = runner.get("status") or "ACTIVE"
            tradeable = market_open and runner_status == "ACTIVE"
            if self.ladders[market]:
                source = BEST_BACK
                if back is not None:
                    selection.last_back = back["price"]
                elif tradeable:
                    self.report.skip(NO_BACK_OFFER, where)
                price = selection.last_back
                tradeable = tradeable and back is not None
                volume = runner.get("totalMatched") or (
                    round(sum(level["size"] for level in traded), 2) if traded else 0.0
                )
            else:
                source, price, volume = LAST_TRADED, ltp, None
            if price is None:
                self.report.skip(NO_PRICE_YET, where)
            self.sel.append(index)
            values["back_price"].append(back["price"] if back else None)
            values["back_size"].append(back["size"] if back else None)
            values["lay_price"].append(lay["price"] if lay else None)
            values["lay_size"].append(lay["size"] if lay else None)
            values["last_traded_price"].append(ltp)
            values["traded_volume"].append(volume)
            values["market_traded_volume"].append(market_tv if self.ladders[market] else None)
            values["market_status"].append(market_status)
            values["runner_status"].append(runner_status)
            values["price"].append(price)
            values["status"].append(Status.OPEN.value if tradeable else Status.SUSPENDED.value)
            values["price_source"].append(source)
        self.entry_market.append(market)
        self.entry_ms.append(int(book["publishTime"]))
        self.entry_live.append(bool(book.get("inplay")))
        self.entry_stop.append(len(self.sel))

    # --- columnar output ---

    def batch(self, first_entry: int, stop_entry: int) -> StreamBatch:
        """The entries [first_entry, stop_entry) as price rows and exchange-book rows."""
        start = self.entry_stop[first_entry - 1] if first_entry else 0
        stop = self.entry_stop[stop_entry - 1] if stop_entry > first_entry else start
        bounds = np.asarray([start, *self.entry_stop[first_entry:stop_entry]], dtype=np.int64)
        entry_rows = (bounds[1:] - bounds[:-1]).astype(np.int64)
        sel = np.asarray(self.sel[start:stop], dtype=np.int64)
        price = pa.array(self.values["price"][start:stop], pa.float64())
        priced = price.is_valid().to_numpy(zero_copy_only=False)
        entry_of_row = np.repeat(np.arange(len(entry_rows)), entry_rows)
        ms_of_entry = np.asarray(self.entry_ms[first_entry:stop_entry], dtype=np.int64)

        markets = [self.mappings[m] for m in self.entry_market[first_entry:stop_entry]]
        lines = pa.array([s.line for s in self.selections], pa.float64())
        outcomes = pa.array([s.outcome for s in self.selections], pa.string())
        market_names = pa.array([self.mappings[s.market].market for s in self.selections], pa.string())

        rows = PriceColumns()
        kept_per_entry = np.bincount(entry_of_row[priced], minlength=len(entry_rows))
        for mapping, ms, live, kept in zip(
            markets,
            ms_of_entry.tolist(),
            self.entry_live[first_entry:stop_entry],
            kept_per_entry.tolist(),
            strict=True,
        ):
            if kept:
                e = mapping.event
                rows.add_event(
                    int(kept),
                    bookmaker=BOOKMAKER,
                    source_event_id=e.source_event_id,
                    sport=e.sport,
                    league=e.league,
                    country=e.country,
                    home=e.home,
                    away=e.away,
                    starts_at=e.starts_at,
                    is_live=live,
                    source_ts=ms / 1000,
                )
        take = pa.array(sel[priced])
        rows.market = market_names.take(take)
        rows.line = lines.take(take)
        rows.outcome = outcomes.take(take)
        rows.price = price.filter(pa.array(priced))
        rows.status = pa.array(self.values["status"][start:stop], pa.string()).filter(pa.array(priced))

        row_ms = ms_of_entry[entry_of_row]
        all_sel = pa.array(sel)
        events = [m.event for m in self.mappings]
        market_of_sel = np.asarray([s.market for s in self.selections], dtype=np.int64)
        market_of_row = pa.array(market_of_sel[sel])
        n = len(sel)
        exchange = pa.table(
            {
                "bookmaker": pa.repeat(pa.scalar(BOOKMAKER), n),
                "source_event_id": pa.array([e.source_event_id for e in events], pa.string()).take(
                    market_of_row
                ),
                "market": market_names.take(all_sel),
                "period": pa.repeat(pa.scalar("ft"), n),
                "line": lines.take(all_sel),
                "outcome": outcomes.take(all_sel),
                "market_id": pa.array([s.market_id for s in self.selections], pa.string()).take(all_sel),
                "selection_id": pa.array([s.selection_id for s in self.selections], pa.int64()).take(all_sel),
                "handicap": pa.array([s.handicap for s in self.selections], pa.float64()).take(all_sel),
                "observed_at": pa.array(row_ms * 1000, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
                "in_play": pa.array(
                    np.asarray(self.entry_live[first_entry:stop_entry], dtype=bool)[entry_of_row]
                ),
                **{
                    name: pa.array(self.values[name][start:stop], EXCHANGE_SCHEMA.field(name).type)
                    for name in EXCHANGE_SCHEMA.names[11:]
                },
            },
            schema=EXCHANGE_SCHEMA,
        )
        return StreamBatch(rows, row_ms[priced], exchange)


def _updates(
    path: Path, catalogues: Iterable[MarketCatalogue], report: StreamReport
) -> Iterator[tuple[_Collector, int, int]]:
    """Feed a file's lines to betfairlightweight's listener; after each line that changed markets,
    the collector and the range of its new entries."""
    if not path.is_file():
        report.skip("file unreadable", f"{path}: no such file")
        return
    found = catalogue_beside(path)
    all_catalogues = [*catalogues, *(read_catalogue(found, report) if found else [])]
    collector = _Collector(scan_markets(path, all_catalogues), report)
    out: queue.SimpleQueue[list[dict[str, Any]]] = queue.SimpleQueue()
    listener = _listener(out)
    report.files.append(path.name)
    with _open_text(path) as lines:
        for number, line in enumerate(lines, start=1):
            report.lines += 1
            where = f"{path.name}:{number}"
            first = len(collector.entry_stop)
            try:
                listener.on_data(line)
            except Exception as exc:  # a malformed message must not end the file's import
                report.skip(NOT_APPLIED, f"{where}: {type(exc).__name__}: {exc}")
                continue
            if out.empty():
                _classify(line, where, report)
                continue
            while not out.empty():
                for book in out.get():
                    collector.add(book, where)
                    report.updates += 1
            if '"con":true' in line:
                report.conflated += 1
            yield collector, first, len(collector.entry_stop)


def _classify(line: str, where: str, report: StreamReport) -> None:
    """Why a line changed no market: not JSON, or a message of another kind (catalogue, heartbeat)."""
    if not line.strip():
        return
    try:
        message = orjson.loads(line)
    except orjson.JSONDecodeError:
        report.skip(NOT_JSON, where)
        return
    op = message.get("op") if isinstance(message, dict) else None
    report.skip(NO_CHANGE, f"{where}: op {op!r}")


def iter_updates(
    paths: Sequence[Path | str],
    catalogues: Iterable[MarketCatalogue] = (),
    report: StreamReport | None = None,
) -> Iterator[StreamUpdate]:
    """The updates of stream files in publish-time order (files merged), one `StreamUpdate` per
    line that changed markets: `(timestamp, rows, exchange)`. `rows` holds every runner of the
    changed market(s) that has a price, so ingestion's diff writes only what moved; feeding the
    updates to ingestion at any speed replays the market. Catalogue files beside each stream file
    are read by themselves; pass others in `catalogues`."""
    report = report if report is not None else StreamReport()
    catalogue_list = list(catalogues)

    def one(path: Path) -> Iterator[tuple[int, int, StreamUpdate]]:
        for order, (collector, first, stop) in enumerate(_updates(path, catalogue_list, report)):
            batch = collector.batch(first, stop)
            ms = collector.entry_ms[stop - 1]
            report.price_rows += len(batch.rows)
            yield ms, order, StreamUpdate(datetime.fromtimestamp(ms / 1000, UTC), batch.rows, batch.exchange)

    merged = heapq.merge(*(one(Path(p)) for p in paths), key=lambda item: (item[0], item[1]))
    for _, _, update in merged:
        yield update


def read_stream(
    path: Path | str, catalogues: Iterable[MarketCatalogue] = (), report: StreamReport | None = None
) -> StreamBatch:
    """A whole stream file as one batch, in update order (for the importer)."""
    report = report if report is not None else StreamReport()
    collector: _Collector | None = None
    for last, _, _ in _updates(Path(path), list(catalogues), report):
        collector = last
    if collector is None:
        empty = PriceColumns()
        return StreamBatch(empty, np.zeros(0, dtype=np.int64), EXCHANGE_SCHEMA.empty_table())
    batch = collector.batch(0, len(collector.entry_stop))
    report.price_rows += len(batch.rows)
    return batch
