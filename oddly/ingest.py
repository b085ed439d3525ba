"""One ingestion run of one feed: fetch, parse, validate, diff against the last known prices,
append change-only ticks, quarantine what is bad, and log the run — the code the Dagster asset
and `oddly scan` both call. Given rules, the run then runs the fast detectors on its fresh ticks
(after they committed: a detector failure is reported, never costs a tick) and returns the
detections in its report."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa

from oddly.config import FeedConfig
from oddly.detect.detection import Detection
from oddly.detect.pipeline import detect_ingested
from oddly.detect.rules import Rules
from oddly.feeds.base import FeedError, FetchOutcome, ParseResult
from oddly.feeds.http import FeedHttpClient
from oddly.feeds.registry import agent_class
from oddly.model import PRICE_SCHEMA, Reject, now_utc
from oddly.validate import latest_per_selection, validate_batch
from oddly.warehouse.store import FeedRunRecord, Warehouse

log = logging.getLogger(__name__)


@dataclass
class IngestReport:
    """What one run did, in numbers for dashboards and in words for people."""

    feed: str
    bookmaker: str
    feed_run_id: str
    status: str  # "ok" | "partial" | "failed"
    started_at: datetime
    finished_at: datetime
    requests: int = 0
    prices_seen: int = 0
    ticks_written: int = 0
    rejected: int = 0
    unmapped: int = 0
    unmapped_codes: dict[str, int] = field(default_factory=dict)
    fetch_seconds: float = 0.0
    parse_seconds: float = 0.0
    write_seconds: float = 0.0
    http_outcome: str = ""
    error: str | None = None
    # The fast detectors' findings on this run's fresh ticks (when the run was given rules).
    detections: list[Detection] = field(default_factory=list)
    detect_seconds: float = 0.0
    detection_error: str | None = None
    # The agent's own facts about the fetch (`FetchOutcome.notes`), e.g. a request budget left.
    notes: dict[str, int | float | str] = field(default_factory=dict)

    def as_metadata(self) -> dict[str, int | float | str]:
        top = ", ".join(f"{code} ×{n}" for code, n in Counter(self.unmapped_codes).most_common(5))
        return {
            "feed": self.feed,
            "bookmaker": self.bookmaker,
            "feed_run_id": self.feed_run_id,
            "started_at": self.started_at.isoformat(),
            "status": self.status,
            "requests": self.requests,
            "prices_seen": self.prices_seen,
            "ticks_written": self.ticks_written,
            "rejected": self.rejected,
            "unmapped": self.unmapped,
            "unmapped_top": top or "none",
            "fetch_seconds": round(self.fetch_seconds, 3),
            "parse_seconds": round(self.parse_seconds, 3),
            "write_seconds": round(self.write_seconds, 3),
            "http_outcome": self.http_outcome,
            "error": self.error or "",
            "detections": len(self.detections),
            "detect_seconds": round(self.detect_seconds, 3),
            "detection_error": self.detection_error or "",
            **{f"agent_{key}": value for key, value in self.notes.items()},
        }

    def summary_line(self) -> str:
        line = (
            f"feed {self.feed}: {self.status}, {self.prices_seen} prices seen, {self.ticks_written} ticks "
            f"written, {self.rejected} rejected, {self.unmapped} unmapped"
        )
        return f"{line}; {self.error}" if self.error else line

    def to_record(self) -> FeedRunRecord:
        return FeedRunRecord(
            feed_run_id=self.feed_run_id,
            feed=self.feed,
            bookmaker=self.bookmaker,
            status=self.status,
            started_at=self.started_at,
            finished_at=self.finished_at,
            requests=self.requests,
            prices_seen=self.prices_seen,
            ticks_written=self.ticks_written,
            rejected=self.rejected,
            unmapped=self.unmapped,
            unmapped_codes=json.dumps(self.unmapped_codes, sort_keys=True),
            fetch_seconds=self.fetch_seconds,
            parse_seconds=self.parse_seconds,
            write_seconds=self.write_seconds,
            http_outcome=self.http_outcome,
            error=self.error,
        )


# Above this share of rejected records a run is "partial": the feed has likely changed shape.
REJECT_SHARE_ALARM = 0.10


def new_feed_run_id(feed: str) -> str:
    return f"{feed}-{now_utc():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


async def fetch_feed(feed: FeedConfig) -> FetchOutcome:
    """All requests of one cycle of one feed; raises FeedError when nothing came back."""
    agent = agent_class(feed.agent)(feed)
    async with FeedHttpClient(feed) as http:
        outcome = await agent.fetch(http)
        outcome.requests = max(outcome.requests, http.requests)
    return outcome


# What a run's rows pass through last before they are written (a replay leaves out what the
# warehouse already holds newer).
RowsFilter = Callable[[pa.Table], pa.Table]


def process_fetched(
    feed: FeedConfig,
    warehouse: Warehouse,
    report: IngestReport,
    outcome: FetchOutcome | BaseException,
    *,
    rules: Rules | None = None,
    clock: Callable[[], datetime] = now_utc,
    before_write: RowsFilter | None = None,
) -> IngestReport:
    """Parse, validate and write what a fetch returned (or log why it returned nothing); with
    `rules`, then run the fast detectors on the ticks written (see `oddly.detect.pipeline`).
    `clock` stamps the run's end (a replay passes the recorded time); `before_write` sees the
    validated rows last."""
    with gc_paused():
        return _process(feed, warehouse, report, outcome, rules, clock, before_write)


def process_parsed(
    feed: FeedConfig,
    warehouse: Warehouse,
    report: IngestReport,
    parsed: ParseResult,
    observed_at: datetime,
    *,
    problems: Sequence[str] = (),
    rules: Rules | None = None,
    clock: Callable[[], datetime] = now_utc,
    before_write: RowsFilter | None = None,
) -> IngestReport:
    """Validate and write rows already parsed (a replayed Betfair stream's updates), observed at
    `observed_at`, as `process_fetched` does after parsing; of several rows of one selection the
    last is kept. `problems` are the cycle's own, in words."""
    with gc_paused():
        return _ingest_parsed(
            feed,
            warehouse,
            report,
            parsed,
            observed_at,
            list(problems),
            several=True,
            started=time.perf_counter(),
            rules=rules,
            clock=clock,
            before_write=before_write,
        )


def _process(
    feed: FeedConfig,
    warehouse: Warehouse,
    report: IngestReport,
    outcome: FetchOutcome | BaseException,
    rules: Rules | None = None,
    clock: Callable[[], datetime] = now_utc,
    before_write: RowsFilter | None = None,
) -> IngestReport:
    if isinstance(outcome, BaseException):
        report.status = "failed"
        report.error = (
            f"feed {feed.name}: {_words(outcome)}; keeping last prices, "
            f"next try in {feed.interval_seconds:g} s"
        )
        report.http_outcome = _words(outcome)
        return _finish(warehouse, report, clock=clock)

    report.requests = outcome.requests
    report.http_outcome = _http_outcome(outcome)
    report.notes = dict(outcome.notes)
    t0 = time.perf_counter()
    agent = agent_class(feed.agent)(feed)
    parsed = ParseResult()
    unreadable: list[str] = []
    for payload in outcome.payloads:
        one = agent.parse(payload)
        if one.rejects and not len(one.rows):
            # Nothing usable in the whole payload: a feed problem, not just a bad record.
            unreadable.append(f"{payload.kind or 'response'} unreadable ({one.rejects[0].reason})")
        parsed.extend(one)
    observed_at = max((p.received_at for p in outcome.payloads), default=report.started_at)
    return _ingest_parsed(
        feed,
        warehouse,
        report,
        parsed,
        observed_at,
        outcome.errors + unreadable,
        several=len(outcome.payloads) > 1,
        started=t0,
        rules=rules,
        clock=clock,
        before_write=before_write,
    )


def _ingest_parsed(
    feed: FeedConfig,
    warehouse: Warehouse,
    report: IngestReport,
    parsed: ParseResult,
    observed_at: datetime,
    problems: list[str],
    *,
    several: bool,
    started: float,
    rules: Rules | None,
    clock: Callable[[], datetime],
    before_write: RowsFilter | None,
) -> IngestReport:
    for reject in parsed.rejects:
        reject.bookmaker = reject.bookmaker or feed.bookmaker
    report.prices_seen = len(parsed.rows)
    report.unmapped = sum(parsed.unmapped.values())
    report.unmapped_codes = dict(parsed.unmapped)
    validated = validate_batch(parsed.rows.to_table(observed_at, report.feed_run_id), parsed.rows)
    if several:
        validated.table = latest_per_selection(validated.table)
    rejects = parsed.rejects + validated.rejects
    report.rejected = len(rejects)
    report.parse_seconds = time.perf_counter() - started

    records = report.prices_seen + len(parsed.rejects)
    if not problems and rejects and len(rejects) > REJECT_SHARE_ALARM * records:
        top = Counter(_reason_kind(r.reason) for r in rejects).most_common(3)
        reasons = ", ".join(f"{reason!r} ×{n}" for reason, n in top)
        problems.append(
            f"{len(rejects) / records:.0%} of records rejected ({reasons}); schema drift? see raw.quarantine"
        )
    if problems:
        report.status = "failed" if validated.table.num_rows == 0 else "partial"
        shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
        tail = "keeping last prices" if report.status == "failed" else "the rest was ingested"
        report.error = f"feed {feed.name}: {shown}; {tail}"
    table = validated.table if before_write is None else before_write(validated.table)
    return _finish(warehouse, report, table, rejects, rules, clock)


@contextmanager
def gc_paused() -> Iterator[None]:
    """An ingestion cycle builds hundreds of thousands of short-lived acyclic objects; the
    cyclic GC passes they trigger are pure overhead (a third of the parse time, and the long
    tail of cycle times). What little garbage there is gets collected afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
            gc.collect(0)


def _reason_kind(reason: str) -> str:
    """A reason without its particular value, so counts group alike rejects ("price 0 …" → "price …")."""
    return reason.split(" ", 1)[0] + " …" if reason.startswith("price ") else reason


def _finish(
    warehouse: Warehouse,
    report: IngestReport,
    table: pa.Table | None = None,
    rejects: list[Reject] | None = None,
    rules: Rules | None = None,
    clock: Callable[[], datetime] = now_utc,
) -> IngestReport:
    report.finished_at = clock()
    record = report.to_record()
    rows = PRICE_SCHEMA.empty_table() if table is None else table
    if rules is None:
        report.ticks_written = warehouse.write_run(rows, rejects or [], record)
    else:
        ticks = warehouse.write_run_ticks(rows, rejects or [], record)
        report.ticks_written = ticks.num_rows
        _detect(warehouse, report, ticks, rules)
    report.write_seconds = record.write_seconds
    return report


def _detect(warehouse: Warehouse, report: IngestReport, ticks: pa.Table, rules: Rules) -> None:
    """The fast detectors on ticks already committed. Any failure of theirs is the report's
    `detection_error`: the run itself (and its ticks) stands."""
    t0 = time.perf_counter()
    try:
        report.detections = detect_ingested(warehouse, ticks, rules)
    except Exception as exc:  # a detector bug or a lost warehouse must not fail a committed run
        log.exception("detectors failed on feed run %s", report.feed_run_id)
        report.detection_error = (
            f"feed {report.feed}: detectors failed ({_words(exc)}); the run's {ticks.num_rows} ticks "
            "are committed, its detections are lost"
        )
    report.detect_seconds = time.perf_counter() - t0


def _http_outcome(outcome: FetchOutcome) -> str:
    statuses = Counter(p.status for p in outcome.payloads)
    ok = ", ".join(f"{n}× HTTP {s}" for s, n in sorted(statuses.items()))
    failed = f", {len(outcome.errors)} failed" if outcome.errors else ""
    return f"{outcome.requests} requests: {ok or 'none answered'}{failed}"


def _words(exc: BaseException) -> str:
    if isinstance(exc, FeedError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def start_report(
    feed: FeedConfig, feed_run_id: str | None = None, *, started_at: datetime | None = None
) -> IngestReport:
    now = started_at or now_utc()
    return IngestReport(
        feed=feed.name,
        bookmaker=feed.bookmaker,
        feed_run_id=feed_run_id or new_feed_run_id(feed.name),
        status="ok",
        started_at=now,
        finished_at=now,
    )


async def _timed_fetch(feed: FeedConfig, report: IngestReport) -> FetchOutcome | BaseException:
    t0 = time.perf_counter()
    try:
        return await fetch_feed(feed)
    except (FeedError, OSError, ValueError) as exc:
        return exc
    finally:
        report.fetch_seconds = time.perf_counter() - t0


def ingest_feed(
    feed: FeedConfig, warehouse: Warehouse, *, feed_run_id: str | None = None, rules: Rules | None = None
) -> IngestReport:
    """One run of one feed. Never raises for feed problems: a failed fetch is logged and returned
    as status "failed" with the reason; only a warehouse failure propagates (nothing is written).
    With `rules`, the report carries the fast detectors' findings on the run's ticks."""
    report = start_report(feed, feed_run_id)
    return process_fetched(feed, warehouse, report, fetch_timed(feed, report), rules=rules)


def fetch_timed(feed: FeedConfig, report: IngestReport) -> FetchOutcome | BaseException:
    """Fetch `feed` once, the time it took in `report`; a feed problem is returned, not raised."""
    return asyncio.run(_timed_fetch(feed, report))


def ingest_feeds(
    feeds: Iterable[FeedConfig], warehouse: Warehouse, *, rules: Rules | None = None
) -> list[IngestReport]:
    """One cycle of several feeds: fetched concurrently, written one after another."""
    feeds = list(feeds)
    reports = [start_report(feed) for feed in feeds]

    async def fetch_all() -> list[FetchOutcome | BaseException]:
        return await asyncio.gather(*(_timed_fetch(f, r) for f, r in zip(feeds, reports, strict=True)))

    outcomes = asyncio.run(fetch_all())
    return [
        process_fetched(feed, warehouse, report, outcome, rules=rules)
        for feed, report, outcome in zip(feeds, reports, outcomes, strict=True)
    ]
