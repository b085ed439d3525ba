"""Feeds that poll a running simulator, one per simulated book, for tests that ingest real cycles."""

from __future__ import annotations

from oddly.config import FeedConfig, HttpPolicy
from oddly.simulator.config import DEFAULT_BOOKS
from oddly.simulator.server import RunningSimulator

FAST = HttpPolicy(retries=1, backoff_seconds=0.01, timeout_seconds=5, requests_per_second=100)


def simulator_feeds(sim: RunningSimulator) -> list[FeedConfig]:
    """Every simulated book as a feed, pre-match and live, with fast test retries."""
    return [
        FeedConfig(
            name=f"sim_{book.name}",
            agent="linefeed",
            bookmaker=book.name,
            base_url=f"{sim.url}/{book.name}",
            http=FAST,
            options={"prematch": True, "live": True},
        )
        for book in DEFAULT_BOOKS
    ]
