"""Betfair Exchange stream files read with betfairlightweight into canonical rows: exact counts on
the recorded files in ../shared/data/betfair (updates, runners, first and last traded price, each
also counted independently from the JSON lines here), the market and status mapping, the updates
in time order for replay, and small hand-written streams for football markets and bad lines."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from oddly.feeds.betfair_stream import (
    NOT_JSON,
    StreamReport,
    iter_updates,
    read_stream,
)

# (file, updates, runners, market type, {selection: (first, last) traded price}); the updates and
# prices were counted from the raw lines (one update per `mc` entry) and are recounted below.
FILES = [
    ("1.200806927", 18529, 2, "MATCH_ODDS", {228749: (9, 1.4), 2857977: (9, 2.5)}),
    (
        "BASIC-1.132153978",
        480,
        14,
        "WIN",
        {12115648: (4.4, 1.01), 9606433: (16.0, 28.0), 11198538: (12.5, 16.0)},
    ),
    ("1.197931750", 166, 6, "WIN", {39823721: (1.49, 1.56), 44331354: (75, 85), 36276560: (8.2, 6.8)}),
    ("1.197931751", 166, 6, "PLACE", {39823721: (1.24, 1.29), 44331354: (17, 22), 36276560: (2.68, 2.42)}),
]


EPOCH = datetime(2022, 1, 1, tzinfo=UTC)  # a batch's observation time where it does not matter


@pytest.fixture(scope="module")
def betfair(shared_data: Path) -> Path:
    return shared_data / "betfair"


def raw_counts(path: Path) -> tuple[int, set[int], dict[int, tuple[float, float]]]:
    """Updates, runner ids and first/last `ltp` per runner, straight from the JSON lines."""
    updates, runners, traded = 0, set(), {}
    for line in path.read_bytes().splitlines():
        for change in orjson.loads(line).get("mc", []):
            updates += 1
            runners |= {r["id"] for r in (change.get("marketDefinition") or {}).get("runners", [])}
            for runner in change.get("rc", []):
                runners.add(runner["id"])
                if "ltp" in runner:
                    first = traded.get(runner["id"], (runner["ltp"],))[0]
                    traded[runner["id"]] = (first, runner["ltp"])
    return updates, runners, traded


@pytest.mark.parametrize(
    ("name", "updates", "runners", "market_type", "traded"), FILES, ids=[f[0] for f in FILES]
)
def test_exact_counts_on_the_recorded_files(
    betfair: Path,
    name: str,
    updates: int,
    runners: int,
    market_type: str,
    traded: dict[int, tuple[float, float]],
) -> None:
    report = StreamReport()
    batch = read_stream(betfair / name, report=report)
    raw_updates, raw_runners, raw_traded = raw_counts(betfair / name)
    assert report.updates == raw_updates == updates
    assert len(report.runners) == len(raw_runners) == runners
    assert dict(report.market_types) == {market_type: 1} and not report.unknown_market_types
    # first and last traded price of each runner, as the cache carried them into the exchange book
    book = batch.exchange.to_pandas()
    for selection, (first, last) in traded.items():
        prices = book.loc[book["selection_id"] == selection, "last_traded_price"].dropna()
        assert (prices.iloc[0], prices.iloc[-1]) == (first, last) == raw_traded[selection]
    # every runner of the changed market at every update is in the book; the priced ones are rows
    assert batch.exchange.num_rows == sum(len(u.exchange) for u in iter_updates([betfair / name]))
    assert len(batch.rows) == report.price_rows == len(batch.observed_ms) <= batch.exchange.num_rows


def test_cricket_match_odds_is_a_two_way_market_at_the_best_back_price(betfair: Path) -> None:
    """No draw runner: moneyline, home and away by sort priority (the file names no one); the price
    is the best back price, in play flagged, closed at the end and the lay side kept aside."""
    batch = read_stream(betfair / "1.200806927")
    rows = batch.rows.to_table(EPOCH, "t")
    assert set(rows["market"].to_pylist()) == {"moneyline"}
    assert set(rows["outcome"].to_pylist()) == {"home", "away"}
    assert set(rows["home"].to_pylist()) == {"selection 228749"}
    assert (
        rows["sport"][0].as_py() == "cricket"
        and rows["source_event_id"][0].as_py() == "bf_31573045_20220711T1100"
    )
    book = batch.exchange.to_pandas()
    backed = book.dropna(subset=["back_price", "lay_price"])
    assert (backed["back_price"] <= backed["lay_price"]).all()  # a back offer never above the lay offer
    assert book["in_play"].any() and not book["in_play"].iloc[0]
    assert book["runner_status"].iloc[-2:].tolist() == ["WINNER", "LOSER"]
    assert set(rows["status"].to_pylist()) == {"open", "suspended"}
    assert rows["status"][len(rows) - 1].as_py() == "suspended"  # the closed market


def test_racing_runners_are_named_outcomes_from_definitions_and_catalogues(betfair: Path) -> None:
    win = read_stream(betfair / "1.197931750").rows.to_table(EPOCH, "t")
    place = read_stream(betfair / "1.197931751").rows.to_table(EPOCH, "t")
    assert set(win["market"].to_pylist()) == {"win"} and set(place["market"].to_pylist()) == {"raw:place"}
    assert "raw:1. Paradise Mission" in win["outcome"].to_pylist()
    # WIN and PLACE of one race are one event: the meeting and the off time
    assert set(win["source_event_id"].to_pylist()) == set(place["source_event_id"].to_pylist())
    assert (win["home"][0].as_py(), win["away"][0].as_py()) == ("Sheffield 19th Apr", "18:26 UTC")
    basic = read_stream(betfair / "BASIC-1.132153978")
    book = basic.exchange.to_pandas()
    # a BASIC file has no ladders: the price is the last traded one, and there is no volume
    assert set(book["price_source"]) == {"last_traded"} and book["traded_volume"].isna().all()
    # the two non-runners of the last definition (Hellavashock, Hymn For The Dudes)
    removed = book.loc[book["runner_status"] == "REMOVED", "selection_id"]
    assert set(removed) == {11198538, 9606433}


def test_updates_in_time_order_across_files(betfair: Path) -> None:
    report = StreamReport()
    updates = list(iter_updates([betfair / "1.197931751", betfair / "1.197931750"], report=report))
    assert len(updates) == report.updates == 332
    times = [u.timestamp for u in updates]
    assert times == sorted(times)
    assert all(len(u.rows) <= 6 and u.exchange.num_rows == 6 for u in updates)
    assert sum(len(u.rows) for u in updates) == report.price_rows


def _stream(tmp_path: Path, lines: list[object], name: str = "1.500") -> Path:
    path = tmp_path / name
    path.write_bytes(
        b"\n".join(orjson.dumps(line) if not isinstance(line, bytes) else line for line in lines)
    )
    return path


def _definition(
    market_type: str, runners: list[tuple[int, str]], status: str = "OPEN", **extra: object
) -> dict:
    return {
        "marketType": market_type,
        "eventId": "900",
        "eventTypeId": "1",
        "eventName": "Arsenal v Chelsea",
        "marketTime": "2024-03-02T15:00:00.000Z",
        "status": status,
        "inPlay": False,
        "runners": [
            {"id": rid, "name": nm, "sortPriority": i + 1, "status": "ACTIVE"}
            for i, (rid, nm) in enumerate(runners)
        ],
        **extra,
    }


def test_football_markets_bad_lines_and_unknown_types(tmp_path: Path) -> None:
    """Names decide home and away even against the sort priority; over/under gets its line; an
    unknown type is kept raw and counted; a truncated line is counted, never raised."""
    match_odds = _definition("MATCH_ODDS", [(2, "Chelsea"), (1, "Arsenal"), (3, "The Draw")])
    lines: list[object] = [
        {
            "op": "mcm",
            "pt": 1709300000000,
            "mc": [
                {
                    "id": "1.500",
                    "marketDefinition": match_odds,
                    "img": True,
                    "rc": [
                        {"id": 1, "atb": [[2.1, 50]], "atl": [[2.12, 30]]},
                        {"id": 2, "atb": [[3.6, 10]]},
                        {"id": 3, "atb": [[3.4, 5]]},
                    ],
                }
            ],
        },
        {
            "op": "mcm",
            "pt": 1709300001000,
            "mc": [{"id": "1.500", "rc": [{"id": 1, "atb": [[2.1, 0], [2.08, 40]]}]}],
        },
        b'{"op":"mcm","pt":17093000020',
        {
            "op": "mcm",
            "pt": 1709300003000,
            "mc": [
                {
                    "id": "1.501",
                    "marketDefinition": _definition(
                        "OVER_UNDER_25", [(10, "Under 2.5 Goals"), (11, "Over 2.5 Goals")]
                    ),
                    "rc": [{"id": 10, "atb": [[1.9, 9]]}, {"id": 11, "atb": [[2.0, 9]]}],
                }
            ],
        },
        {
            "op": "mcm",
            "pt": 1709300004000,
            "mc": [
                {
                    "id": "1.502",
                    "marketDefinition": _definition("CORRECT_SCORE", [(20, "1 - 0")]),
                    "rc": [{"id": 20, "atb": [[7.0, 2]]}],
                }
            ],
        },
    ]
    report = StreamReport()
    table = read_stream(_stream(tmp_path, lines), report=report).rows.to_table(EPOCH, "t")
    got = {(r["market"], r["line"], r["outcome"]): r["price"] for r in table.to_pylist()}
    assert got == {
        ("1x2", None, "home"): 2.08,  # Arsenal's best back after 2.1 was taken
        ("1x2", None, "away"): 3.6,
        ("1x2", None, "draw"): 3.4,
        ("total", 2.5, "under"): 1.9,
        ("total", 2.5, "over"): 2.0,
        ("raw:correct_score", None, "raw:1 - 0"): 7.0,
    }
    assert set(table["home"].to_pylist()) == {"Arsenal"} and set(table["away"].to_pylist()) == {"Chelsea"}
    assert report.skipped == {NOT_JSON: 1} and report.unknown_market_types == {"CORRECT_SCORE": 1}
    assert report.updates == 4


def test_a_file_that_is_not_a_stream_reads_as_nothing(tmp_path: Path) -> None:
    report = StreamReport()
    batch = read_stream(_stream(tmp_path, [b"hello", b"", {"op": "heartbeat"}]), report=report)
    assert len(batch.rows) == 0 and batch.exchange.num_rows == 0
    assert report.updates == 0 and report.skipped[NOT_JSON] == 1
