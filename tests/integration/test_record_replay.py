"""`oddly record` against the simulator over real HTTP, then `oddly replay` of the recording: the
warehouse equals what live polls of the same cycles wrote (LineFeed and The Odds API), detections
and decisions carry the recorded times, a second replay writes nothing twice (DuckDB and
PostgreSQL), a damaged recording is replayed as far as it is sound with each problem in words, a
restarted recording continues, no API key reaches a recorded file, and pacing follows recorded time
/ speed."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner

from oddly.alerts import audit
from oddly.appdb import open_app_db
from oddly.cli import main
from oddly.config import REPO_ROOT, FeedConfig, HttpPolicy, Settings
from oddly.detect.rules import Rules, load_rules
from oddly.feeds.base import FetchOutcome, Payload
from oddly.model import utc
from oddly.poll import PollReport, poll_feed
from oddly.record import MANIFEST, RecordingError, RecordingWriter, read_recording, record
from oddly.replay import ReplayCycle, ReplaySummary, replay, replay_settings, schedule
from oddly.simulator.config import SimConfig
from oddly.simulator.market import Market
from oddly.simulator.oddsapi import SPORTS
from oddly.simulator.server import RunningSimulator, start_in_thread
from oddly.warehouse.store import Warehouse

FAST = HttpPolicy(retries=1, backoff_seconds=0.01, timeout_seconds=5, requests_per_second=100)
KEY_ENV = "ODDLY_TEST_RECORD_ODDS_API_KEY"
KEY = "sekret-odds-api-key-5b1e9"
RULES_FILE = REPO_ROOT / "config" / "rules.yaml"
TICK_ORDER = "bookmaker, source_event_id, market, period, line nulls first, outcome, load_seq"
TICK_COLUMNS = "bookmaker, source_event_id, market, period, line, outcome, price, status, previous_price"


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    config = SimConfig(seed=3, n_events=6, markets_per_event=4, manual_clock=True, scenarios_per_hour=3000)
    with start_in_thread(config) as running:
        yield running


@pytest.fixture(autouse=True)
def odds_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_rules(RULES_FILE)


def linefeed(sim: RunningSimulator) -> FeedConfig:
    return FeedConfig(
        name="sim_22bet",
        agent="linefeed",
        bookmaker="22bet",
        base_url=f"{sim.url}/22bet",
        http=FAST,
        options={"prematch": True, "live": True},
    )


def odds_api(sim: RunningSimulator) -> FeedConfig:
    return FeedConfig(
        name="sim_oddsapi",
        agent="the_odds_api",
        bookmaker="the_odds_api",
        base_url=f"{sim.url}/oddsapi",
        http=FAST,
        options={
            "sports": [key for key, _ in SPORTS.values()],
            "regions": ["uk", "eu"],
            "api_key_env": KEY_ENV,
            "quota_floor": 10,
        },
    )


def home_settings(home: Path, **extra: Any) -> Settings:
    return replay_settings(Settings(), home=home, rules_file=RULES_FILE, policy_file=None).model_copy(
        update=extra
    )


def record_while_polling(
    sim: RunningSimulator, feed: FeedConfig, directory: Path, live: Settings, cycles: int = 6
) -> list[PollReport]:
    """Record `cycles` cycles; right after each, a live poll of the same simulated moment writes
    into `live`'s home; then the simulated market moves on a minute."""
    warehouse = Warehouse.from_settings(live)
    polls: list[PollReport] = []

    def each(_: object) -> None:
        polls.append(poll_feed(feed, warehouse, live, lambda: open_app_db(live)))
        sim.call(lambda: sim.market.advance(60))

    summary = record(feed, directory, cycles=cycles, interval=1, sleep=lambda _: None, on_cycle=each)
    assert [c.cycle for c in summary.cycles] == list(range(1, cycles + 1))
    warehouse.dispose()
    return polls


def ticks(settings: Settings) -> list[tuple[Any, ...]]:
    warehouse = Warehouse.from_settings(settings)
    rows = warehouse.query(f"select {TICK_COLUMNS} from raw.odds_ticks order by {TICK_ORDER}")
    warehouse.dispose()
    return [tuple(r.values()) for r in rows]


def decisions(settings: Settings) -> pd.DataFrame:
    engine = open_app_db(settings)
    with engine.connect() as conn:
        frame = pd.read_sql_query(sa.select(audit.decisions).order_by(audit.decisions.c.id), conn)
    engine.dispose()
    return frame


def detection_keys(poll: PollReport) -> list[tuple[Any, ...]]:
    return sorted(
        (d.type, d.bookmaker, d.source_event_id, d.market, d.line, d.outcome, round(d.strength, 9))
        for d in poll.ingest.detections
    )


def replay_collecting(
    paths: list[Path], settings: Settings, rules: Rules, **kwargs: Any
) -> tuple[ReplaySummary, list[tuple[ReplayCycle, PollReport]]]:
    seen: list[tuple[ReplayCycle, PollReport]] = []
    summary = replay(paths, settings, rules, on_cycle=lambda c, p: seen.append((c, p)), **kwargs)
    return summary, seen


@pytest.mark.parametrize("make_feed", [linefeed, odds_api], ids=["linefeed", "the_odds_api"])
def test_a_replay_writes_what_live_polls_of_the_same_cycles_wrote(
    sim: RunningSimulator, rules: Rules, tmp_path: Path, make_feed: Any
) -> None:
    feed = make_feed(sim)
    live = home_settings(tmp_path / "live")
    polls = record_while_polling(sim, feed, tmp_path / "rec", live)
    recording = read_recording(tmp_path / "rec")
    assert recording.problems == [] and all(c.ended for c in recording.cycles)

    replayed = home_settings(tmp_path / "replayed")
    summary, seen = replay_collecting([tmp_path / "rec"], replayed, rules)

    assert summary.cycles == 6 and summary.by_status == {"ok": 6} and summary.problems == []
    # the same ticks, selection by selection and in order: prices, statuses, previous prices
    assert ticks(replayed) == ticks(live)
    assert summary.ticks_written == sum(p.ingest.ticks_written for p in polls) == len(ticks(live))
    per_book = pd.DataFrame(ticks(live), columns=TICK_COLUMNS.split(", ")).groupby("bookmaker").size()
    assert summary.ticks_by_bookmaker == per_book.to_dict()
    if feed.agent == "the_odds_api":  # every book of the aggregator is its own bookmaker
        assert len(summary.ticks_by_bookmaker) >= 4
    # the same detections in every cycle, and the same decisions
    assert [detection_keys(p) for _, p in seen] == [detection_keys(p) for p in polls]
    assert summary.detections == {
        t: n
        for t, n in pd.Series([d.type for p in polls for d in p.ingest.detections]).value_counts().items()
    }
    assert sum(summary.detections.values()) > 0, "six busy simulated minutes gave no detection"
    live_decisions, replay_decisions = decisions(live), decisions(replayed)
    assert len(replay_decisions) == summary.decisions == len(live_decisions) > 0
    assert (
        replay_decisions["action"].value_counts().to_dict()
        == live_decisions["action"].value_counts().to_dict()
    )

    # replayed time: runs start and end when the recorded cycles did, ticks are observed when the
    # recorded answers came, decisions are made as of the end of the recorded fetch
    warehouse = Warehouse.from_settings(replayed)
    runs = warehouse.query("select * from raw.feed_runs order by started_at")
    assert [(utc(r["started_at"]), utc(r["finished_at"])) for r in runs] == [
        (c.started_at, c.finished_at) for c in recording.cycles
    ]
    received = {c.cycle: max(p.received_at for p in c.payloads) for c in recording.cycles}
    observed = {
        utc(r["observed_at"]) for r in warehouse.query("select distinct observed_at from raw.odds_ticks")
    }
    assert observed <= set(received.values()) and len(observed) > 1
    warehouse.dispose()
    assert {utc(t) for t in replay_decisions["decided_at"]} <= {c.finished_at for c in recording.cycles}
    for cycle, poll in seen:
        assert all(d.detected_at == cycle.observed_at for d in poll.ingest.detections)


@pytest.mark.parametrize("backend", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_second_replay_writes_nothing_twice(
    sim: RunningSimulator, rules: Rules, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    record(linefeed(sim), tmp_path / "rec", cycles=3, interval=1, sleep=lambda _: None,
           on_cycle=lambda _: sim.call(lambda: sim.market.advance(60)))  # fmt: skip
    url = None if backend == "duckdb" else request.getfixturevalue("pg_url")
    settings = home_settings(tmp_path / "home", warehouse_url=url)
    first = replay([tmp_path / "rec"], settings, rules)
    stored = ticks(settings)
    assert first.ticks_written == len(stored) > 0 and first.already_stored == 0

    again = replay([tmp_path / "rec"], settings, rules)
    assert again.cycles == 3 and again.ticks_written == 0 and again.detections == {} and again.decisions == 0
    assert again.already_stored > 0
    assert ticks(settings) == stored
    # every run is logged, the second replay's as runs that changed nothing
    warehouse = Warehouse.from_settings(settings)
    assert warehouse.scalar("select count(*) from raw.feed_runs where ticks_written = 0") >= 3
    warehouse.dispose()


T0 = datetime(2026, 1, 10, 18, 0, tzinfo=UTC)


def synthetic_recording(directory: Path, cycles: int, every: timedelta, start: datetime = T0) -> FeedConfig:
    """A recording written by the recorder's own writer from simulated payloads at chosen times
    (long ago, or a fixed spacing), as `oddly record` would have written them then."""
    market = Market(
        SimConfig(
            seed=3, n_events=6, markets_per_event=4, manual_clock=True, scenarios_per_hour=3000, start=start
        )
    )
    feed = FeedConfig(name="old_22bet", agent="linefeed", bookmaker="22bet", base_url="http://22bet.example")
    with RecordingWriter(directory, feed) as writer:
        for n in range(cycles):
            at = start + n * every
            payloads = [
                Payload(
                    url=f"http://22bet.example/{kind}",
                    body=market.linefeed_payload("22bet", live=live),
                    received_at=at + timedelta(milliseconds=200 + i),
                    kind=kind,
                )
                for i, (kind, live) in enumerate((("prematch", False), ("live", True)))
            ]
            writer.write_cycle(at, at + timedelta(milliseconds=300), FetchOutcome(payloads, requests=2))
            market.advance(every.total_seconds())
    return feed


def test_decisions_of_an_old_recording_are_made_as_of_its_recorded_time(rules: Rules, tmp_path: Path) -> None:
    synthetic_recording(tmp_path / "rec", cycles=8, every=timedelta(minutes=1))
    settings = home_settings(tmp_path / "home")
    summary = replay([tmp_path / "rec"], settings, rules)
    assert summary.first_at == T0 and summary.last_at == T0 + timedelta(minutes=7)
    made = decisions(settings)
    assert len(made) == summary.decisions > 0
    decided = {utc(t) for t in made["decided_at"]}
    assert decided <= {T0 + timedelta(minutes=n, milliseconds=300) for n in range(8)}
    detected = {utc(t) for t in made["detected_at"]}
    assert detected <= {T0 + timedelta(minutes=n, milliseconds=201) for n in range(8)}
    # decided at the wall clock, every one would be months old and capped below red ("detected N
    # min ago > 10 min"), and the cooldown would see every earlier alert as 0 min old
    assert "red" in set(made["severity"])
    assert not made["decision_reason"].str.contains("min ago >").any()
    held = made.loc[made["action"] == "held", "decision_reason"].str.extract(r"(\d+) min ago")[0].dropna()
    assert held.astype(int).max() >= 1


def test_a_damaged_recording_is_replayed_as_far_as_it_is_sound(
    sim: RunningSimulator, rules: Rules, tmp_path: Path
) -> None:
    directory = tmp_path / "rec"
    record(linefeed(sim), directory, cycles=4, interval=1, sleep=lambda _: None,
           on_cycle=lambda _: sim.call(lambda: sim.market.advance(60)))  # fmt: skip
    shutil.copytree(directory, tmp_path / "pristine")
    recording = read_recording(directory)
    by_cycle = {c.cycle: {p.kind: p for p in c.payloads} for c in recording.cycles}
    (directory / by_cycle[2]["prematch"].file).unlink()  # a payload file lost
    truncated = directory / by_cycle[3]["live"].file
    truncated.write_bytes(truncated.read_bytes()[:100])  # a body cut short after recording
    manifest = directory / MANIFEST
    lines = manifest.read_bytes().splitlines(keepends=True)
    cycle_4_end = max(i for i, line in enumerate(lines) if b'"type":"cycle","cycle":4' in line)
    manifest.write_bytes(b"".join(lines[:cycle_4_end]) + b'{"type":"cycle","cyc')  # torn mid-line

    summary, seen = replay_collecting([directory], home_settings(tmp_path / "home"), rules)

    assert summary.cycles == 4 and summary.ticks_written > 0
    problems = "\n".join(summary.problems)
    assert f"cycle 2: payload file {by_cycle[2]['prematch'].file} is missing" in problems
    assert (
        f"cycle 3: payload file {by_cycle[3]['live'].file} holds 100 bytes but "
        f"{by_cycle[3]['live'].bytes:,} were received (truncated" in problems
    )
    assert "manifest.jsonl line" in problems and "is not a whole manifest line (torn write?)" in problems
    assert (
        "cycle 4: the recorder stopped during this cycle; its 2 complete answer(s) are replayed" in problems
    )
    # the runs with a lost answer are partial and say so; the sound ones are as recorded
    _, pristine = replay_collecting([tmp_path / "pristine"], home_settings(tmp_path / "pristine-home"), rules)
    statuses = [p.ingest.status for _, p in seen]
    assert statuses[1:3] == ["partial", "partial"]
    assert (statuses[0], statuses[3]) == (pristine[0][1].ingest.status, pristine[3][1].ingest.status)
    assert seen[0][1].ingest.ticks_written == pristine[0][1].ingest.ticks_written
    for _, poll in seen[1:3]:
        assert "recorded answer lost (payload file" in (poll.ingest.error or "")
    assert all(p.ingest.prices_seen > 0 for _, p in seen)
    printed = "\n".join(summary.lines())
    assert "! run as recorded: " in printed and "is missing or unreadable" in printed


def test_a_failed_cycle_is_recorded_and_replayed_as_the_same_gap(
    sim: RunningSimulator, rules: Rules, tmp_path: Path
) -> None:
    feed = linefeed(sim)

    def each(cycle: Any) -> None:
        if cycle.cycle == 1:  # the next cycle meets a bookmaker answering 503 to everything
            httpx.post(f"{sim.url}/_sim/fault", json={"book": "22bet", "kind": "http_503", "count": 100})
        else:
            httpx.delete(f"{sim.url}/_sim/fault")

    summary = record(feed, tmp_path / "rec", cycles=3, interval=1, sleep=lambda _: None, on_cycle=each)
    assert summary.cycles[1].error is not None and "HTTP 503" in summary.cycles[1].error
    replayed, seen = replay_collecting([tmp_path / "rec"], home_settings(tmp_path / "home"), rules)
    assert [p.ingest.status == "failed" for _, p in seen] == [False, True, False]
    assert "HTTP 503" in (seen[1][1].ingest.error or "") and "keeping last prices" in (
        seen[1][1].ingest.error or ""
    )
    assert replayed.by_status["failed"] == 1 and replayed.ticks_written > 0


def test_a_restarted_recording_continues_and_one_directory_holds_one_feed(
    sim: RunningSimulator, rules: Rules, tmp_path: Path
) -> None:
    directory = tmp_path / "rec"
    record(linefeed(sim), directory, cycles=2, interval=1, sleep=lambda _: None)
    (directory / MANIFEST).open("ab").write(b'{"type":"payl')  # the first recorder died mid-line
    second = record(linefeed(sim), directory, cycles=2, interval=1, sleep=lambda _: None)
    assert [c.cycle for c in second.cycles] == [3, 4]
    recording = read_recording(directory)
    assert [c.cycle for c in recording.cycles] == [1, 2, 3, 4] and len(recording.sessions) == 2
    assert len(recording.problems) == 1 and "torn write" in recording.problems[0]

    with pytest.raises(RecordingError, match="holds a recording of feed sim_22bet; record feed sim_oddsapi"):
        record(odds_api(sim), directory, cycles=1, interval=1, sleep=lambda _: None)
    with RecordingWriter(directory, linefeed(sim)), pytest.raises(RecordingError, match="another process"):
        RecordingWriter(directory, linefeed(sim)).open()


def test_the_odds_api_key_never_reaches_the_recording(sim: RunningSimulator, tmp_path: Path) -> None:
    config = tmp_path / "oddly.yaml"
    feed = odds_api(sim).model_dump(mode="json")
    config.write_text(yaml.safe_dump({"feeds": [feed]}))
    runner = CliRunner()
    env = {"ODDLY_CONFIG_FILE": str(config), KEY_ENV: KEY}
    result = runner.invoke(
        main,
        ["record", "sim_oddsapi", "--to", str(tmp_path / "rec"), "--cycles", "2", "--interval", "1"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert "cycle 1 at" in result.output and "recorded cycles 1–2 into" in result.output
    files = [p for p in (tmp_path / "rec").rglob("*") if p.is_file()]
    assert len(files) > 2
    for path in files:
        assert KEY.encode() not in path.read_bytes(), path
    lines = [orjson.loads(line) for line in (tmp_path / "rec" / MANIFEST).read_bytes().splitlines()]
    urls = [line["url"] for line in lines if line["type"] == "payload"]
    assert urls and all("apiKey=***" in url for url in urls)
    assert lines[0]["feed"]["options"]["api_key_env"] == KEY_ENV and lines[0]["agent"] == "the_odds_api"
    assert lines[0]["format"] == "oddly-recording" and lines[0]["version"] == 1
    budget = [line["notes"] for line in lines if line["type"] == "cycle"]
    assert all(n["requests_remaining"] > 0 for n in budget)

    # and through the command: a replay into its own home, summarized
    result = runner.invoke(main, ["replay", str(tmp_path / "rec"), "--home", str(tmp_path / "home")], env=env)
    assert result.exit_code == 0, result.output
    assert "cycles 2 (runs: ok 2)" in result.output and "william_hill" in result.output


def test_pacing_follows_recorded_time_over_speed(rules: Rules, tmp_path: Path) -> None:
    synthetic_recording(tmp_path / "rec", cycles=10, every=timedelta(seconds=1))
    times = [T0 + timedelta(seconds=n) for n in range(10)]
    assert schedule(times, 5) == pytest.approx([n * 0.2 for n in range(10)])
    assert schedule(times, None) == [0.0] * 10

    clock = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    summary = replay(
        [tmp_path / "rec"],
        home_settings(tmp_path / "home"),
        rules,
        speed=5,
        sleep=sleep,
        monotonic=lambda: clock[0],
    )
    # the work itself takes no time on this clock: each cycle waits exactly its 0.2 s
    assert summary.cycles == 10 and slept == pytest.approx([0.2] * 9)
    assert summary.wall_seconds == pytest.approx(1.8) and summary.speedup == pytest.approx(5.0)

    fast = replay([tmp_path / "rec"], home_settings(tmp_path / "fast"), rules, speed=None, sleep=sleep)
    assert fast.cycles == 10 and len(slept) == 9  # as fast as possible: no sleep at all


def test_the_replay_command_paces_in_real_time(tmp_path: Path) -> None:
    synthetic_recording(tmp_path / "rec", cycles=10, every=timedelta(seconds=1))
    args = ["replay", str(tmp_path / "rec"), "--speed", "5", "--home", str(tmp_path / "home"), "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    summary = orjson.loads(result.output.strip().splitlines()[-1])
    assert summary["cycles"] == 10 and summary["speed"] == 5.0
    assert 1.8 <= summary["wall_seconds"] < 60  # sleeps can only make it later than due
    bad = CliRunner().invoke(main, ["replay", str(tmp_path / "rec"), "--speed", "-1"])
    assert bad.exit_code != 0 and "the speed must be above 0" in bad.output


def test_nothing_to_replay_is_said_in_words(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello\n")
    result = CliRunner().invoke(main, ["replay", str(tmp_path), "--home", str(tmp_path / "home")])
    assert result.exit_code != 0
    assert "nothing to replay" in result.output and "no oddly recording" in result.output


def test_replay_into_a_home_leaves_the_configured_stores_alone(tmp_path: Path) -> None:
    base = Settings(home=tmp_path / "live", warehouse_url="postgresql://live.example/oddly")
    settings = replay_settings(base, home=tmp_path / "replay", rules_file=None, policy_file=None)
    assert settings.resolved_warehouse_url == f"duckdb:///{tmp_path / 'replay' / 'warehouse.duckdb'}"
    assert settings.resolved_app_database_url.endswith(f"{tmp_path / 'replay' / 'app.db'}")
    assert settings.rules_file == base.rules_file and settings.alert_policy_file == base.alert_policy_file
