"""Hand-made ticks and price rows for the rule detector tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from oddly.detect.rules import Rules, parse_rules

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
VERSION = "test-7"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def rules(**sections: Any) -> Rules:
    """The default thresholds, with the given sections replaced (`out_of_line={...}`)."""
    return parse_rules({"version": VERSION, **sections})


def tick(
    book: str,
    outcome: str,
    price: float | None,
    *,
    previous: float | None = None,
    seconds: float = 0,
    event: str | None = "ev1",
    market: str = "1x2",
    line: float | None = None,
    period: str = "ft",
    status: str = "open",
) -> dict[str, Any]:
    """One tick (or current price) of `book` on the canonical event `event` (None: unmatched)."""
    return {
        "canonical_event_id": event,
        "bookmaker": book,
        "source_event_id": f"{book}-{event or 'x'}",
        "market": market,
        "period": period,
        "line": line,
        "outcome": outcome,
        "price": price,
        "previous_price": previous,
        "status": status,
        "observed_at": at(seconds),
    }


def book_market(book: str, prices: dict[str, float | None], **kw: Any) -> list[dict[str, Any]]:
    """A book's whole market: one row per outcome."""
    return [tick(book, outcome, price, **kw) for outcome, price in prices.items()]
