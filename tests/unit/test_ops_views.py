"""The read models behind the Bookmakers and Alerts pages, on tiny hand-made stores: the
per-bookmaker weighting, feed health in words, and the delivery status of each alert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from oddly.alerts import audit
from oddly.alerts.outbox import decide_and_queue
from oddly.alerts.policy import parse_policy
from oddly.alerts.subscriptions import register_chat
from oddly.appdb import open_app_db
from oddly.detect.detection import Detection
from oddly.views import alerts, quality
from oddly.warehouse.reader import MartsReader
from oddly.warehouse.snapshot import snapshot_path

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.fixture
def reader(tmp_path: Path) -> MartsReader:
    """A published snapshot holding two books' quality rows on two markets."""
    with duckdb.connect(str(snapshot_path(tmp_path))) as con:
        con.execute("create schema marts")
        con.execute(
            "create table marts.fct_bookmaker_quality as select * from (values "
            "('pinnacle', '1x2', true, 30, 60, 0.02, 10.0, 5.0, 0, null, 0.0, 0.0), "
            "('b', '1x2', false, 10, 100, 0.06, 100.0, 50.0, 4, 60.0, 0.10, 0.5), "
            "('b', 'total', false, 30, 100, 0.10, 20.0, 10.0, 1, 160.0, 0.30, 0.1)"
            ") as t(bookmaker, market, is_sharp, selections, ticks, mean_margin, mean_stale_seconds, "
            "median_stale_seconds, sharp_moves_followed, median_lag_seconds, suspension_rate, "
            "out_of_line_share)"
        )
    return MartsReader(warehouse_url=None, home=tmp_path)


def test_quality_weights_each_measure_by_what_it_is_a_mean_of(reader: MartsReader) -> None:
    rows = quality.bookmaker_quality(reader).set_index("bookmaker")
    assert rows.index.tolist() == ["pinnacle", "b"]  # the sharp book first
    b = rows.loc["b"]
    assert (b.markets, b.selections, b.ticks, b.sharp_moves_followed) == (2, 40, 200, 5)
    assert b.mean_margin == pytest.approx((0.06 * 10 + 0.10 * 30) / 40)
    assert b.mean_stale_seconds == pytest.approx((100 * 10 + 20 * 30) / 40)
    assert b.lag_seconds == pytest.approx((60 * 4 + 160 * 1) / 5)
    assert b.suspension_rate == pytest.approx(0.2)
    assert pd.isna(rows.loc["pinnacle", "lag_seconds"])  # it follows no one


def test_quality_filters_by_market_and_book(reader: MartsReader) -> None:
    assert quality.bookmaker_quality(reader, "total")["bookmaker"].tolist() == ["b"]
    only = quality.bookmaker_quality(reader, None, ("pinnacle",))
    assert only["bookmaker"].tolist() == ["pinnacle"]
    assert quality.quality_choices(reader).values.tolist() == [
        ["1x2", "b"],
        ["1x2", "pinnacle"],
        ["total", "b"],
    ]


def test_feed_problems_say_which_feed_and_what_to_do() -> None:
    health = pd.DataFrame(
        {
            "feed": ["a", "b", "c"],
            "health": ["down", "silent", "ok"],
            "last_error": ["HTTP 503 after 3 tries", None, None],
            "last_run_at": [pd.Timestamp(NOW)] * 3,
        }
    )
    assert quality.feed_problems(health) == [
        "feed a is down: its last run failed (HTTP 503 after 3 tries).",
        "feed b has not run since 2026-11-22 12:00 UTC: is its sensor on in Dagster "
        "(or `oddly scan` running)?",
    ]


def test_the_feed_shows_sent_alerts_with_each_chats_latest_delivery(tmp_path: Path) -> None:
    engine = open_app_db(f"sqlite:///{tmp_path}/app.db")
    with engine.begin() as conn:
        for chat in ("1", "2", "3"):
            register_chat(conn, chat, NOW - timedelta(days=1))
    policy = parse_policy(
        {"version": "p", "types": {"sharp_drop": {"yellow_strength": 1.0, "red_strength": 1.5}}}
    )
    drop = Detection(
        type="sharp_drop", canonical_event_id="ev", source_event_id="x-1", bookmaker="x", market="1x2",
        period="ft", line=None, outcome="home", detected_at=NOW, strength=2.0,
        reasons={"price": 1.6}, explanation="x shortened home", rules_version="r",
    )  # fmt: skip
    (decision,) = decide_and_queue(engine, [drop], policy, NOW, lambda a: (a.explanation, None))
    with engine.begin() as conn:  # chat 1: retried, then sent; chat 2: dead; chat 3: still queued
        audit.record_delivery(conn, decision.alert_id, "1", "retry", NOW + timedelta(seconds=1), error="429")
        audit.record_delivery(conn, decision.alert_id, "1", "sent", NOW + timedelta(seconds=5))
        audit.record_delivery(
            conn, decision.alert_id, "2", "dead", NOW + timedelta(seconds=1), error="blocked"
        )
    feed = alerts.alert_feed(engine)
    assert feed[["type", "severity", "delivery", "explanation"]].values.tolist() == [
        ["sharp_drop", "red", "1/3 sent, 1 waiting, 1 failed", "x shortened home"]
    ]
    assert alerts.alert_feed(engine, "yellow").empty
    assert alerts.search(engine, "other-event").empty
    assert alerts.deliveries(engine, decision.alert_id)["status"].tolist() == [
        "queued", "queued", "queued", "retry", "dead", "sent",
    ]  # fmt: skip
    assert alerts.describe_delivery(0, 0, 0, 0) == "no subscribed chat"
