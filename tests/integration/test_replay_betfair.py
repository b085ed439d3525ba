"""`oddly replay` of Betfair Exchange stream files: told apart from other files by content (plain
and gzip), one run per publish time through ingestion, the fast detectors and the decisions at the
publish time; the ticks are exactly those `oddly import betfair` writes (recounted from the files),
and a second replay writes nothing."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from oddly.alerts import audit
from oddly.appdb import open_app_db
from oddly.cli import main
from oddly.config import REPO_ROOT, Settings
from oddly.detect.rules import load_rules
from oddly.feeds.betfair_stream import NOT_JSON
from oddly.model import utc
from oddly.poll import PollReport
from oddly.replay import ReplayCycle, find_sources, replay, replay_settings, sniff
from oddly.warehouse.store import Warehouse
from tests.integration.test_import_betfair import expected_ticks

RULES = load_rules(REPO_ROOT / "config" / "rules.yaml")
PT = 1709300000000  # 2024-03-01 13:33:20 UTC, half an hour before kick-off
KICK_OFF = "2024-03-01T14:00:00.000Z"


def definition() -> dict[str, Any]:
    return {
        "marketType": "MATCH_ODDS",
        "eventId": "900",
        "eventTypeId": "1",
        "eventName": "Arsenal v Chelsea",
        "marketTime": KICK_OFF,
        "status": "OPEN",
        "inPlay": False,
        "runners": [
            {"id": rid, "name": name, "sortPriority": i + 1, "status": "ACTIVE"}
            for i, (rid, name) in enumerate([(1, "Arsenal"), (2, "Chelsea"), (3, "The Draw")])
        ],
    }


def change(pt: int, runners: list[dict[str, Any]], **market: Any) -> dict[str, Any]:
    return {"op": "mcm", "pt": pt, "mc": [{"id": "1.500", "rc": runners, **market}]}


STREAM: list[Any] = [
    change(
        PT,
        [{"id": 1, "atb": [[2.1, 50]]}, {"id": 2, "atb": [[3.6, 10]]}, {"id": 3, "atb": [[3.4, 5]]}],
        marketDefinition=definition(),
        img=True,
    ),
    change(PT + 10_000, [{"id": 1, "atb": [[2.1, 0], [1.6, 80]]}]),  # Arsenal shortens sharply
    change(PT + 20_000, [{"id": 2, "atb": [[3.6, 0], [3.8, 4]]}]),  # two messages, one publish time:
    change(PT + 20_000, [{"id": 2, "atb": [[3.8, 0], [4.0, 6]]}]),  #   the later price is the one kept
    b'{"op":"mcm","pt":17093000300',  # a truncated line
    change(PT + 40_000, [{"id": 3, "atb": [[3.4, 5]]}]),  # nothing moved
]


def write_stream(path: Path, lines: list[Any]) -> Path:
    data = b"\n".join(line if isinstance(line, bytes) else orjson.dumps(line) for line in lines)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def test_stream_files_are_told_apart_from_other_files_by_content(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    plain = write_stream(folder / "1.500", STREAM)
    zipped = write_stream(folder / "1.501.gz", STREAM[:2])
    (folder / "catalogue_1.500.json").write_text("{}")
    (folder / "notes.txt").write_text("not a stream\n")
    (folder / "other.json").write_text('{"op": "heartbeat"}\n')
    (folder / "empty").write_text("")
    assert (sniff(plain), sniff(zipped), sniff(folder / "notes.txt")) == (
        "betfair",
        "betfair",
        "not JSON lines",
    )
    found = find_sources([folder])
    assert found.streams == [plain, zipped] and found.recordings == []
    assert found.skipped == [
        f"{folder / 'notes.txt'}: not JSON lines; neither an oddly recording nor a Betfair stream file",
        f"{folder / 'other.json'}: JSON of another kind; neither an oddly recording nor a Betfair "
        "stream file",
    ]


def test_each_publish_time_is_one_run_at_that_time(tmp_path: Path) -> None:
    stream = write_stream(tmp_path / "1.500", STREAM)
    settings = replay_settings(Settings(), home=tmp_path / "home", rules_file=None, policy_file=None)
    seen: list[tuple[ReplayCycle, PollReport]] = []
    summary = replay([stream], settings, RULES, on_cycle=lambda c, p: seen.append((c, p)))

    assert summary.cycles == 4 and summary.updates == 5  # five market changes at four publish times
    assert [c.at for c, _ in seen] == [at(PT + s * 1000) for s in (0, 10, 20, 40)]
    assert [c.messages for c, _ in seen] == [1, 1, 2, 1]
    assert [p.ingest.ticks_written for _, p in seen] == [3, 1, 1, 0]
    assert summary.ticks_by_bookmaker == {"betfair_ex": 5} and summary.by_status == {"ok": 4}
    assert f"Betfair stream: {NOT_JSON} ×1 (first at 1.500:5)" in summary.problems

    warehouse = Warehouse.from_settings(settings)
    ticks = warehouse.query(
        "select outcome, price, previous_price, observed_at from raw.odds_ticks order by load_seq"
    )
    assert [(t["outcome"], t["price"]) for t in ticks[3:]] == [("home", 1.6), ("away", 4.0)]  # never 3.8
    assert [utc(t["observed_at"]) for t in ticks[3:]] == [at(PT + 10_000), at(PT + 20_000)]
    runs = warehouse.query(
        "select started_at, finished_at, feed, bookmaker from raw.feed_runs order by load_seq"
    )
    assert [utc(r["started_at"]) for r in runs] == [c.at for c, _ in seen]
    assert {(r["feed"], r["bookmaker"]) for r in runs} == {("betfair_stream", "betfair_ex")}

    # the shortening is a sharp drop of the sharp exchange, detected and decided at its publish time
    [(cycle, poll)] = [(c, p) for c, p in seen if p.ingest.detections]
    [drop] = poll.ingest.detections
    assert (drop.type, drop.bookmaker, drop.outcome, drop.detected_at) == (
        "sharp_drop",
        "betfair_ex",
        "home",
        cycle.at,
    )
    assert summary.decisions == 1 and summary.detections == {"sharp_drop": 1}
    warehouse.dispose()
    engine = open_app_db(settings)
    with engine.connect() as conn:
        [decision] = conn.execute(sa.select(audit.decisions)).mappings().all()
    engine.dispose()
    assert (decision["type"], utc(decision["decided_at"])) == ("sharp_drop", cycle.at)

    again = replay([stream], settings, RULES)
    assert again.cycles == 4 and again.ticks_written == 0 and again.decisions == 0
    # rows at or before their selection's last change are left out; later ones change nothing
    assert again.already_stored == 3 + 2 + 1


@pytest.mark.slow
def test_the_recorded_stream_files_replay_into_the_ticks_the_importer_writes(
    shared_data: Path, tmp_path: Path
) -> None:
    """BASIC horse racing and the greyhound WIN and PLACE markets of one race (merged in time):
    812 updates, every tick the import writes, nothing twice on a second replay."""
    names = ("BASIC-1.132153978", "1.197931750", "1.197931751")
    paths = [shared_data / "betfair" / name for name in names]
    publish_times = {
        message["pt"]
        for path in paths
        for message in map(orjson.loads, path.read_bytes().splitlines())
        if message.get("mc")
    }
    home = tmp_path / "home"
    result = CliRunner().invoke(main, ["replay", *map(str, paths), "--home", str(home), "--json"])
    assert result.exit_code == 0, result.output
    summary = orjson.loads(result.output.strip().splitlines()[-1])
    assert summary["updates"] == 480 + 166 + 166 and summary["cycles"] == len(publish_times)
    assert summary["ticks_written"] == sum(expected_ticks(p) for p in paths) == 1211 + 250 + 200
    assert summary["runs"] == {"ok": len(publish_times)} and summary["problems"] == []

    settings = replay_settings(Settings(), home=home, rules_file=None, policy_file=None)
    warehouse = Warehouse.from_settings(settings)
    per_market = warehouse.query(
        "select market, count(distinct source_event_id) as events, count(*) as ticks from raw.odds_ticks "
        "group by market order by market"
    )
    assert [(r["market"], r["ticks"]) for r in per_market] == [
        ("raw:place", expected_ticks(paths[2])),
        ("win", expected_ticks(paths[0]) + expected_ticks(paths[1])),
    ]
    warehouse.dispose()

    again = replay(paths, settings, RULES)
    assert again.ticks_written == 0 and again.already_stored > 0 and again.decisions == 0
