"""Decisions, audit and outbox on the app database (SQLite and PostgreSQL): one transaction for all
three, cooldown and re-sends across batches, quiet hours and digests, the sender's claim / mark
cycle including a crashed sender, and an audit trail that refuses to be changed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from oddly.alerts import audit
from oddly.alerts.alert import Alert
from oddly.alerts.outbox import Outbox, decide_and_queue, digest_items, flush_digests, outbox
from oddly.alerts.policy import parse_policy
from oddly.alerts.subscriptions import Filters, QuietHours, register_chat, save_filters, set_muted
from oddly.appdb import open_app_db
from oddly.detect.detection import Detection

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
POLICY = parse_policy(
    {
        "version": "p-it",
        "types": {"sharp_drop": {"yellow_strength": 1.0, "red_strength": 1.5}},
        "cooldown": {"minutes": 15, "resend_strength_ratio": 1.5, "per": "selection"},
    }
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    url = f"sqlite:///{tmp_path}/app.db" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    open_app_db(url).dispose()  # created twice: opening an existing database changes nothing
    engine = open_app_db(url)
    yield engine
    engine.dispose()


def drop(outcome: str = "home", strength: float = 2.1, at: datetime = T0, book: str = "x") -> Detection:
    return Detection(
        type="sharp_drop",
        canonical_event_id="ev1",
        source_event_id=f"{book}-77",
        bookmaker=book,
        market="1x2",
        period="ft",
        line=None,
        outcome=outcome,
        detected_at=at,
        strength=strength,
        reasons={"previous_price": 2.0, "price": 1.6},
        explanation=f"{book} shortened {outcome} 2.0 → 1.6",
        rules_version="r-1",
    )


def render(alert: Alert) -> tuple[str, bytes | None]:
    return f"<b>{alert.event_name}</b> {alert.outcome} {alert.severity}", b"\x89PNG"


def render_digest(alerts: list[Alert]) -> str:
    return "digest: " + ", ".join(f"{a.outcome} {a.severity}" for a in alerts)


def chats(engine: sa.Engine, *chat_ids: str) -> None:
    with engine.begin() as conn:
        for chat_id in chat_ids:
            register_chat(conn, chat_id, T0 - timedelta(days=1))


def count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_decisions_audit_and_outbox_rows_are_written_together(engine: sa.Engine) -> None:
    chats(engine, "1", "2", "3")
    with engine.begin() as conn:
        set_muted(conn, "2", True, T0)
        save_filters(conn, "3", Filters(bookmakers=["y"]), T0)
    made = decide_and_queue(engine, [drop(), drop("away", 1.2), drop("draw", 0.5)], POLICY, T0, render)
    assert [(d.alert.outcome, d.action) for d in made if d.alert] == [
        ("home", "queued"),
        ("away", "digest"),
        ("draw", "recorded"),
    ]
    red = made[0]
    with engine.connect() as conn:
        messages = conn.execute(sa.select(outbox)).all()
        assert [(m.chat_id, m.alert_id, m.status, m.text, m.photo) for m in messages] == [
            ("1", red.alert_id, "pending", "<b>ev1</b> home red", b"\x89PNG")
        ]
        assert [(r.chat_id, r.alert_id) for r in conn.execute(sa.select(digest_items))] == [
            ("1", made[1].alert_id)
        ]
        rows = audit.search_decisions(conn, canonical_event_id="ev1")
        assert {(r["outcome"], r["severity"], r["action"]) for r in rows} == {
            ("home", "red", "queued"),
            ("away", "yellow", "digest"),
            ("draw", "green", "recorded"),
        }
        home = next(r for r in rows if r["outcome"] == "home")
        assert home["decision_reason"] == "red: sharp_drop strength 2.1 ≥ 1.5"
        assert (home["rules_version"], home["policy_version"], home["decided_at"]) == ("r-1", "p-it", T0)
        assert home["inputs"]["reasons"] == {"previous_price": 2.0, "price": 1.6}
        assert Alert.from_dict(home["alert"]) == red.alert
        assert [(d["chat_id"], d["status"]) for d in audit.deliveries_of(conn, red.alert_id)] == [
            ("1", "queued")
        ]


def test_a_failure_mid_batch_writes_nothing(engine: sa.Engine) -> None:
    chats(engine, "1")

    def fails_on_away(alert: Alert) -> tuple[str, bytes | None]:
        if alert.outcome == "away":
            raise RuntimeError("chart renderer crashed")
        return render(alert)

    with pytest.raises(RuntimeError, match="chart renderer crashed"):
        decide_and_queue(engine, [drop("home"), drop("away")], POLICY, T0, fails_on_away)
    assert [count(engine, t) for t in (audit.decisions, audit.deliveries, outbox, digest_items)] == [
        0,
        0,
        0,
        0,
    ]
    # the retry decides the same detections afresh: nothing was held by the failed attempt
    made = decide_and_queue(engine, [drop("home"), drop("away")], POLICY, T0, render)
    assert [d.action for d in made] == ["queued", "queued"] and count(engine, outbox) == 2


def test_cooldown_holds_a_repeat_and_a_stronger_one_is_sent_again(engine: sa.Engine) -> None:
    chats(engine, "1")
    decide_and_queue(engine, [drop(strength=2.0)], POLICY, T0, render)
    later = T0 + timedelta(minutes=3)
    (held,) = decide_and_queue(engine, [drop(strength=2.2, at=later)], POLICY, later, render)
    assert held.action == "held" and held.reason.startswith(
        "held: same alert 3 min ago, cooldown 15 min, not 1.5× stronger (2.2 vs 2)"
    )
    assert count(engine, outbox) == 1
    (again,) = decide_and_queue(engine, [drop(strength=3.1, at=later)], POLICY, later, render)
    assert again.action == "queued" and "re-sent" in again.reason
    after = T0 + timedelta(minutes=20)
    (fresh,) = decide_and_queue(engine, [drop(strength=2.0, at=after)], POLICY, after, render)
    assert fresh.action == "queued"  # 17 min after the last send: the cooldown is over
    assert count(engine, outbox) == 3 and count(engine, audit.decisions) == 4


def test_bad_input_is_audited_as_rejected_and_the_batch_goes_on(engine: sa.Engine) -> None:
    chats(engine, "1")
    bad_score = {"canonical_event_id": "ev1", "market": "1x2", "period": "ft", "score": 0.9}
    zero = replace(drop("draw"), reasons={"previous_price": 2.0, "price": 0})
    made = decide_and_queue(engine, [bad_score, zero, drop()], POLICY, T0, render)
    assert sorted(d.action for d in made) == ["queued", "rejected", "rejected"]
    with engine.connect() as conn:
        rejected = audit.search_decisions(conn, action="rejected")
    assert sorted(r["decision_reason"] for r in rejected) == [
        "rejected: price: price 0 is not a decimal odd (must be > 1)",
        "rejected: score row lacks model_version, observed_at",
    ]
    assert {r["inputs"]["market"] for r in rejected} == {"1x2"} and count(engine, outbox) == 1


def test_quiet_hours_turn_red_into_a_digest_that_is_flushed_when_due(engine: sa.Engine) -> None:
    chats(engine, "night", "day")
    with engine.begin() as conn:
        quiet = QuietHours(start=time(11), end=time(13), timezone="UTC")
        save_filters(conn, "night", Filters(quiet_hours=quiet, digest_interval_minutes=60), T0)
        save_filters(conn, "day", Filters(digest_interval_minutes=30), T0)
    made = decide_and_queue(engine, [drop("home"), drop("away", 1.2)], POLICY, T0, render)
    with engine.connect() as conn:
        assert [m.chat_id for m in conn.execute(sa.select(outbox.c.chat_id))] == ["day"]
        waiting = conn.execute(sa.select(digest_items.c.chat_id, digest_items.c.alert_id)).all()
    assert sorted(waiting) == sorted(
        [("night", made[0].alert_id), ("night", made[1].alert_id), ("day", made[1].alert_id)]
    )
    assert flush_digests(engine, T0 + timedelta(minutes=10), render_digest) == 0  # nobody due yet
    # 12:40: "day" has waited its 30 min; "night" is still in its quiet hours
    assert flush_digests(engine, T0 + timedelta(minutes=40), render_digest) == 1
    assert flush_digests(engine, T0 + timedelta(minutes=45), render_digest) == 0  # nothing left for "day"
    # 13:05: "night" is out of quiet hours and its red one arrives, with the yellow one
    assert flush_digests(engine, T0 + timedelta(minutes=65), render_digest) == 1
    with engine.connect() as conn:
        texts = dict(
            conn.execute(sa.select(outbox.c.chat_id, outbox.c.text).where(outbox.c.kind == "digest")).all()
        )
    assert texts == {"day": "digest: away yellow", "night": "digest: home red, away yellow"}

    box = Outbox(engine)
    claimed = box.claim_due(10, T0 + timedelta(minutes=66))
    digest = next(m for m in claimed if m.chat_id == "night")
    box.mark_sent(digest.id, 555, T0 + timedelta(minutes=66))
    with engine.connect() as conn:
        for decision in made:  # every alert in the digest is audited as delivered to the chat
            sent = [d for d in audit.deliveries_of(conn, decision.alert_id) if d["status"] == "sent"]
            assert [(d["chat_id"], d["telegram_message_id"]) for d in sent] == [("night", 555)]


def test_sender_cycle_claim_send_retry_dead_and_backlog(engine: sa.Engine) -> None:
    chats(engine, "1", "2")
    made = decide_and_queue(engine, [drop("home"), drop("away")], POLICY, T0, render)
    box = Outbox(engine)
    assert box.backlog(T0) == (4, T0)
    claimed = box.claim_due(3, T0)
    assert len(claimed) == 3 and all(m.attempts == 1 for m in claimed)
    assert [m.id for m in claimed] == sorted(m.id for m in claimed)  # oldest first
    assert [m.id for m in box.claim_due(10, T0)] == [max(m.id for m in claimed) + 1]  # the 4th only
    first, second, third = claimed
    box.mark_sent(first.id, 1001, T0 + timedelta(seconds=1))
    box.mark_retry(second.id, "HTTP 502", next_attempt_at=T0 + timedelta(seconds=30))
    box.mark_dead(third.id, "Forbidden: bot was blocked by the user")
    assert box.claim_due(10, T0 + timedelta(seconds=10)) == []  # the retry is not due yet
    (retried,) = box.claim_due(10, T0 + timedelta(seconds=30))
    assert (retried.id, retried.attempts) == (second.id, 2)
    box.mark_sent(retried.id, 1002, T0 + timedelta(seconds=31))
    assert box.claim_due(10, T0 + timedelta(hours=1))[0].attempts == 2  # only the 4th, abandoned
    with engine.connect() as conn:
        statuses = dict(conn.execute(sa.select(outbox.c.id, outbox.c.status)).all())
        events = [
            (d["chat_id"], d["status"], d["telegram_message_id"], d["error"])
            for decision in made
            for d in audit.deliveries_of(conn, decision.alert_id)
            if d["status"] != "queued"
        ]
    assert statuses[first.id] == statuses[second.id] == "sent" and statuses[third.id] == "dead"
    assert sorted(events, key=str) == sorted(
        [
            (first.chat_id, "sent", 1001, None),
            (second.chat_id, "retry", None, "HTTP 502"),
            (second.chat_id, "sent", 1002, None),
            (third.chat_id, "dead", None, "Forbidden: bot was blocked by the user"),
        ],
        key=str,
    )
    count_left, oldest = box.backlog(T0 + timedelta(hours=1))
    assert count_left == 1 and oldest == T0


def test_a_row_left_sending_by_a_crashed_sender_is_claimed_again(engine: sa.Engine) -> None:
    chats(engine, "1")
    decide_and_queue(engine, [drop()], POLICY, T0, render)
    box = Outbox(engine, sending_timeout=timedelta(minutes=2))
    (taken,) = box.claim_due(10, T0)  # ... and the sender dies before sending or marking it
    assert box.claim_due(10, T0 + timedelta(minutes=1)) == []  # maybe still sending: leave it
    (again,) = Outbox(engine).claim_due(10, T0 + timedelta(minutes=3))  # a restarted sender
    assert (again.id, again.attempts, again.text) == (taken.id, 2, taken.text)
    box.mark_sent(again.id, 7, T0 + timedelta(minutes=3))
    assert Outbox(engine).claim_due(10, T0 + timedelta(hours=1)) == []  # delivered: never resent
    assert box.backlog(T0 + timedelta(hours=1)) == (0, None)


def test_the_audit_trail_is_append_only(engine: sa.Engine) -> None:
    chats(engine, "1")
    decide_and_queue(engine, [drop(strength=2.0)], POLICY, T0, render)
    decide_and_queue(engine, [drop(strength=2.0)], POLICY, T0 + timedelta(minutes=1), render)
    assert count(engine, audit.decisions) == 2  # the repeat is a second row, held
    for statement in (
        audit.decisions.update().values(severity="green"),
        audit.decisions.delete(),
        audit.deliveries.update().values(status="sent"),
        audit.deliveries.delete(),
    ):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as conn:
            conn.execute(statement)
    with engine.connect() as conn:
        assert [r["action"] for r in audit.search_decisions(conn)] == ["held", "queued"]


def test_search_by_type_severity_and_time(engine: sa.Engine) -> None:
    decide_and_queue(engine, [drop("home"), drop("away", 1.2)], POLICY, T0, render)
    later = T0 + timedelta(hours=1)
    decide_and_queue(engine, [drop("draw", at=later)], POLICY, later, render)
    with engine.connect() as conn:
        red = audit.search_decisions(conn, alert_type="sharp_drop", severity="red")
        assert [r["outcome"] for r in red] == ["draw", "home"]  # newest first
        early = audit.search_decisions(conn, since=T0, until=T0 + timedelta(minutes=30))
        assert sorted(r["outcome"] for r in early) == ["away", "home"]
        assert audit.search_decisions(conn, canonical_event_id="ev2") == []


def test_the_app_database_enforces_keys_and_sqlite_runs_in_wal(engine: sa.Engine) -> None:
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        audit.record_delivery(conn, "no-such-alert", "1", "sent", T0)
    with (
        pytest.raises(audit.AuditError, match="delivery status 'delivered' is not one of"),
        engine.begin() as conn,
    ):
        audit.record_delivery(conn, "a", "1", "delivered", T0)
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            assert conn.exec_driver_sql("pragma journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("pragma foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("pragma busy_timeout").scalar() == 30_000


def test_a_chats_hourly_limit_sends_the_strongest_and_puts_the_rest_in_its_digest(engine: sa.Engine) -> None:
    chats(engine, "capped", "free")
    with engine.begin() as conn:
        save_filters(conn, "capped", Filters(max_alerts_per_hour=2), T0)
        save_filters(conn, "free", Filters(max_alerts_per_hour=None), T0)
    strengths = {"o1": 1.6, "o2": 3.0, "o3": 2.2, "o4": 1.9}
    decide_and_queue(engine, [drop(o, s) for o, s in strengths.items()], POLICY, T0, render)

    with engine.connect() as conn:
        sent = conn.execute(sa.select(outbox.c.chat_id, outbox.c.text).where(outbox.c.kind == "alert")).all()
        waiting = conn.execute(sa.select(digest_items.c.chat_id, digest_items.c.alert_id)).all()
    by_chat = {chat: sorted(t.split()[-2] for c, t in sent if c == chat) for chat in ("capped", "free")}
    assert by_chat == {"capped": ["o2", "o3"], "free": ["o1", "o2", "o3", "o4"]}  # the two strongest
    assert [c for c, _ in waiting] == ["capped", "capped"]  # the rest wait for its digest

    # an hour's count includes earlier batches: a later red alert also waits, until the hour has passed
    decide_and_queue(
        engine, [drop("o5", 4.0, at=T0 + timedelta(minutes=5))], POLICY, T0 + timedelta(minutes=5), render
    )
    later = T0 + timedelta(minutes=61, seconds=1)
    decide_and_queue(engine, [drop("o6", 4.0, at=later)], POLICY, later, render)
    with engine.connect() as conn:
        capped = (
            conn.execute(
                sa.select(outbox.c.text).where(outbox.c.kind == "alert", outbox.c.chat_id == "capped")
            )
            .scalars()
            .all()
        )
    assert sorted(t.split()[-2] for t in capped) == ["o2", "o3", "o6"]


def test_by_event_the_cooldown_holds_other_selections_of_an_event_across_batches(engine: sa.Engine) -> None:
    by_event = parse_policy(
        {**POLICY.model_dump(), "cooldown": {"minutes": 15, "resend_strength_ratio": 1.5}}
    )
    chats(engine, "1")
    [first] = decide_and_queue(engine, [drop("home", 2.0)], by_event, T0, render)
    later = T0 + timedelta(minutes=2)
    other_market, other_book = decide_and_queue(
        engine, [drop("away", 2.2, at=later), drop("draw", 2.1, at=later, book="y")], by_event, later, render
    )
    assert first.action == "queued" and other_market.action == other_book.action == "held"
    assert "a sharp_drop alert about this event 2 min ago" in other_market.reason
    assert count(engine, outbox) == 1
