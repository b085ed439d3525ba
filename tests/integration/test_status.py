"""`oddly status`: per feed its last success, freshness against its interval, last error and
quarantined rows; the outbox's backlog and oldest undelivered alert; the champion and its drift —
read from the real stores, each part saying in words when its store cannot be read."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from ml.status import status
from oddly.model import PriceColumns, Reject, now_utc
from oddly.warehouse.store import FeedRunRecord, Warehouse
from tests.telegram_fakes import queue_message


def config(path: Path) -> Path:
    feeds = [
        {
            "name": name,
            "agent": "linefeed",
            "bookmaker": book,
            "base_url": "http://127.0.0.1:9",
            "interval_seconds": 10,
        }
        for name, book in (("fresh_feed", "pinnacle"), ("stale_feed", "22bet"), ("new_feed", "melbet"))
    ]
    path.write_text(yaml.safe_dump({"feeds": feeds}))
    return path


def run(warehouse: Warehouse, feed: str, book: str, status: str, ago: timedelta, rejects: int = 0) -> None:
    at = now_utc() - ago
    event = {"bookmaker": book, "source_event_id": "1", "sport": "football", "home": "A", "away": "B"}
    rows = [
        {
            **event,
            "starts_at": (at + timedelta(hours=3)).timestamp(),
            "market": "1x2",
            "outcome": "home",
            "price": 2.0,
        }
    ]
    record = FeedRunRecord(
        f"{feed}-{ago.total_seconds():.0f}", feed, book, status, at, at, 1, 1, 0, rejects, 0, "{}", 0.0, 0.0,
        0.0, "ok", "HTTP 503 after 3 tries" if status == "failed" else None,
    )  # fmt: skip
    table = PriceColumns.from_records(rows if status != "failed" else []).to_table(at, record.feed_run_id)
    warehouse.write_run(table, [Reject("price 0", {"C": 0})] * rejects, record)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ODDLY_HOME", str(tmp_path))
    monkeypatch.setenv("ODDLY_CONFIG_FILE", str(config(tmp_path / "oddly.yaml")))
    for name in (
        "ODDLY_DATABASE_URL",
        "ODDLY_WAREHOUSE_URL",
        "ODDLY_APP_DATABASE_URL",
        "ODDLY_MLFLOW_TRACKING_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_status_reports_each_feed_the_outbox_and_the_model(home: Path) -> None:
    warehouse = Warehouse.from_url(f"duckdb:///{home}/warehouse.duckdb")
    run(warehouse, "fresh_feed", "pinnacle", "ok", timedelta(seconds=5), rejects=2)
    run(warehouse, "stale_feed", "22bet", "ok", timedelta(minutes=10))
    run(warehouse, "stale_feed", "22bet", "failed", timedelta(seconds=8))
    warehouse.dispose()
    from oddly.appdb import open_app_db

    engine = open_app_db(f"sqlite:///{home}/app.db")
    queue_message(engine, "42", "an alert not delivered yet")
    engine.dispose()

    result = CliRunner().invoke(status, ["--json"])
    assert result.exit_code == 1, result.output  # a stale and a never-ingested feed need attention
    report = json.loads(result.output)
    feeds = {f["feed"]: f for f in report["feeds"]}
    assert feeds["fresh_feed"]["state"] == "fresh" and feeds["fresh_feed"]["quarantined_rows_24h"] == 2
    assert feeds["stale_feed"]["state"].startswith("STALE (last success 6")  # 600 s > 3 intervals
    assert feeds["stale_feed"]["failed_runs_24h"] == 1 and "HTTP 503" in feeds["stale_feed"]["last_error"]
    assert feeds["new_feed"]["state"] == "never ingested"
    assert report["outbox"]["backlog"] == 1 and report["outbox"]["oldest_undelivered_at"]
    assert report["model"]["champion"] == "none" and "train a model first" in report["model"]["drift"]

    text = CliRunner().invoke(status, ["--no-model"]).output
    assert "NEEDS ATTENTION" in text and "last error: feed" not in text  # the text form names each part
    assert "fresh_feed" in text and "1 undelivered" in text


def test_a_store_that_cannot_be_read_is_named_and_the_rest_still_shows(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ODDLY_WAREHOUSE_URL", "postgresql://nobody@127.0.0.1:9/none")
    result = CliRunner().invoke(status, ["--json", "--no-model"])
    report = json.loads(result.output)
    assert result.exit_code == 1 and "warehouse unreadable" in report["feeds_error"]
    assert report["outbox"]["backlog"] == 0 and report["outbox"]["error"] is None
