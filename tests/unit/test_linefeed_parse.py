"""The LineFeed parser on the two real recorded responses and on broken input."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pyarrow as pa
import pytest

from oddly.config import FeedConfig
from oddly.feeds.base import ParseResult, Payload
from oddly.feeds.linefeed import LineFeedAgent, decode_events
from oddly.simulator.config import SimConfig
from oddly.simulator.market import Market
from oddly.validate import validate_batch

PREMATCH = "1xbet_ec_Get1x2_VZip_sgiovanny.json"
LIVE_GAME = "1xbet_sa_LiveFeed_GetGameZip_FUTFURY.json"
NOW = datetime(2026, 11, 22, tzinfo=UTC)


def agent(**options: object) -> LineFeedAgent:
    return LineFeedAgent(
        FeedConfig(
            name="t", agent="linefeed", bookmaker="22bet", base_url="http://127.0.0.1", options=options
        )
    )


def parse(body: bytes, kind: str = "prematch") -> ParseResult:
    return agent().parse(Payload(url="u", body=body, received_at=NOW, kind=kind))


def rows(result: ParseResult) -> list[dict]:
    return result.rows.to_table(NOW, "run").to_pylist()


def prices_of(result: ParseResult, market: str, line: float | None = None) -> dict[str, float]:
    return {r["outcome"]: r["price"] for r in rows(result) if r["market"] == market and r["line"] == line}


@pytest.fixture(scope="module")
def prematch(linefeed_data: Path) -> ParseResult:
    return parse((linefeed_data / PREMATCH).read_bytes())


@pytest.fixture(scope="module")
def live(linefeed_data: Path) -> ParseResult:
    return parse((linefeed_data / LIVE_GAME).read_bytes(), kind="game-live")


def test_prematch_event_fields(prematch: ParseResult) -> None:
    first = rows(prematch)[0]
    assert first["source_event_id"] == "335841758"
    assert (first["home"], first["away"]) == ("Manta", "9 de Octubre")
    assert first["sport"] == "football" and first["country"] == "Ecuador"
    assert first["league"] == "Ecuador. Serie A"  # the English LE preferred over the Spanish L
    assert first["starts_at"] == datetime(2021, 11, 9, 0, 0, tzinfo=UTC)
    assert first["is_live"] is False and first["source_ts"] is None and first["period"] == "ft"


def test_prematch_main_markets(prematch: ParseResult) -> None:
    assert prices_of(prematch, "1x2") == {"home": 3.84, "draw": 3.54, "away": 1.896}
    assert prices_of(prematch, "double_chance") == {"home_draw": 1.788, "home_away": 1.275, "draw_away": 1.23}
    assert prices_of(prematch, "btts") == {"yes": 1.918, "no": 1.838}
    assert prices_of(prematch, "team_total_home", 0.5) == {"over": 1.51, "under": 2.38}
    assert prices_of(prematch, "team_total_away", 1.5) == {"over": 2.05, "under": 1.69}


def test_prematch_handicaps_share_the_home_line(prematch: ParseResult) -> None:
    # home +1.5 @1.25 and away -1.5 @3.54 are one line, stored from the home side
    assert prices_of(prematch, "handicap", 1.5) == {"home": 1.25, "away": 3.54}
    assert prices_of(prematch, "handicap", 0.0) == {"home": 2.904, "away": 1.444}  # no P: the level line
    assert prices_of(prematch, "handicap", 1.0) == {"home": 1.402, "away": 2.8}
    assert prices_of(prematch, "handicap", 2.5) == {"home": 1.045, "away": 7.6}


def test_prematch_alternative_totals(prematch: ParseResult) -> None:
    assert prices_of(prematch, "total", 2.5) == {"over": 2.136, "under": 1.81}
    assert prices_of(prematch, "total", 3.5) == {"over": 3.64, "under": 1.24}
    assert sorted({r["line"] for r in rows(prematch) if r["market"] == "total"}) == [1.5, 2.0, 2.5, 3.0, 3.5]


def test_prematch_counts(prematch: ParseResult) -> None:
    # E[] has 16 outcomes and AE[] 2 × 10; the main handicap and total pairs appear in both
    assert len(prematch.rows) == 32
    assert prematch.rejects == [] and not prematch.unmapped
    assert validate_batch(prematch.rows.to_table(NOW, "r"), prematch.rows).rejects == []


def test_live_game(live: ParseResult) -> None:
    table = rows(live)
    assert len(table) == 338 and live.rejects == []
    first = table[0]
    assert (first["source_event_id"], first["home"], first["away"]) == ("694233938", "İmisli", "Kapaz")
    assert first["is_live"] is True and first["country"] == "Azerbaijan"
    assert first["source_ts"] == datetime.fromtimestamp(1770634784, tz=UTC)
    assert prices_of(live, "1x2") == {"home": 2.57, "draw": 2.544, "away": 3.48}


def test_live_blocked_outcome_is_suspended(live: ParseResult) -> None:
    suspended = [r for r in rows(live) if r["status"] == "suspended"]
    assert [(r["market"], r["outcome"], r["line"], r["price"]) for r in suspended] == [
        ("raw:g136", "raw:t731", 3.003, 1.001)
    ]


def test_live_unknown_codes_are_kept_and_counted(live: ParseResult) -> None:
    groups: dict[str, int] = {}
    for r in rows(live):
        groups[r["market"]] = groups.get(r["market"], 0) + 1
    assert groups["raw:g136"] == 21 and groups["raw:g27"] == 15 and groups["raw:g309"] == 14
    mapped = {
        "1x2": 3,
        "double_chance": 3,
        "handicap": 8,
        "total": 14,
        "team_total_home": 8,
        "team_total_away": 8,
        "btts": 2,
        "asian_total": 8,
        "asian_handicap": 10,
    }
    assert {m: groups[m] for m in mapped} == mapped
    assert sum(live.unmapped.values()) == 338 - sum(mapped.values()) == 274
    assert live.unmapped["g136/t731"] == 20


def test_asian_handicap_sides_pair_on_one_line(live: ParseResult) -> None:
    by_line: dict[float, set[str]] = {}
    for r in rows(live):
        if r["market"] == "asian_handicap":
            by_line.setdefault(r["line"], set()).add(r["outcome"])
    assert by_line and all(sides == {"home", "away"} for sides in by_line.values())


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"Success": true, "Value": [{"I": 1, "O1": "A"', "malformed JSON"),
        (b"<html>502 Bad Gateway</html>", "malformed JSON"),
        (b'{"Success": false, "Error": "Access denied", "Value": null}', "error envelope"),
        (b'{"Success": true, "Valeur": []}', "envelope without Value"),
        (b"[1, 2]", "unexpected JSON envelope"),
    ],
)
def test_unreadable_payloads_become_one_reject(body: bytes, reason: str) -> None:
    result = parse(body)
    assert len(result.rows) == 0
    assert len(result.rejects) == 1 and reason in result.rejects[0].reason
    assert result.rejects[0].record == body[:2048]


def event(**fields: object) -> dict:
    return {"I": 7, "O1": "Home FC", "O2": "Away FC", "S": 1636416000, "SI": 1, **fields}


def envelope(*events: object) -> bytes:
    return orjson.dumps({"Error": "", "ErrorCode": 0, "Success": True, "Value": list(events)})


def test_bad_events_and_outcomes_are_rejected_with_reasons() -> None:
    result = parse(
        envelope(
            {"O1": "no id", "O2": "x", "S": 1},
            event(I=8, S="tomorrow"),
            event(I=9, O2=None),
            "not an event",
            event(E=[{"C": 2.0, "G": 1}, ["x"], {"C": 1.9, "G": 17, "T": 9}, {"C": 2.1, "G": 1, "T": 1}]),
        )
    )
    reasons = sorted(r.reason for r in result.rejects)
    assert reasons == sorted(
        [
            "event without id (I)",
            "event start S='tomorrow' is not unix seconds",
            "event without team names (O1/O2)",
            "event is a str, not an object",
            "outcome without integer G and T",
            "E item is a list, not an object",
            "total over without a line (P=None)",
        ]
    )
    assert [(r["market"], r["outcome"], r["price"]) for r in rows(result)] == [("1x2", "home", 2.1)]


def test_bad_prices_are_kept_for_validation_to_reject() -> None:
    result = parse(
        envelope(
            event(E=[{"C": 0, "G": 1, "T": 1}, {"CV": "abc", "G": 1, "T": 2}, {"CV": "3.1", "G": 1, "T": 3}])
        )
    )
    assert result.rows.price == [0, "abc", 3.1]
    validated = validate_batch(result.rows.to_table(NOW, "r"), result.rows)
    assert [r.reason for r in validated.rejects] == [
        "price 0 is not a decimal odd (must be > 1)",
        "price 'abc' is not a number",
    ]
    assert validated.table.column("price").to_pylist() == [3.1]


def test_grouped_format_and_periods() -> None:
    grouped = event(
        P=1, GE=[{"G": 1, "E": [[{"C": 2.2, "G": 1, "T": 1}], [{"C": 3.1, "G": 1, "T": 2}]]}], U=1700000000
    )
    result = parse(envelope(grouped), kind="live")
    table = rows(result)
    assert [(r["outcome"], r["price"], r["period"], r["is_live"]) for r in table] == [
        ("home", 2.2, "1h", True),
        ("draw", 3.1, "1h", True),
    ]


def test_blocked_flag_and_placeholder_mean_suspended() -> None:
    result = parse(
        envelope(
            event(
                E=[
                    {"C": 2.5, "G": 1, "T": 1, "B": True},
                    {"C": 1.001, "G": 1, "T": 2},
                    {"C": 1.5, "G": 1, "T": 3},
                ]
            )
        )
    )
    assert [r["status"] for r in rows(result)] == ["suspended", "suspended", "open"]


def test_request_urls_and_parameters() -> None:
    a = agent(path_prefix="/service-api/", sports=[1, 3], champs=[276999], count=50, country=209, partner=51)
    assert a.url("prematch", "Get1x2_VZip") == "http://127.0.0.1/service-api/LineFeed/Get1x2_VZip"
    assert a.url("live", "GetGameZip") == "http://127.0.0.1/service-api/LiveFeed/GetGameZip"
    assert a.list_params() == {
        "sports": "1,3",
        "count": 50,
        "lng": "en",
        "mode": 4,
        "getEmpty": "true",
        "champs": "276999",
        "country": 209,
        "partner": 51,
    }
    assert agent().url("prematch", "Get1x2_VZip") == "http://127.0.0.1/LineFeed/Get1x2_VZip"


def parse_row_by_row(body: bytes, kind: str) -> ParseResult:
    """The per-row path, which the vectorized path must agree with exactly."""
    a, result = agent(), ParseResult()
    events, problem = decode_events(body, result.rejects, "22bet")
    assert problem is None
    for event in events:
        a._parse_event(event, kind.endswith("live"), result)
    return result


@pytest.mark.parametrize(("name", "kind"), [(PREMATCH, "prematch"), (LIVE_GAME, "game-live")])
def test_vectorized_and_row_by_row_parsing_agree_on_the_recordings(
    linefeed_data: Path, name: str, kind: str
) -> None:
    body = (linefeed_data / name).read_bytes()
    fast, slow = parse(body, kind), parse_row_by_row(body, kind)
    assert isinstance(fast.rows.price, pa.Array)  # the fast path was taken
    assert rows(fast) == rows(slow) and fast.unmapped == slow.unmapped


def test_vectorized_and_row_by_row_parsing_agree_on_a_large_simulated_payload() -> None:
    market = Market(SimConfig(seed=2, n_events=30, markets_per_event=200, live_share=0.3, manual_clock=True))
    market.advance(600)
    for live in (False, True):
        body = market.linefeed_payload("melbet", live=live)
        kind = "live" if live else "prematch"
        fast, slow = parse(body, kind), parse_row_by_row(body, kind)
        assert len(fast.rows) > 1000 and rows(fast) == rows(slow) and fast.unmapped == slow.unmapped
