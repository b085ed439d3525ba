"""`oddly bench latency`: how long a price change takes to reach a Telegram chat.

The stack runs as `oddly demo` runs it (simulator, Dagster webserver + daemon with the feed
sensors, MLflow UI, the fake Bot API, the sender and the bot) in a temporary home, on free ports,
with every feed polled every `--interval` seconds. Once every feed has ingested a few cycles, the
benchmark injects sharp drops through the simulator's `POST /_sim/inject`: each on its own
pre-match event (kick-off within 24 h) and large enough for a red alert at the sharp book, so no
cooldown or severity rule may hold one back. The simulator answers the wall-clock moment the
prices changed.

A scenario is received when the fake Bot API got a sharp-drop message about its event: the drop
moves every market of the match at every book, and the alert policy sends one message per event
and type (the strongest move; the others are held and recorded). The benchmark's chat follows sharp
drops without an hourly limit. Messages are tied to scenarios exactly, not by their text: the fake's
message id is the outbox row's `telegram_message_id`, whose decision keeps the detection's bookmaker
and source event id. Latency = the fake's `received_at` − `changed_at`. The same records give each
scenario's path (the feed sensor's poll → fetch → decided → claimed by the sender → sent →
received), summarized per stage.

Prints one JSON line; exits non-zero only when the stack cannot be set up, never on a missed target.
"""

from __future__ import annotations

import json
import math
import os
import platform
import random
import signal
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import httpx
import sqlalchemy as sa
import yaml

from oddly.config import REPO_ROOT, Settings, get_settings
from oddly.ports import free_port

TARGET_P95_SECONDS = 10.0
# Drops on the match result: the market and period the simulator's sharp drop is labelled with.
MARKET, PERIOD = "1x2", "ft"
SCENARIO_TYPE = "sharp_drop"
# Settings the benchmark owns; a user's warehouse or Dagster Postgres URL is kept (server mode).
OWN_ENV = ("ODDLY_TELEGRAM_BOT_TOKEN", "ODDLY_TELEGRAM_API_URL")
# What an ingestion run reports about itself (its materialization's metadata).
REPORT_KEYS = (
    "fetch_seconds",
    "parse_seconds",
    "write_seconds",
    "detect_seconds",
    "alert_seconds",
    "detections",
)
STAGES = (
    ("poll_wait", "poll_started"),  # the feed sensor's next tick after the change
    ("fetch", "fetched"),  # HTTP fetch of the book done (the ticks' observed_at)
    ("parse_write_detect_decide", "decided"),  # parse, validate, diff, append, detectors, decision
    ("outbox_commit", "claimed"),  # the decision's transaction, then the sender's poll picks it up
    ("sender_send", "sent"),  # per-chat pacing (1/s) and the Bot API call
    ("received", "received"),
    ("poll_reported", "reported"),  # the daemon stored the poll's materialization (after delivery)
)


@dataclass
class Injected:
    event_key: str
    side: str
    changed_at: datetime
    event_ids: dict[str, int]
    home: str
    away: str
    # the aggregator feed's id of the event: its books (Betfair, Marathonbet …) may alert first
    odds_api_event_id: str | None = None


@dataclass
class Delivered:
    """One message the fake Bot API received, with the decision it carried."""

    received_at: datetime
    bookmaker: str | None
    source_event_id: str | None
    market: str | None
    period: str | None
    outcome: str | None
    type: str | None
    detected_at: datetime | None
    decided_at: datetime | None
    claimed_at: datetime | None
    sent_at: datetime | None


@dataclass
class Result:
    scenario: Injected
    first: Delivered | None = None  # the first sharp-drop message about the scenario's event
    first_on_event: Delivered | None = None  # the first message about its event, of any type
    first_on_selection: Delivered | None = None  # the first about the shortened outcome itself
    messages: int = 0  # messages about its event
    milestones: dict[str, float] = field(default_factory=dict)  # seconds after the change

    @property
    def latency(self) -> float | None:
        return None if self.first is None else seconds(self.first.received_at, self.scenario.changed_at)


def seconds(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds()


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (no interpolation: p95 of 50 is the 48th value)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def bench_config(path: Path, interval: float) -> Path:
    """The project's feeds (oddly.yaml) with every interval set to `interval`."""
    raw = yaml.safe_load((REPO_ROOT / "oddly.yaml").read_text())
    for feed in raw["feeds"]:
        feed["interval_seconds"] = interval
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


# --- the stack ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stack:
    settings: Settings
    simulator: str
    telegram: str
    feeds: dict[str, list[str]]  # bookmaker → its feed's asset key
    services: list[Any]  # oddly.demo.Service, running

    def exited(self) -> dict[str, int]:
        """Services that stopped by themselves, with their exit codes (a crashed sender, say)."""
        return {
            s.name: s.process.returncode for s in self.services if s.process and s.process.poll() is not None
        }


@contextmanager
def running_stack(home: Path, interval: float, events: int, ready_timeout: float) -> Iterator[Stack]:
    """The demo's services on free ports under `home` (their output in `home`/stack.log), stopped
    on the way out, also on Ctrl-C or SIGTERM."""
    from oddly.dagster_home import password_env
    from oddly.demo import interrupt_on_sigterm, prepare_stores, services, start_service, stop_services

    for name in OWN_ENV:
        os.environ.pop(name, None)
    os.environ.update(
        {
            "ODDLY_HOME": str(home),
            "ODDLY_CONFIG_FILE": str(bench_config(home / "oddly.yaml", interval)),
            "ODDLY_SIMULATOR_PORT": str(free_port()),
            "ODDLY_MLFLOW_PORT": str(free_port()),
            "ODDLY_FAKE_TELEGRAM_PORT": str(free_port()),
            "ODDLY_STREAMLIT_PORT": str(free_port()),
            "ODDLY_METRICS_PORT": str(free_port()),
            "ODDLY_SENDER_METRICS_PORT": str(free_port()),
        }
    )
    settings = get_settings()
    os.environ.update(password_env(settings.dagster_pg_url))  # this process reads the runs too
    prepare_stores(settings)
    follow_sharp_drops(settings)
    stack = services(settings, free_port())
    for service in stack:
        if service.name == "simulator":
            # A pre-match event per scenario, and no random scenarios to collide with them.
            service.argv += ["--events", str(events), "--scenarios-per-hour", "0"]
    running: list[Any] = []
    previous = signal.signal(signal.SIGTERM, interrupt_on_sigterm)
    with (home / "stack.log").open("ab") as log:
        try:
            for service in stack:
                click.echo(f"starting {service.name} …", err=True)
                start_service(service, ready_timeout, running, output=log)
            yield Stack(
                settings,
                simulator=f"http://{settings.simulator_host}:{settings.simulator_port}",
                telegram=f"http://127.0.0.1:{settings.fake_telegram_port}",
                feeds={f.bookmaker: ["raw", "feed", f.name] for f in settings.config.enabled_feeds},
                services=running,
            )
        finally:
            click.echo("stopping the stack …", err=True)
            stop_services(running)
            signal.signal(signal.SIGTERM, previous)


def follow_sharp_drops(settings: Settings) -> None:
    """The demo chat as a bettor who follows sharp drops: every one of them, with no hourly limit
    (the benchmark injects 50 in a few minutes; a default chat would get 30 an hour at once)."""
    from oddly.alerts.subscriptions import Filters, save_filters
    from oddly.appdb import open_app_db
    from oddly.demo import DEMO_CHAT_ID
    from oddly.model import now_utc

    engine = open_app_db(settings)
    try:
        with engine.begin() as conn:
            filters = Filters(alert_types=["sharp_drop"], max_alerts_per_hour=None)
            save_filters(conn, DEMO_CHAT_ID, filters, now_utc())
    finally:
        engine.dispose()


def dagster_instance(settings: Settings) -> Any:
    import dagster as dg

    return dg.DagsterInstance.from_config(str(settings.dagster_home))


def wait_for_cycles(instance: Any, feeds: Sequence[list[str]], cycles: int, timeout: float) -> None:
    """Until every feed's sensor has ingested it `cycles` times (the first stores the prices, later
    ones diff): the feed assets' materializations."""
    import dagster as dg

    deadline = time.monotonic() + timeout
    while True:
        done = {
            "/".join(key): len(instance.fetch_materializations(dg.AssetKey(key), limit=cycles).records)
            for key in feeds
        }
        if all(n >= cycles for n in done.values()):
            return
        if time.monotonic() > deadline:
            counts = ", ".join(f"{key} {n}" for key, n in done.items())
            raise click.ClickException(
                f"the feeds did not ingest {cycles} cycles each within {timeout:.0f} s ({counts}); "
                "see stack.log (--home keeps it)"
            )
        time.sleep(2.0)


# --- scenarios ---------------------------------------------------------------------------------


def pick_events(simulator: str, count: int, rng: random.Random) -> list[dict[str, Any]]:
    """`count` distinct pre-match events kicking off between 10 min and 24 h from now."""
    now = datetime.now(UTC)
    events = [
        e
        for e in httpx.get(f"{simulator}/_sim/events", timeout=10).raise_for_status().json()
        if not e["is_live"]
        and timedelta(minutes=10) < datetime.fromisoformat(e["starts_at"]) - now < timedelta(hours=24)
    ]
    if len(events) < count:
        raise click.ClickException(f"the simulator has {len(events)} pre-match events; {count} needed")
    return rng.sample(events, count)


def inject(simulator: str, event: dict[str, Any], side: str) -> Injected:
    r = httpx.post(
        f"{simulator}/_sim/inject",
        json={"type": "sharp_drop", "event_key": event["event_key"], "side": side},
        timeout=10,
    )
    if r.status_code != 200:
        raise click.ClickException(f"simulator refused the injection: HTTP {r.status_code} {r.text}")
    body = r.json()
    return Injected(
        event_key=body["event_key"],
        side=side,
        changed_at=datetime.fromisoformat(body["changed_at"]),
        event_ids={book: int(i) for book, i in body["event_ids"].items()},
        home=body["home"],
        away=body["away"],
        odds_api_event_id=body.get("odds_api_event_id"),
    )


# --- deliveries --------------------------------------------------------------------------------


def delivered(engine: sa.Engine, telegram: str, chat_id: int) -> list[Delivered]:
    """The messages the fake Bot API received in `chat_id`, with the decision each one carried
    (joined on the outbox's recorded message id; a message not yet recorded shows up next time)."""
    from oddly.alerts.audit import decisions
    from oddly.alerts.outbox import outbox

    received = {
        int(m["message_id"]): datetime.fromisoformat(m["received_at"])
        for m in httpx.get(f"{telegram}/messages.json", timeout=10).raise_for_status().json()
        if str(m["chat_id"]) == str(chat_id)
    }
    query = (
        sa.select(
            outbox.c.telegram_message_id,
            outbox.c.claimed_at,
            outbox.c.sent_at,
            decisions.c.inputs,
            decisions.c.detected_at,
            decisions.c.decided_at,
        )
        .join(decisions, decisions.c.alert_id == outbox.c.alert_id)
        .where(outbox.c.kind == "alert", outbox.c.chat_id == str(chat_id))
        .where(outbox.c.telegram_message_id.is_not(None))
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    out = []
    for row in rows:
        at = received.get(int(row.telegram_message_id))
        if at is None:
            continue
        inputs = row.inputs or {}
        out.append(
            Delivered(
                received_at=at,
                bookmaker=inputs.get("bookmaker"),
                source_event_id=_text(inputs.get("source_event_id")),
                market=inputs.get("market"),
                period=inputs.get("period"),
                outcome=inputs.get("outcome"),
                type=inputs.get("type"),
                detected_at=_utc(row.detected_at),
                decided_at=_utc(row.decided_at),
                claimed_at=_utc(row.claimed_at),
                sent_at=_utc(row.sent_at),
            )
        )
    return sorted(out, key=lambda d: d.received_at)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def match(injected: Sequence[Injected], messages: Sequence[Delivered], timeout: float) -> list[Result]:
    """Each scenario's first sharp-drop message about its event (and the first message of any kind
    about it, and about its own selection) within `timeout`."""
    results = []
    for scenario in injected:
        deadline = scenario.changed_at + timedelta(seconds=timeout)
        ids = {str(i) for i in scenario.event_ids.values()}
        on_event = [
            m
            for m in messages
            if (
                # a book's own feed numbers its events itself; the aggregator's id is unique
                (
                    m.source_event_id in ids
                    and str(scenario.event_ids.get(m.bookmaker or "")) == m.source_event_id
                )
                or (
                    scenario.odds_api_event_id is not None and m.source_event_id == scenario.odds_api_event_id
                )
            )
            and scenario.changed_at <= m.received_at <= deadline
        ]
        # The drop moves every market of the match at every book; the alert policy sends one
        # message per event and type (the strongest move), so that message is the scenario's.
        drops = [m for m in on_event if m.type == SCENARIO_TYPE]
        selection = [m for m in drops if (m.market, m.period, m.outcome) == (MARKET, PERIOD, scenario.side)]
        results.append(
            Result(
                scenario,
                first=drops[0] if drops else None,
                first_on_event=on_event[0] if on_event else None,
                first_on_selection=selection[0] if selection else None,
                messages=len(on_event),
            )
        )
    return results


def collect(
    engine: sa.Engine, telegram: str, chat_id: int, injected: Sequence[Injected], timeout: float
) -> tuple[list[Result], list[Delivered]]:
    """Poll until every scenario has its message or its timeout has passed."""
    last = max(s.changed_at for s in injected) + timedelta(seconds=timeout)
    while True:
        messages = delivered(engine, telegram, chat_id)
        results = match(injected, messages, timeout)
        if all(r.first is not None for r in results) or datetime.now(UTC) > last + timedelta(seconds=5):
            return results, messages
        time.sleep(2.0)


# --- where the time goes -----------------------------------------------------------------------


def trace(instance: Any, result: Result, feeds: dict[str, list[str]]) -> dict[str, Any]:
    """The first message's path from the price change, as absolute times, and its poll's report
    (the feed materialization whose poll started before the detection and was stored after it)."""
    import dagster as dg

    first = result.first
    assert first is not None and first.detected_at is not None and first.bookmaker is not None
    at: dict[str, datetime | None] = {
        "fetched": first.detected_at,
        "decided": first.decided_at,
        "claimed": first.claimed_at,
        "sent": first.sent_at,
        "received": first.received_at,
    }
    report: dict[str, float] = {}
    # the book's own feed first; a book that only an aggregator feed carries is found in that one
    keys = [feeds[first.bookmaker]] if first.bookmaker in feeds else list(feeds.values())
    for key in keys:
        for record in instance.fetch_materializations(dg.AssetKey(key), limit=500).records:
            metadata = record.asset_materialization.metadata
            if "started_at" not in metadata:
                continue
            started = datetime.fromisoformat(str(metadata["started_at"].value))
            stored = datetime.fromtimestamp(record.timestamp, UTC)
            if started <= first.detected_at <= stored:
                at["poll_started"], at["reported"] = started, stored
                report = {k: float(metadata[k].value) for k in REPORT_KEYS if k in metadata}
                return {"at": at, "report": report}
    return {"at": at, "report": report}


def stage_seconds(changed_at: datetime, at: dict[str, datetime | None]) -> dict[str, float]:
    """Consecutive milestones as durations; a milestone before the change (a run already under
    way when the price moved) counts from the change."""
    out: dict[str, float] = {}
    previous = changed_at
    for stage, milestone in STAGES:
        moment = at.get(milestone)
        if moment is None:
            continue
        moment = max(moment, previous)
        out[stage] = round(seconds(moment, previous), 3)
        previous = moment
    return out


def summary(values: Sequence[float]) -> dict[str, float | None]:
    def r(x: float | None) -> float | None:
        return None if x is None else round(x, 2)

    return {
        "p50_s": r(percentile(values, 50)),
        "p95_s": r(percentile(values, 95)),
        "max_s": r(max(values) if values else None),
    }


def per_key(rows: Sequence[dict[str, float]], q: float) -> dict[str, float | None]:
    keys = dict.fromkeys(k for row in rows for k in row)
    out = {}
    for key in keys:
        value = percentile([row[key] for row in rows if key in row], q)
        out[key] = None if value is None else round(value, 2)
    return out


def machine() -> dict[str, Any]:
    mem = None
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kb = int(meminfo.read_text().split("MemTotal:")[1].split()[0])
        mem = round(kb / 1024**2, 1)
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "memory_gb": mem,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


# --- the command -------------------------------------------------------------------------------


@click.command()
@click.option("--scenarios", default=50, show_default=True, help="Sharp drops to inject.")
@click.option("--interval", default=5.0, show_default=True, help="Seconds between polls of each feed.")
@click.option("--spacing", default=4.0, show_default=True, help="Seconds between injected scenarios.")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds a scenario may take, or missed.")
@click.option("--warmup-cycles", default=1, show_default=True, help="Ingestion runs per feed before.")
@click.option("--ready-timeout", default=300.0, show_default=True, help="Seconds to wait for each service.")
@click.option("--seed", default=1, show_default=True, help="Which events and sides get the scenarios.")
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the stack's stores and stack.log here (a temporary directory, removed, when unset).",
)
def latency(
    scenarios: int,
    interval: float,
    spacing: float,
    timeout: float,
    warmup_cycles: int,
    ready_timeout: float,
    seed: int,
    home: Path | None,
) -> None:
    """Alert latency end to end: simulator price change → Telegram message (p50, p95, max, missed).

    Runs the demo stack with every feed polled each INTERVAL seconds, injects SCENARIOS sharp drops
    (each on its own pre-match event, large enough for a red alert) SPACING seconds apart, and
    matches the messages the fake Bot API receives to them. Target: p95 ≤ 10 s, nothing missed.
    """
    if scenarios < 1:
        raise click.BadParameter("at least one scenario", param_hint="--scenarios")
    from oddly.appdb import open_app_db
    from oddly.demo import DEMO_CHAT_ID

    load_start = os.getloadavg()
    rng = random.Random(seed)
    # The simulator's default live share is a quarter: enough events for one pre-match each.
    events = max(40, math.ceil((scenarios + 10) / 0.75))
    with tempfile.TemporaryDirectory(prefix="oddly-bench-latency-") as tmp:
        where = home or Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        try:
            with running_stack(where, interval, events, ready_timeout) as stack:
                instance = dagster_instance(stack.settings)
                click.echo(f"waiting for {warmup_cycles} ingestion cycles of every feed …", err=True)
                wait_for_cycles(instance, list(stack.feeds.values()), warmup_cycles, ready_timeout)
                chosen = pick_events(stack.simulator, scenarios, rng)
                injected = []
                click.echo(f"injecting {scenarios} sharp drops, {spacing:g} s apart …", err=True)
                for i, event in enumerate(chosen):
                    if i:
                        time.sleep(spacing)
                    injected.append(inject(stack.simulator, event, rng.choice(("home", "away"))))
                engine = open_app_db(stack.settings)
                try:
                    results, messages = collect(engine, stack.telegram, DEMO_CHAT_ID, injected, timeout)
                finally:
                    engine.dispose()
                traces = [(r, trace(instance, r, stack.feeds)) for r in results if r.first is not None]
                exited = stack.exited()
                load_end = os.getloadavg()
        except click.ClickException:
            log = where / "stack.log"
            if log.exists():
                click.echo(
                    "--- the end of stack.log ---\n" + log.read_text(errors="replace")[-4000:], err=True
                )
            raise
    window_start = min(s.changed_at for s in injected)
    latencies = [r.latency for r in results if r.latency is not None]
    first_any = [
        seconds(r.first_on_event.received_at, r.scenario.changed_at) for r in results if r.first_on_event
    ]
    stages = [stage_seconds(r.scenario.changed_at, t["at"]) for r, t in traces]
    p95 = percentile(latencies, 95)
    missed = [r.scenario.event_key for r in results if r.first is None]
    click.echo(
        json.dumps(
            {
                "benchmark": "latency",
                "scenarios": scenarios,
                "received": len(latencies),
                "missed": len(missed),
                **summary(latencies),
                "mean_s": round(statistics.fmean(latencies), 2) if latencies else None,
                "target_p95_s": TARGET_P95_SECONDS,
                "target_met": bool(not missed and p95 is not None and p95 <= TARGET_P95_SECONDS),
                "first_message_on_event": summary(first_any),
                "first_message_on_the_outcome": summary(
                    [
                        seconds(r.first_on_selection.received_at, r.scenario.changed_at)
                        for r in results
                        if r.first_on_selection
                    ]
                ),
                "stages_p50_s": per_key(stages, 50),
                "stages_p95_s": per_key(stages, 95),
                "poll_report_p50_s": per_key([t["report"] for _, t in traces], 50),
                "messages_received": sum(1 for m in messages if m.received_at >= window_start),
                "messages_per_scenario_p50": percentile([r.messages for r in results], 50),
                "missed_events": missed,
                "services_exited": exited,
                "feed_interval_s": interval,
                "feeds": len(stack.feeds),
                "spacing_s": spacing,
                "timeout_s": timeout,
                "sim_events": events,
                "load_avg_start": [round(x, 2) for x in load_start],
                "load_avg_end": [round(x, 2) for x in load_end],
                **machine(),
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
        )
    )
