"""`oddly replay`: feed recorded cycles through the path a live poll takes — parse → validate → diff
→ change-only ticks → fast detectors → alert decisions (`oddly.ingest`, `oddly.poll.decide_poll`)
— in recorded time order, paced at recorded time / speed or as fast as possible.

What it replays, told apart by content:

- recordings made by `oddly record` (a directory with `manifest.jsonl`; a directory of such
  directories replays them all, merged in time): each recorded cycle is one poll of its feed, parsed
  by the feed's agent with the settings recorded (or, with `--feed`, those configured now);
- Betfair Exchange stream files (`oddly.feeds.betfair_stream.iter_updates`, which reads them):
  each publish time's updates are one run of ticks of `betfair_ex` (feed `betfair_stream`), so the
  ticks are exactly those `oddly import betfair` writes.

Time is the recorded time throughout: a run starts when its cycle started, the ticks' `observed_at`
is when the answer was received, detections are stamped with it and decisions are made as of the
end of the recorded fetch, so cooldowns, hourly limits and red-age caps act as they did then. A
replay never makes an older price current: rows not after a selection's latest stored observation
are left out (so replaying twice writes nothing twice). Each run is logged in `raw.feed_runs` as a
live one, under a run id naming the replay.

Not replayed: the marts cycle (dbt, scoring and the mart detectors: steam, value, stale lines) —
event matching reads the wall clock, so past events would not be matched; run `oddly dbt build`
on the replay's home afterwards for the marts.
"""

from __future__ import annotations

import bz2
import gzip
import heapq
import json
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import numpy as np
import orjson
import pyarrow as pa
import sqlalchemy as sa

from oddly.alerts.policy import PolicyError, load_policy
from oddly.appdb import make_engine, open_app_db
from oddly.config import ConfigError, FeedConfig, Settings, get_settings
from oddly.detect.rules import Rules, RulesError, load_rules
from oddly.feeds.base import FeedError, FetchOutcome, ParseResult, Payload
from oddly.feeds.betfair_stream import BOOKMAKER, NO_BACK_OFFER, NO_PRICE_YET, StreamReport, iter_updates
from oddly.feeds.registry import UnknownAgentError, agent_class
from oddly.ingest import IngestReport, process_fetched, process_parsed, start_report
from oddly.model import PriceColumns, utc
from oddly.poll import PollReport, decide_poll
from oddly.record import RecordedCycle, Recording, RecordingError, is_recording, read_recording
from oddly.warehouse.store import Warehouse

BETFAIR_FEED = FeedConfig(
    name="betfair_stream",
    agent="betfair_stream",
    bookmaker=BOOKMAKER,
    base_url="https://stream-api.betfair.com",
    interval_seconds=1,
)
# Reasons betfair_stream counts that are the market's state, not a fault of the file.
_MARKET_STATES = frozenset({NO_PRICE_YET, NO_BACK_OFFER})
_KEY_COLUMNS = ["bookmaker", "source_event_id", "market", "period", "line", "outcome"]
# How much of a file is read to tell what it is.
_SNIFF_BYTES = 1 << 20


class ReplayError(Exception):
    """Nothing can be replayed as asked; the message says why and what to do."""


@dataclass
class ReplayCycle:
    """One poll to replay: what came back, and the recorded times it runs at."""

    at: datetime  # when the recorded cycle began: paces the replay, starts the run
    decided_at: datetime  # the end of the recorded fetch: the poll's clock for its decisions
    observed_at: datetime  # when the answer came: the ticks' observation time
    feed: FeedConfig
    where: str  # in messages: "recording rec/22bet cycle 12 at 2026-12-01 10:00:05"
    outcome: FetchOutcome | BaseException | None = None
    parsed: ParseResult | None = None  # rows already parsed (Betfair stream updates)
    fetch_seconds: float = 0.0
    messages: int = 0  # Betfair stream messages (lines) merged into this cycle


# --- what the paths hold -------------------------------------------------------------------------


@dataclass
class Sources:
    recordings: list[Path] = field(default_factory=list)
    streams: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def find_sources(paths: Iterable[Path]) -> Sources:
    """Recordings and Betfair stream files among `paths` (files, or directories of them, or a
    directory of recordings), each told by its content; what is neither is skipped, in words."""
    found = Sources()
    for path in paths:
        if is_recording(path):
            found.recordings.append(path)
        elif path.is_dir():
            inner = sorted(p for p in path.iterdir() if is_recording(p))
            found.recordings += inner
            if not inner:
                for file in sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")):
                    _add_file(file, found, inside_dir=True)
        elif path.is_file():
            _add_file(path, found, inside_dir=False)
        else:
            found.skipped.append(f"{path}: no such file or directory")
    return found


def _add_file(path: Path, found: Sources, *, inside_dir: bool) -> None:
    if path.name.startswith("catalogue_") or path.name.endswith(".catalogue.json"):
        return  # read by betfair_stream beside its stream file
    what = sniff(path)
    if what == "betfair":
        found.streams.append(path)
    elif not inside_dir or what != "empty":
        found.skipped.append(f"{path}: {what}; neither an oddly recording nor a Betfair stream file")


def sniff(path: Path) -> str:
    """What a file holds, told by its first line: "betfair" for an Exchange Stream message (plain,
    .gz or .bz2, as betfair_stream reads them), else what it looks like, in words."""
    try:
        opener: Any = {".gz": gzip.open, ".bz2": bz2.open}.get(path.suffix, open)
        with opener(path, "rb") as f:
            head = f.read(_SNIFF_BYTES)
    except (OSError, EOFError, ValueError) as exc:
        return f"unreadable ({exc})"
    first = head.lstrip().split(b"\n", 1)[0]
    if not first:
        return "empty"
    try:
        message = orjson.loads(first)
    except orjson.JSONDecodeError:
        # a first line longer than what was read (a market image with deep ladders) is cut short
        cut = len(first) == len(head.lstrip()) and b'"op":"mcm"' in first[:200]
        return "betfair" if cut else "not JSON lines"
    if isinstance(message, dict) and (message.get("op") == "mcm" or ("mc" in message and "pt" in message)):
        return "betfair"
    return "JSON of another kind"


# --- cycles of a recording ---------------------------------------------------------------------


def recording_cycles(
    recording: Recording, feed: FeedConfig | None, problems: list[str]
) -> Iterator[ReplayCycle]:
    """The recorded cycles in time order, each as the FetchOutcome the live poll had: payloads whose
    files are missing or not what was received are left out and named in the run's errors (the run
    is then partial, as a live run missing that answer), and in `problems`."""
    name = recording.directory
    feeds = [feed or _recorded_feed(session.feed, name) for session in recording.sessions]
    timed: list[tuple[datetime, RecordedCycle]] = []
    for cycle in recording.cycles:
        if cycle.began is None:
            problems.append(f"recording {name} cycle {cycle.cycle}: no time recorded and no payload; skipped")
        else:
            timed.append((cycle.began, cycle))
    for began, cycle in sorted(timed, key=lambda item: item[0]):
        where = f"recording {name} cycle {cycle.cycle}"
        payloads: list[Payload] = []
        lost: list[str] = []
        for recorded in sorted(cycle.payloads, key=lambda p: p.index):
            body, problem = recording.load(recorded)
            if problem is not None:
                lost.append(f"recorded answer lost ({problem})")
                problems.append(f"{where}: {problem}; the cycle is replayed without it")
                continue
            assert body is not None
            payloads.append(
                Payload(
                    url=recorded.url,
                    body=body,
                    received_at=recorded.received_at,
                    status=recorded.status,
                    kind=recorded.kind,
                    meta={"headers": recorded.headers},
                )
            )
        if not cycle.ended:
            problems.append(
                f"{where}: the recorder stopped during this cycle; its {len(payloads)} complete answer(s) "
                "are replayed, its failed requests are unknown"
            )
        elif cycle.listed_payloads is not None and cycle.listed_payloads > len(cycle.payloads):
            absent = cycle.listed_payloads - len(cycle.payloads)
            lost.append(f"{absent} recorded answer(s) not listed in the manifest")
            problems.append(
                f"{where}: {absent} of its {cycle.listed_payloads} payload lines are not in the manifest"
            )
        received = max((p.received_at for p in payloads), default=began)
        finished = cycle.finished_at or received
        outcome: FetchOutcome | BaseException
        if cycle.error is not None:
            outcome = FeedError(cycle.error)
        elif not payloads:
            outcome = FeedError("; ".join(cycle.errors + lost) or "no answer recorded")
        else:
            outcome = FetchOutcome(payloads, cycle.errors + lost, cycle.requests, cycle.notes)
        yield ReplayCycle(
            at=began,
            decided_at=finished,
            observed_at=received,
            feed=feeds[cycle.session],
            where=f"{where} at {began:%Y-%m-%d %H:%M:%S}",
            outcome=outcome,
            fetch_seconds=(finished - began).total_seconds(),
        )


def _recorded_feed(settings: dict[str, Any], directory: Path) -> FeedConfig:
    try:
        return FeedConfig.model_validate(settings)
    except ValueError as exc:
        raise ReplayError(
            f"recording {directory}: the feed settings it was recorded with no longer validate ({exc}); "
            "replay it with --feed NAME, a feed configured now"
        ) from None


# --- cycles of Betfair stream files ------------------------------------------------------------


def stream_cycles(
    paths: Sequence[Path], report: StreamReport, feed: FeedConfig = BETFAIR_FEED
) -> Iterator[ReplayCycle]:
    """Betfair stream updates in publish-time order, those of one publish time one cycle (of several
    rows of a selection the last is kept, as the importer keeps them)."""
    names = ", ".join(p.name for p in paths)
    pending: list[Any] = []

    def cycle() -> ReplayCycle:
        at = pending[0].timestamp
        rows = pending[0].rows
        if len(pending) > 1:
            rows = PriceColumns()
            for update in pending:
                rows.extend(update.rows)
        return ReplayCycle(
            at=at,
            decided_at=at,
            observed_at=at,
            feed=feed,
            where=f"Betfair stream {names} at {at:%Y-%m-%d %H:%M:%S.%f}"[:-3],
            parsed=ParseResult(rows=rows),
            messages=len(pending),
        )

    for update in iter_updates(paths, report=report):
        if pending and update.timestamp != pending[0].timestamp:
            yield cycle()
            pending = []
        pending.append(update)
    if pending:
        yield cycle()


# --- pacing --------------------------------------------------------------------------------------


def schedule(times: Sequence[datetime], speed: float | None) -> list[float]:
    """When each cycle is due, in wall seconds after the first: recorded time / speed (all at 0 when
    as fast as possible)."""
    if not times or speed is None:
        return [0.0] * len(times)
    first = times[0]
    return [(t - first).total_seconds() / speed for t in times]


class Pacer:
    """Holds each cycle back until its due time (`schedule`); never hurries to catch up."""

    def __init__(
        self, speed: float | None, sleep: Callable[[float], None], monotonic: Callable[[], float]
    ) -> None:
        self.speed = speed
        self._sleep = sleep
        self._monotonic = monotonic
        self._start: tuple[datetime, float] | None = None
        self.slept = 0.0
        self.behind = 0.0  # the most a cycle started after its due time, in seconds

    def wait(self, at: datetime) -> None:
        if self.speed is None:
            return
        if self._start is None:
            self._start = (at, self._monotonic())
            return
        first, began = self._start
        due = began + schedule([first, at], self.speed)[1]
        delay = due - self._monotonic()
        if delay > 0:
            self._sleep(delay)
            self.slept += delay
        else:
            self.behind = max(self.behind, -delay)


# --- the replay ----------------------------------------------------------------------------------


@dataclass
class ReplaySummary:
    sources: list[str] = field(default_factory=list)
    speed: float | None = None
    cycles: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    updates: int = 0  # Betfair stream updates (market changes)
    prices_seen: int = 0
    ticks_written: int = 0
    ticks_by_bookmaker: dict[str, int] = field(default_factory=dict)
    rejected: int = 0
    already_stored: int = 0
    detections: Counter[str] = field(default_factory=Counter)
    decisions: int = 0
    by_action: Counter[str] = field(default_factory=Counter)
    by_severity: Counter[str] = field(default_factory=Counter)
    first_at: datetime | None = None
    last_at: datetime | None = None
    wall_seconds: float = 0.0
    slept_seconds: float = 0.0
    behind_seconds: float = 0.0
    run_errors: list[str] = field(default_factory=list)  # the runs' own (recorded gaps, bad answers)
    problems: list[str] = field(default_factory=list)  # the recording's (torn, missing, skipped)
    notes: list[str] = field(default_factory=list)
    stopped: str | None = None

    @property
    def recorded_seconds(self) -> float:
        if self.first_at is None or self.last_at is None:
            return 0.0
        return (self.last_at - self.first_at).total_seconds()

    @property
    def speedup(self) -> float | None:
        return self.recorded_seconds / self.wall_seconds if self.wall_seconds > 0 else None

    def lines(self) -> list[str]:
        statuses = ", ".join(f"{s} {n:,}" for s, n in sorted(self.by_status.items())) or "none"
        books = ", ".join(f"{b} {n:,}" for b, n in sorted(self.ticks_by_bookmaker.items()))
        found = ", ".join(f"{t} {n:,}" for t, n in sorted(self.detections.items())) or "none"
        actions = ", ".join(f"{a} {n:,}" for a, n in sorted(self.by_action.items()))
        severities = ", ".join(f"{s} {n:,}" for s, n in sorted(self.by_severity.items()))
        span = (
            f"{self.first_at:%Y-%m-%d %H:%M:%S} → {self.last_at:%Y-%m-%d %H:%M:%S} UTC "
            f"({_duration(self.recorded_seconds)})"
            if self.first_at and self.last_at
            else "nothing"
        )
        pace = "as fast as possible" if self.speed is None else f"speed {self.speed:g}"
        speedup = f"{self.speedup:,.0f}× real time" if self.speedup else "—"
        updates = f" from {self.updates:,} Betfair stream updates" if self.updates else ""
        lines = [
            f"replayed {'; '.join(self.sources) or 'nothing'}",
            f"  recorded time {span}",
            f"  cycles {self.cycles:,}{updates} (runs: {statuses}); prices seen {self.prices_seen:,}",
            f"  ticks written {self.ticks_written:,}"
            + (f" ({books})" if books else "")
            + f"; rejected {self.rejected:,}; already stored, left out {self.already_stored:,}",
            f"  detections: {found}",
            f"  decisions: {self.decisions:,}"
            + (f" ({actions}; {severities or 'no severity'})" if self.decisions else ""),
            f"  wall time {self.wall_seconds:.1f} s, {speedup} ({pace}"
            + (f", slept {self.slept_seconds:.1f} s" if self.slept_seconds else "")
            + (f", up to {self.behind_seconds:.1f} s behind schedule" if self.behind_seconds > 1 else "")
            + ")",
        ]
        if self.stopped:
            lines.append(f"! stopped: {self.stopped}")
        lines += [f"  note: {n}" for n in self.notes]
        lines += _capped("! run as recorded: ", self.run_errors)
        lines += _capped("! ", self.problems)
        return lines

    def as_dict(self) -> dict[str, Any]:
        return {
            "sources": self.sources,
            "speed": self.speed or "max",
            "cycles": self.cycles,
            "runs": dict(self.by_status),
            "updates": self.updates,
            "prices_seen": self.prices_seen,
            "ticks_written": self.ticks_written,
            "ticks_by_bookmaker": self.ticks_by_bookmaker,
            "rejected": self.rejected,
            "already_stored": self.already_stored,
            "detections": dict(self.detections),
            "decisions": self.decisions,
            "decisions_by_action": dict(self.by_action),
            "decisions_by_severity": dict(self.by_severity),
            "first_at": self.first_at.isoformat() if self.first_at else None,
            "last_at": self.last_at.isoformat() if self.last_at else None,
            "recorded_seconds": round(self.recorded_seconds, 3),
            "wall_seconds": round(self.wall_seconds, 3),
            "speedup": round(self.speedup, 1) if self.speedup else None,
            "problems": self.problems,
            "run_errors": len(self.run_errors),
            "stopped": self.stopped,
        }


def _capped(prefix: str, items: list[str], most: int = 8) -> list[str]:
    shown = [prefix + item for item in items[:most]]
    if len(items) > most:
        shown.append(f"{prefix}… and {len(items) - most} more")
    return shown


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes = seconds / 60
    return f"{minutes:.0f} min" if minutes < 180 else f"{minutes / 60:.1f} h"


class Replay:
    """One replay of some recordings and stream files into `settings`' warehouse and app database."""

    def __init__(
        self,
        settings: Settings,
        rules: Rules,
        *,
        speed: float | None = None,
        feed: FeedConfig | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        on_cycle: Callable[[ReplayCycle, PollReport], None] | None = None,
    ) -> None:
        self.settings = settings
        self.rules = rules
        self.feed = feed
        self.pacer = Pacer(speed, sleep, monotonic)
        self.monotonic = monotonic
        self.on_cycle = on_cycle
        self.session = uuid.uuid4().hex[:8]
        self.summary = ReplaySummary(speed=speed)
        self.warehouse = Warehouse.from_settings(settings)
        self._newest_stored: datetime | None = None
        self.stream_report: StreamReport | None = None

    def cycles(self, paths: Sequence[Path]) -> Iterator[ReplayCycle]:
        """Every cycle of `paths`, merged in recorded time order (recordings read up front, so a
        problem with one is known before anything is written)."""
        found = find_sources(paths)
        self.summary.problems += found.skipped
        if self.feed is not None and (len(found.recordings) != 1 or found.streams):
            raise ReplayError(
                "--feed applies to one recording only (Betfair stream files are feed betfair_stream)"
            )
        if not found.recordings and not found.streams:
            raise ReplayError(
                f"nothing to replay in {', '.join(map(str, paths))}: no oddly recording (a directory with "
                "manifest.jsonl) and no Betfair stream file"
            )
        sources: list[Iterator[ReplayCycle]] = []
        for directory in found.recordings:
            recording = read_recording(directory)
            self.summary.problems += [f"recording {directory}: {p}" for p in recording.problems]
            for session in recording.sessions:
                agent = (self.feed or _recorded_feed(session.feed, directory)).agent
                agent_class(agent)  # an agent this installation lacks: say so before replaying
            if (
                self.feed is not None
                and recording.sessions
                and self.feed.agent != recording.sessions[-1].agent
            ):
                raise ReplayError(
                    f"feed {self.feed.name} uses agent {self.feed.agent}, but {directory} was recorded with "
                    f"agent {recording.sessions[-1].agent}"
                )
            feeds = sorted({self.feed.name if self.feed else s.feed_name for s in recording.sessions})
            self.summary.sources.append(
                f"recording {directory} (feed {', '.join(feeds) or '?'}, {len(recording.cycles):,} cycles)"
            )
            sources.append(recording_cycles(recording, self.feed, self.summary.problems))
        if found.streams:
            self.stream_report = StreamReport()
            self.summary.sources.append(
                f"Betfair stream {', '.join(p.name for p in found.streams)} (feed {BETFAIR_FEED.name})"
            )
            sources.append(stream_cycles(found.streams, self.stream_report))
        return heapq.merge(*sources, key=lambda c: c.at)

    def run(self, paths: Sequence[Path]) -> ReplaySummary:
        """Replay `paths`; a warehouse failure stops the replay (what was written before stays, and a
        second replay continues where it stopped without writing anything twice)."""
        cycles = self.cycles(paths)
        self._prepare()
        t0 = self.monotonic()
        try:
            for cycle in cycles:
                self.pacer.wait(cycle.at)
                self._one(cycle)
        except KeyboardInterrupt:
            self.summary.stopped = f"interrupted (Ctrl-C) after {self.summary.cycles:,} cycles"
        except (sa.exc.SQLAlchemyError, OSError, RecordingError) as exc:
            self.summary.stopped = (
                f"after {self.summary.cycles:,} cycles: {type(exc).__name__}: {exc}; what was replayed is "
                "written, replay again to go on (nothing is written twice)"
            )
        finally:
            self.summary.wall_seconds = self.monotonic() - t0
            self.summary.slept_seconds = self.pacer.slept
            self.summary.behind_seconds = self.pacer.behind
            self._finish()
        return self.summary

    def _prepare(self) -> None:
        self.warehouse.ensure_schema()
        newest = self.warehouse.scalar("select max(observed_at) from raw.latest_prices")
        self._newest_stored = utc(newest) if newest is not None else None
        open_app_db(self.settings).dispose()  # tables created once; each poll opens an engine

    def _open_app_db(self) -> sa.Engine:
        return make_engine(self.settings.resolved_app_database_url)

    def _one(self, cycle: ReplayCycle) -> None:
        s = self.summary
        s.cycles += 1
        s.first_at = s.first_at or cycle.at
        s.last_at = cycle.at
        feed = cycle.feed
        run_id = f"{feed.name}-{cycle.at:%Y%m%dT%H%M%S}-replay{self.session}-{s.cycles:06d}"
        report = start_report(feed, run_id, started_at=cycle.at)
        report.fetch_seconds = cycle.fetch_seconds

        def clock() -> datetime:
            return cycle.decided_at

        older = self._newest_stored is not None and cycle.observed_at <= self._newest_stored
        keep = self._leave_out_stored if older else None
        ingested: IngestReport
        if cycle.parsed is not None:
            report.http_outcome = f"replayed {cycle.messages} Betfair stream message(s)"
            ingested = process_parsed(
                feed,
                self.warehouse,
                report,
                cycle.parsed,
                cycle.observed_at,
                rules=self.rules,
                clock=clock,
                before_write=keep,
            )
        else:
            assert cycle.outcome is not None
            ingested = process_fetched(
                feed, self.warehouse, report, cycle.outcome, rules=self.rules, clock=clock, before_write=keep
            )
        poll = decide_poll(
            ingested, self.warehouse, self.settings, self._open_app_db, self.rules, now=cycle.decided_at
        )
        self._count(cycle, poll)
        if self.on_cycle is not None:
            self.on_cycle(cycle, poll)

    def _leave_out_stored(self, table: pa.Table) -> pa.Table:
        """Rows not after their selection's latest stored observation are left out: an older
        recording never makes an old price current, and a second replay writes nothing twice."""
        if table.num_rows == 0:
            return table
        probe = table.select([*_KEY_COLUMNS, "observed_at"]).append_column(
            "_row", pa.array(np.arange(table.num_rows, dtype=np.int64))
        )
        key = self.warehouse.selection_key_sql
        [stored] = self.warehouse.arrow_with(
            [
                f"""
                select i._row from (select {key} as selection_key, _row, observed_at from _replayed) i
                join raw.latest_prices l on l.selection_key = i.selection_key
                where i.observed_at <= l.observed_at
                """
            ],
            {"_replayed": probe},
        )
        if stored.num_rows == 0:
            return table
        keep = np.ones(table.num_rows, dtype=bool)
        keep[stored["_row"].to_numpy()] = False
        self.summary.already_stored += int((~keep).sum())
        return table.filter(pa.array(keep))

    def _count(self, cycle: ReplayCycle, poll: PollReport) -> None:
        s, r = self.summary, poll.ingest
        s.by_status[r.status] += 1
        s.prices_seen += r.prices_seen
        s.ticks_written += r.ticks_written
        s.rejected += r.rejected
        s.detections.update(d.type for d in r.detections)
        if poll.alerts is not None:
            s.decisions += poll.alerts.decisions
            s.by_action.update(poll.alerts.by_action)
            s.by_severity.update(poll.alerts.by_severity)
        s.run_errors += [f"{cycle.where}: {p}" for p in poll.problems]

    def _finish(self) -> None:
        s = self.summary
        try:
            if s.cycles:
                rows = self.warehouse.query(
                    "select bookmaker, count(*) as n from raw.odds_ticks where feed_run_id like :p "
                    "group by bookmaker",
                    {"p": f"%-replay{self.session}-%"},
                )
                s.ticks_by_bookmaker = {str(r["bookmaker"]): int(r["n"]) for r in rows}
            unmatched = self._unmatched_events()
            if unmatched:
                s.notes.append(unmatched)
        except sa.exc.SQLAlchemyError as exc:
            s.problems.append(f"ticks per bookmaker not counted: the warehouse did not answer ({exc})")
        finally:
            self.warehouse.dispose()
        if self.stream_report is not None:
            report = self.stream_report
            s.updates = report.updates  # market changes applied, as betfair_stream counts them
            states = {r: n for r, n in report.skipped.items() if r in _MARKET_STATES}
            faults = {r: n for r, n in report.skipped.items() if r not in _MARKET_STATES}
            s.problems += [
                f"Betfair stream: {r} ×{n:,} (first at {report.examples[r]})" for r, n in faults.items()
            ]
            if states:
                s.notes.append(
                    "Betfair stream runners without a price to write: "
                    + "; ".join(f"{r} ×{n:,}" for r, n in states.items())
                )

    def _unmatched_events(self) -> str | None:
        """The cross-book rules judge only events matched across books (raw.event_map): say how many
        of the replayed events they could not judge, when more than one book came in."""
        if len(self.summary.ticks_by_bookmaker) < 2:
            return None
        [row] = self.warehouse.query(
            """
            select count(*) as events,
                sum(case when m.canonical_event_id is null then 1 else 0 end) as unmatched
            from (
                select distinct bookmaker, source_event_id from raw.odds_ticks where feed_run_id like :p
            ) t
            left join raw.event_map m on m.bookmaker = t.bookmaker and m.source_event_id = t.source_event_id
            """,
            {"p": f"%-replay{self.session}-%"},
        )
        if not row["unmatched"]:
            return None
        return (
            f"{int(row['unmatched']):,} of {int(row['events']):,} replayed events are not matched across "
            "books (raw.event_map): out of line and arbitrage did not judge them, sharp drop did"
        )


def replay(
    paths: Sequence[Path],
    settings: Settings,
    rules: Rules,
    *,
    speed: float | None = None,
    feed: FeedConfig | None = None,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
    on_cycle: Callable[[ReplayCycle, PollReport], None] | None = None,
) -> ReplaySummary:
    """Replay `paths` into `settings`' warehouse and app database (see the module's docstring)."""
    return Replay(
        settings, rules, speed=speed, feed=feed, sleep=sleep, monotonic=monotonic, on_cycle=on_cycle
    ).run(paths)


def replay_settings(
    base: Settings, *, home: Path | None, rules_file: Path | None, policy_file: Path | None
) -> Settings:
    """The settings a replay writes with: `home` (when given) holds its own warehouse and app
    database, whatever the environment points the live ones at; the rules and the alert policy are
    the ones given, else the live ones."""
    overrides: dict[str, Any] = {
        "rules_file": rules_file or base.rules_file,
        "alert_policy_file": policy_file or base.alert_policy_file,
    }
    if home is not None:
        overrides |= {"home": home, "warehouse_url": None, "app_database_url": None}
    current = {name: getattr(base, name) for name in type(base).model_fields}
    return Settings(**{**current, **overrides})


# --- the command ---------------------------------------------------------------------------------


def parse_speed(value: str) -> float | None:
    """`--speed`: a factor over real time, or 0 / max for as fast as possible (None)."""
    if value.strip().lower() in ("max", "0", "0.0"):
        return None
    try:
        speed = float(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a number; give e.g. 60, or max") from None
    if not speed > 0 or speed == float("inf"):
        raise click.BadParameter(f"{value!r}: the speed must be above 0 (or max)")
    return speed


@click.command("replay")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--speed",
    default="max",
    show_default=True,
    help="Recorded time over wall time: 60 replays an hour in a minute; 0 or max: as fast as possible.",
)
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    help="Replay into this ODDLY_HOME (its own DuckDB warehouse and app database), leaving live data "
    "untouched. Recommended: without it the replay writes into the configured warehouse and app "
    "database, and alerts it queues there reach your subscribers.",
)
@click.option("--feed", "feed_name", help="Parse one recording with this configured feed's settings instead.")
@click.option(
    "--rules",
    "rules_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Detector rules file to replay against (default: the configured one).",
)
@click.option(
    "--policy",
    "policy_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Alert policy file to decide with (default: the configured one).",
)
@click.option("--verbose", "-v", is_flag=True, help="Print every run and detection.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON line.")
def replay_command(
    paths: tuple[Path, ...],
    speed: str,
    home: Path | None,
    feed_name: str | None,
    rules_file: Path | None,
    policy_file: Path | None,
    verbose: bool,
    as_json: bool,
) -> None:
    """Feed recorded cycles through ingestion, the fast detectors and the alert decisions, in recorded
    time order, faster than real time.

    PATHS are recordings made by `oddly record` (or a directory of them) and Betfair Exchange stream
    files (or a directory of them), told apart by content. Ticks are stamped with the recorded
    times and decisions made as of them; rows not newer than what the warehouse holds are left out,
    so replaying twice writes nothing twice. Exits 1 when nothing could be replayed.
    """
    pace = parse_speed(speed)
    try:
        settings = replay_settings(get_settings(), home=home, rules_file=rules_file, policy_file=policy_file)
        rules = load_rules(settings.rules_file)
        load_policy(settings.alert_policy_file)
        feed = settings.config.feed(feed_name) if feed_name else None
    except (RulesError, PolicyError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from exc
    if home is None and not as_json:
        click.echo(
            f"! replaying into the configured warehouse ({_shown(settings.resolved_warehouse_url)}) and app "
            f"database ({_shown(settings.resolved_app_database_url)}); alerts queued there reach "
            "subscribers. --home DIR keeps live data untouched.",
            err=True,
        )

    def show(cycle: ReplayCycle, poll: PollReport) -> None:
        click.echo(f"{cycle.at:%Y-%m-%d %H:%M:%S} {poll.ingest.summary_line()}")
        for detection in poll.ingest.detections:
            click.echo(f"  » {detection.explanation}")

    try:
        summary = replay(
            list(paths), settings, rules, speed=pace, feed=feed, on_cycle=show if verbose else None
        )
    except (ReplayError, RecordingError, UnknownAgentError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(summary.as_dict()) if as_json else "\n".join(summary.lines()))
    if not summary.cycles:
        sys.exit(1)


def _shown(url: str) -> str:
    return sa.engine.make_url(url).render_as_string(hide_password=True)
