"""The LineFeed agent over real HTTP: a local server serves the recorded real responses at the
platform's real paths; ingestion stores them in the warehouse."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from oddly.config import FeedConfig, HttpPolicy
from oddly.ingest import ingest_feed
from oddly.warehouse.store import Warehouse

PREMATCH = "1xbet_ec_Get1x2_VZip_sgiovanny.json"
LIVE_GAME = "1xbet_sa_LiveFeed_GetGameZip_FUTFURY.json"


class RecordedBook:
    """A bookmaker on 127.0.0.1 serving recordings; the live list endpoint can be made to fail."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.queries: list[tuple[str, dict[str, str]]] = []
        self.live_status = 200
        self.url = ""
        self._started = threading.Event()

    async def list_prematch(self, request: web.Request) -> web.Response:
        self.queries.append((request.path, dict(request.query)))
        return web.Response(body=(self.data / PREMATCH).read_bytes(), content_type="application/json")

    async def list_live(self, request: web.Request) -> web.Response:
        self.queries.append((request.path, dict(request.query)))
        if self.live_status != 200:
            return web.Response(status=self.live_status, text="down for maintenance")
        # a live list holding the recorded live game
        game = (self.data / LIVE_GAME).read_bytes()
        body = game.replace(b'"Value": {', b'"Value": [{', 1).rstrip().removesuffix(b"}") + b"]}"
        return web.Response(body=body, content_type="application/json")

    def app(self) -> web.Application:
        app = web.Application()
        for prefix in ("", "/service-api"):
            app.router.add_get(f"{prefix}/LineFeed/Get1x2_VZip", self.list_prematch)
            app.router.add_get(f"{prefix}/LiveFeed/Get1x2_VZip", self.list_live)
        return app


@pytest.fixture
def book(linefeed_data: Path) -> Iterator[RecordedBook]:
    recorded = RecordedBook(linefeed_data)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(recorded.app())

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        recorded.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
        recorded._started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    recorded._started.wait(10)
    yield recorded
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def feed(url: str, **options: object) -> FeedConfig:
    return FeedConfig(
        name="rec_22bet",
        agent="linefeed",
        bookmaker="22bet",
        base_url=url,
        http=HttpPolicy(retries=1, backoff_seconds=0.01, requests_per_second=100),
        options={"prematch": True, "live": True, "sports": [1], "count": 50, "country": 209, **options},
    )


@pytest.mark.parametrize("prefix", ["", "/service-api"])
def test_recorded_responses_are_fetched_and_stored(book: RecordedBook, tmp_path: Path, prefix: str) -> None:
    warehouse = Warehouse.from_url(f"duckdb:///{tmp_path}/wh.duckdb")
    report = ingest_feed(feed(book.url, path_prefix=prefix), warehouse)
    assert report.status == "ok", report.error
    assert sorted(path for path, _ in book.queries) == [
        f"{prefix}/LineFeed/Get1x2_VZip",
        f"{prefix}/LiveFeed/Get1x2_VZip",
    ]
    assert book.queries[0][1] == {
        "sports": "1",
        "count": "50",
        "lng": "en",
        "mode": "4",
        "getEmpty": "true",
        "country": "209",
    }
    assert report.prices_seen == 32 + 338 and report.rejected == 0 and report.unmapped == 274
    assert report.ticks_written == 370 == warehouse.count_ticks()
    live = warehouse.query(
        "select count(*) as n from raw.odds_ticks where is_live and source_event_id = '694233938'"
    )
    assert live == [{"n": 338}]
    away = warehouse.current_prices(
        "t.source_event_id = '335841758' and t.market = '1x2' and t.outcome = 'away'"
    )
    assert [r["price"] for r in away] == [1.896]


def test_one_endpoint_down_gives_a_partial_run_in_words(book: RecordedBook, tmp_path: Path) -> None:
    book.live_status = 503
    warehouse = Warehouse.from_url(f"duckdb:///{tmp_path}/wh.duckdb")
    report = ingest_feed(feed(book.url), warehouse)
    assert report.status == "partial"
    assert "LiveFeed/Get1x2_VZip" in report.error and "HTTP 503 after 2 tries" in report.error
    assert report.error.endswith("the rest was ingested")
    assert report.ticks_written == 32
    assert warehouse.feed_runs()[0]["status"] == "partial"


@pytest.mark.slow
def test_full_markets_fetches_every_game_and_keeps_one_row_per_selection(tmp_path: Path) -> None:
    from oddly.simulator.config import SimConfig
    from oddly.simulator.server import start_in_thread

    with start_in_thread(SimConfig(seed=9, n_events=6, markets_per_event=10, manual_clock=True)) as sim:
        cfg = FeedConfig(
            name="sim_full",
            agent="linefeed",
            bookmaker="1xbet",
            base_url=sim.book_url("1xbet"),
            http=HttpPolicy(requests_per_second=100),
            options={"live": True, "full_markets": True, "max_games": 4},
        )
        warehouse = Warehouse.from_url(f"duckdb:///{tmp_path}/wh.duckdb")
        report = ingest_feed(cfg, warehouse)
        listed = sim.call(lambda: sim.market.price_count("1xbet"))
    assert report.status == "ok", report.error
    assert report.requests == 2 + 4  # both lists, then four games
    # the games repeat selections the lists already carry: one tick per selection
    assert report.prices_seen > report.ticks_written == listed
    assert warehouse.scalar("select count(distinct selection_key) from raw.odds_ticks") == listed
