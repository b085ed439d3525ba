"""`oddly bench latency` knows a scenario's message by its event at every feed: a book's own
LineFeed id (numbered per book, so only with that book) or the aggregator feed's id (any of its
books), since the first alert about an injected drop may come from either."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from benchmarks.latency import Delivered, Injected, match

CHANGED = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)


def _scenario() -> Injected:
    return Injected(
        event_key="ev00055",
        side="home",
        changed_at=CHANGED,
        event_ids={"pinnacle": 300000751, "22bet": 100000751},
        home="Arsenal",
        away="Chelsea",
        odds_api_event_id="0e66e99b76eadd5531927f1876bceeef",
    )


def _message(book: str, event_id: str, after: float, type_: str = "sharp_drop") -> Delivered:
    at = CHANGED + timedelta(seconds=after)
    return Delivered(at, book, event_id, "1x2", "ft", "home", type_, at, at, at, at)


def test_an_aggregator_book_alerting_first_is_the_scenario_s_message() -> None:
    first = _message("betfair_ex", "0e66e99b76eadd5531927f1876bceeef", 6.0)
    [result] = match([_scenario()], [first, _message("pinnacle", "300000751", 9.0)], timeout=60)
    assert result.first is first and result.latency == 6.0 and result.messages == 2


def test_another_book_s_number_or_a_late_message_is_not_it() -> None:
    other_book = _message("22bet", "300000751", 3.0)  # pinnacle's number at another book
    late = _message("pinnacle", "300000751", 61.0)
    before = _message("pinnacle", "300000751", -1.0)
    [result] = match([_scenario()], [before, other_book, late], timeout=60)
    assert result.first is None and result.messages == 0
