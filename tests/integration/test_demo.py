"""`oddly demo` (what `make demo` runs) end to end: the simulator and Dagster start, print their
URLs, the sensors poll every feed by themselves into the warehouse and refresh the marts after it
(published for readers), an alert reaches the fake Bot API, and Ctrl-C stops it all — on the
embedded stores, and in server mode with ODDLY_DATABASE_URL alone putting every store on the local
PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from oddly.config import REPO_ROOT, get_settings
from oddly.ports import free_port
from oddly.warehouse.reader import MartsReader
from oddly.warehouse.snapshot import snapshot_path
from oddly.warehouse.store import Warehouse
from tests.conftest import STORE_ENV, drop_pg_database, make_pg_database

pytestmark = pytest.mark.slow


def published_prices(home: Path, warehouse_url: str | None) -> int:
    """Rows of marts.fct_prices_current readers see (0 before the first refresh): the published
    snapshot on the embedded store, the warehouse itself in server mode."""
    if warehouse_url is None and not snapshot_path(home).exists():
        return 0
    reader = MartsReader(warehouse_url=warehouse_url, home=home)
    try:
        if warehouse_url is None:
            info = reader.published()
            return int(
                dict(zip(info["relation"], info["row_count"], strict=True)).get("marts.fct_prices_current", 0)
            )
        return int(reader.query("select count(*) as n from marts.fct_prices_current")["n"][0])
    except Exception:  # the marts are not built yet
        return 0
    finally:
        reader.dispose()


@pytest.fixture(params=["embedded", pytest.param("server", marks=pytest.mark.postgres)])
def mode(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None: embedded stores; else the URL of a fresh PostgreSQL database every store goes into."""
    if request.param == "embedded":
        yield None
        return
    url = make_pg_database("oddly_demo")
    yield url
    drop_pg_database(url)


def test_demo_runs_the_platform_and_the_sensors_ingest_every_feed_and_refresh_the_marts(
    tmp_path: Path, mode: str | None
) -> None:
    sim_port, dagster_port, mlflow_port, telegram_port = free_port(), free_port(), free_port(), free_port()
    streamlit_port, metrics_port, sender_metrics_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "ODDLY_HOME": str(tmp_path),
        "ODDLY_SIMULATOR_PORT": str(sim_port),
        "ODDLY_MLFLOW_PORT": str(mlflow_port),
        "ODDLY_FAKE_TELEGRAM_PORT": str(telegram_port),
        "ODDLY_STREAMLIT_PORT": str(streamlit_port),
        "ODDLY_APP_URL": f"http://127.0.0.1:{streamlit_port}",
        "ODDLY_METRICS_PORT": str(metrics_port),
        "ODDLY_SENDER_METRICS_PORT": str(sender_metrics_port),
    }
    for name in (*STORE_ENV, "ODDLY_TELEGRAM_API_URL"):
        env.pop(name, None)
    if mode is not None:
        env["ODDLY_DATABASE_URL"] = mode  # server mode: one setting, every store on PostgreSQL
    log = (tmp_path / "demo.log").open("w+")
    demo = subprocess.Popen(
        [str(Path(sys.executable).parent / "oddly"), "demo", "--dagster-port", str(dagster_port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    feeds = {f.name for f in get_settings().config.enabled_feeds}
    warehouse_url = mode or f"duckdb:///{tmp_path}/warehouse.duckdb"
    try:
        deadline = time.monotonic() + 300
        ok: set[str] = set()
        prices = 0
        messages: list[dict[str, object]] = []
        fake_telegram = f"http://127.0.0.1:{telegram_port}"
        while time.monotonic() < deadline and (ok != feeds or not prices or not messages):
            assert demo.poll() is None, (tmp_path / "demo.log").read_text()[-3000:]
            if mode is not None or (tmp_path / "warehouse.duckdb").exists():
                try:
                    runs = Warehouse.from_url(warehouse_url).feed_runs(limit=500)
                except Exception:  # not created yet
                    runs = []
                ok = {r["feed"] for r in runs if r["status"] == "ok" and r["ticks_written"] > 0}
            prices = published_prices(tmp_path, mode)
            if "Oddly Odds is running" in (tmp_path / "demo.log").read_text():  # every service answers
                messages = httpx.get(f"{fake_telegram}/messages.json", timeout=10).json()
            time.sleep(3)
        output = (tmp_path / "demo.log").read_text()
        assert ok == feeds, output[-3000:]
        assert prices > 0, f"the marts were never refreshed and published:\n{output[-3000:]}"
        assert f"simulator  http://127.0.0.1:{sim_port}" in output
        assert f"dagster    http://127.0.0.1:{dagster_port}" in output
        assert httpx.get(f"http://127.0.0.1:{dagster_port}/server_info", timeout=10).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{sim_port}/_sim/health", timeout=10).json()["ok"] is True
        assert f"mlflow     http://127.0.0.1:{mlflow_port}" in output
        assert httpx.get(f"http://127.0.0.1:{mlflow_port}/health", timeout=10).status_code == 200
        # no token: the fake Bot API runs, and the sender delivers alerts to the demo chat there
        assert f"telegram   {fake_telegram}" in output
        assert messages, f"no alert reached the fake Bot API:\n{output[-3000:]}"
        assert {str(m["chat_id"]) for m in messages} == {"1"}
        page = httpx.get(fake_telegram, timeout=10).text  # its page lists what it received
        assert "Fake Telegram" in page and "Open the event in Oddly Odds" in page
        # Prometheus: the code server counts its polls and ticks, the sender its deliveries
        scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
        assert 'oddly_polls_total{feed="sim_pinnacle",status="ok"}' in scraped
        assert "oddly_marts_cycles_total" in scraped and "oddly_tick_to_alert_seconds_bucket" in scraped
        sender_scraped = httpx.get(f"http://127.0.0.1:{sender_metrics_port}/metrics", timeout=10).text
        assert 'oddly_telegram_deliveries_total{outcome="sent"}' in sender_scraped
        stores = {"warehouse.duckdb", "app.db", "mlflow.db"} & {p.name for p in tmp_path.iterdir()}
        if mode is None:
            assert stores == {"warehouse.duckdb", "app.db", "mlflow.db"}  # the embedded stores
        else:
            assert stores == set(), f"server mode wrote embedded stores: {stores}"
    finally:
        os.killpg(demo.pid, signal.SIGINT)
        code = demo.wait(timeout=60)
    assert code == 0
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{sim_port}/_sim/health", timeout=2)
