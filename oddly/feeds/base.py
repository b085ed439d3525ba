"""What a feed agent is: it fetches raw payloads over HTTP and parses them into canonical rows.

Fetching and parsing are separate so a recorded payload can be parsed again later (replay), and
so the parser can be tested on real recordings without a network.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from oddly.model import PriceColumns, Reject

if TYPE_CHECKING:
    from oddly.config import FeedConfig
    from oddly.feeds.http import FeedHttpClient


class FeedError(Exception):
    """A feed could not deliver: the message says what happened and what happens next."""


@dataclass
class Payload:
    """One raw HTTP response body as received, with where and when it came from."""

    url: str
    body: bytes
    received_at: datetime
    status: int = 200
    # What the agent asked for (e.g. "prematch", "live", "game"), so parse knows the context.
    kind: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class FetchOutcome:
    """What one fetch cycle got: the payloads, and the requests that failed (in words)."""

    payloads: list[Payload] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: int = 0
    # Facts only this agent knows (a request budget left, say), carried into the run's metadata
    # as `agent_<key>`.
    notes: dict[str, int | float | str] = field(default_factory=dict)

    async def collect(self, requests: Iterable[Awaitable[Payload]]) -> list[Payload]:
        """Await requests concurrently; keep what came back, note each FeedError in words (any
        other exception is a bug and propagates). Returns the new payloads."""
        results = await asyncio.gather(*requests, return_exceptions=True)
        new: list[Payload] = []
        for result in results:
            if isinstance(result, FeedError):
                self.errors.append(str(result))
            elif isinstance(result, BaseException):
                raise result
            else:
                new.append(result)
        self.payloads.extend(new)
        return new


@dataclass
class ParseResult:
    """Rows parsed from payloads, the records rejected with reasons, and unknown source codes."""

    rows: PriceColumns = field(default_factory=PriceColumns)
    rejects: list[Reject] = field(default_factory=list)
    unmapped: Counter[str] = field(default_factory=Counter)

    def extend(self, other: ParseResult) -> None:
        self.rows.extend(other.rows)
        self.rejects.extend(other.rejects)
        self.unmapped.update(other.unmapped)


class FeedAgent(ABC):
    """One bookmaker API (or family of APIs). Subclasses live one per file in `oddly/feeds/` and
    are registered under the `oddly.feeds` entry-point group, as a third-party package would."""

    #: The agent's name in feed settings (`agent: linefeed`).
    name: ClassVar[str]
    #: Pydantic model of the agent's own `options:` block in the feed settings.
    Options: ClassVar[type[BaseModel]]

    def __init__(self, feed: FeedConfig) -> None:
        self.feed = feed
        self.options: Any = self.Options.model_validate(feed.options)

    @abstractmethod
    async def fetch(self, http: FeedHttpClient) -> FetchOutcome:
        """Request everything one cycle needs. Individual failures go into `errors`; raise
        FeedError only when nothing at all could be fetched."""

    @abstractmethod
    def parse(self, payload: Payload) -> ParseResult:
        """Turn one payload into canonical rows. Never raises on bad content: a payload or record
        that cannot be read becomes a Reject with the reason."""

    def parse_all(self, payloads: list[Payload]) -> ParseResult:
        result = ParseResult()
        for payload in payloads:
            result.extend(self.parse(payload))
        return result
