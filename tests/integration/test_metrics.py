"""Prometheus metrics: a poll counts itself, its ticks and rejects; decisions count by type, severity
and action with their tick-to-alert latency; the sender counts deliveries, failures included; and a
process serves its registry over real HTTP at /metrics."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from oddly import metrics
from oddly.alerts.policy import load_policy
from oddly.alerts.run import run_alerts
from oddly.alerts.subscriptions import register_chat
from oddly.appdb import open_app_db
from oddly.config import SHIPPED_CONFIG, Settings
from oddly.detect.detection import Detection
from oddly.model import now_utc
from oddly.poll import poll_feed
from oddly.ports import free_port
from oddly.simulator.config import SimConfig
from oddly.simulator.server import start_in_thread
from oddly.telegram.fake_api import FakeBotApi, Fault
from oddly.warehouse.store import Warehouse
from tests.integration.test_sender import sender_for
from tests.simulated import simulator_feeds
from tests.telegram_fakes import queue_message, run_until


def value(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_poll_counts_itself_its_ticks_and_rejects(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, warehouse_url=None)
    warehouse = Warehouse.from_settings(settings)
    with start_in_thread(SimConfig(seed=4, n_events=5, markets_per_event=3, manual_clock=True)) as sim:
        feed = simulator_feeds(sim)[1]
        before = (
            value("oddly_polls_total", feed=feed.name, status="ok"),
            value("oddly_ticks_written_total", feed=feed.name),
        )
        report = poll_feed(feed, warehouse, settings, lambda: open_app_db(settings))
    assert report.ingest.ticks_written > 0
    assert value("oddly_polls_total", feed=feed.name, status="ok") == before[0] + 1
    assert value("oddly_ticks_written_total", feed=feed.name) == before[1] + report.ingest.ticks_written
    assert value("oddly_poll_seconds_count", feed=feed.name) >= 1


def drop(detected_ago: float) -> Detection:
    return Detection(
        type="sharp_drop",
        canonical_event_id="ev-metrics",
        source_event_id="77",
        bookmaker="pinnacle",
        market="1x2",
        period="ft",
        line=None,
        outcome="home",
        detected_at=now_utc() - timedelta(seconds=detected_ago),
        strength=4.0,
        reasons={"previous_price": 2.0, "price": 1.5},
        explanation="pinnacle shortened home 2.0 → 1.5",
        rules_version="r",
    )


def test_decisions_count_by_type_severity_and_action_with_their_latency(tmp_path: Path) -> None:
    engine = open_app_db(f"sqlite:///{tmp_path}/app.db")
    with engine.begin() as conn:
        register_chat(conn, 1, now_utc())
    policy = load_policy(SHIPPED_CONFIG / "alert_policy.yaml")
    queued = value("oddly_alert_decisions_total", type="sharp_drop", severity="red", action="queued")
    latency = value("oddly_tick_to_alert_seconds_count", type="sharp_drop")
    slow = value("oddly_tick_to_alert_seconds_bucket", type="sharp_drop", le="2.0")
    run_alerts(engine, [drop(detected_ago=4.0)], policy, now_utc(), app_url="http://app")
    assert (
        value("oddly_alert_decisions_total", type="sharp_drop", severity="red", action="queued") == queued + 1
    )
    assert value("oddly_tick_to_alert_seconds_count", type="sharp_drop") == latency + 1
    assert (
        value("oddly_tick_to_alert_seconds_bucket", type="sharp_drop", le="2.0") == slow
    )  # 4 s is not ≤ 2 s
    engine.dispose()


@pytest.fixture
def api() -> Iterator[FakeBotApi]:
    with FakeBotApi() as server:
        yield server


async def test_the_sender_counts_deliveries_and_failures(api: FakeBotApi, tmp_path: Path) -> None:
    engine = open_app_db(f"sqlite:///{tmp_path}/app.db")
    queue_message(engine, "42", "one")
    queue_message(engine, "43", "two")
    api.inject("sendMessage", Fault.http(502))
    sent, retried = (
        value("oddly_telegram_deliveries_total", outcome="sent"),
        value("oddly_telegram_deliveries_total", outcome="retried"),
    )
    sender = sender_for(api, engine)
    async with sender.bot:
        await run_until(sender, lambda: len(api.messages) == 2)  # the 502 is retried after its backoff
    assert value("oddly_telegram_deliveries_total", outcome="sent") == sent + 2
    assert value("oddly_telegram_deliveries_total", outcome="retried") == retried + 1
    engine.dispose()


def test_a_process_serves_its_metrics_over_http_once() -> None:
    port = free_port()
    assert metrics.serve(port) and metrics.serve(port)  # a second call is a no-op, not an error
    metrics.POLLS.labels("served_feed", "ok").inc()
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert 'oddly_polls_total{feed="served_feed",status="ok"} 1.0' in text
    assert "# HELP oddly_tick_to_alert_seconds" in text and "oddly_telegram_deliveries_total" in text
    assert not metrics.serve(0)  # off


def test_a_taken_port_is_reported_not_raised() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert metrics.serve(taken.getsockname()[1]) is False
