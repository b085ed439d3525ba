"""The Odds API v4 parser on a hand-written but realistic response: several bookmakers (one of them
twice, as Betfair's UK and EU exchange), h2h with a draw, spreads on a half and a quarter line,
totals, the exchange's lay market, and malformed records."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from oddly.config import FeedConfig
from oddly.feeds.base import ParseResult, Payload
from oddly.feeds.the_odds_api import TheOddsApiAgent
from oddly.validate import validate_batch

RECEIVED = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

EPL: list[Any] = [
    {
        "id": "e912304de2b2ce35b473ce2ecd3d1502",
        "sport_key": "soccer_epl",
        "sport_title": "EPL",
        "commence_time": "2026-11-22T15:00:00Z",
        "home_team": "Arsenal",
        "away_team": "Chelsea",
        "bookmakers": [
            {
                "key": "pinnacle",
                "title": "Pinnacle",
                "last_update": "2026-11-22T11:58:41Z",
                "markets": [
                    {
                        "key": "h2h",
                        "outcomes": [
                            {"name": "Arsenal", "price": 1.95},
                            {"name": "Chelsea", "price": 4.1},
                            {"name": "Draw", "price": 3.6},
                        ],
                    },
                    {
                        "key": "spreads",
                        "outcomes": [
                            {"name": "Arsenal", "price": 2.02, "point": -0.25},
                            {"name": "Chelsea", "price": 1.89, "point": 0.25},
                        ],
                    },
                    {
                        "key": "totals",
                        "outcomes": [
                            {"name": "Over", "price": 1.97, "point": 2.5},
                            {"name": "Under", "price": 1.92, "point": 2.5},
                        ],
                    },
                ],
            },
            {
                "key": "betfair_ex_uk",
                "title": "Betfair",
                "last_update": "2026-11-22T11:57:00Z",
                "markets": [
                    {
                        "key": "h2h",
                        "outcomes": [
                            {"name": "Arsenal", "price": 1.96},
                            {"name": "Chelsea", "price": 4.2},
                            {"name": "Draw", "price": 3.65},
                        ],
                    }
                ],
            },
            {
                "key": "williamhill",
                "title": "William Hill",
                "last_update": "2026-11-22T11:59:10Z",
                "markets": [
                    {
                        "key": "h2h",
                        "last_update": "2026-11-22T11:55:02Z",
                        "outcomes": [
                            {"name": "Arsenal", "price": 1.91},
                            {"name": "Chelsea", "price": 3.9},
                            {"name": "Draw", "price": 3.5},
                        ],
                    },
                    {
                        "key": "spreads",
                        "last_update": "2026-11-22T11:59:10Z",
                        "outcomes": [
                            {"name": "Arsenal", "price": 2.45, "point": -1.0},
                            {"name": "Chelsea", "price": 1.57, "point": 1.0},
                        ],
                    },
                ],
            },
            {
                "key": "betfair_ex_eu",
                "title": "Betfair",
                "last_update": "2026-11-22T11:59:30Z",
                "markets": [
                    {
                        "key": "h2h",
                        "outcomes": [
                            {"name": "Arsenal", "price": 1.98},
                            {"name": "Chelsea", "price": 4.3},
                            {"name": "Draw", "price": 3.7},
                        ],
                    },
                    {
                        "key": "h2h_lay",
                        "outcomes": [
                            {"name": "Arsenal", "price": 2.0},
                            {"name": "Chelsea", "price": 4.4},
                            {"name": "Draw", "price": 3.75},
                        ],
                    },
                ],
            },
            {
                "key": "unibet_eu",
                "title": "Unibet",
                "last_update": "2026-11-22T11:59:00Z",
                "markets": [
                    {
                        "key": "h2h",
                        "outcomes": [
                            {"name": "Arsenal FC", "price": 1.93},
                            {"name": "Chelsea", "price": 1.0},
                            {"name": "Draw"},
                        ],
                    },
                    {
                        "key": "totals",
                        "outcomes": [
                            {"name": "Over", "price": 1.9},
                            {"name": "Under", "price": 1.95, "point": 2.5},
                        ],
                    },
                    {"outcomes": []},
                ],
            },
        ],
    },
    {
        "id": "0b5d5c2f8e8a4b1f9c0d1e2f3a4b5c6d",
        "sport_key": "soccer_epl",
        "sport_title": "EPL",
        "commence_time": "2026-11-22T11:30:00Z",
        "home_team": "Liverpool",
        "away_team": "Everton",
        "bookmakers": [
            {
                "key": "marathonbet",
                "title": "Marathon Bet",
                "last_update": "2026-11-22T11:59:58Z",
                "markets": [
                    {
                        "key": "h2h",
                        "outcomes": [
                            {"name": "Liverpool", "price": 1.5},
                            {"name": "Everton", "price": 7.0},
                            {"name": "Draw", "price": 4.2},
                        ],
                    },
                    {
                        "key": "totals",
                        "outcomes": [
                            {"name": "Over", "price": 1.8, "point": 3.25},
                            {"name": "Under", "price": 2.0, "point": 3.25},
                        ],
                    },
                ],
            }
        ],
    },
    {
        "id": "c0ffee",
        "sport_key": "soccer_epl",
        "sport_title": "EPL",
        "commence_time": "2026-11-23T15:00:00Z",
        "away_team": "Fulham",
        "bookmakers": [],
    },
    "not an event",
]

NBA: list[Any] = [
    {
        "id": "b1ab0c4e6d5f4e3c2b1a098765432100",
        "sport_key": "basketball_nba",
        "sport_title": "NBA",
        "commence_time": 1795453200,
        "home_team": "Boston Celtics",
        "away_team": "Los Angeles Lakers",
        "bookmakers": [
            {
                "key": "pinnacle",
                "title": "Pinnacle",
                "last_update": 1795449600,
                "markets": [
                    {
                        "key": "h2h",
                        "outcomes": [
                            {"name": "Boston Celtics", "price": 1.55},
                            {"name": "Los Angeles Lakers", "price": 2.55},
                        ],
                    }
                ],
            }
        ],
    }
]


def agent(**options: object) -> TheOddsApiAgent:
    return TheOddsApiAgent(
        FeedConfig(
            name="odds",
            agent="the_odds_api",
            bookmaker="the_odds_api",
            base_url="https://api.the-odds-api.com",
            options=options,
        )
    )


def parse(document: object, kind: str = "soccer_epl odds", **options: object) -> ParseResult:
    body = document if isinstance(document, bytes) else orjson.dumps(document)
    return agent(**options).parse(Payload(url="u", body=body, received_at=RECEIVED, kind=kind))


def rows(result: ParseResult) -> list[dict[str, Any]]:
    return result.rows.to_table(RECEIVED, "run").to_pylist()


def prices(result: ParseResult, bookmaker: str, market: str) -> dict[tuple[str, float | None], Any]:
    return {
        (r["outcome"], r["line"]): r["price"]
        for r in rows(result)
        if r["bookmaker"] == bookmaker and r["market"] == market
    }


@pytest.fixture(scope="module")
def epl() -> ParseResult:
    return parse(EPL)


def test_every_bookmaker_is_its_own_bookmaker_under_the_projects_name(epl: ParseResult) -> None:
    books = {r["bookmaker"] for r in rows(epl)}
    assert books == {"pinnacle", "betfair_ex", "william_hill", "unibet_eu", "marathonbet"}
    first = rows(epl)[0]
    assert first["source_event_id"] == "e912304de2b2ce35b473ce2ecd3d1502"
    assert (first["home"], first["away"], first["sport"], first["league"]) == (
        "Arsenal",
        "Chelsea",
        "football",
        "EPL",
    )
    assert first["starts_at"] == datetime(2026, 11, 22, 15, tzinfo=UTC) and first["is_live"] is False
    assert first["country"] is None and first["period"] == "ft" and first["status"] == "open"


def test_h2h_with_a_draw_is_1x2(epl: ParseResult) -> None:
    assert prices(epl, "pinnacle", "1x2") == {("home", None): 1.95, ("away", None): 4.1, ("draw", None): 3.6}
    assert prices(epl, "william_hill", "1x2") == {
        ("home", None): 1.91,
        ("away", None): 3.9,
        ("draw", None): 3.5,
    }


def test_spreads_are_stored_on_the_home_sides_line(epl: ParseResult) -> None:
    # Arsenal -1.0 @2.45 and Chelsea +1.0 @1.57 are one line: -1.0, the home side's
    assert prices(epl, "william_hill", "handicap") == {("home", -1.0): 2.45, ("away", -1.0): 1.57}
    # a quarter line is an Asian handicap
    assert prices(epl, "pinnacle", "asian_handicap") == {("home", -0.25): 2.02, ("away", -0.25): 1.89}
    assert prices(epl, "pinnacle", "handicap") == {}


def test_totals_carry_their_point_as_the_line(epl: ParseResult) -> None:
    assert prices(epl, "pinnacle", "total") == {("over", 2.5): 1.97, ("under", 2.5): 1.92}
    assert prices(epl, "marathonbet", "asian_total") == {("over", 3.25): 1.8, ("under", 3.25): 2.0}


def test_source_time_is_the_markets_last_update_else_the_bookmakers(epl: ParseResult) -> None:
    def source_ts(book: str, market: str) -> set[datetime]:
        return {r["source_ts"] for r in rows(epl) if r["bookmaker"] == book and r["market"] == market}

    assert source_ts("william_hill", "1x2") == {datetime(2026, 11, 22, 11, 55, 2, tzinfo=UTC)}
    assert source_ts("william_hill", "handicap") == {datetime(2026, 11, 22, 11, 59, 10, tzinfo=UTC)}
    assert source_ts("pinnacle", "total") == {datetime(2026, 11, 22, 11, 58, 41, tzinfo=UTC)}


def test_one_book_under_two_keys_keeps_the_copy_updated_last(epl: ParseResult) -> None:
    # betfair_ex_uk (11:57) and betfair_ex_eu (11:59:30) are one exchange: the EU copy wins
    assert prices(epl, "betfair_ex", "1x2") == {
        ("home", None): 1.98,
        ("away", None): 4.3,
        ("draw", None): 3.7,
    }
    assert len([r for r in rows(epl) if r["bookmaker"] == "betfair_ex" and r["market"] == "1x2"]) == 3


def test_unknown_markets_are_kept_under_their_key_and_counted(epl: ParseResult) -> None:
    assert prices(epl, "betfair_ex", "raw:h2h_lay") == {
        ("home", None): 2.0,
        ("away", None): 4.4,
        ("draw", None): 3.75,
    }
    assert epl.unmapped == {"h2h_lay": 3}


def test_a_match_already_started_is_live(epl: ParseResult) -> None:
    live = {r["is_live"] for r in rows(epl) if r["source_event_id"] == "0b5d5c2f8e8a4b1f9c0d1e2f3a4b5c6d"}
    assert live == {True}


def test_malformed_records_are_rejected_with_reasons(epl: ParseResult) -> None:
    assert sorted(r.reason for r in epl.rejects) == sorted(
        [
            "event without home_team/away_team",
            "event is a str, not an object",
            "unibet_eu h2h: h2h outcome 'Arsenal FC' is neither 'Arsenal', 'Chelsea' nor Draw",
            "unibet_eu totals: totals outcome 'Over' without a point (point=None)",
            "unibet_eu: market without key",
        ]
    )
    unibet = next(r for r in epl.rejects if r.reason.startswith("unibet_eu h2h"))
    assert unibet.bookmaker == "unibet_eu" and unibet.source_event_id == "e912304de2b2ce35b473ce2ecd3d1502"
    assert unibet.record == {
        "bookmaker": "unibet_eu",
        "market": "h2h",
        "outcome": {"name": "Arsenal FC", "price": 1.93},
    }
    headless = next(r for r in epl.rejects if r.reason.startswith("event without home_team"))
    assert headless.bookmaker == "the_odds_api" and headless.source_event_id == "c0ffee"


def test_prices_at_or_below_one_or_missing_are_rejected_by_validation(epl: ParseResult) -> None:
    validated = validate_batch(epl.rows.to_table(RECEIVED, "run"), epl.rows)
    assert sorted(r.reason for r in validated.rejects) == [
        "price 1 is not a decimal odd (must be > 1)",
        "price None is not a number",
    ]
    assert {r.bookmaker for r in validated.rejects} == {"unibet_eu"}
    assert validated.table.num_rows == len(epl.rows) - 2


def test_two_way_head_to_head_is_a_moneyline() -> None:
    result = parse(NBA, kind="basketball_nba odds")
    assert result.rejects == []
    assert prices(result, "pinnacle", "moneyline") == {("home", None): 1.55, ("away", None): 2.55}
    first = rows(result)[0]
    assert first["sport"] == "basketball" and first["league"] == "NBA"
    assert first["starts_at"] == datetime.fromtimestamp(1795453200, tz=UTC)  # dateFormat=unix
    assert first["source_ts"] == datetime.fromtimestamp(1795449600, tz=UTC)


def test_names_can_be_overridden_and_books_left_out() -> None:
    result = parse(
        EPL, bookmaker_names={"unibet_eu": "unibet"}, exclude_bookmakers=["pinnacle", "marathonbet"]
    )
    assert {r["bookmaker"] for r in rows(result)} == {"betfair_ex", "william_hill", "unibet"}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'[{"id": "x", "home_team": "A"', "malformed JSON"),
        (b"<html>502 Bad Gateway</html>", "malformed JSON"),
        (
            b'{"message": "Usage quota has been reached", "error_code": "OUT_OF_USAGE_CREDITS"}',
            "an error object instead of events: Usage quota has been reached",
        ),
        (b'"events"', "unexpected JSON: a str, expected a list of events"),
    ],
)
def test_unreadable_payloads_become_one_reject(body: bytes, reason: str) -> None:
    result = parse(body)
    assert len(result.rows) == 0
    assert len(result.rejects) == 1 and reason in result.rejects[0].reason
    assert result.rejects[0].bookmaker == "the_odds_api"


def test_an_empty_answer_has_no_rows_and_no_rejects() -> None:
    result = parse([])
    assert len(result.rows) == 0 and result.rejects == [] and not result.unmapped
