"""The simulator's HTTP server: every book under its own base path in the real LineFeed format,
control endpoints under `/_sim/`, and faults on demand."""

from __future__ import annotations

import asyncio
import csv
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson
from aiohttp import web

from oddly.simulator.config import SimConfig
from oddly.simulator.faults import FAULT_KINDS, Fault, Faults, break_document
from oddly.simulator.market import Market
from oddly.simulator.oddsapi import FAULT_BOOK, PREFIX, OddsApi, OddsApiError, break_odds
from oddly.simulator.scenarios import SCENARIO_TYPES, Scenario

FEEDS = {"LineFeed": False, "LiveFeed": True}


class SimulatorApp:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.market = Market(config)
        self.odds_api = OddsApi(self.market)
        self.faults = Faults()
        self.requests = 0

    def build(self) -> web.Application:
        app = web.Application()
        r = app.router
        r.add_get("/_sim/health", self.health)
        r.add_get("/_sim/state", self.state)
        r.add_get("/_sim/ground-truth", self.ground_truth)
        r.add_get("/_sim/events", self.events)
        r.add_post("/_sim/advance", self.advance)
        r.add_post("/_sim/inject", self.inject)
        r.add_post("/_sim/fault", self.set_fault)
        r.add_delete("/_sim/fault", self.clear_faults)
        r.add_post("/_sim/odds-api-quota", self.set_odds_api_quota)
        r.add_get("/", self.index)
        for prefix in ("", "/service-api"):
            r.add_get(r"/{book}" + prefix + r"/{feed:(LineFeed|LiveFeed)}/Get1x2_VZip", self.list_events)
            r.add_get(r"/{book}" + prefix + r"/{feed:(LineFeed|LiveFeed)}/GetGameZip", self.one_game)
        r.add_get(PREFIX + r"/v4/sports{slash:/?}", self.odds_api_sports)
        r.add_get(PREFIX + r"/v4/sports/{sport}/odds{slash:/?}", self.odds_api_odds)
        if not self.config.manual_clock:
            app.on_startup.append(self._start_clock)
            app.on_cleanup.append(self._stop_clock)
        return app

    # --- the clock ---------------------------------------------------------------------------

    async def _start_clock(self, app: web.Application) -> None:
        self._clock = asyncio.create_task(self._tick())

    async def _stop_clock(self, app: web.Application) -> None:
        self._clock.cancel()

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        step = self.config.step_seconds
        next_at = loop.time() + step
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            self.market.advance(step)
            next_at += step

    # --- control -----------------------------------------------------------------------------

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "sim_time": self.market.at().isoformat()})

    async def state(self, request: web.Request) -> web.Response:
        state = {
            **self.market.state(),
            "faults": self.faults.describe(),
            "requests": self.requests,
            "odds_api": {
                "books": [b.model_dump() for b in self.config.aggregator_books],
                "usage": self.odds_api.usage.headers(),
            },
        }
        return web.json_response(state)

    async def ground_truth(self, request: web.Request) -> web.Response:
        return web.json_response(self.market.ground_truth())

    async def advance(self, request: web.Request) -> web.Response:
        try:
            seconds = float(request.query.get("seconds", "1"))
        except ValueError:
            raise web.HTTPBadRequest(text="seconds must be a number") from None
        self.market.advance(seconds)
        return web.json_response({"sim_seconds": self.market.now})

    async def events(self, request: web.Request) -> web.Response:
        return web.json_response(self.market.event_list())

    async def inject(self, request: web.Request) -> web.Response:
        """A labeled scenario now: {type, event_key?, side?}. Answers the scenario and `changed_at`,
        the wall-clock moment its prices changed (what the latency benchmark measures from)."""
        try:
            body = await request.json()
            scenario = self.market.inject(
                str(body["type"]),
                None if body.get("event_key") is None else str(body["event_key"]),
                None if body.get("side") is None else str(body["side"]),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise web.HTTPBadRequest(
                text=f"inject needs {{type, event_key?, side?}}; types: {', '.join(SCENARIO_TYPES)} ({exc})"
            ) from None
        changed_at = datetime.now(UTC).isoformat()
        # the aggregator feed names the event by its own id: what a client needs to know an alert
        # from The Odds API's books (Betfair, Marathonbet …) is about this scenario too
        odds_api_id = self.odds_api.event_ids.get(int(scenario.event_key.removeprefix("ev")))
        return web.json_response(
            {**scenario.as_dict(), "odds_api_event_id": odds_api_id, "changed_at": changed_at}
        )

    async def set_fault(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            self.faults.add(
                book=str(body.get("book", "*")),
                kind=str(body["kind"]),
                count=int(body.get("count", 1)),
                seconds=float(body.get("seconds", 30.0)),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise web.HTTPBadRequest(
                text=f"fault needs {{book, kind, count?, seconds?}}; kinds: {', '.join(FAULT_KINDS)} ({exc})"
            ) from None
        return web.json_response({"faults": self.faults.describe()})

    async def clear_faults(self, request: web.Request) -> web.Response:
        self.faults.clear()
        return web.json_response({"faults": []})

    async def set_odds_api_quota(self, request: web.Request) -> web.Response:
        """The simulated Odds API key's credits left: {remaining} (to watch a feed's quota floor)."""
        try:
            self.odds_api.usage.remaining = int((await request.json())["remaining"])
        except (KeyError, ValueError, TypeError) as exc:
            raise web.HTTPBadRequest(
                text=f"odds-api-quota needs {{remaining: <whole number>}} ({exc})"
            ) from None
        return web.json_response(self.odds_api.usage.headers())

    async def index(self, request: web.Request) -> web.Response:
        books = "".join(
            f"<li><a href='/{b.name}/LineFeed/Get1x2_VZip?sports=1&count=50'>{b.name}</a>"
            f"{' (sharp)' if b.sharp else ''}: margin {b.margin:.1%}, lag {b.lag_seconds:g} s</li>"
            for b in self.config.books
        )
        aggregated = ", ".join(
            f"{b.name}{' (sharp)' if b.sharp else ''}" for b in self.config.aggregator_books
        )
        html = (
            "<h1>Oddly Odds market simulator</h1><p>LineFeed format per book:</p>"
            f"<ul>{books}</ul><p>The Odds API v4 format at <code>{PREFIX}/v4/sports/{{sport}}/odds"
            f"?apiKey=…&amp;regions=uk,eu</code>: {aggregated}</p><p><a href='/_sim/state'>state</a> · "
            "<a href='/_sim/ground-truth'>ground truth</a></p>"
        )
        return web.Response(text=html, content_type="text/html")

    # --- the bookmaker API -------------------------------------------------------------------

    def _book(self, request: web.Request) -> str:
        book = request.match_info["book"]
        if book not in self.market.book_index:
            raise web.HTTPNotFound(text=f"no simulated book {book!r}")
        return book

    async def list_events(self, request: web.Request) -> web.StreamResponse:
        book = self._book(request)
        live = FEEDS[request.match_info["feed"]]
        count = _int(request.query.get("count"))
        return await self._answer(book, lambda: self.market.linefeed_document(book, live=live, count=count))

    async def one_game(self, request: web.Request) -> web.StreamResponse:
        book = self._book(request)
        game = _int(request.query.get("id"))
        if game is None:
            raise web.HTTPBadRequest(text="id is required")
        return await self._answer(book, lambda: self.market.linefeed_document(book, event_id=game))

    async def _answer(self, book: str, document: Callable[[], dict[str, Any]]) -> web.StreamResponse:
        fault, refused = await self._fault(book)
        if refused is not None:
            return refused
        return _json(document(), fault, break_document)

    async def _fault(self, book: str) -> tuple[Fault | None, web.Response | None]:
        """The fault this request of `book` meets, and the error it answers instead, if any."""
        self.requests += 1
        fault = self.faults.take(book)
        if fault is not None:
            if fault.kind.startswith("http_"):
                status = int(fault.kind.removeprefix("http_"))
                headers = {"Retry-After": f"{fault.seconds:g}"} if status == 429 else {}
                return fault, web.Response(status=status, text=f"simulated HTTP {status}", headers=headers)
            if fault.kind == "timeout":
                await asyncio.sleep(fault.seconds)
        return fault, None

    # --- The Odds API v4 (aggregator books; faults under the book name "oddsapi") -------------

    async def odds_api_sports(self, request: web.Request) -> web.StreamResponse:
        return await self._odds_api(lambda: self.odds_api.sports(request.query))

    async def odds_api_odds(self, request: web.Request) -> web.StreamResponse:
        return await self._odds_api(lambda: self.odds_api.odds(request.match_info["sport"], request.query))

    async def _odds_api(self, admit: Callable[[], Callable[[], list[dict[str, Any]]]]) -> web.StreamResponse:
        try:
            answer = admit()
        except OddsApiError as exc:
            return web.json_response(exc.body(), status=exc.status, headers=self.odds_api.usage.headers())
        fault, refused = await self._fault(FAULT_BOOK)
        if refused is not None:
            return refused
        document = answer()  # charged now: a refused or failed request costs nothing
        return _json(document, fault, break_odds, self.odds_api.usage.headers())


def _json(
    document: Any,
    fault: Fault | None,
    breaker: Callable[[Any, str], Any],
    headers: dict[str, str] | None = None,
) -> web.Response:
    """The document as JSON, broken as `fault` asks (content faults; truncated JSON)."""
    body = orjson.dumps(breaker(document, fault.kind) if fault is not None else document)
    if fault is not None and fault.kind == "truncated_json":
        body = body[: max(1, len(body) // 2)]
    return web.Response(body=body, content_type="application/json", headers=headers)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        raise web.HTTPBadRequest(text=f"{value!r} is not a whole number") from None


@dataclass
class RunningSimulator:
    """A simulator serving on 127.0.0.1 in a background thread (tests, benchmarks)."""

    url: str
    app: SimulatorApp
    _loop: asyncio.AbstractEventLoop
    _thread: threading.Thread
    _runner: web.AppRunner

    @property
    def market(self) -> Market:
        return self.app.market

    def book_url(self, book: str) -> str:
        return f"{self.url}/{book}"

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` on the server's loop (the market is not thread-safe)."""

        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(30)

    def stop(self) -> None:
        async def shutdown() -> None:
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def __enter__(self) -> RunningSimulator:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_in_thread(config: SimConfig, host: str = "127.0.0.1", port: int = 0) -> RunningSimulator:
    app = SimulatorApp(config)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app.build(), access_log=None)
    started = threading.Event()
    where: dict[str, Any] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, host, port)
            loop.run_until_complete(site.start())
            where["port"] = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        except BaseException as exc:  # reported to the caller below
            where["error"] = exc
            started.set()
            return
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="oddly-simulator", daemon=True)
    thread.start()
    started.wait(30)
    if "error" in where:
        raise RuntimeError(f"simulator could not listen on {host}:{port}: {where['error']}")
    return RunningSimulator(f"http://{host}:{where['port']}", app, loop, thread, runner)


def serve(app: SimulatorApp, host: str, port: int, ground_truth_out: Path | None = None) -> None:
    """Serve until interrupted (the CLI); the ground truth goes to a CSV file on the way out."""
    web_app = app.build()
    if ground_truth_out is not None:

        async def write(_: web.Application) -> None:
            write_ground_truth(app.market.ground_truth(), ground_truth_out)

        web_app.on_cleanup.append(write)
    web.run_app(web_app, host=host, port=port, print=None, access_log=None)


def write_ground_truth(rows: list[dict[str, Any]], path: Path) -> None:
    columns = list(Scenario.__dataclass_fields__)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            ids = orjson.dumps(row["event_ids"]).decode()
            writer.writerow({**row, "event_ids": ids, "books": " ".join(row["books"])})
