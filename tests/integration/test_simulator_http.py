"""The simulator over real HTTP: every endpoint form, faults per book, the manual clock."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from oddly.simulator.config import SimConfig
from oddly.simulator.server import RunningSimulator, start_in_thread
from oddly.simulator.teams import LEAGUES


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    with start_in_thread(SimConfig(seed=3, n_events=8, markets_per_event=5, manual_clock=True)) as running:
        yield running


@pytest.fixture(autouse=True)
def no_faults(sim: RunningSimulator) -> Iterator[None]:
    yield
    httpx.delete(f"{sim.url}/_sim/fault")


@pytest.mark.parametrize("prefix", ["", "/service-api"])
@pytest.mark.parametrize("feed", ["LineFeed", "LiveFeed"])
def test_list_endpoints_speak_the_linefeed_format(sim: RunningSimulator, prefix: str, feed: str) -> None:
    r = httpx.get(f"{sim.book_url('22bet')}{prefix}/{feed}/Get1x2_VZip", params={"sports": 1, "count": 50})
    assert r.status_code == 200
    doc = r.json()
    assert {k: doc[k] for k in ("Error", "ErrorCode", "Success")} == {
        "Error": "",
        "ErrorCode": 0,
        "Success": True,
    }
    assert doc["Value"], "no events"
    assert all(("SC" in e) == (feed == "LiveFeed") for e in doc["Value"])
    assert {"I", "O1", "O2", "S", "SI", "E", "AE"} <= set(doc["Value"][0])


def test_count_limits_and_the_game_endpoint(sim: RunningSimulator) -> None:
    events = httpx.get(f"{sim.book_url('melbet')}/LineFeed/Get1x2_VZip", params={"count": 2}).json()["Value"]
    assert len(events) == 2
    game = httpx.get(f"{sim.book_url('melbet')}/LineFeed/GetGameZip", params={"id": events[0]["I"]}).json()[
        "Value"
    ]
    assert game["I"] == events[0]["I"] and game["E"]
    assert httpx.get(f"{sim.url}/nobook/LineFeed/Get1x2_VZip").status_code == 404


def test_manual_clock_advances_only_on_request(sim: RunningSimulator) -> None:
    before = httpx.get(f"{sim.url}/_sim/state").json()["sim_seconds"]
    time.sleep(1.2)
    assert httpx.get(f"{sim.url}/_sim/state").json()["sim_seconds"] == before
    httpx.post(f"{sim.url}/_sim/advance", params={"seconds": 30}).raise_for_status()
    assert httpx.get(f"{sim.url}/_sim/state").json()["sim_seconds"] == before + 30


def fault(sim: RunningSimulator, **body: object) -> None:
    httpx.post(f"{sim.url}/_sim/fault", json=body).raise_for_status()


def test_http_faults_count_down_and_stay_with_their_book(sim: RunningSimulator) -> None:
    fault(sim, book="22bet", kind="http_503", count=2)
    url = "/LineFeed/Get1x2_VZip"
    codes = [httpx.get(f"{sim.book_url('22bet')}{url}").status_code for _ in range(3)]
    assert codes == [503, 503, 200]
    fault(sim, book="22bet", kind="http_429", count=1, seconds=7)
    r = httpx.get(f"{sim.book_url('22bet')}{url}")
    assert r.status_code == 429 and r.headers["Retry-After"] == "7"
    fault(sim, book="22bet", kind="http_500", count=0)
    assert httpx.get(f"{sim.book_url('1xbet')}{url}").status_code == 200  # other books carry on
    assert [httpx.get(f"{sim.book_url('22bet')}{url}").status_code for _ in range(3)] == [500] * 3


def test_content_faults(sim: RunningSimulator) -> None:
    url = f"{sim.book_url('betwinner')}/LineFeed/Get1x2_VZip"
    fault(sim, book="betwinner", kind="truncated_json")
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(httpx.get(url).content)
    fault(sim, book="betwinner", kind="empty")
    assert httpx.get(url).json()["Value"] == []
    fault(sim, book="betwinner", kind="zero_prices")
    assert 0 in [o["C"] for e in httpx.get(url).json()["Value"] for o in e["E"]]
    fault(sim, book="betwinner", kind="schema_drift")
    drifted = httpx.get(url).json()["Value"]
    assert any("I" not in e for e in drifted) and any("Coef" in o for e in drifted for o in e["E"])
    fault(sim, book="betwinner", kind="absurd_prices")
    assert {0.5, -3, 1e7} & {o["C"] for e in httpx.get(url).json()["Value"] for o in e["E"]}


def test_timeout_fault_holds_the_answer(sim: RunningSimulator) -> None:
    fault(sim, book="22bet", kind="timeout", seconds=2)
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{sim.book_url('22bet')}/LineFeed/Get1x2_VZip", timeout=0.5)


def test_bad_fault_requests_are_refused_with_the_kinds(sim: RunningSimulator) -> None:
    r = httpx.post(f"{sim.url}/_sim/fault", json={"book": "22bet", "kind": "meteor"})
    assert r.status_code == 400 and "truncated_json" in r.text


def test_ground_truth_over_http(sim: RunningSimulator) -> None:
    sim.call(lambda: sim.market._inject("out_of_line"))
    rows = httpx.get(f"{sim.url}/_sim/ground-truth").json()
    assert rows[-1]["type"] == "out_of_line" and rows[-1]["books"]


def test_inject_a_sharp_drop_now_on_a_chosen_event_and_side(sim: RunningSimulator) -> None:
    event = next(e for e in httpx.get(f"{sim.url}/_sim/events").json() if not e["is_live"])
    assert {"event_key", "home", "away", "league", "starts_at", "is_live"} <= set(event)

    def away_win_at_pinnacle() -> float:  # the sharp book has no lag: it shows a drop at once
        games = httpx.get(f"{sim.book_url('pinnacle')}/LineFeed/Get1x2_VZip", params={"count": 50}).json()
        game = next(
            g
            for g in games["Value"]
            if g["O1"] in _spellings(event["home"]) and g["O2"] in _spellings(event["away"])
        )
        return float(next(item["C"] for item in game["E"] if item["G"] == 1 and item["T"] == 3))

    before = away_win_at_pinnacle()
    body = {"type": "sharp_drop", "event_key": event["event_key"], "side": "away"}
    r = httpx.post(f"{sim.url}/_sim/inject", json=body)
    assert r.status_code == 200, r.text
    scenario = r.json()
    assert (scenario["type"], scenario["event_key"], scenario["t"]) == ("sharp_drop", event["event_key"], 3)
    assert scenario["changed_at"] and scenario["event_ids"]["pinnacle"]
    # the aggregator's id of the same event, as its odds endpoint serves it
    sports = httpx.get(f"{sim.url}/oddsapi/v4/sports/", params={"apiKey": "k"}).json()
    served = {
        str(e["id"]): (e["home_team"], e["away_team"])
        for sport in sports
        for e in httpx.get(
            f"{sim.url}/oddsapi/v4/sports/{sport['key']}/odds", params={"apiKey": "k", "regions": "eu"}
        ).json()
    }
    assert served[scenario["odds_api_event_id"]] == (event["home"], event["away"])
    assert away_win_at_pinnacle() < before * 0.95
    assert httpx.get(f"{sim.url}/_sim/ground-truth").json()[-1]["id"] == scenario["id"]


@pytest.mark.parametrize(
    "body",
    [
        {"type": "goal"},
        {"type": "sharp_drop", "event_key": "ev99999"},
        {"type": "suspension", "side": "home"},
    ],
)
def test_bad_injections_are_refused_with_what_is_allowed(sim: RunningSimulator, body: dict[str, str]) -> None:
    r = httpx.post(f"{sim.url}/_sim/inject", json=body)
    assert r.status_code == 400 and "types: sharp_drop" in r.text


def _spellings(canonical: str) -> set[str]:
    return next(set(team) for *_, teams in LEAGUES for team in teams if team[0] == canonical)
