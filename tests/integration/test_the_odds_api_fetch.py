"""The Odds API agent over real HTTP against the simulator's `/oddsapi/v4/…`: fetch → parse → write
through `oddly.ingest.ingest_feed` into a temporary DuckDB warehouse."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from oddly.config import FeedConfig, HttpPolicy
from oddly.ingest import ingest_feed
from oddly.simulator.config import SimConfig
from oddly.simulator.oddsapi import SPORTS
from oddly.simulator.server import RunningSimulator, start_in_thread
from oddly.warehouse.store import Warehouse

ENV = "ODDLY_TEST_ODDS_API_KEY"
KEY = "sim-key-7f3a"
LEAGUES = [key for key, _ in SPORTS.values()]
FAST = HttpPolicy(retries=2, backoff_seconds=0.01, timeout_seconds=5, requests_per_second=100)


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    with start_in_thread(SimConfig(seed=4, n_events=16, markets_per_event=4, manual_clock=True)) as running:
        yield running


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch, sim: RunningSimulator) -> Iterator[None]:
    monkeypatch.setenv(ENV, KEY)
    yield
    httpx.delete(f"{sim.url}/_sim/fault")


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    return Warehouse.from_url(f"duckdb:///{tmp_path}/wh.duckdb")


def feed(url: str, **options: object) -> FeedConfig:
    return FeedConfig(
        name="sim_oddsapi",
        agent="the_odds_api",
        bookmaker="the_odds_api",
        base_url=f"{url}/oddsapi",
        http=FAST,
        options={
            "sports": LEAGUES,
            "regions": ["uk", "eu"],
            "api_key_env": ENV,
            "quota_floor": 10,
            **options,
        },
    )


def usage(sim: RunningSimulator) -> dict[str, int]:
    headers = httpx.get(f"{sim.url}/_sim/state").json()["odds_api"]["usage"]
    return {k.removeprefix("x-requests-"): int(v) for k, v in headers.items()}


def test_every_bookmaker_lands_in_the_warehouse_with_its_source_time(
    sim: RunningSimulator, warehouse: Warehouse
) -> None:
    books = ["pinnacle", "betfair_ex_eu", "williamhill", "unibet_eu"]
    report = ingest_feed(feed(sim.url, bookmakers=books), warehouse)
    assert report.status == "ok", report.error
    assert report.requests == 1 + len(LEAGUES) and report.rejected == 0
    assert report.ticks_written == report.prices_seen == warehouse.count_ticks() > 0
    per_book = warehouse.query(
        "select bookmaker, count(distinct source_event_id) as events, count(*) as ticks, "
        "count(source_ts) as with_source_ts from raw.odds_ticks group by bookmaker order by bookmaker"
    )
    assert [r["bookmaker"] for r in per_book] == ["betfair_ex", "pinnacle", "unibet_eu", "william_hill"]
    assert all(r["events"] == per_book[0]["events"] > 0 for r in per_book)
    assert all(r["with_source_ts"] == r["ticks"] for r in per_book)
    # the exchange's lay prices are kept under their own key and counted
    assert report.unmapped_codes == {"h2h_lay": 3 * per_book[0]["events"]}
    metadata = report.as_metadata()
    now = usage(sim)
    assert (
        metadata["agent_requests_remaining"] == now["remaining"]
        and metadata["agent_requests_used"] == now["used"]
    )
    assert metadata["agent_sports_fetched"] == len(LEAGUES)


def test_pinnacle_through_the_aggregator_is_pinnacle_over_linefeed(
    sim: RunningSimulator, warehouse: Warehouse
) -> None:
    report = ingest_feed(feed(sim.url, bookmakers=["pinnacle"], markets=["h2h"]), warehouse)
    assert report.status == "ok", report.error
    aggregated = {
        (r["home"], r["away"], int(r["starts_at"].timestamp()), r["outcome"]): r["price"]
        for r in warehouse.query(
            "select home, away, starts_at, outcome, price from raw.odds_ticks where market = '1x2'"
        )
    }
    linefeed = httpx.get(f"{sim.book_url('pinnacle')}/LineFeed/Get1x2_VZip", params={"count": 100}).json()[
        "Value"
    ]
    live = httpx.get(f"{sim.book_url('pinnacle')}/LiveFeed/Get1x2_VZip", params={"count": 100}).json()[
        "Value"
    ]
    outcome = {1: "home", 2: "draw", 3: "away"}
    direct = {
        (e["O1"], e["O2"], e["S"], outcome[i["T"]]): i["C"]
        for e in linefeed + live
        for i in e["E"]
        if i["G"] == 1
    }
    assert aggregated and aggregated.items() <= direct.items()


def test_the_run_stops_at_the_quota_floor_and_says_so(sim: RunningSimulator, warehouse: Warehouse) -> None:
    # two leagues' worth of credits above the floor (3 markets × 2 regions each), then the floor
    httpx.post(f"{sim.url}/_sim/odds-api-quota", json={"remaining": 10 + 2 * 6 + 5}).raise_for_status()
    try:
        report = ingest_feed(feed(sim.url), warehouse)
        left = usage(sim)["remaining"]
    finally:
        httpx.post(f"{sim.url}/_sim/odds-api-quota", json={"remaining": 1_000_000})
    assert left >= 10
    assert report.status in ("partial", "failed") and report.error is not None
    assert f"quota floor reached: {left} requests left (floor 10" in report.error
    assert report.as_metadata()["agent_requests_remaining"] == left
    assert report.as_metadata()["agent_sports_fetched"] < len(LEAGUES)
    assert "quota floor reached" in warehouse.feed_runs()[0]["error"]


def test_a_refused_key_fails_the_run_naming_the_variable_not_the_key(tmp_path: Path) -> None:
    config = SimConfig(seed=4, n_events=4, markets_per_event=3, manual_clock=True, odds_api_key="another-key")
    with start_in_thread(config) as strict:
        warehouse = Warehouse.from_url(f"duckdb:///{tmp_path}/wh.duckdb")
        report = ingest_feed(feed(strict.url), warehouse)
    assert report.status == "failed" and report.error is not None
    assert "HTTP 401" in report.error and f"set {ENV} to a valid key" in report.error
    assert KEY not in report.error and "apiKey=***" in report.error
    assert KEY not in (warehouse.feed_runs()[0]["error"] or "")
    assert warehouse.count_ticks() == 0


def test_rate_limited_requests_are_retried_after_the_wait_asked(
    sim: RunningSimulator, warehouse: Warehouse
) -> None:
    httpx.post(
        f"{sim.url}/_sim/fault", json={"book": "oddsapi", "kind": "http_429", "count": 2, "seconds": 0.05}
    ).raise_for_status()
    report = ingest_feed(feed(sim.url, sports=LEAGUES[:2]), warehouse)
    assert report.status == "ok", report.error
    assert report.requests == 3 + 2  # the probe and the first league each waited once


def test_a_second_cycle_writes_only_what_moved(sim: RunningSimulator, warehouse: Warehouse) -> None:
    first = ingest_feed(feed(sim.url), warehouse)
    again = ingest_feed(feed(sim.url), warehouse)
    assert first.ticks_written > 0 and again.status == "ok" and again.ticks_written == 0


def test_the_simulated_api_answers_in_the_v4_way_over_http(sim: RunningSimulator) -> None:
    sports = httpx.get(f"{sim.url}/oddsapi/v4/sports/", params={"apiKey": "any"})
    assert sports.status_code == 200 and {s["key"] for s in sports.json()} <= set(LEAGUES)
    assert sports.headers["x-requests-last"] == "0" and int(sports.headers["x-requests-remaining"]) > 0
    missing = httpx.get(f"{sim.url}/oddsapi/v4/sports/soccer_epl/odds", params={"regions": "eu"})
    assert missing.status_code == 401 and missing.json()["error_code"] == "MISSING_KEY"
    assert "x-requests-remaining" in missing.headers
    unknown = httpx.get(
        f"{sim.url}/oddsapi/v4/sports/soccer_mars/odds", params={"apiKey": "k", "regions": "eu"}
    )
    assert unknown.status_code == 404 and unknown.json()["error_code"] == "UNKNOWN_SPORT"
    httpx.post(f"{sim.url}/_sim/fault", json={"book": "oddsapi", "kind": "http_503"}).raise_for_status()
    failed = httpx.get(f"{sim.url}/oddsapi/v4/sports/upcoming/odds", params={"apiKey": "k", "regions": "eu"})
    assert failed.status_code == 503
    assert (
        httpx.get(f"{sim.book_url('22bet')}/LineFeed/Get1x2_VZip").status_code == 200
    )  # other books carry on
