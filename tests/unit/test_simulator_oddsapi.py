"""The simulated Odds API: its books price the same latent market without touching the LineFeed
books' prices or random streams, in the real v4 format, over a quota that runs down."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
import pytest

from oddly.config import FeedConfig
from oddly.feeds.base import Payload
from oddly.feeds.the_odds_api import TheOddsApiAgent
from oddly.simulator.config import SimConfig
from oddly.simulator.market import Market
from oddly.simulator.oddsapi import OddsApi, OddsApiError, break_odds
from oddly.simulator.server import SimulatorApp
from oddly.validate import validate_batch

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
KEY = {"apiKey": "demo"}
ALL = {**KEY, "regions": "uk,eu", "markets": "h2h,spreads,totals"}


def config(**kw: object) -> SimConfig:
    return SimConfig(
        **{"seed": 5, "start": T0, "manual_clock": True, "n_events": 12, "live_share": 0.3, **kw}
    )


def linefeed_history(market: Market, between: Any = None) -> list[bytes]:
    """Every LineFeed book's payloads over 20 simulated minutes (goals, scenarios, moves)."""
    out = []
    for _ in range(4):
        market.advance(300)
        if between is not None:
            between()
        out.extend(
            market.linefeed_payload(b.name, live=live) for b in market.config.books for live in (False, True)
        )
    return out


def test_the_aggregator_leaves_a_seeds_linefeed_payloads_and_random_streams_unchanged() -> None:
    plain = Market(config(aggregator_books=()))
    app = SimulatorApp(config())
    api = app.odds_api

    def ask_the_aggregator() -> None:
        api.odds("upcoming", {**ALL, "bookmakers": "pinnacle,williamhill,betfair_ex_eu,unibet_eu"})()
        api.odds("upcoming", ALL)()

    assert linefeed_history(app.market, ask_the_aggregator) == linefeed_history(plain)
    assert app.market.ground_truth() == plain.ground_truth() and plain.ground_truth()
    assert app.market.rng.bit_generator.state == plain.rng.bit_generator.state


def test_regions_list_only_the_aggregators_own_books() -> None:
    api = OddsApi(Market(config()))
    keys = {b["key"] for e in api.odds("upcoming", {**KEY, "regions": "eu"})() for b in e["bookmakers"]}
    assert keys == {"betfair_ex_eu", "williamhill", "unibet_eu", "marathonbet"}
    uk = {b["key"] for e in api.odds("upcoming", {**KEY, "regions": "uk"})() for b in e["bookmakers"]}
    assert uk == {"williamhill", "paddypower"}
    assert not {b.name for b in api.market.config.books} & (keys | uk)  # never a LineFeed book


def test_a_linefeed_book_asked_by_name_quotes_what_it_quotes_there() -> None:
    market = Market(config(live_share=0.0))
    market.advance(60)
    api = OddsApi(market)
    events = api.odds("upcoming", {**KEY, "bookmakers": "pinnacle"})()
    linefeed = {
        (e["O1"], e["O2"]): {i["T"]: i["C"] for i in e["E"] if i["G"] == 1}
        for e in market.linefeed_document("pinnacle")["Value"]
    }
    for event in events:
        (book,) = event["bookmakers"]
        h2h = {o["name"]: o["price"] for o in book["markets"][0]["outcomes"]}
        expected = linefeed[(event["home_team"], event["away_team"])]
        assert [h2h[event["home_team"]], h2h["Draw"], h2h[event["away_team"]]] == [
            expected[t] for t in (1, 2, 3)
        ]


def test_the_v4_format() -> None:
    api = OddsApi(Market(config(live_share=0.0)))
    event = api.odds("upcoming", ALL)()[0]
    assert set(event) == {
        "id",
        "sport_key",
        "sport_title",
        "commence_time",
        "home_team",
        "away_team",
        "bookmakers",
    }
    assert len(event["id"]) == 32 and event["sport_key"].startswith("soccer_")
    assert datetime.fromisoformat(event["commence_time"]) > T0
    exchange = next(b for b in event["bookmakers"] if b["key"] == "betfair_ex_eu")
    assert exchange["title"] == "Betfair" and datetime.fromisoformat(exchange["last_update"]) == T0
    markets = {m["key"]: m for m in exchange["markets"]}
    assert list(markets) == ["h2h", "h2h_lay", "spreads", "totals"]
    home, away = event["home_team"], event["away_team"]
    assert [o["name"] for o in markets["h2h"]["outcomes"]] == [home, away, "Draw"]
    spreads = markets["spreads"]["outcomes"]
    assert [(o["name"], o["point"]) for o in spreads] == [(home, -0.5), (away, 0.5)]
    assert [(o["name"], o["point"]) for o in markets["totals"]["outcomes"]] == [("Over", 2.5), ("Under", 2.5)]
    back = [o["price"] for o in markets["h2h"]["outcomes"]]
    lay = [o["price"] for o in markets["h2h_lay"]["outcomes"]]
    assert all(lay_price > back_price for lay_price, back_price in zip(lay, back, strict=True))
    lagging = next(b for b in event["bookmakers"] if b["key"] == "williamhill")
    assert lagging["last_update"] == exchange["last_update"]  # no history before time zero


def test_each_book_prices_with_its_own_margin() -> None:
    api = OddsApi(Market(config(n_events=30, live_share=0.0)))
    events = api.odds("upcoming", {**KEY, "regions": "uk,eu", "markets": "h2h"})()
    margins: dict[str, list[float]] = {}
    for event in events:
        for book in event["bookmakers"]:
            outcomes = book["markets"][0]["outcomes"]
            margins.setdefault(book["key"], []).append(sum(1 / o["price"] for o in outcomes) - 1)
    median = {book: float(np.median(m)) for book, m in margins.items()}
    assert (
        median["betfair_ex_eu"] < 0.02 < median["marathonbet"] < median["unibet_eu"] < median["williamhill"]
    )
    assert median["williamhill"] < median["paddypower"] < 0.08


def test_cost_is_markets_times_regions_and_an_empty_answer_is_free() -> None:
    api = OddsApi(Market(config(odds_api_quota=100)))
    api.odds("upcoming", ALL)()
    assert api.usage.headers() == {
        "x-requests-remaining": "94",
        "x-requests-used": "6",
        "x-requests-last": "6",
    }
    league = next(key for key in ("soccer_epl", "soccer_spain_la_liga") if api.odds(key, ALL)())
    assert api.usage.remaining == 88 and league
    api.sports(KEY)()
    assert api.usage.headers()["x-requests-last"] == "0" and api.usage.remaining == 88
    eleven = ",".join(f"book{i}" for i in range(10)) + ",pinnacle"
    api.odds("upcoming", {**KEY, "bookmakers": eleven, "markets": "h2h"})()
    assert api.usage.remaining == 86  # eleven bookmakers cost as two regions
    api.usage.remaining = 5
    with pytest.raises(OddsApiError) as refused:
        api.odds("upcoming", ALL)
    assert (refused.value.status, refused.value.code) == (401, "OUT_OF_USAGE_CREDITS")


@pytest.mark.parametrize(
    ("sport", "query", "status", "code"),
    [
        ("soccer_epl", {"regions": "eu"}, 401, "MISSING_KEY"),
        ("soccer_epl", {"apiKey": " ", "regions": "eu"}, 401, "MISSING_KEY"),
        ("soccer_epl", KEY, 422, "MISSING_REGION"),
        ("soccer_epl", {**KEY, "regions": "mars"}, 422, "INVALID_REGION"),
        ("soccer_epl", {**KEY, "regions": "eu", "markets": "h2h,btts"}, 422, "INVALID_MARKET"),
        ("soccer_epl", {**KEY, "regions": "eu", "oddsFormat": "american"}, 422, "INVALID_ODDS_FORMAT"),
        ("soccer_nowhere", {**KEY, "regions": "eu"}, 404, "UNKNOWN_SPORT"),
    ],
)
def test_bad_requests_are_refused_as_the_api_refuses_them(
    sport: str, query: dict[str, str], status: int, code: str
) -> None:
    api = OddsApi(Market(config()))
    with pytest.raises(OddsApiError) as refused:
        api.odds(sport, query)
    assert (refused.value.status, refused.value.code) == (status, code)
    assert refused.value.body()["error_code"] == code and api.usage.used == 0


def test_a_configured_key_is_the_only_one_taken() -> None:
    api = OddsApi(Market(config(odds_api_key="right")))
    with pytest.raises(OddsApiError, match="not valid"):
        api.sports({"apiKey": "wrong"})
    assert api.sports({"apiKey": "right"})()


def test_a_goal_takes_an_aggregator_books_markets_off_until_it_has_caught_up() -> None:
    market = Market(config(live_share=1.0, n_events=3))
    market.advance(10)
    api = OddsApi(market)
    event = next(e for e in market.events if market.elapsed()[e.index] > 0)
    market._goal(event.index, "home")
    event_id = api.event_ids[event.index]

    def books_quoting() -> set[str]:
        events = api.odds("upcoming", {**KEY, "regions": "eu"})()
        return {b["key"] for e in events if e["id"] == event_id for b in e["bookmakers"]}

    assert books_quoting() == set()
    market.advance(46)  # the exchange (no lag) and Marathon Bet (5 s) are back after 45 s + their lag
    assert books_quoting() == {"betfair_ex_eu"}
    market.advance(30)
    assert books_quoting() == {"betfair_ex_eu", "marathonbet", "unibet_eu", "williamhill"}


def test_the_agent_reads_the_simulated_answer_without_rejects() -> None:
    market = Market(config())
    market.advance(120)
    body = orjson.dumps(OddsApi(market).odds("upcoming", ALL)())
    agent = TheOddsApiAgent(
        FeedConfig(name="sim", agent="the_odds_api", bookmaker="the_odds_api", base_url="http://127.0.0.1")
    )
    result = agent.parse(Payload(url="u", body=body, received_at=market.at(), kind="upcoming odds"))
    assert result.rejects == [] and result.unmapped == {"h2h_lay": 3 * 12}
    table = result.rows.to_table(market.at(), "run")
    assert validate_batch(table, result.rows).rejects == []
    assert set(table["bookmaker"].to_pylist()) == {
        "betfair_ex",
        "william_hill",
        "unibet_eu",
        "marathonbet",
        "paddypower",
    }
    assert set(table["market"].to_pylist()) == {"1x2", "handicap", "total", "raw:h2h_lay"}


def test_broken_answers_for_the_fault_kinds() -> None:
    document = OddsApi(Market(config())).odds("upcoming", ALL)()
    assert break_odds(document, "empty") == []
    drifted = break_odds(document, "schema_drift")
    assert "home_team" not in drifted[0] and "home_team" in document[0]  # the original is untouched
    zeros = break_odds(document, "zero_prices")
    prices = [o["price"] for e in zeros for b in e["bookmakers"] for m in b["markets"] for o in m["outcomes"]]
    assert 0 in prices and 0 not in [
        o["price"] for e in document for b in e["bookmakers"] for m in b["markets"] for o in m["outcomes"]
    ]
