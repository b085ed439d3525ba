"""The Odds API agent's requests, against a fake API in-process: the request budget read from the
usage headers of every answer, stopping before the quota floor, the key only from the
environment and never in a log or an error message, and the shared client's 401/429 handling."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pytest

from oddly.config import FeedConfig, HttpPolicy
from oddly.feeds.base import FeedError, FetchOutcome
from oddly.feeds.http import FeedHttpClient
from oddly.feeds.the_odds_api import TheOddsApiAgent, TheOddsApiOptions
from oddly.ingest import process_fetched, start_report
from oddly.warehouse.store import Warehouse

KEY = "k3y-5ecret-0dd5"
ENV = "ODDLY_TEST_ODDS_API_KEY"
EVENT = {
    "id": "ev1",
    "sport_key": "soccer_epl",
    "sport_title": "EPL",
    "commence_time": "2030-01-01T15:00:00Z",
    "home_team": "Arsenal",
    "away_team": "Chelsea",
    "bookmakers": [
        {
            "key": "pinnacle",
            "title": "Pinnacle",
            "last_update": "2030-01-01T11:00:00Z",
            "markets": [
                {
                    "key": "h2h",
                    "outcomes": [
                        {"name": "Arsenal", "price": 2.0},
                        {"name": "Chelsea", "price": 3.8},
                        {"name": "Draw", "price": 3.5},
                    ],
                }
            ],
        }
    ],
}


@dataclass
class FakeApi:
    """Charges markets × regions per odds request and reports usage as The Odds API does."""

    remaining: int
    used: int = 0
    status: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)
    paths: list[str] = field(default_factory=list)
    queries: list[dict[str, str]] = field(default_factory=list)
    headers: bool = True

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        self.queries.append(dict(request.url.params))
        if self.status.get(request.url.path):
            code, extra = self.status[request.url.path].pop(0)
            return httpx.Response(code, headers=extra, json={"message": "no", "error_code": "X"})
        last = 0
        body: object = [{"key": "soccer_epl"}]
        if request.url.path.endswith("/odds"):
            params = request.url.params
            regions = len(params["regions"].split(",")) if "regions" in params else 1
            last = len(params["markets"].split(",")) * regions
            self.remaining -= last
            self.used += last
            body = [EVENT]
        usage = {
            "x-requests-remaining": str(self.remaining),
            "x-requests-used": str(self.used),
            "x-requests-last": str(last),
        }
        return httpx.Response(200, headers=usage if self.headers else {}, json=body)


def feed(**options: object) -> FeedConfig:
    return FeedConfig(
        name="odds",
        agent="the_odds_api",
        bookmaker="the_odds_api",
        base_url="https://api.the-odds-api.com",
        http=HttpPolicy(retries=2, backoff_seconds=0.0, requests_per_second=1000),
        options={"api_key_env": ENV, "regions": ["eu"], **options},
    )


async def fetch(
    api: Callable[[httpx.Request], httpx.Response], sleeps: list[float] | None = None, **options: object
) -> FetchOutcome:
    config = feed(**options)

    async def sleep(seconds: float) -> None:
        (sleeps if sleeps is not None else []).append(seconds)

    async with FeedHttpClient(config, transport=httpx.MockTransport(api), sleep=sleep) as http:
        return await TheOddsApiAgent(config).fetch(http)


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, KEY)


SPORTS = ["soccer_epl", "soccer_spain_la_liga", "soccer_italy_serie_a", "soccer_germany_bundesliga"]


async def test_requests_go_where_the_v4_api_expects_them() -> None:
    api = FakeApi(remaining=10_000)
    outcome = await fetch(api, sports=["soccer_epl"])
    assert api.paths == ["/v4/sports", "/v4/sports/soccer_epl/odds"]
    assert api.queries[0] == {"apiKey": KEY}
    assert api.queries[1] == {
        "apiKey": KEY,
        "regions": "eu",
        "markets": "h2h,spreads,totals",
        "oddsFormat": "decimal",
        "dateFormat": "iso",
    }
    assert [p.kind for p in outcome.payloads] == ["soccer_epl odds"]
    assert outcome.requests == 2 and outcome.errors == []


async def test_bookmakers_replace_regions_and_cost_a_region_per_ten() -> None:
    api = FakeApi(remaining=10_000)
    books = [f"book{i}" for i in range(11)]
    options = TheOddsApiOptions(bookmakers=books, markets=["h2h", "totals"])
    assert options.request_cost == 2 * 2
    assert TheOddsApiOptions(regions=["uk", "eu", "au"]).request_cost == 3 * 3
    await fetch(api, sports=["soccer_epl"], bookmakers=["pinnacle", "williamhill"])
    assert api.queries[1]["bookmakers"] == "pinnacle,williamhill" and "regions" not in api.queries[1]


async def test_the_budget_is_read_from_every_answer_and_reported() -> None:
    api = FakeApi(remaining=10_000, used=500)
    outcome = await fetch(api, sports=SPORTS[:2], quota_floor=50)
    assert outcome.errors == []
    assert outcome.notes == {
        "requests_remaining": 10_000 - 2 * 3,
        "requests_used": 506,
        "requests_last": 3,
        "quota_floor": 50,
        "request_cost": 3,
        "sports_fetched": 2,
        "sports_requested": 2,
    }


async def test_it_stops_before_the_remaining_credits_fall_below_the_floor() -> None:
    # 110 left, floor 100, 3 credits a request: 110 → 107 → 104 → 101, and 101 - 3 < 100
    api = FakeApi(remaining=110)
    outcome = await fetch(api, sports=[*SPORTS, "soccer_france_ligue_one"], quota_floor=100)
    assert api.paths.count("/v4/sports") == 1
    assert [p.kind for p in outcome.payloads] == [f"{s} odds" for s in SPORTS[:3]]
    assert api.remaining == 101 >= 100
    (error,) = outcome.errors
    assert error.startswith("quota floor reached: 101 requests left (floor 100")
    assert error.endswith("skipped soccer_germany_bundesliga, soccer_france_ligue_one")
    assert outcome.notes["requests_remaining"] == 101 and outcome.notes["sports_fetched"] == 3


async def test_at_the_floor_no_credit_is_spent() -> None:
    api = FakeApi(remaining=100)
    outcome = await fetch(api, sports=SPORTS, quota_floor=100)
    assert api.paths == ["/v4/sports"] and outcome.payloads == []
    assert outcome.errors[0].startswith("quota floor reached: 100 requests left")
    assert outcome.notes["requests_remaining"] == 100


async def test_without_usage_headers_the_worst_cost_is_assumed() -> None:
    api = FakeApi(remaining=10_000, headers=False)
    outcome = await fetch(api, sports=SPORTS[:2])
    assert "requests_remaining" not in outcome.notes  # unknown: the floor cannot be checked
    assert len(outcome.payloads) == 2 and outcome.errors == []


def test_a_run_stopped_by_the_floor_says_so_and_carries_the_budget_in_its_metadata(tmp_path: object) -> None:
    import asyncio

    api = FakeApi(remaining=104)
    outcome = asyncio.run(fetch(api, sports=SPORTS[:3], quota_floor=100))
    config = feed(sports=SPORTS[:3], quota_floor=100)
    warehouse = Warehouse.from_url(f"duckdb:///{tmp_path}/wh.duckdb")
    report = process_fetched(config, warehouse, start_report(config), outcome)
    assert report.status == "partial" and report.ticks_written == 3
    assert report.error is not None and "quota floor reached: 101 requests left" in report.error
    metadata = report.as_metadata()
    assert metadata["agent_requests_remaining"] == 101 and metadata["agent_requests_used"] == 3
    assert metadata["agent_quota_floor"] == 100
    assert {r["bookmaker"] for r in warehouse.query("select distinct bookmaker from raw.odds_ticks")} == {
        "pinnacle"
    }


async def test_a_missing_key_names_the_variable_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV)
    api = FakeApi(remaining=10_000)
    with pytest.raises(FeedError, match=f"set the environment variable {ENV}"):
        await fetch(api)
    assert api.paths == []


async def test_a_refused_key_names_the_variable_and_never_shows_the_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = FakeApi(remaining=10_000, status={"/v4/sports": [(401, {})]})
    with caplog.at_level(logging.DEBUG, logger="httpx"), pytest.raises(FeedError) as raised:
        await fetch(api)
    message = str(raised.value)
    assert "HTTP 401" in message and f"set {ENV} to a valid key" in message
    assert "apiKey=***" in message and KEY not in message
    assert api.paths == ["/v4/sports"]  # 401 is not retried, no odds were requested
    assert "apiKey=***" in caplog.text and KEY not in caplog.text


async def test_the_key_never_reaches_a_log_or_a_payload(caplog: pytest.LogCaptureFixture) -> None:
    api = FakeApi(remaining=10_000, status={"/v4/sports/soccer_epl/odds": [(503, {})] * 3})
    with caplog.at_level(logging.DEBUG, logger="httpx"):
        outcome = await fetch(api, sports=["soccer_epl", "soccer_spain_la_liga"])
    assert (
        "HTTP Request: GET https://api.the-odds-api.com/v4/sports/soccer_epl/odds?apiKey=***" in caplog.text
    )
    assert KEY not in caplog.text
    assert outcome.errors == [
        "GET https://api.the-odds-api.com/v4/sports/soccer_epl/odds?apiKey=***&regions=eu&markets=h2h%2Cspreads"
        "%2Ctotals&oddsFormat=decimal&dateFormat=iso: HTTP 503 after 3 tries"
    ]
    assert [p.url for p in outcome.payloads] == [
        "https://api.the-odds-api.com/v4/sports/soccer_spain_la_liga/odds?apiKey=***&regions=eu&markets=h2h"
        "%2Cspreads%2Ctotals&oddsFormat=decimal&dateFormat=iso"
    ]


async def test_429_waits_as_long_as_retry_after_asks() -> None:
    api = FakeApi(remaining=10_000, status={"/v4/sports/soccer_epl/odds": [(429, {"Retry-After": "2"})]})
    sleeps: list[float] = []
    outcome = await fetch(api, sleeps, sports=["soccer_epl"])
    assert sleeps == [2.0] and len(outcome.payloads) == 1 and outcome.errors == []


async def test_a_key_that_runs_out_mid_cycle_stops_the_cycle() -> None:
    api = FakeApi(remaining=10_000, status={"/v4/sports/soccer_spain_la_liga/odds": [(401, {})]})
    outcome = await fetch(api, sports=SPORTS[:3])
    assert len(outcome.payloads) == 1
    (error,) = outcome.errors
    assert f"refused the key in {ENV}" in error
    assert error.endswith("skipped soccer_spain_la_liga, soccer_italy_serie_a")
    assert "/v4/sports/soccer_italy_serie_a/odds" not in api.paths


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"regions": [], "bookmakers": []}, "set regions"),
        ({"api_key_env": "THE_ODDS_API_KEY"}, "api_key_env"),
        ({"api_key": KEY}, "api_key"),  # a key never goes in the settings file
        ({"odds_format": "american"}, "odds_format"),
        ({"sports": []}, "sports"),
    ],
)
def test_options_are_validated(options: dict[str, object], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        TheOddsApiAgent(feed(**options))
