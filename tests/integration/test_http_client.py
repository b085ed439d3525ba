"""The shared feed HTTP client against a real scripted server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from oddly.config import FeedConfig, HttpPolicy
from oddly.feeds.http import FeedHttpClient, FetchFailedError, redact, retry_after_seconds
from oddly.ports import free_port


@dataclass
class Script:
    """Answers in order (the last repeats); records arrival times and the peak of requests in flight."""

    answers: list[Callable[[], web.Response]] = field(default_factory=list)
    delay: float = 0.0
    arrivals: list[float] = field(default_factory=list)
    in_flight: int = 0
    peak: int = 0


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, Script]]:
    script = Script()

    async def handle(request: web.Request) -> web.Response:
        script.arrivals.append(time.monotonic())
        script.in_flight += 1
        script.peak = max(script.peak, script.in_flight)
        try:
            if script.delay:
                await asyncio.sleep(script.delay)
            index = min(len(script.arrivals) - 1, len(script.answers) - 1)
            return script.answers[index]()
        finally:
            script.in_flight -= 1

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", script
    await runner.cleanup()


def ok() -> web.Response:
    return web.json_response({"Success": True, "Value": []})


def status(code: int, **headers: str) -> Callable[[], web.Response]:
    return lambda: web.Response(status=code, text="nope", headers=headers)


def client(base: str, **policy: float) -> FeedHttpClient:
    settings = {
        "retries": 3,
        "backoff_seconds": 0.01,
        "backoff_max_seconds": 0.02,
        "requests_per_second": 500,
        "timeout_seconds": 2,
        **policy,
    }
    feed = FeedConfig(name="t", agent="linefeed", bookmaker="b", base_url=base, http=HttpPolicy(**settings))
    return FeedHttpClient(feed)


async def test_server_errors_are_retried_until_success(server: tuple[str, Script]) -> None:
    base, script = server
    script.answers = [status(503), status(502), ok]
    async with client(base) as http:
        payload = await http.get(f"{base}/LineFeed/Get1x2_VZip", {"count": 10}, kind="prematch")
    assert payload.status == 200 and payload.kind == "prematch"
    assert payload.url.endswith("/LineFeed/Get1x2_VZip?count=10")
    assert len(script.arrivals) == 3 and http.requests == 3


async def test_a_server_error_for_good_names_status_and_tries(server: tuple[str, Script]) -> None:
    base, script = server
    script.answers = [status(500)]
    async with client(base, retries=2) as http:
        with pytest.raises(FetchFailedError, match=r"HTTP 500 after 3 tries"):
            await http.get(f"{base}/x")
    assert len(script.arrivals) == 3


async def test_429_waits_as_long_as_retry_after_says(server: tuple[str, Script]) -> None:
    base, script = server
    script.answers = [status(429, **{"Retry-After": "1"}), ok]
    async with client(base) as http:
        await http.get(f"{base}/x")
    assert script.arrivals[1] - script.arrivals[0] >= 0.95


async def test_429_asking_too_long_gives_up_at_once(server: tuple[str, Script]) -> None:
    base, script = server
    script.answers = [status(429, **{"Retry-After": "3600"})]
    async with client(base, max_retry_after_seconds=5) as http:
        with pytest.raises(FetchFailedError, match="asks to wait 3600 s"):
            await http.get(f"{base}/x")
    assert len(script.arrivals) == 1


async def test_timeouts_are_retried_then_reported(server: tuple[str, Script]) -> None:
    base, script = server
    script.answers, script.delay = [ok], 1.0
    async with client(base, timeout_seconds=0.2, retries=1) as http:
        with pytest.raises(FetchFailedError, match=r"timed out after 0.2 s after 2 tries"):
            await http.get(f"{base}/x")
    assert len(script.arrivals) == 2


async def test_client_errors_are_not_retried(server: tuple[str, Script]) -> None:
    base, script = server
    script.answers = [status(404)]
    async with client(base) as http:
        with pytest.raises(FetchFailedError, match=r"HTTP 404 \(not retried\)"):
            await http.get(f"{base}/x")
    assert len(script.arrivals) == 1


async def test_connection_refused_is_said_in_words() -> None:
    base = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    async with client(base, retries=1) as http:
        with pytest.raises(
            FetchFailedError, match=r"connection refused \(is the bookmaker reachable\?\) after 2 tries"
        ):
            await http.get(f"{base}/x")


async def test_rate_limit_spaces_requests(server: tuple[str, Script]) -> None:
    base, script = server
    script.answers = [ok]
    async with client(base, requests_per_second=10, max_concurrency=8) as http:
        started = time.monotonic()
        await asyncio.gather(*(http.get(f"{base}/x") for _ in range(6)))
    # six starts at 10 per second: the last cannot start before 0.5 s (arrivals may bunch later
    # on a busy machine, so the bound is on when the last one got out, not on the gaps)
    assert script.arrivals[-1] - started >= 0.5
    assert len(script.arrivals) == 6


async def test_concurrency_is_bounded(server: tuple[str, Script]) -> None:
    base, script = server
    script.answers, script.delay = [ok], 0.5
    async with client(base, max_concurrency=2) as http:
        await asyncio.gather(*(http.get(f"{base}/x") for _ in range(6)))
    assert script.peak == 2


def test_retry_after_forms_and_redaction() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Sun, 22 Nov 2026 12:00:30 GMT", now) == 30.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None
    assert (
        redact("https://api.x/v4/odds?apiKey=s3cret&regions=eu")
        == "https://api.x/v4/odds?apiKey=***&regions=eu"
    )
