"""The HTTP client every feed agent shares: timeouts, bounded concurrency, a per-feed rate limit,
retries with exponential backoff and full jitter on 5xx / timeouts / connection errors, and
`Retry-After` honoured on 429."""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any

import httpx

from oddly.config import FeedConfig, HttpPolicy
from oddly.feeds.base import FeedError, Payload

_SECRET_PARAM = re.compile(r"(?i)((?:api_?key|apikey|token|secret|password)=)[^&]+")


class FetchFailedError(FeedError):
    """One request failed for good (after its retries); `status` is the last HTTP status, if any."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def redact(url: str) -> str:
    """The URL with secret-looking query values hidden, for messages and logs."""
    return _SECRET_PARAM.sub(r"\1***", url)


class _RedactSecrets(logging.Filter):
    """httpx logs every request's full URL at INFO; an API key in the query must not reach a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).addFilter(_RedactSecrets())


class RateLimiter:
    """At most `rate` request starts per second, spaced evenly (a bucket of one token)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / rate
        self._clock = clock
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            now = self._clock()
            delay = self._next - now
            self._next = max(now, self._next) + self.interval
        if delay > 0:
            await asyncio.sleep(delay)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds: either a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class FeedHttpClient:
    """One per feed and cycle: `async with FeedHttpClient(feed) as http: await http.get(url)`."""

    def __init__(
        self,
        feed: FeedConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.feed = feed
        self.policy: HttpPolicy = feed.http
        self.requests = 0
        self._sleep = sleep
        self._semaphore = asyncio.Semaphore(self.policy.max_concurrency)
        self._limiter = RateLimiter(self.policy.requests_per_second)
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.policy.timeout_seconds, connect=self.policy.connect_timeout_seconds),
            limits=httpx.Limits(max_connections=self.policy.max_concurrency),
            headers={"User-Agent": self.policy.user_agent, "Accept": "application/json"},
            transport=transport,
            follow_redirects=True,
        )

    async def __aenter__(self) -> FeedHttpClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._client.aclose()

    def _backoff(self, attempt: int) -> float:
        cap = min(self.policy.backoff_max_seconds, self.policy.backoff_seconds * 2**attempt)
        return random.uniform(0, cap)  # full jitter: retries from many feeds do not line up

    async def get(self, url: str, params: dict[str, Any] | None = None, *, kind: str = "") -> Payload:
        """GET with the feed's policy; raises FetchFailedError with what happened in words."""
        tries = self.policy.retries + 1
        shown = redact(str(httpx.URL(url, params=params)))
        last = ""
        for attempt in range(tries):
            async with self._semaphore:
                await self._limiter.wait()
                self.requests += 1
                try:
                    response = await self._client.get(url, params=params)
                except httpx.TimeoutException:
                    last = f"timed out after {self.policy.timeout_seconds:g} s"
                    response = None
                except httpx.ConnectError as exc:
                    last = _connect_words(exc)
                    response = None
                except httpx.TransportError as exc:
                    last = redact(f"{type(exc).__name__}: {exc}") if str(exc) else type(exc).__name__
                    response = None
            if response is not None:
                if response.status_code < 400:
                    return Payload(
                        url=shown,
                        body=response.content,
                        received_at=datetime.now(UTC),
                        status=response.status_code,
                        kind=kind,
                        # some APIs report a request budget in headers (The Odds API)
                        meta={"headers": dict(response.headers)},
                    )
                last = f"HTTP {response.status_code}"
                if response.status_code == 429:
                    wait = retry_after_seconds(response.headers.get("Retry-After"))
                    if wait is not None and wait > self.policy.max_retry_after_seconds:
                        raise FetchFailedError(
                            f"GET {shown}: HTTP 429, the server asks to wait {wait:.0f} s "
                            f"(more than the {self.policy.max_retry_after_seconds:g} s allowed)",
                            429,
                        )
                    if attempt + 1 < tries:
                        await self._sleep(wait if wait is not None else self._backoff(attempt))
                    continue
                if response.status_code < 500:
                    raise FetchFailedError(
                        f"GET {shown}: HTTP {response.status_code} (not retried)", response.status_code
                    )
            if attempt + 1 < tries:
                await self._sleep(self._backoff(attempt))
        plural = "try" if tries == 1 else "tries"
        status = response.status_code if response is not None else None
        raise FetchFailedError(f"GET {shown}: {last} after {tries} {plural}", status)


def _connect_words(exc: httpx.ConnectError) -> str:
    cause: BaseException | None = exc
    while cause is not None:  # httpx hides the OS error behind "All connection attempts failed"
        if isinstance(cause, ConnectionRefusedError) or "refused" in str(cause).lower():
            return "connection refused (is the bookmaker reachable?)"
        cause = cause.__cause__ or cause.__context__
    return f"cannot connect: {exc or type(exc).__name__}"
