"""The decision engine: severity by thresholds and timing, cooldown and re-sends, dedup keys, the
context an alert carries, and bad input rejected with a reason instead of failing the batch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from oddly.alerts.context import BookQuote, SelectionContext
from oddly.alerts.decide import Candidate, PriorDecision, Rejected, decide, to_candidates
from oddly.alerts.policy import AlertPolicy, parse_policy
from oddly.detect.detection import Detection

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
POLICY = parse_policy(
    {
        "version": "p-1",
        "types": {
            "sharp_drop": {"yellow_strength": 1.0, "red_strength": 1.5},
            "steam": {"yellow_strength": 1.0, "red_strength": 1.5},
            "value": {"yellow_strength": 1.0, "red_strength": 2.0, "yellow_edge": 0.02, "red_edge": 0.05},
            "anomaly": {"yellow_score": 0.5, "red_score": 1.0},
        },
        "kickoff": {"red_within_hours": 24, "yellow_within_hours": 168},
        "cooldown": {"minutes": 15, "resend_strength_ratio": 1.5, "per": "selection"},
    }
)


def detection(
    kind: str = "sharp_drop",
    strength: float = 2.1,
    *,
    book: str | None = "x",
    seconds_ago: float = 5,
    reasons: dict[str, Any] | None = None,
    outcome: str = "home",
) -> Detection:
    return Detection(
        type=kind,
        canonical_event_id="ev1",
        source_event_id="x-77",
        bookmaker=book,
        market="1x2",
        period="ft",
        line=None,
        outcome=outcome,
        detected_at=NOW - timedelta(seconds=seconds_ago),
        strength=strength,
        reasons=reasons if reasons is not None else {"previous_price": 2.0, "price": 1.6},
        explanation=f"{kind} at {book}",
        rules_version="r-9",
    )


def score_row(score: float = 1.3, **changes: Any) -> dict[str, Any]:
    row = {
        "canonical_event_id": "ev1",
        "bookmaker": "x",
        "market": "total",
        "period": "ft",
        "line": 2.5,
        "outcome": "over",
        "score": score,
        "model_version": "iforest-4",
        "reasons": ["price_move = 0.2, normal 0 … 0.05 (+0.9 to the score)"],
        "observed_at": pd.Timestamp(NOW - timedelta(seconds=30)),
    }
    return row | changes


def one(items: list[Any], policy: AlertPolicy = POLICY, **kw: Any) -> Any:
    (decision,) = decide(to_candidates(items), kw.pop("recent", {}), policy, NOW, **kw)
    return decision


def test_severity_by_strength_with_the_reason_in_words() -> None:
    red = one([detection(strength=2.1)])
    assert (red.action, red.severity, red.reason) == ("queued", "red", "red: sharp_drop strength 2.1 ≥ 1.5")
    yellow = one([detection(strength=1.2)])
    assert (yellow.action, yellow.severity, yellow.reason) == (
        "digest",
        "yellow",
        "yellow: sharp_drop strength 1.2 ≥ 1",
    )
    green = one([detection(strength=0.8)])
    assert (green.action, green.severity) == ("recorded", "green")
    assert green.reason == "green: sharp_drop strength 0.8 < 1"
    unlisted = one([detection("stale_line", 9.0)])
    assert unlisted.severity == "green" and "not in alert policy p-1" in unlisted.reason


def test_value_needs_both_strength_and_edge_for_each_level() -> None:
    strong_small_edge = one(
        [detection("value", 3.0, reasons={"price": 2.1, "edge": 0.03, "fair_price": 2.04})]
    )
    assert strong_small_edge.severity == "yellow"
    assert strong_small_edge.reason == "yellow: value strength 3 ≥ 1, edge 0.03 ≥ 0.02"
    both = one([detection("value", 3.0, reasons={"price": 2.2, "edge": 0.06})])
    assert both.severity == "red" and both.reason == "red: value strength 3 ≥ 2, edge 0.06 ≥ 0.05"
    assert both.alert.edge == pytest.approx(0.06)


def test_model_scores_are_graded_on_the_score() -> None:
    red = one([score_row(1.3)])
    assert red.severity == "red" and red.reason == "red: anomaly score 1.3 ≥ 1"
    assert red.alert.model_version == "iforest-4" and red.alert.rules_version is None
    assert red.alert.reasons == ["price_move = 0.2, normal 0 … 0.05 (+0.9 to the score)"]
    assert red.dedup_key == "ev1|total|ft|2.5|over|anomaly|x"
    assert one([score_row(0.7)]).severity == "yellow"
    assert one([score_row(0.1)]).severity == "green"


def test_a_dataframe_of_score_rows_is_read_row_by_row() -> None:
    frame = pd.DataFrame([score_row(1.3), score_row(0.7, outcome="under")])
    decisions = decide(to_candidates(frame), {}, POLICY, NOW)
    assert sorted(d.severity for d in decisions) == ["red", "yellow"]


def test_far_from_kick_off_red_waits_for_the_digest_and_further_is_recorded_only() -> None:
    def at_kickoff(hours: float, live: bool = False) -> Any:
        ctx = SelectionContext(starts_at=NOW + timedelta(hours=hours), is_live=live)
        return one([detection(strength=2.1)], context={("ev1", "1x2", "ft", None, "home"): ctx})

    near = at_kickoff(3)
    assert near.severity == "red"
    far = at_kickoff(30)
    assert far.severity == "yellow" and far.action == "digest"
    assert far.reason.startswith("yellow: red: sharp_drop strength 2.1 ≥ 1.5 but kick-off in 30.0 h > 24 h")
    assert at_kickoff(200).severity == "green"
    # In play the kick-off is past; the live rules apply instead.
    assert at_kickoff(-0.5, live=True).severity == "red"
    no_live_red = parse_policy({**POLICY.model_dump(), "live": {"red": False}})
    ctx = {("ev1", "1x2", "ft", None, "home"): SelectionContext(is_live=True)}
    capped = one([detection(strength=2.1)], no_live_red, context=ctx)
    assert capped.severity == "yellow" and "in play" in capped.reason


def test_a_detection_decided_long_after_it_fired_is_not_red() -> None:
    late = one([detection(strength=2.1, seconds_ago=30 * 60)])
    assert late.severity == "yellow" and "detected 30 min ago > 10 min" in late.reason


def prior(
    minutes_ago: float, strength: float, severity: str = "red", action: str = "queued"
) -> PriorDecision:
    key = "ev1|1x2|ft||home|sharp_drop|x"
    return PriorDecision("old", key, severity, action, strength, NOW - timedelta(minutes=minutes_ago))


def test_the_same_alert_inside_the_cooldown_is_held_and_says_why() -> None:
    key = "ev1|1x2|ft||home|sharp_drop|x"
    held = one([detection(strength=2.1)], recent={key: [prior(3, 2.0)]})
    assert held.dedup_key == key and held.action == "held"
    assert held.reason == (
        "held: same alert 3 min ago, cooldown 15 min, not 1.5× stronger (2.1 vs 2)"
        " — would be red: sharp_drop strength 2.1 ≥ 1.5"
    )
    assert held.severity == "red"  # the audit keeps what it would have been


def test_a_stronger_repeat_or_a_severity_upgrade_is_sent_again() -> None:
    key = "ev1|1x2|ft||home|sharp_drop|x"
    stronger = one([detection(strength=3.0)], recent={key: [prior(3, 2.0)]})
    assert stronger.action == "queued" and "re-sent: 1.5× as strong as 3 min ago" in stronger.reason
    upgraded = one([detection(strength=1.6)], recent={key: [prior(3, 1.4, "yellow", "digest")]})
    assert upgraded.action == "queued" and "re-sent: up from yellow 3 min ago" in upgraded.reason


def test_only_sent_decisions_inside_the_cooldown_hold_a_repeat() -> None:
    key = "ev1|1x2|ft||home|sharp_drop|x"
    assert one([detection()], recent={key: [prior(20, 2.1)]}).action == "queued"  # cooldown over
    assert one([detection()], recent={key: [prior(3, 2.1, action="held")]}).action == "queued"
    assert one([detection()], recent={key: [prior(3, 2.1, "green", "recorded")]}).action == "queued"


def test_repeats_within_one_batch_are_held_too() -> None:
    decisions = decide(to_candidates([detection(seconds_ago=5), detection(seconds_ago=2)]), {}, POLICY, NOW)
    assert [d.action for d in decisions] == ["queued", "held"]


def test_dedup_key_names_the_book_only_for_one_book_types() -> None:
    x, y = to_candidates([detection(book="x"), detection(book="y")])
    assert isinstance(x, Candidate) and isinstance(y, Candidate)
    assert x.dedup_key != y.dedup_key
    steam_x, steam_y = to_candidates([detection("steam", book="x"), detection("steam", book="y")])
    assert isinstance(steam_x, Candidate) and isinstance(steam_y, Candidate)
    assert steam_x.dedup_key == steam_y.dedup_key == "ev1|1x2|ft||home|steam"


def test_bad_input_is_rejected_with_a_reason_and_the_rest_of_the_batch_is_decided() -> None:
    items = [
        detection(reasons={"previous_price": 2.0, "price": 0}),
        score_row(score=None, observed_at=None),
        detection(strength=0.0, outcome="away"),
        detection(strength=2.1),
    ]
    decisions = decide(to_candidates(items), {}, POLICY, NOW)
    rejected = [d for d in decisions if d.action == "rejected"]
    assert sorted(d.reason for d in rejected) == [
        "rejected: price: price 0 is not a decimal odd (must be > 1)",
        "rejected: score row lacks score, observed_at",
        "rejected: strength 0 must be positive (1.0 is the rule's threshold)",
    ]
    assert all(d.alert is None and d.inputs for d in rejected)
    assert [d.action for d in decisions if d.action != "rejected"] == ["queued"]
    assert isinstance(to_candidates([score_row(score=None)])[0], Rejected)


def test_the_alert_carries_its_context_with_the_detectors_own_prices_first() -> None:
    quotes = {
        book: BookQuote(book, price, prev, status, NOW)
        for book, price, prev, status in [
            ("x", 1.7, 1.9, "open"),
            ("a", 2.05, None, "open"),
            ("b", 2.2, 2.1, "open"),
            ("c", 2.5, 2.4, "suspended"),
            ("d", 1.95, None, "open"),
            ("e", 2.0, None, "open"),
        ]
    }
    ctx = SelectionContext(
        event_name="Manta v 9 de Octubre",
        sport="football",
        league="Serie B",
        starts_at=NOW + timedelta(hours=2),
        is_live=False,
        prices=quotes,
        fair_probability=0.5,
    )
    alert = one([detection(strength=2.1)], context={("ev1", "1x2", "ft", None, "home"): ctx}).alert
    assert (alert.event_name, alert.sport, alert.league) == ("Manta v 9 de Octubre", "football", "Serie B")
    assert (alert.old_price, alert.new_price) == (2.0, 1.6)  # what the detector saw, not the later 1.7
    assert alert.fair_price == 2.0 and alert.edge == pytest.approx(1.6 / 2.0 - 1)
    # the best open prices at the other books, highest first; its own and suspended ones left out
    assert [(p.bookmaker, p.price) for p in alert.best_prices] == [("b", 2.2), ("a", 2.05), ("e", 2.0)]
    assert alert.decision_reason == "red: sharp_drop strength 2.1 ≥ 1.5"
    assert alert.price_change_pct == pytest.approx(-20.0)


def test_without_context_the_alert_still_goes_out_with_what_the_detector_knew() -> None:
    alert = one([detection(strength=2.1, reasons={"previous_price": 2.0, "price": 1.6})]).alert
    assert alert.severity == "red" and alert.event_name == "ev1" and alert.starts_at is None
    assert (alert.old_price, alert.new_price, alert.best_prices) == (2.0, 1.6, [])


BY_EVENT = parse_policy({**POLICY.model_dump(), "cooldown": {"minutes": 15, "resend_strength_ratio": 1.5}})


def test_by_default_one_event_and_type_is_one_alert_the_strongest_of_a_burst() -> None:
    assert BY_EVENT.cooldown.per == "event"
    burst = [
        detection(outcome="home", strength=1.8),
        detection(outcome="away", strength=4.0),
        detection(outcome="draw", strength=2.0, book="y"),
        detection("steam", outcome="home", strength=2.0),  # another type: its own alert
    ]
    decisions = decide(to_candidates(burst), {}, BY_EVENT, NOW)
    actions = {
        (d.type, d.alert.outcome if d.alert else None, d.alert.bookmaker if d.alert else None): d.action
        for d in decisions
    }
    assert actions == {
        ("sharp_drop", "away", "x"): "queued",
        ("sharp_drop", "home", "x"): "held",
        ("sharp_drop", "draw", "y"): "held",
        ("steam", "home", "x"): "queued",
    }
    held = next(d for d in decisions if d.action == "held" and d.alert and d.alert.outcome == "home")
    assert held.reason.startswith("held: a sharp_drop alert about this event 0 min ago")
    assert held.dedup_key == "ev1|1x2|ft||home|sharp_drop|x"  # the audit keeps the selection's own key


def test_by_event_the_cooldown_reads_earlier_alerts_on_any_market_of_the_event() -> None:
    earlier = PriorDecision(
        "old", "ev1|total|ft|2.5|over|sharp_drop|z", "red", "queued", 2.0, NOW - timedelta(minutes=4)
    )
    candidate = to_candidates([detection(outcome="home", strength=2.5)])
    [held] = decide(candidate, {"ev1|sharp_drop": [earlier]}, BY_EVENT, NOW)
    assert held.action == "held"
    [again] = decide(to_candidates([detection(strength=3.2)]), {"ev1|sharp_drop": [earlier]}, BY_EVENT, NOW)
    assert again.action == "queued" and "re-sent: 1.6× as strong" in again.reason


def test_after_one_hold_the_same_condition_seen_again_is_not_recorded_until_it_changes() -> None:
    key = "ev1|1x2|ft||home|sharp_drop|x"
    sent, held = prior(6, 2.0), prior(3, 2.1, action="held")
    assert decide(to_candidates([detection(strength=2.2)]), {key: [sent, held]}, POLICY, NOW) == []
    # stronger by the re-send ratio than the hold: a decision again (here re-sent)
    [stronger] = decide(to_candidates([detection(strength=3.2)]), {key: [sent, held]}, POLICY, NOW)
    assert stronger.action == "queued"
    # another selection of the event (here, another book) is its own alert
    [other] = decide(to_candidates([detection(strength=2.2, book="y")]), {key: [sent, held]}, POLICY, NOW)
    assert other.action == "queued"
