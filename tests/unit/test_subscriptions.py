"""Per-chat filters: what a chat gets, when quiet hours delay it into the digest, and how the
subscriptions are stored."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from oddly.alerts.subscriptions import (
    Filters,
    QuietHours,
    Subscription,
    SubscriptionError,
    active_subscriptions,
    get_subscription,
    matches,
    register_chat,
    route,
    save_filters,
    set_muted,
)
from oddly.appdb import open_app_db
from tests.telegram_fakes import make_alert

NOON = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
ALERT = make_alert(
    alert_id="a1",
    dedup_key="ev1|1x2|ft||home|sharp_drop|x",
    strength=2.1,
    event_name="Manta v 9 de Octubre",
    league="Serie B",
    starts_at=None,
    bookmaker="x",
    old_price=2.0,
    new_price=1.6,  # a 20 % drop
    fair_price=1.55,
    edge=0.032,
    detected_at=NOON,
    decided_at=NOON,
    rules_version="r-1",
    explanation="x shortened home 2.0 → 1.6",
    reasons=[],
    best_prices=[],
)


def sub(**filters: Any) -> Subscription:
    return Subscription(chat_id="42", registered_at=NOON, filters=Filters(**filters))


def test_by_default_red_goes_now_yellow_to_the_digest_green_nowhere() -> None:
    assert route(sub(), ALERT, NOON) == ("send", "red: sent now")
    assert route(sub(), replace(ALERT, severity="yellow"), NOON) == ("digest", "yellow: digest")
    assert route(sub(), replace(ALERT, severity="green"), NOON) == ("skip", "severity green below yellow")
    assert matches(sub(min_severity="red"), replace(ALERT, severity="yellow"), NOON) == (
        False,
        "severity yellow below red",
    )


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"sports": ["tennis"]}, (False, "sport football not in tennis")),
        ({"sports": ["tennis", "football"]}, (True, "red: sent now")),
        ({"leagues": ["Serie A"]}, (False, "league Serie B not in Serie A")),
        ({"bookmakers": ["y"]}, (False, "bookmaker x not in y")),
        ({"alert_types": ["value"]}, (False, "type sharp_drop not in value")),
        ({"min_drop_pct": 25}, (False, "drop 20.0 % below 25 %")),
        ({"min_drop_pct": 15}, (True, "red: sent now")),
        ({"min_edge_pct": 5}, (False, "edge 3.2 % below 5 %")),
        ({"min_edge_pct": 3}, (True, "red: sent now")),
    ],
)
def test_each_filter(filters: dict[str, Any], expected: tuple[bool, str]) -> None:
    assert matches(sub(**filters), ALERT, NOON) == expected


def test_thresholds_only_judge_alerts_that_carry_the_measure() -> None:
    arbitrage = replace(ALERT, type="arbitrage", old_price=None, edge=None)
    assert matches(sub(min_drop_pct=50, min_edge_pct=50), arbitrage, NOON) == (True, "red: sent now")


def test_muted_chats_get_nothing() -> None:
    muted = Subscription(chat_id="42", registered_at=NOON, muted=True)
    assert matches(muted, ALERT, NOON) == (False, "muted")


def test_quiet_hours_turn_red_into_a_digest_item_in_the_chats_time_zone() -> None:
    # 22:00–07:00 in New York (UTC-5 in November): 04:00 UTC is 23:00 there, 12:00 UTC is 07:00.
    night = sub(quiet_hours={"start": "22:00", "end": "07:00", "timezone": "America/New_York"})
    at_night = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)
    assert route(night, ALERT, at_night) == ("digest", "quiet hours 22:00–07:00 America/New_York: digest")
    assert route(night, ALERT, NOON) == ("send", "red: sent now")
    assert QuietHours(start=time(9), end=time(17)).contains(NOON)
    assert not QuietHours(start=time(13), end=time(17)).contains(NOON)


@pytest.mark.parametrize(
    ("filters", "field", "words"),
    [
        (
            {"quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Mars/Olympus"}},
            "quiet_hours.timezone",
            "unknown time zone",
        ),
        ({"alert_types": ["sharp_dorp"]}, "alert_types", "unknown alert type(s) sharp_dorp"),
        ({"digest_interval_minutes": 1}, "digest_interval_minutes", "greater than or equal to 5"),
        ({"min_severity": "green"}, "min_severity", "'yellow' or 'red'"),
        ({"colour": "blue"}, "colour", "Extra inputs"),
    ],
)
def test_bad_filters_are_refused_naming_the_field(filters: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Filters(**filters)
    (error,) = caught.value.errors()
    assert ".".join(str(p) for p in error["loc"]) == field and words in str(caught.value)


def test_chats_are_stored_registered_once_filtered_and_muted(tmp_path: Path) -> None:
    engine = open_app_db(f"sqlite:///{tmp_path}/app.db")
    later = datetime(2026, 11, 23, tzinfo=UTC)
    with engine.begin() as conn:
        first = register_chat(conn, 42, NOON)
        assert register_chat(conn, "42", later).registered_at == first.registered_at == NOON
        register_chat(conn, 7, NOON)
        save_filters(
            conn, 42, Filters(sports=["football"], quiet_hours=QuietHours(start=time(23), end=time(6))), later
        )
        set_muted(conn, 7, True, later)
    with engine.begin() as conn:
        stored = get_subscription(conn, 42)
        assert stored is not None and stored.filters.sports == ["football"]
        assert stored.filters.quiet_hours == QuietHours(start=time(23), end=time(6))
        assert [s.chat_id for s in active_subscriptions(conn)] == ["42"]
        with pytest.raises(SubscriptionError, match="chat 99 is not registered; it must send /start first"):
            set_muted(conn, 99, True, later)
    engine.dispose()
