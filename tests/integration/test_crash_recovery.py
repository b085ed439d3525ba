"""Crash recovery at the process level (issue 8): the demo's processes run one by one — simulator,
fake Bot API, Dagster code server (where the polls and the marts cycle run), Dagster daemon, sender,
bot — and are killed with SIGKILL at seeded random moments, mid-activity, then started again; in
server mode PostgreSQL is restarted while a poll writes. Afterwards:

* no tick twice and none stale: no (selection, observed_at) twice, per selection the ticks in load
  order are newer each time and change price or status each time, `raw.latest_prices` is the last
  of them, and every tick belongs to a feed run whose count matches (all or nothing);
* no alert lost: every red decision has its outbox row in each subscribed chat, the row ends sent
  and the fake Bot API got it; every injected sharp drop was decided;
* no duplicate beyond the README's guarantee: a message reached Telegram twice only if its outbox
  row was left 'sending' by a sender that was killed;
* the sensors go on from their cursors: each feed sensor's poll count and the marts sensor's
  ingested mark never go back, and both move on after the last restart;
* the bot answers what subscribers sent while it was down or dying.

ODDLY_CRASH_SEED picks other kill moments (the seed is in every failure message)."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest
import sqlalchemy as sa
import yaml
from dagster._core.scheduler.instigation import InstigatorType, TickStatus

from oddly.alerts.audit import decisions
from oddly.alerts.outbox import outbox
from oddly.alerts.subscriptions import Filters, register_chat, save_filters
from oddly.appdb import open_app_db
from oddly.config import REPO_ROOT, Settings, get_settings
from oddly.dagster_home import password_env
from oddly.demo import SENSOR_TIMEOUT_SECONDS, prepare_stores
from oddly.model import now_utc
from oddly.ports import free_port
from oddly.warehouse.store import Warehouse
from orchestration.ingestion.sensors import PollCursor
from orchestration.warehouse.sensors import SENSOR_NAME as MARTS_SENSOR
from orchestration.warehouse.sensors import MartsCursor
from tests.conftest import PG_URL, STORE_ENV

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

SEED = int(os.environ.get("ODDLY_CRASH_SEED", "8"))
BIN = Path(sys.executable).parent
# The sharp book and two soft ones: enough for sharp drops and cross-book rules, light on two cores.
FEEDS = ("sim_pinnacle", "sim_22bet", "sim_1xbet")
INTERVAL_SECONDS = 5.0
# Chats subscribed to everything without an hourly limit, so every red alert is a message in each.
CHATS = ("1", "2", "3")
BOT_CHAT = 900  # a user talking to the bot (not subscribed)
# A restarted sender claims rows a dead one left 'sending' after this long (the default is 2 min).
RECLAIM_SECONDS = 10


# --- processes ---------------------------------------------------------------------------------


@dataclass
class Proc:
    """One service in its own process group, its output appended to `log` across restarts."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    ready: Callable[[], bool] | None = None
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 240.0) -> None:
        with self.log.open("ab") as out:
            out.write(f"\n=== start {self.starts + 1} at {datetime.now(UTC):%H:%M:%S.%f} ===\n".encode())
            out.flush()
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=REPO_ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1
        deadline = time.monotonic() + timeout
        while self.ready is not None and not _answers(self.ready):
            assert self.running, f"{self.name} exited with {self.process.returncode}:\n{self.tail()}"
            assert time.monotonic() < deadline, f"{self.name} not ready in {timeout:.0f} s:\n{self.tail()}"
            time.sleep(0.5)
        if self.ready is None:
            time.sleep(1.0)
            assert self.running, f"{self.name} exited with {self.process.returncode}:\n{self.tail()}"

    def kill(self) -> None:
        """SIGKILL the whole group: no handler runs, nothing is flushed or given back."""
        assert self.process is not None and self.running, f"{self.name} died by itself:\n{self.tail()}"
        with self.log.open("ab") as out:
            out.write(f"\n=== SIGKILL at {datetime.now(UTC):%H:%M:%S.%f} ===\n".encode())
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is None or not self.running:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _answers(check: Callable[[], bool]) -> bool:
    try:
        return check()
    except (httpx.HTTPError, OSError):
        return False


def _http_ok(url: str) -> Callable[[], bool]:
    return lambda: httpx.get(url, timeout=2).status_code == 200


def _grpc_ok(port: int) -> Callable[[], bool]:
    from dagster._grpc.client import DagsterGrpcClient

    def ping() -> bool:
        try:
            DagsterGrpcClient(port=port, host="127.0.0.1").ping("ready")
            return True
        except Exception:  # not listening yet, or still loading the code
            return False

    return ping


# --- the stack ---------------------------------------------------------------------------------


@dataclass
class Stack:
    settings: Settings
    home: Path
    procs: dict[str, Proc]
    simulator: str
    telegram: str
    instance: dg.DagsterInstance
    app_db: sa.Engine
    seed: int
    # per outbox row: how many times a killed sender left it 'sending' (each may be one duplicate)
    left_sending: Counter[int] = field(default_factory=Counter)
    # every sample of the sensors' cursors, oldest first: (monotonic time, {sensor: cursor})
    cursors: list[tuple[float, dict[str, str | None]]] = field(default_factory=list)
    restarted_at: float = 0.0  # monotonic time of the last restart of the code server or daemon
    injected: list[dict[str, Any]] = field(default_factory=list)
    bot_asked: int = 0
    down: set[str] = field(default_factory=set)  # killed and not started again yet

    def why(self) -> str:
        """What to read when a check fails: the seed, then each process's last lines."""
        tails = "\n".join(f"--- {p.name} ({p.log}) ---\n{p.tail()}" for p in self.procs.values())
        return f"seed {self.seed} (ODDLY_CRASH_SEED); logs in {self.home}\n{tails}"

    # --- observing ---

    def sample_cursors(self) -> dict[str, str | None]:
        states = self.instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
        now = {
            s.instigator_name: getattr(s.instigator_data, "cursor", None)
            for s in states
            if s.instigator_name in (*(f"poll_{f}" for f in FEEDS), MARTS_SENSOR)
        }
        self.cursors.append((time.monotonic(), now))
        return now

    def polls(self) -> dict[str, int]:
        now = self.sample_cursors()
        return {f: PollCursor.parse(now.get(f"poll_{f}")).polls for f in FEEDS}

    def marts_ingested(self) -> int:
        return MartsCursor.parse(self.sample_cursors().get(MARTS_SENSOR)).ingested

    def outbox_rows(self) -> list[Any]:
        with self.app_db.connect() as conn:
            return list(conn.execute(sa.select(outbox).order_by(outbox.c.id)).all())

    def messages(self) -> list[dict[str, Any]]:
        return list(httpx.get(f"{self.telegram}/messages.json", timeout=10).raise_for_status().json())

    def writing(self) -> bool:
        """The code server holds the embedded warehouse's lock: a poll's write or a marts cycle."""
        code_server = self.procs["code_server"].process
        if code_server is None:
            return False
        lock = self.settings.duckdb_path.with_name(self.settings.duckdb_path.name + ".lock")
        try:
            inode = lock.stat().st_ino
        except FileNotFoundError:
            return False
        for line in Path("/proc/locks").read_text().splitlines():
            parts = line.split()
            if (
                len(parts) > 5
                and parts[5].rsplit(":", 1)[-1] == str(inode)
                and parts[4] == str(code_server.pid)
            ):
                return True
        return False

    # --- acting ---

    def inject_sharp_drop(self, rng: random.Random) -> None:
        """A sharp drop on a pre-match event not used yet (kick-off within 24 h, so it is red)."""
        used = {i["event_key"] for i in self.injected}
        now = datetime.now(UTC)
        events = [
            e
            for e in httpx.get(f"{self.simulator}/_sim/events", timeout=10).raise_for_status().json()
            if not e["is_live"]
            and e["event_key"] not in used
            and timedelta(minutes=30) < datetime.fromisoformat(e["starts_at"]) - now < timedelta(hours=20)
        ]
        assert events, f"no pre-match event left to inject a sharp drop on\n{self.why()}"
        event = rng.choice(sorted(events, key=lambda e: str(e["event_key"])))
        side = rng.choice(["home", "away"])
        r = httpx.post(
            f"{self.simulator}/_sim/inject",
            json={"type": "sharp_drop", "event_key": event["event_key"], "side": side},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        self.injected.append({**r.json(), "side": side})

    def ask_bot(self, times: int) -> None:
        """A user sends /help `times` times (the bot answers each, whatever happened to it)."""
        for _ in range(times):
            r = httpx.post(
                f"{self.telegram}/_fake/updates",
                json={"chat_id": BOT_CHAT, "text": "/help"},
                timeout=10,
            )
            assert r.status_code == 200, r.text
            self.bot_asked += 1

    def wait_running(self) -> None:
        """Until the stack is past its start: every feed polled twice and the marts built."""
        self.wait(
            "every feed polled twice and the marts built",
            lambda: min(self.polls().values()) >= 2 and self.marts_ingested() > 0,
            240,
        )

    def wait(self, what: str, done: Callable[[], bool], timeout: float) -> None:
        """Poll `done` until true, checking every process is still up (a crash there is a failure)."""
        deadline = time.monotonic() + timeout
        while True:
            for proc in self.procs.values():
                assert proc.running or proc.name in self.down, (
                    f"{proc.name} died by itself while waiting for {what}\n{self.why()}"
                )
            if done():
                return
            assert time.monotonic() < deadline, f"not within {timeout:.0f} s: {what}\n{self.why()}"
            time.sleep(0.25)


def _feeds_config(path: Path) -> Path:
    """The project's demo feeds, only FEEDS, each polled every INTERVAL_SECONDS."""
    raw = yaml.safe_load((REPO_ROOT / "oddly.yaml").read_text())
    raw["feeds"] = [dict(f, interval_seconds=INTERVAL_SECONDS) for f in raw["feeds"] if f["name"] in FEEDS]
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _subscribe(settings: Settings) -> None:
    engine = open_app_db(settings)
    try:
        with engine.begin() as conn:
            for chat in CHATS:
                register_chat(conn, chat, now_utc())
                save_filters(conn, chat, Filters(max_alerts_per_hour=None), now_utc())
    finally:
        engine.dispose()


@pytest.fixture
def stack_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str | None], Stack]]:
    """Builds the stack (embedded stores, or every store in the PostgreSQL database given) and
    stops whatever runs on the way out."""
    made: list[Stack] = []

    def make(database_url: str | None) -> Stack:
        for name in STORE_ENV:
            monkeypatch.delenv(name, raising=False)
        sim_port, telegram_port, grpc_port = free_port(), free_port(), free_port()
        settings_env = {
            "ODDLY_HOME": str(tmp_path / "home"),
            "ODDLY_CONFIG_FILE": str(_feeds_config(tmp_path / "oddly.yaml")),
            "ODDLY_SIMULATOR_PORT": str(sim_port),
            "ODDLY_FAKE_TELEGRAM_PORT": str(telegram_port),
            "ODDLY_TELEGRAM_API_URL": f"http://127.0.0.1:{telegram_port}/bot",
            "ODDLY_METRICS_PORT": "0",
            "ODDLY_SENDER_METRICS_PORT": "0",
            "ODDLY_MARTS_CHECKS_SECONDS": "3600",  # the data tests are not what is tested here
            "ODDLY_SIMULATOR_ODDS_API_KEY": "demo",
            **({"ODDLY_DATABASE_URL": database_url} if database_url else {}),
        }
        for name, value in settings_env.items():
            monkeypatch.setenv(name, value)
        settings = get_settings()
        prepare_stores(settings)
        _subscribe(settings)
        for name, value in password_env(settings.dagster_pg_url).items():
            monkeypatch.setenv(name, value)  # this process reads Dagster's instance too
        workspace = tmp_path / "workspace.yaml"
        workspace.write_text(
            yaml.safe_dump(
                {
                    "load_from": [
                        {"grpc_server": {"host": "127.0.0.1", "port": grpc_port, "location_name": "oddly"}}
                    ]
                }
            )
        )
        env = {
            **os.environ,
            # as the demo's dagster service: the sensors' evaluations are polls and marts cycles
            "DAGSTER_HOME": str(settings.dagster_home),
            "DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS": str(SENSOR_TIMEOUT_SECONDS),
            "PYTHONUNBUFFERED": "1",
        }
        logs = tmp_path / "logs"
        logs.mkdir()
        oddly = str(BIN / "oddly")
        sim = f"http://127.0.0.1:{sim_port}"
        telegram = f"http://127.0.0.1:{telegram_port}"

        def proc(name: str, argv: list[str], ready: Callable[[], bool] | None = None) -> Proc:
            return Proc(name, argv, env, logs / f"{name}.log", ready)

        procs = {
            p.name: p
            for p in (
                proc(
                    "simulator",
                    [oddly, "simulate", "--port", str(sim_port), "--events", "40", "--seed", str(SEED)],
                    _http_ok(f"{sim}/_sim/health"),
                ),
                proc(
                    "telegram",
                    [oddly, "fake-telegram", "--port", str(telegram_port)],
                    _http_ok(f"{telegram}/messages.json"),
                ),
                proc(
                    "code_server",
                    [
                        str(BIN / "dagster"),
                        "api",
                        "grpc",
                        "-m",
                        "orchestration.definitions",
                        "-a",
                        "defs",
                        "-h",
                        "127.0.0.1",
                        "-p",
                        str(grpc_port),
                    ],
                    _grpc_ok(grpc_port),
                ),
                proc("daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)]),
                proc("sender", [oddly, "send", "--reclaim-after", str(RECLAIM_SECONDS)]),
                proc("bot", [oddly, "bot"]),
            )
        }
        stack = Stack(
            settings,
            tmp_path,
            procs,
            sim,
            telegram,
            dg.DagsterInstance.from_config(str(settings.dagster_home)),
            open_app_db(settings),
            SEED,
        )
        made.append(stack)
        for p in procs.values():
            p.start()
        stack.restarted_at = time.monotonic()
        return stack

    yield make
    for stack in made:
        history = [{"at": round(at, 3), **c} for at, c in stack.cursors]
        (tmp_path / "cursors.json").write_text(
            json.dumps({"restarted_at": stack.restarted_at, "samples": history})
        )
        for p in reversed(list(stack.procs.values())):
            p.stop()
        stack.app_db.dispose()
        stack.instance.dispose()


# --- the checks --------------------------------------------------------------------------------


def settle(stack: Stack, timeout: float = 240.0) -> None:
    """After the last crash: every feed polled twice more, the marts cycle ran again, the outbox
    is empty, every injected drop decided and every /help answered."""
    polls_then = stack.polls()
    marts_then = stack.marts_ingested()

    def settled() -> bool:
        polls = stack.polls()
        if any(polls[f] < polls_then[f] + 2 for f in FEEDS) or stack.marts_ingested() <= marts_then:
            return False
        if any(r.status in ("pending", "sending") for r in stack.outbox_rows()):
            return False
        if missing_drops(stack):
            return False
        replies = [m for m in stack.messages() if str(m["chat_id"]) == str(BOT_CHAT)]
        return len(replies) >= stack.bot_asked

    stack.wait("the platform to settle after the last crash", settled, timeout)


def missing_drops(stack: Stack) -> list[str]:
    """Injected sharp drops with no sharp-drop decision about their event at any book."""
    with stack.app_db.connect() as conn:
        decided = {
            (str(r.inputs.get("bookmaker")), str(r.inputs.get("source_event_id")))
            for r in conn.execute(sa.select(decisions.c.inputs).where(decisions.c.type == "sharp_drop"))
        }
    return [
        f"{i['event_key']} ({i['side']}, injected {i['changed_at']})"
        for i in stack.injected
        if not any((book, str(event_id)) in decided for book, event_id in i["event_ids"].items())
    ]


def check_ticks(warehouse: Warehouse, why: str) -> int:
    """No tick twice, none stale, change-only, `latest_prices` the last tick, runs whole."""
    per_key = warehouse.scalar(
        "select count(*) from (select selection_key, observed_at from raw.odds_ticks "
        "group by selection_key, observed_at having count(*) > 1) d"
    )
    assert per_key == 0, f"{per_key} (selection, observed_at) pairs written twice\n{why}"
    ordered = """
        select selection_key, price, status, observed_at,
               lag(price) over w as prev_price, lag(status) over w as prev_status,
               lag(observed_at) over w as prev_observed_at,
               row_number() over (
                   partition by selection_key order by load_seq desc, observed_at desc
               ) as from_last
        from raw.odds_ticks window w as (partition by selection_key order by load_seq, observed_at)
    """
    stale = warehouse.query(f"select * from ({ordered}) t where observed_at <= prev_observed_at limit 5")
    assert not stale, f"a later write carried older prices than the one before it: {stale}\n{why}"
    repeated = warehouse.query(
        f"select * from ({ordered}) t where price = prev_price and status = prev_status limit 5"
    )
    assert not repeated, f"ticks that change nothing (not change-only): {repeated}\n{why}"
    off = warehouse.scalar(
        f"""select count(*) from ({ordered}) t
            full join raw.latest_prices l on l.selection_key = t.selection_key and t.from_last = 1
            where (t.from_last = 1 or t.selection_key is null)
              and (l.selection_key is null or t.selection_key is null or l.price <> t.price
                   or l.status <> t.status or l.observed_at <> t.observed_at)"""
    )
    assert off == 0, f"{off} selections whose latest price is not their last tick\n{why}"
    torn = warehouse.query(
        """select r.feed_run_id, r.ticks_written, count(t.feed_run_id) as ticks
           from raw.feed_runs r left join raw.odds_ticks t on t.feed_run_id = r.feed_run_id
           group by r.feed_run_id, r.ticks_written having count(t.feed_run_id) <> r.ticks_written limit 5"""
    )
    assert not torn, f"feed runs whose ticks are not what they logged: {torn}\n{why}"
    orphans = warehouse.scalar(
        "select count(*) from raw.odds_ticks t where not exists "
        "(select 1 from raw.feed_runs r where r.feed_run_id = t.feed_run_id)"
    )
    assert orphans == 0, f"{orphans} ticks of no logged feed run\n{why}"
    return int(warehouse.scalar("select count(*) from raw.odds_ticks"))


def check_alerts(stack: Stack) -> tuple[int, int]:
    """Every red decision reached each chat exactly once, or twice only where a killed sender
    left its row 'sending'. Returns (red decisions, messages received in the chats)."""
    why = stack.why()
    with stack.app_db.connect() as conn:
        red = [
            r.alert_id
            for r in conn.execute(sa.select(decisions.c.alert_id).where(decisions.c.action == "queued"))
        ]
    rows = [r for r in stack.outbox_rows() if r.chat_id in CHATS]
    by_alert = {(r.alert_id, r.chat_id): r for r in rows if r.kind == "alert"}
    lost = [(a, c) for a in red for c in CHATS if (a, c) not in by_alert]
    assert not lost, f"red decisions with no outbox row for a subscribed chat: {lost[:5]}\n{why}"
    unfinished = [(r.id, r.status, r.last_error) for r in rows if r.status not in ("sent", "dead")]
    assert not unfinished, f"outbox rows never delivered: {unfinished[:5]}\n{why}"
    dead_without_reason = [r.id for r in rows if r.status == "dead" and not r.last_error]
    assert not dead_without_reason, f"dead rows with no reason: {dead_without_reason}\n{why}"

    received = [m for m in stack.messages() if str(m["chat_id"]) in CHATS]
    by_id = {int(m["message_id"]): m for m in received}
    for r in rows:
        if r.status == "sent":
            got = by_id.get(int(r.telegram_message_id))
            assert got is not None, f"outbox {r.id} recorded as sent, but Telegram never got it\n{why}"
            assert (str(got["chat_id"]), got["text"]) == (r.chat_id, r.text), f"outbox {r.id}: {got}\n{why}"
    # Alike messages are counted together: the fake knows a message by its chat and text only.
    got = Counter((str(m["chat_id"]), m["text"]) for m in received)
    sent = Counter((r.chat_id, r.text) for r in rows if r.status == "sent")
    may_repeat = Counter()
    for r in rows:
        may_repeat[(r.chat_id, r.text)] += stack.left_sending[r.id]
    phantom = [k for k in got if k not in sent]
    assert not phantom, f"messages Telegram got that no sent outbox row holds: {phantom[:3]}\n{why}"
    beyond = {
        k: (n, sent[k], may_repeat[k]) for k, n in got.items() if not sent[k] <= n <= sent[k] + may_repeat[k]
    }
    assert not beyond, f"(chat, text): (received, sent, left 'sending' by a killed sender): {beyond}\n{why}"
    return len(red), len(received)


def check_cursors(stack: Stack) -> None:
    """Each sensor's cursor only goes forward, across every restart, and moved after the last."""
    why = stack.why()
    for sensor in (*(f"poll_{f}" for f in FEEDS), MARTS_SENSOR):
        marks = [
            (
                at,
                PollCursor.parse(c[sensor]).polls
                if sensor != MARTS_SENSOR
                else MartsCursor.parse(c[sensor]).ingested,
            )
            for at, c in stack.cursors
            if c.get(sensor)
        ]
        values = [v for _, v in marks]
        assert values == sorted(values), f"{sensor}'s cursor went back: {values}\n{why}"
        before = [v for at, v in marks if at <= stack.restarted_at]
        assert before and values[-1] > max(before), (
            f"{sensor} did not go on after the last restart: {before[-3:]}, then "
            f"{values[len(before) :][:5]}\n{why}"
        )


# --- the tests ---------------------------------------------------------------------------------

# The order processes are started in: a daemon that starts before the code server answers waits a
# minute to load it again.
KILLABLE = ("code_server", "daemon", "sender", "bot")
# The order they are killed in within a round: each one's moment needs the ones after it running
# (the sender's in-flight rows come from polls, a write needs the daemon to ask for it).
KILL_ORDER = ("sender", "bot", "code_server", "daemon")


def kill_mid_activity(stack: Stack, name: str, rng: random.Random) -> None:
    """Kill `name` while it is busy: the code server while it holds the warehouse, the sender while
    rows are in flight, the daemon and the bot at a random moment of their loops."""
    if name == "code_server":
        stack.wait("a poll or marts cycle to write", stack.writing, 90)
        time.sleep(rng.uniform(0.0, 0.4))
    elif name == "sender":
        stack.wait(
            "the sender to have rows in flight",
            lambda: any(r.status == "sending" for r in stack.outbox_rows()),
            90,
        )
        time.sleep(rng.uniform(0.0, 1.5))
    elif name == "bot":
        stack.ask_bot(3)
        time.sleep(rng.uniform(0.0, 0.8))
    else:
        time.sleep(rng.uniform(0.0, 5.0))
    stack.procs[name].kill()
    stack.down.add(name)
    if name == "sender":
        for r in stack.outbox_rows():
            if r.status == "sending":  # claimed by the dead sender: it may or may not have gone out
                stack.left_sending[r.id] += 1


def test_killed_processes_restart_without_losing_or_repeating_anything(
    stack_factory: Callable[[str | None], Stack],
) -> None:
    rng = random.Random(SEED)
    started = time.monotonic()
    stack = stack_factory(None)
    stack.wait_running()
    # every process is killed at least once, some together, in a seeded order
    rounds = [[name] for name in rng.sample(KILLABLE, len(KILLABLE))]
    rounds += [rng.sample(KILLABLE, 2) for _ in range(4)]
    for targets in rounds:
        # something to poll, decide and send while processes die; for the sender, several
        # messages per chat, which it paces a second apart: rows wait 'sending' in its queues
        for _ in range(3 if "sender" in targets else 1):
            stack.inject_sharp_drop(rng)
        for name in sorted(targets, key=KILL_ORDER.index):
            kill_mid_activity(stack, name, rng)
        time.sleep(rng.uniform(0.0, 3.0))
        for name in sorted(targets, key=KILLABLE.index):
            stack.procs[name].start()
            stack.down.discard(name)
            if name in ("code_server", "daemon"):
                stack.restarted_at = time.monotonic()
    stack.inject_sharp_drop(rng)
    settle(stack)

    for name in ("daemon", "code_server"):
        stack.procs[name].stop()  # the embedded warehouse is then free to read
    warehouse = Warehouse.from_settings(stack.settings)
    try:
        ticks = check_ticks(warehouse, stack.why())
    finally:
        warehouse.dispose()
    red, received = check_alerts(stack)
    check_cursors(stack)
    assert received >= len(CHATS) * len(stack.injected), stack.why()
    print(
        f"crash recovery, seed {SEED}: {len(rounds)} rounds {rounds}, {ticks} ticks, {red} red decisions, "
        f"{received} messages, {sum(stack.left_sending.values())} rows left 'sending' by killed senders, "
        f"{time.monotonic() - started:.0f} s"
    )


# --- PostgreSQL restarted under the polls (server mode) ----------------------------------------


def _pg_cluster() -> list[str]:
    """`pg_ctlcluster … <version> main`, or a skip (a failure in CI) where it cannot be run."""
    versions = (
        sorted(p.name for p in Path("/etc/postgresql").iterdir()) if Path("/etc/postgresql").is_dir() else []
    )
    if shutil.which("pg_ctlcluster") is None or not versions or shutil.which("pg_isready") is None:
        why = "restarting PostgreSQL needs pg_ctlcluster and pg_isready and a cluster under /etc/postgresql"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{why}; CI runs this test")
        pytest.skip(why)
    return ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main"]


def _pg_ready() -> bool:
    return subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"], check=False).returncode == 0


def _wait_pg_ready(timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not _pg_ready():
        assert time.monotonic() < deadline, f"PostgreSQL did not come back within {timeout:.0f} s"
        time.sleep(0.2)


def _writes_in_flight(database: str) -> bool:
    """A poll's write transaction is open in `database` (its diff tables are being filled)."""
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(
            "select count(*) from pg_stat_activity where datname = %s and xact_start is not null "
            "and (position('_incoming' in query) > 0 or position('_changed' in query) > 0)",
            (database,),
        ).fetchone()
    return bool(row and row[0])


def _failed_ticks(stack: Stack) -> list[str]:
    """The error messages of the feed sensors' failed ticks, as the Dagster UI shows them."""
    out = []
    for state in stack.instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
        if not state.instigator_name.startswith("poll_"):
            continue
        for tick in stack.instance.get_ticks(
            state.instigator_origin_id, state.selector_id, statuses=[TickStatus.FAILURE]
        ):
            if tick.error is not None:
                out.append(tick.error.message)
    return out


@pytest.mark.postgres
def test_a_postgres_restart_fails_the_polls_it_hits_in_words_and_loses_nothing(
    pg_url: str, stack_factory: Callable[[str | None], Stack]
) -> None:
    cluster = _pg_cluster()
    rng = random.Random(SEED)
    started = time.monotonic()
    stack = stack_factory(pg_url)
    stack.wait_running()
    database = pg_url.rsplit("/", 1)[1]
    restarts: list[datetime] = []
    try:
        for _ in range(2):
            stack.inject_sharp_drop(rng)
            stack.wait("a poll writing to PostgreSQL", lambda: _writes_in_flight(database), 90)
            restarts.append(datetime.now(UTC))
            subprocess.run([*cluster, "restart"], check=True, capture_output=True, timeout=120)
            _wait_pg_ready()
            stack.restarted_at = time.monotonic()
    finally:
        if not _pg_ready():  # whatever happened above, the tests after this one need it
            subprocess.run([*cluster, "start"], check=False, capture_output=True, timeout=120)
            _wait_pg_ready()
    stack.inject_sharp_drop(rng)
    settle(stack)

    failed = _failed_ticks(stack)
    logs = stack.procs["daemon"].log.read_text(errors="replace") + stack.procs["code_server"].log.read_text(
        errors="replace"
    )
    said = [m for m in failed if "did not take this poll's write" in m] or [
        line for line in logs.splitlines() if "did not take this poll's write" in line
    ]
    assert said, f"no poll failed in words on the restarts; failed ticks: {failed}\n{stack.why()}"
    assert all("nothing of it was written" in m and "the next poll tries again" in m for m in said), said
    # a restart, not the polls' own writes against each other, is what failed them
    assert not [m for m in said if "deadlock" in m], said
    warehouse = Warehouse.from_settings(stack.settings)
    try:
        since = restarts[-1]
        for feed in FEEDS:
            ok = warehouse.scalar(
                "select count(*) from raw.feed_runs where feed = :f and status = 'ok' and started_at > :t",
                {"f": feed, "t": since},
            )
            assert ok >= 2, f"{feed}: {ok} successful polls after the last restart\n{stack.why()}"
        for name in ("daemon", "code_server"):
            stack.procs[name].stop()
        ticks = check_ticks(warehouse, stack.why())
    finally:
        warehouse.dispose()
    red, received = check_alerts(stack)
    check_cursors(stack)
    print(
        f"PostgreSQL restarted {len(restarts)} times under the polls, seed {SEED}: {len(said)} polls failed "
        f"in words, {ticks} ticks, {red} red decisions, {received} messages, "
        f"{time.monotonic() - started:.0f} s"
    )
