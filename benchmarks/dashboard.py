"""`oddly bench dashboard`: how fast each page of the Streamlit app renders in a real browser on a
long tick history (issue 6, item 4: each page in ≤ 1.5 s with 10 M ticks), and whether any page
shows a lock error while ingestion and dbt write the same warehouse.

Builds a DuckDB warehouse holding N ticks of simulated history (`benchmarks.history`, as `oddly
bench marts` does), builds the marts (`dbt run --full-refresh`) and publishes them, serves the app
(`streamlit run dashboards/app.py` on 127.0.0.1) and opens every page in headless Debian Chromium.

A page's render time is measured in the browser: from navigation start (`performance.timeOrigin`)
to the first moment the app's script run is over (`stApp`'s `data-test-script-state` is
`notRunning`, so the running indicator is gone), the page shows content (a table, a chart or a
message) and every table and chart on it has drawn (its canvas or svg is there). Each load is a full
page load: a new browser page and a new Streamlit session.

The root URL is loaded first (`root_first_s`: the server's cold start, imports and all, on the
default page). Then loads per page, in navigation order:
- `first`: the page's first load (its queries not cached yet);
- `cached`: `--runs` loads right after, within the app's query cache TTL (`QUERY_TTL`);
- `expired`: `--expired-runs` rounds, each after waiting out the TTL, so the page's own queries run
  again (queries shared with a page loaded earlier in the same round may still be cached).
Then, with `--writer`, a writer loops against the same home (ingest `--writer-ticks` new ticks
through the ingestion's write path, then the dbt cycle `dbt run --selector ingest_cycle` holding
the warehouse, then publish, as the platform does) while `cached` and `expired` are measured again.
Any exception, error or warning on a page is collected; one that mentions a lock is counted apart.

Prints one JSON line; exits non-zero only when the set-up fails, never on a missed target.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import httpx
import numpy as np

from benchmarks.history import History, ingest_round, simulate, write
from benchmarks.marts import CYCLE, FULL_REFRESH, bench_home, run_dbt
from oddly.config import REPO_ROOT, Settings
from oddly.ports import free_port
from oddly.warehouse.dbt_writer import held_for_dbt
from oddly.warehouse.reader import MartsReader
from oddly.warehouse.store import Warehouse

TARGET_SECONDS = 1.5
APP = REPO_ROOT / "dashboards" / "app.py"
# Debian's packages (`apt-get install chromium chromium-driver`; `.ci/run` installs them)
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
LOCK_WORDS = re.compile(r"\block", re.IGNORECASE)  # lock, locked, locking; not clock or blocked

# Installed in every new document before the app's own scripts: records `window.__oddlyReady`
# (ms since navigation start) the first time the page is rendered, as defined in the module's
# docstring.
READY_SCRIPT = """
(() => {
  const content = '[data-testid="stDataFrame"], [data-testid="stVegaLiteChart"], '
    + '[data-testid="stAlertContainer"], [data-testid="stException"]';
  const ready = () => {
    const app = document.querySelector('[data-testid="stApp"]');
    if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
    const main = document.querySelector('[data-testid="stMain"]') || document;
    if (!main.querySelector(content)) return false;
    // tables and charts on screen have drawn (one in a tab not shown never draws)
    const shown = (el) => el.getClientRects().length > 0;
    for (const frame of main.querySelectorAll('[data-testid="stDataFrame"]')) {
      if (shown(frame) && !frame.querySelector('canvas')) return false;
    }
    for (const chart of main.querySelectorAll('[data-testid="stVegaLiteChart"]')) {
      if (shown(chart) && !chart.querySelector('canvas, svg.marks')) return false;
    }
    return true;
  };
  const observer = new MutationObserver(() => {
    if (window.__oddlyReady === undefined && ready()) {
      window.__oddlyReady = performance.now();
      observer.disconnect();
    }
  });
  observer.observe(document, {subtree: true, childList: true, attributes: true});
})();
"""
# What a page shows that is not data: exceptions, error / warning boxes, and their text.
PROBLEMS_SCRIPT = """
const found = [];
for (const [kind, selector] of [
  ['exception', '[data-testid="stException"]'],
  ['error', '[data-testid="stAlertContentError"]'],
  ['warning', '[data-testid="stAlertContentWarning"]'],
  ['dialog', '[data-testid="stDialog"]'],  // e.g. "Page not found"
]) {
  for (const el of document.querySelectorAll(selector)) found.push([kind, el.innerText]);
}
return found;
"""


def page_paths(app: Path = APP) -> list[str]:
    """The name of every page of the app, in navigation order (its `st.Page(url_path=…)`)."""
    return list(page_urls(app))


def page_urls(app: Path = APP) -> dict[str, str]:
    """Every page's name → its URL path: its `url_path`, but "" for the default page (st.navigation
    serves it at the root; its own path answers "Page not found")."""
    pages = re.findall(r'url_path="([^"]+)"(\s*,\s*default=True)?', app.read_text())
    return {name: "" if default else name for name, default in pages}


# --- serving and browsing --------------------------------------------------------------------


def chromium_paths() -> tuple[Path, Path] | None:
    """Debian's chromium and chromedriver, or None when either is missing."""
    binary = CHROMIUM if CHROMIUM.exists() else _which("chromium")
    driver = CHROMEDRIVER if CHROMEDRIVER.exists() else _which("chromedriver")
    return (binary, driver) if binary and driver else None


def _which(name: str) -> Path | None:
    found = shutil.which(name)
    return Path(found) if found else None


@contextmanager
def serve_app(home: Path, log: Path, timeout: float = 60.0) -> Iterator[str]:
    """`streamlit run dashboards/app.py` on a free port of 127.0.0.1 with ODDLY_HOME=`home` (its
    embedded stores); yields the base URL once the server answers, stops it afterwards."""
    port = free_port()
    command = [
        str(Path(sys.executable).parent / "streamlit"),
        "run",
        str(APP),
        "--server.headless",
        "true",
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODDLY_")}
    env["ODDLY_HOME"] = str(home)
    url = f"http://127.0.0.1:{port}"
    with open(log, "w") as out:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while True:
                if process.poll() is not None:
                    tail = log.read_text()[-2000:]
                    raise RuntimeError(f"streamlit exited with {process.returncode}: {tail}")
                try:
                    if httpx.get(f"{url}/_stcore/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"streamlit did not answer in {timeout} s: {log.read_text()[-2000:]}")
                time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def chromium(paths: tuple[Path, Path], width: int = 1400, height: int = 1000) -> Any:
    """Headless Chromium driven by Selenium, with the render-time probe installed in every page."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(paths[0])
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(paths[1])), options=options)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": READY_SCRIPT})
    return driver


@dataclass
class PageLoad:
    seconds: float | None  # navigation start → rendered; None: not rendered within the timeout
    problems: list[tuple[str, str]]  # (exception | error | warning, text)


def load_page(driver: Any, url: str, timeout: float = 30.0) -> PageLoad:
    """Open `url` in a fresh document and wait until the page has rendered (see the module)."""
    driver.get("about:blank")
    driver.get(url)
    deadline = time.monotonic() + timeout
    ready = None
    while ready is None and time.monotonic() < deadline:
        ready = driver.execute_script("return window.__oddlyReady === undefined ? null : window.__oddlyReady")
        if ready is None:
            time.sleep(0.02)
    problems = [(str(kind), str(text)) for kind, text in driver.execute_script(PROBLEMS_SCRIPT)]
    return PageLoad(None if ready is None else float(ready) / 1000, problems)


# --- the benchmark ---------------------------------------------------------------------------


@dataclass
class Writer:
    """Ingestion and the dbt cycle in a loop against the benchmark's home, until stopped."""

    settings: Settings
    warehouse: Warehouse
    history: History
    ticks_per_round: int
    cycles: int = 0
    ticks: int = 0
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._loop, name="bench-writer", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        rng = np.random.default_rng(11)
        while not self.stop.is_set():
            try:
                # wall-clock time since the history's start: the new ticks are "now"
                at_s = max((datetime.now(UTC) - self.history.t0).total_seconds(), self.history.last_s + 1)
                self.ticks += ingest_round(self.warehouse, self.history, rng, self.ticks_per_round, at_s)
                with held_for_dbt(self.settings) as held:
                    run_dbt(self.settings, *CYCLE)
                    held.publish()
                self.cycles += 1
            except Exception as exc:  # reported, and the loop goes on
                self.failures.append(f"{type(exc).__name__}: {str(exc)[-300:]}")
                time.sleep(1)

    def halt(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join()


@dataclass
class Samples:
    loads: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # page → kind → seconds
    timeouts: dict[str, int] = field(default_factory=dict)
    problems: dict[str, set[str]] = field(default_factory=dict)
    lock_errors: int = 0

    def measure(self, driver: Any, base: str, page: str, query: str, kind: str) -> None:
        load = load_page(driver, f"{base}/{page_urls()[page]}{query}")
        if load.seconds is None:
            self.timeouts[page] = self.timeouts.get(page, 0) + 1
        else:
            self.loads.setdefault(page, {}).setdefault(kind, []).append(load.seconds)
        for what, text in load.problems:
            self.problems.setdefault(page, set()).add(f"{what}: {text[:200]}")
            if LOCK_WORDS.search(text):
                self.lock_errors += 1

    def summary(self) -> dict[str, Any]:
        pages: dict[str, Any] = {}
        for page, kinds in self.loads.items():
            row: dict[str, Any] = {}
            for kind, seconds in kinds.items():
                if kind == "first":
                    row["first_s"] = round(seconds[0], 3)
                else:
                    row[f"{kind}_p50_s"] = round(float(np.percentile(seconds, 50)), 3)
                    row[f"{kind}_p95_s"] = round(float(np.percentile(seconds, 95)), 3)
            row["max_s"] = round(max(max(s) for s in kinds.values()), 3)
            pages[page] = row
        slowest = max((p["max_s"] for p in pages.values()), default=None)
        return {
            "pages": pages,
            "slowest_s": slowest,
            "all_within_target": slowest is not None and slowest <= TARGET_SECONDS and not self.timeouts,
            "p95_within_target": all(
                v <= TARGET_SECONDS for p in pages.values() for k, v in p.items() if k.endswith("_p95_s")
            )
            and not self.timeouts,
            "timeouts": self.timeouts,
            "lock_errors": self.lock_errors,
            "problems": {page: sorted(texts) for page, texts in self.problems.items()},
        }


def rounds(
    samples: Samples,
    driver: Any,
    base: str,
    queries: dict[str, str],
    *,
    first: bool,
    runs: int,
    expired_runs: int,
) -> None:
    from dashboards.common import QUERY_TTL  # imports streamlit: only when measuring

    pages = list(queries)
    for page in pages:
        if first:
            samples.measure(driver, base, page, queries[page], "first")
        for _ in range(runs):
            samples.measure(driver, base, page, queries[page], "cached")
    for _ in range(expired_runs):
        time.sleep(QUERY_TTL + 1)
        for page in pages:
            samples.measure(driver, base, page, queries[page], "expired")


def busiest_event(settings: Settings) -> str | None:
    """The current event with the most published price history (the Event page's heaviest)."""
    reader = MartsReader.from_settings(settings)
    try:
        top = reader.query(
            """
            select m.canonical_event_id, count(*) as ticks
            from marts.fct_price_history h
            join marts.fct_line_movements m using (selection_key)
            join marts.dim_events e using (canonical_event_id)
            group by 1 order by 2 desc limit 1
            """
        )
    except Exception:
        top = reader.query("select canonical_event_id from marts.dim_events order by starts_at limit 1")
    finally:
        reader.dispose()
    return None if top.empty else str(top["canonical_event_id"].iloc[0])


def _sizes(settings: Settings) -> dict[str, float]:
    snapshot = settings.home / "published.duckdb"
    return {
        "warehouse_mb": round(settings.duckdb_path.stat().st_size / 1e6),
        "published_mb": round(snapshot.stat().st_size / 1e6) if snapshot.exists() else 0,
    }


@click.command()
@click.option("--ticks", default=10_000_000, show_default=True, help="Ticks of simulated history.")
@click.option("--runs", default=5, show_default=True, help="Cached loads per page (after the first).")
@click.option("--expired-runs", default=3, show_default=True, help="Rounds of loads after the query TTL.")
@click.option("--writer/--no-writer", default=True, show_default=True, help="Measure again while writing.")
@click.option("--writer-ticks", default=20_000, show_default=True, help="Ticks per writer ingestion round.")
@click.option("--seed", default=7, show_default=True)
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Empty ODDLY_HOME to build the warehouse in (kept); default: a temporary one, removed after.",
)
def dashboard(
    ticks: int, runs: int, expired_runs: int, writer: bool, writer_ticks: int, seed: int, home: Path | None
) -> None:
    """Render time of every app page in headless Chromium on a long history, quiet and under writes.

    Needs Debian's chromium and chromium-driver (`apt-get install chromium chromium-driver`).
    Prints one JSON line."""
    paths = chromium_paths()
    if paths is None:
        raise click.ClickException(
            "chromium and chromedriver not found: apt-get install chromium chromium-driver"
        )
    with bench_home(home, "oddly-bench-dashboard-") as root:
        settings = Settings(home=root, warehouse_url=None)
        if settings.duckdb_path.exists():
            raise click.ClickException(f"{settings.duckdb_path} exists; give an empty --home")
        warehouse = Warehouse.from_settings(settings)
        t0 = time.perf_counter()
        history = simulate(ticks, seed, datetime.now(UTC))
        write(warehouse, history)
        generation_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        full = run_dbt(settings, *FULL_REFRESH)
        with held_for_dbt(settings) as held:
            held.publish()
        marts_s = time.perf_counter() - t1
        event_id = busiest_event(settings)
        queries = {page: "" for page in page_paths()}
        if event_id is not None and "event" in queries:
            queries["event"] = f"?event_id={event_id}"
        quiet, busy = Samples(), Samples()
        loop = Writer(settings, warehouse, history, writer_ticks)
        driver = chromium(paths)
        try:
            with serve_app(root, root / "streamlit.log") as base:
                # The root URL first: it runs app.py's st.navigation, as a user's first visit does
                # (a page URL opened first would run the page file alone, see tests/browser).
                root_first = load_page(driver, f"{base}/")
                rounds(quiet, driver, base, queries, first=True, runs=runs, expired_runs=expired_runs)
                if writer:
                    loop.start()
                    while loop.cycles == 0 and not loop.failures and loop.thread is not None:
                        time.sleep(0.5)  # the first cycle published: the writer is in its stride
                    rounds(busy, driver, base, queries, first=False, runs=runs, expired_runs=expired_runs)
                    loop.halt()
        finally:
            loop.halt()
            driver.quit()
        result: dict[str, Any] = {
            "benchmark": "dashboard",
            "ticks": history.tick_count,
            "generation_s": round(generation_s, 1),
            "full_refresh_s": round(full.seconds, 1),
            "marts_and_publish_s": round(marts_s, 1),
            **_sizes(settings),
            "target_s": TARGET_SECONDS,
            "runs": {"first": 1, "cached": runs, "expired": expired_runs},
            "event_id": event_id,
            "root_first_s": None if root_first.seconds is None else round(root_first.seconds, 3),
            "quiet": quiet.summary(),
        }
        if writer:
            result["under_writes"] = {
                **busy.summary(),
                "writer_cycles": loop.cycles,
                "writer_ticks": loop.ticks,
                "writer_failures": loop.failures[:5],
            }
        warehouse.dispose()
        click.echo(json.dumps(result))
