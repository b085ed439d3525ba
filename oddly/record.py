"""`oddly record FEED --to DIR`: poll a configured feed with its own agent through the shared HTTP
client, at the feed's interval, and keep every response body verbatim with when and how it came,
so `oddly replay` can feed the same cycles through ingestion, detectors and alerts later.

A recording is a directory:

    DIR/manifest.jsonl            one JSON object a line, appended and flushed as things happen
    DIR/payloads/<cycle>-<n>-<kind>.json   each response body exactly as received

Manifest lines (`type`):

- `recording`: a recording session began (a restarted recording appends another): the format
  name and version, the feed's settings without secrets, the agent, the oddly version.
- `payload`: one response of a cycle: its file, the request URL (API keys shown as `***`), the
  request kind, the HTTP status, `received_at` (UTC), its size and SHA-256 (so a replay can tell a
  truncated file from a truncated answer) and its response headers (cookies left out).
- `cycle`: the cycle ended: when it started and finished, requests made, the requests that
  failed in words (`errors`), or why nothing at all came back (`error`), and the agent's notes.
  A cycle's payload lines come before its cycle line, so a missing cycle line means the recorder
  stopped in the middle of that cycle.

Crash safety: a payload file is written under a temporary name, synced and renamed, and only then
listed; a manifest line is written whole and synced. A recording restarted in the same directory
continues after the last cycle it finds. Secrets never reach the directory: URLs are redacted by
the HTTP client (and again here), secret-looking option values and cookies are left out.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

import click
import orjson

from oddly.config import ConfigError, FeedConfig, get_settings
from oddly.feeds.base import FeedError, FetchOutcome, Payload
from oddly.feeds.http import redact
from oddly.feeds.registry import UnknownAgentError, agent_class
from oddly.ingest import fetch_feed
from oddly.model import now_utc, utc

FORMAT = "oddly-recording"
FORMAT_VERSION = 1
MANIFEST = "manifest.jsonl"
PAYLOADS = "payloads"
LOCK = ".recording.lock"
# Option names whose values are secrets (a variable *naming* a secret, `…_env`, is not one).
_SECRET_NAME = re.compile(r"(?i)(api_?key|apikey|token|secret|password|passwd|credential|cookie|auth)")
# Response headers never written: what a server hands one client to identify it.
_PRIVATE_HEADERS = frozenset({"set-cookie", "set-cookie2", "cookie", "authorization", "proxy-authorization"})


class RecordingError(Exception):
    """A recording cannot be made or read; the message says why and what to do."""


# --- what goes into the manifest -----------------------------------------------------------------


def public_settings(feed: FeedConfig) -> dict[str, Any]:
    """The feed's settings as the manifest keeps them: no credentials in the base URL, secret-looking
    option values hidden."""
    data = feed.model_dump(mode="json")
    data["base_url"] = _without_userinfo(data["base_url"])
    data["options"] = _scrub(data["options"])
    return data


def _scrub(value: Any, name: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _scrub(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, name) for v in value]
    if name and _SECRET_NAME.search(name) and not name.lower().endswith("_env") and value is not None:
        return "***"
    return redact(value) if isinstance(value, str) else value


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return redact(url)
    return redact(urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1])))


def public_headers(meta: dict[str, Any]) -> dict[str, str]:
    headers = meta.get("headers") or {}
    return {str(k): redact(str(v)) for k, v in headers.items() if str(k).lower() not in _PRIVATE_HEADERS}


def _slug(kind: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", kind.lower()).strip("-")[:40] or "response"


def _time(value: datetime) -> str:
    return utc(value).isoformat()


def _oddly_version() -> str:
    try:
        return version("oddly-odds")
    except PackageNotFoundError:
        return "unknown"


# --- writing -------------------------------------------------------------------------------------


@dataclass
class CycleWritten:
    """One recorded cycle, as the recorder reports it."""

    cycle: int
    started_at: datetime
    finished_at: datetime
    payloads: int
    bytes: int
    statuses: dict[int, int]
    errors: list[str]
    error: str | None

    def describe(self) -> str:
        when = f"cycle {self.cycle} at {self.started_at:%Y-%m-%d %H:%M:%S} UTC"
        if self.error is not None:
            return f"{when}: nothing fetched ({self.error})"
        answered = ", ".join(f"{n}× HTTP {s}" for s, n in sorted(self.statuses.items())) or "no answer"
        failed = f"; {len(self.errors)} failed ({self.errors[0]})" if self.errors else ""
        seconds = (self.finished_at - self.started_at).total_seconds()
        return (
            f"{when}: {self.payloads} payloads ({answered}), {self.bytes:,} bytes in {seconds:.2f} s{failed}"
        )


class RecordingWriter:
    """Appends cycles to a recording directory; one writer per directory (a lock file says so)."""

    def __init__(self, directory: Path, feed: FeedConfig) -> None:
        self.directory = directory
        self.feed = feed
        self.next_cycle = 1
        self._manifest: IO[bytes] | None = None
        self._lock: IO[str] | None = None

    def __enter__(self) -> RecordingWriter:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        cls = agent_class(self.feed.agent)  # an agent this installation lacks: said before anything
        (self.directory / PAYLOADS).mkdir(parents=True, exist_ok=True)
        self._lock = open(self.directory / LOCK, "w")  # noqa: SIM115 - released in close()
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            self._lock = None
            raise RecordingError(
                f"{self.directory} is being recorded into by another process; stop it or choose another "
                "directory"
            ) from None
        try:
            self._continue(self.directory / MANIFEST)
        except BaseException:
            self.close()
            raise
        self._append(
            {
                "type": "recording",
                "format": FORMAT,
                "version": FORMAT_VERSION,
                "started_at": _time(now_utc()),
                "first_cycle": self.next_cycle,
                "feed": public_settings(self.feed),
                "agent": self.feed.agent,
                "agent_class": f"{cls.__module__}:{cls.__qualname__}",
                "oddly_version": _oddly_version(),
            }
        )

    def _continue(self, manifest: Path) -> None:
        """Open the manifest for appending, after the cycles a recording already there holds."""
        if manifest.exists():
            existing = read_recording(self.directory)
            others = sorted({s.feed_name for s in existing.sessions} - {self.feed.name})
            if others:
                raise RecordingError(
                    f"{self.directory} holds a recording of feed {', '.join(others)}; record feed "
                    f"{self.feed.name} into another directory"
                )
            self.next_cycle = max(existing.last_cycle, _last_payload_cycle(self.directory)) + 1
            _end_torn_line(manifest)
        self._manifest = open(manifest, "ab")  # noqa: SIM115 - closed in close()

    def close(self) -> None:
        if self._manifest is not None:
            self._manifest.close()
            self._manifest = None
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    def write_cycle(
        self, started_at: datetime, finished_at: datetime, outcome: FetchOutcome | BaseException
    ) -> CycleWritten:
        """Write one cycle: its payload files and lines, then its cycle line."""
        cycle = self.next_cycle
        self.next_cycle += 1
        payloads = outcome.payloads if isinstance(outcome, FetchOutcome) else []
        for index, payload in enumerate(payloads, start=1):
            self._write_payload(cycle, index, payload)
        error = None if isinstance(outcome, FetchOutcome) else redact(_words(outcome))
        errors = [redact(e) for e in outcome.errors] if isinstance(outcome, FetchOutcome) else []
        self._append(
            {
                "type": "cycle",
                "cycle": cycle,
                "started_at": _time(started_at),
                "finished_at": _time(finished_at),
                "requests": outcome.requests if isinstance(outcome, FetchOutcome) else 0,
                "payloads": len(payloads),
                "errors": errors,
                "error": error,
                "notes": dict(outcome.notes) if isinstance(outcome, FetchOutcome) else {},
            }
        )
        statuses: dict[int, int] = {}
        for p in payloads:
            statuses[p.status] = statuses.get(p.status, 0) + 1
        return CycleWritten(
            cycle,
            started_at,
            finished_at,
            len(payloads),
            sum(len(p.body) for p in payloads),
            statuses,
            errors,
            error,
        )

    def _write_payload(self, cycle: int, index: int, payload: Payload) -> None:
        name = f"{PAYLOADS}/{cycle:06d}-{index:02d}-{_slug(payload.kind)}.json"
        target = self.directory / name
        temporary = target.with_name(target.name + ".tmp")
        with open(temporary, "wb") as out:
            out.write(payload.body)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
        self._append(
            {
                "type": "payload",
                "cycle": cycle,
                "index": index,
                "file": name,
                "url": redact(payload.url),
                "kind": payload.kind,
                "status": payload.status,
                "received_at": _time(payload.received_at),
                "bytes": len(payload.body),
                "sha256": hashlib.sha256(payload.body).hexdigest(),
                "headers": public_headers(payload.meta),
            }
        )

    def _append(self, line: dict[str, Any]) -> None:
        if self._manifest is None:
            raise RecordingError(f"recording {self.directory} is not open")
        self._manifest.write(orjson.dumps(line) + b"\n")
        self._manifest.flush()
        os.fsync(self._manifest.fileno())


def _last_payload_cycle(directory: Path) -> int:
    """The highest cycle number among the payload files (one may be there unlisted after a crash)."""
    numbers = [int(p.name[:6]) for p in (directory / PAYLOADS).glob("*.json*") if p.name[:6].isdigit()]
    return max(numbers, default=0)


def _end_torn_line(manifest: Path) -> None:
    """After a crash mid-line, start the next line on a line of its own (the torn one is reported
    by the reader, and nothing after it is lost)."""
    with open(manifest, "rb+") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() == 0:
            return
        f.seek(-1, os.SEEK_END)
        if f.read(1) != b"\n":
            f.write(b"\n")


def _words(exc: BaseException) -> str:
    if isinstance(exc, FeedError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def _fetch(feed: FeedConfig) -> FetchOutcome | BaseException:
    try:
        return await fetch_feed(feed)
    except (FeedError, OSError, ValueError) as exc:  # what a live poll logs as a failed run
        return exc


@dataclass
class RecordSummary:
    directory: Path
    cycles: list[CycleWritten] = field(default_factory=list)

    def describe(self) -> str:
        if not self.cycles:
            return f"nothing recorded into {self.directory}"
        failed = sum(1 for c in self.cycles if c.error is not None)
        payloads = sum(c.payloads for c in self.cycles)
        size = sum(c.bytes for c in self.cycles)
        first, last = self.cycles[0], self.cycles[-1]
        return (
            f"recorded cycles {first.cycle}–{last.cycle} into {self.directory}: {payloads} payloads, "
            f"{size:,} bytes, {failed} cycle(s) with nothing fetched; replay with "
            f"`oddly replay {self.directory} --home DIR`"
        )


def record(
    feed: FeedConfig,
    directory: Path,
    *,
    cycles: int | None = None,
    duration: float | None = None,
    interval: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
    on_cycle: Callable[[CycleWritten], None] | None = None,
) -> RecordSummary:
    """Record `feed` every `interval` (its own interval by default) until `cycles` cycles are
    recorded or `duration` seconds have passed (no new cycle starts after it), or forever."""
    every = interval if interval is not None else feed.interval_seconds
    summary = RecordSummary(directory)
    with RecordingWriter(directory, feed) as writer:
        began = monotonic()
        due = began
        while cycles is None or len(summary.cycles) < cycles:
            if duration is not None and due - began >= duration:
                break
            delay = due - monotonic()
            if delay > 0:
                sleep(delay)
            cycle_began = monotonic()
            started = now_utc()
            outcome = asyncio.run(_fetch(feed))
            written = writer.write_cycle(started, now_utc(), outcome)
            summary.cycles.append(written)
            if on_cycle is not None:
                on_cycle(written)
            due = cycle_began + every
    return summary


# --- reading -------------------------------------------------------------------------------------


@dataclass
class Session:
    """One `recording` line: the feed's settings and agent the cycles after it were recorded with."""

    feed: dict[str, Any]
    agent: str
    started_at: str

    @property
    def feed_name(self) -> str:
        return str(self.feed.get("name", "?"))


@dataclass
class RecordedPayload:
    cycle: int
    index: int
    file: str
    url: str
    kind: str
    status: int
    received_at: datetime
    bytes: int
    sha256: str
    headers: dict[str, str]


@dataclass
class RecordedCycle:
    cycle: int
    session: int
    payloads: list[RecordedPayload] = field(default_factory=list)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    requests: int = 0
    listed_payloads: int | None = None  # as the cycle line counts them
    errors: list[str] = field(default_factory=list)
    error: str | None = None
    notes: dict[str, Any] = field(default_factory=dict)
    ended: bool = False  # its cycle line was written

    @property
    def began(self) -> datetime | None:
        """When the cycle began: recorded, or (a cycle the recorder did not finish) its first answer."""
        if self.started_at is not None:
            return self.started_at
        return min((p.received_at for p in self.payloads), default=None)


@dataclass
class Recording:
    directory: Path
    sessions: list[Session] = field(default_factory=list)
    cycles: list[RecordedCycle] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def last_cycle(self) -> int:
        return max((c.cycle for c in self.cycles), default=0)

    def load(self, payload: RecordedPayload) -> tuple[bytes | None, str | None]:
        """A payload's body, or why it cannot be trusted (missing, or not what was received)."""
        path = self.directory / payload.file
        try:
            body = path.read_bytes()
        except OSError as exc:
            return None, f"payload file {payload.file} is missing or unreadable ({exc.strerror or exc})"
        if len(body) != payload.bytes:
            return None, (
                f"payload file {payload.file} holds {len(body):,} bytes but {payload.bytes:,} were "
                "received (truncated or overwritten after recording)"
            )
        if hashlib.sha256(body).hexdigest() != payload.sha256:
            return None, f"payload file {payload.file} differs from what was received (checksum mismatch)"
        return body, None


def is_recording(path: Path) -> bool:
    return path.is_dir() and (path / MANIFEST).is_file()


def read_recording(directory: Path) -> Recording:
    """A recording's manifest: its sessions and cycles, every line that cannot be read a problem in
    words (a torn last line, a line of a newer format); never raises for its content."""
    recording = Recording(directory)
    cycles: dict[int, RecordedCycle] = {}
    skipping = False  # inside a session of a format this version cannot read
    try:
        lines = (directory / MANIFEST).read_bytes().split(b"\n")
    except OSError as exc:
        raise RecordingError(f"{directory / MANIFEST} cannot be read: {exc.strerror or exc}") from None
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        where = f"{MANIFEST} line {number}"
        try:
            line = orjson.loads(raw)
            kind = line["type"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            recording.problems.append(f"{where} is not a whole manifest line (torn write?); skipped")
            continue
        try:
            if kind == "recording":
                skipping = _session_problem(line, where, recording)
                if not skipping:
                    recording.sessions.append(
                        Session(dict(line["feed"]), str(line["agent"]), line["started_at"])
                    )
            elif skipping:
                continue
            elif not recording.sessions:
                recording.problems.append(f"{where} comes before any recording line; skipped")
            elif kind == "payload":
                cycle = _cycle(cycles, int(line["cycle"]), len(recording.sessions) - 1)
                cycle.payloads.append(
                    RecordedPayload(
                        cycle=cycle.cycle,
                        index=int(line["index"]),
                        file=str(line["file"]),
                        url=str(line["url"]),
                        kind=str(line.get("kind", "")),
                        status=int(line["status"]),
                        received_at=_parse_time(line["received_at"]),
                        bytes=int(line["bytes"]),
                        sha256=str(line["sha256"]),
                        headers=dict(line.get("headers") or {}),
                    )
                )
            elif kind == "cycle":
                cycle = _cycle(cycles, int(line["cycle"]), len(recording.sessions) - 1)
                cycle.started_at = _parse_time(line["started_at"])
                cycle.finished_at = _parse_time(line["finished_at"])
                cycle.requests = int(line.get("requests", 0))
                cycle.listed_payloads = int(line.get("payloads", 0))
                cycle.errors = [str(e) for e in line.get("errors") or []]
                cycle.error = line.get("error")
                cycle.notes = dict(line.get("notes") or {})
                cycle.ended = True
            else:
                recording.problems.append(f"{where}: unknown line type {kind!r}; skipped")
        except (KeyError, TypeError, ValueError) as exc:
            recording.problems.append(f"{where} ({kind}) lacks or mangles a field ({exc}); skipped")
    recording.cycles = sorted(cycles.values(), key=lambda c: c.cycle)
    return recording


def _session_problem(line: dict[str, Any], where: str, recording: Recording) -> bool:
    """True (and a problem noted) when the session that begins here cannot be read."""
    if line.get("format") != FORMAT:
        recording.problems.append(f"{where}: not an oddly recording (format {line.get('format')!r})")
        return True
    if int(line.get("version", 0)) > FORMAT_VERSION:
        recording.problems.append(
            f"{where}: recorded in format version {line['version']}, this oddly reads up to "
            f"{FORMAT_VERSION}; its cycles are skipped (upgrade oddly to replay them)"
        )
        return True
    return False


def _cycle(cycles: dict[int, RecordedCycle], number: int, session: int) -> RecordedCycle:
    if number not in cycles:
        cycles[number] = RecordedCycle(number, session)
    return cycles[number]


def _parse_time(value: Any) -> datetime:
    return utc(datetime.fromisoformat(str(value)))


# --- the command ---------------------------------------------------------------------------------


@contextmanager
def _words_for_errors() -> Iterator[None]:
    try:
        yield
    except (RecordingError, ConfigError, UnknownAgentError) as exc:
        raise click.ClickException(str(exc)) from exc


@click.command("record")
@click.argument("feed_name", metavar="FEED")
@click.option(
    "--to",
    "directory",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Recording directory (created; a recording there of the same feed is continued).",
)
@click.option("--cycles", type=click.IntRange(min=1), help="Stop after this many cycles.")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), help="Stop after this many seconds.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds between cycles (default: the feed's interval_seconds).",
)
def record_command(
    feed_name: str, directory: Path, cycles: int | None, duration: float | None, interval: float | None
) -> None:
    """Poll the configured FEED and save every raw response with its timestamps into a directory,
    for `oddly replay`.

    Each cycle requests what a live poll requests (the feed's agent, rate limit and retries), at the
    feed's interval, until --cycles or --duration is reached or Ctrl-C. Failed requests are kept too,
    in words, so a replay shows the same gaps. API keys never reach the directory.
    """
    if cycles is not None and duration is not None:
        raise click.UsageError("give --cycles or --duration, not both")
    written: list[CycleWritten] = []

    def show(cycle: CycleWritten) -> None:
        written.append(cycle)
        click.echo(cycle.describe())

    with _words_for_errors():
        feed = get_settings().config.feed(feed_name)
        try:
            record(feed, directory, cycles=cycles, duration=duration, interval=interval, on_cycle=show)
        except KeyboardInterrupt:
            click.echo("stopped (Ctrl-C); every cycle listed above is complete in the recording")
    click.echo(RecordSummary(directory, written).describe())
