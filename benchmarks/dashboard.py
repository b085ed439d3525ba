"""`oddly bench dashboard`: how fast each page of the Streamlit app renders in a real browser on a
long tick history (issue 6, item 4: each page in ≤ 1.5 s with 10 M ticks), and whether any page
shows a lock error while ingestion and dbt write the same warehouse.

Builds a DuckDB warehouse holding N ticks of simulated history (`benchmarks.history`, as `oddly
bench marts` does), starts the long-lived marts worker (`benchmarks.marts.MartsWorker`: dbt kept
warm in one process, as the Dagster code server keeps it) and has it build every model and publish
the marts, serves the app (`streamlit run dashboards/app.py` on 127.0.0.1) and opens every page in
headless Debian Chromium.

A page's render time is measured in the browser, in two ways:
- **full page load** (`pages`): a new document and a new Streamlit session — what opening a link
  (an alert's, a bookmark) costs. From navigation start (`performance.timeOrigin`) to the first
  moment the app's script run is over (`stApp`'s `data-test-script-state` is `notRunning`), the
  page shows content (a table, a chart or a message), no element is still loading its code (a
  skeleton) and every table and chart on it has drawn (its canvas or svg is there);
- **in-app navigation** (`navigation`): a click on the page's link in the sidebar of the open app
  (the same session; no new document) — what moving between pages costs. From the click until a
  script run has gone by and the page, titled as its link, is rendered as above with none of the
  previous page's elements left. `event_picked` is choosing the busiest event in the Event page's
  picker after that (the sidebar opens Event without an event).

The root URL is loaded first (`root_first_s`: the server's cold start, imports and all, on the
default page). Then full page loads per page, in navigation order:
- `first`: the page's first load (its queries not cached yet);
- `cached`: `--runs` loads right after (the app caches query results per published snapshot);
- `after_publish`: `--publish-runs` rounds, each after a new snapshot is published (the same marts
  copied again, as every marts cycle does) and the app database's cache TTL (`QUERY_TTL`) is over,
  so each page's queries run again (queries shared with a page loaded earlier in the same round
  are cached by then, as for a user).
Then `--nav-runs` rounds of in-app navigation through every page.
With `--writer`, a writer then loops against the same home as the platform does — ingest
`--writer-ticks` new ticks through the ingestion's write path, then one marts cycle in the warm
worker (`oddly.warehouse.cycle.run_marts_cycle`: matching, the `ingest_cycle` models, the
publish) — while the same loads and navigation are measured again (`after_publish` rounds wait
out the TTL; the writer publishes). Any exception, error or warning on a page is collected; one
that mentions a lock is counted apart.

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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import httpx
import numpy as np

from benchmarks.history import History, ingest_round, simulate, write
from benchmarks.marts import MartsWorker, bench_home
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
CHART = '[data-testid="stVegaLiteChart"]'
LOCK_WORDS = re.compile(r"\block", re.IGNORECASE)  # lock, locked, locking; not clock or blocked

# Installed in every new document before the app's own scripts: records `window.__oddlyReady`
# (ms since navigation start) the first time the page is rendered, as defined in the module's
# docstring; and defines `window.__oddlyNavigate(element, title, expect)`, which clicks `element`
# (a link of the app's navigation, an option of a picker) and records in `window.__oddlyNav.ready`
# the ms from the click until a script run has gone by and the page titled `title` is rendered,
# the previous page's elements gone.
READY_SCRIPT = """
(() => {
  const content = '[data-testid="stDataFrame"], [data-testid="stVegaLiteChart"], '
    + '[data-testid="stAlertContainer"], [data-testid="stException"]';
  const state = () => {
    const app = document.querySelector('[data-testid="stApp"]');
    return app ? app.getAttribute('data-test-script-state') : null;
  };
  const main = () => document.querySelector('[data-testid="stMain"]') || document;
  const rendered = () => {
    if (state() !== 'notRunning') return false;
    const page = main();
    if (!page.querySelector(content)) return false;
    // an element whose code is still loading shows a skeleton (tables and charts load lazily)
    if (page.querySelector('[data-testid^="stSkeleton"]')) return false;
    // tables and charts on screen have drawn (one in a tab not shown never draws)
    const shown = (el) => el.getClientRects().length > 0;
    for (const frame of page.querySelectorAll('[data-testid="stDataFrame"]')) {
      if (shown(frame) && !frame.querySelector('canvas')) return false;
    }
    for (const chart of page.querySelectorAll('[data-testid="stVegaLiteChart"]')) {
      if (shown(chart) && !chart.querySelector('canvas, svg.marks')) return false;
    }
    return true;
  };
  const observer = new MutationObserver(() => {
    if (window.__oddlyReady === undefined && rendered()) {
      window.__oddlyReady = performance.now();
      observer.disconnect();
    }
  });
  observer.observe(document, {subtree: true, childList: true, attributes: true});

  window.__oddlyNavigate = (element, title, expect) => {
    const nav = window.__oddlyNav = {start: performance.now(), ran: false, ready: null};
    const heading = () => (main().querySelector('h1') || {innerText: ''}).innerText.trim();
    const before = heading();
    const expected = () => expect !== null && main().querySelector(expect) !== null;
    const hadExpected = expected();
    const done = () => nav.ran && rendered() && heading().startsWith(title)
      && !main().querySelector('[data-stale="true"]');
    const watch = new MutationObserver((records) => {
      for (const r of records) {
        if (r.attributeName === 'data-test-script-state'
            && (r.oldValue === 'running' || r.target.getAttribute(r.attributeName) === 'running')) {
          nav.ran = true;
        }
      }
      // A short run's "running" may never reach the DOM (rendered together with its end); then
      // what the run drew says it happened: the new page's title, or the element expected.
      if ((before !== heading() && heading().startsWith(title)) || (!hadExpected && expected())) {
        nav.ran = true;
      }
      if (nav.ready === null && done()) {
        nav.ready = performance.now() - nav.start;
        watch.disconnect();
      }
    });
    watch.observe(document, {subtree: true, childList: true, attributes: true, attributeOldValue: true});
    element.click();
  };
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


def navigate(
    driver: Any, element: Any, title: str, expect: str | None = None, timeout: float = 30.0
) -> PageLoad:
    """Click `element` in the open app and wait until the page titled `title` has rendered after a
    script run (READY_SCRIPT's `__oddlyNavigate`); seconds from the click. `expect`: a CSS selector
    of what the run draws that the page did not show before (a rerun of the same page)."""
    driver.execute_script(
        "window.__oddlyNavigate(arguments[0], arguments[1], arguments[2])", element, title, expect
    )
    deadline = time.monotonic() + timeout
    ready = None
    while ready is None and time.monotonic() < deadline:
        ready = driver.execute_script("return window.__oddlyNav.ready")
        if ready is None:
            time.sleep(0.02)
    problems = [(str(kind), str(text)) for kind, text in driver.execute_script(PROBLEMS_SCRIPT)]
    return PageLoad(None if ready is None else float(ready) / 1000, problems)


def page_titles(app: Path = APP) -> dict[str, str]:
    """Every page's name (its url_path) → its title, as the navigation shows it."""
    pages = re.findall(r'st\.Page\([^)]*?title="([^"]+)"[^)]*?url_path="([^"]+)"', app.read_text())
    return {name: title for title, name in pages}


def nav_link(driver: Any, title: str) -> Any:
    """The sidebar's link to the page titled `title`."""
    from selenium.webdriver.common.by import By

    for link in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stSidebarNav"] a'):
        if link.text.splitlines()[-1].strip() == title:
            return link
    raise RuntimeError(f"no link to {title!r} in the app's navigation")


def picker_option(driver: Any, label: str, text: str, timeout: float = 10.0) -> Any:
    """Type `text` into the page's select box labelled `label`; the first option it then offers."""
    from selenium.webdriver.common.by import By

    boxes = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stMain"] [data-testid="stSelectbox"]')
    box = next(b for b in boxes if b.find_element(By.CSS_SELECTOR, "label").text.strip() == label)
    field = box.find_element(By.CSS_SELECTOR, "input")
    field.click()
    field.send_keys(text)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        options = driver.find_elements(By.CSS_SELECTOR, '[role="option"]')
        if options:
            return options[0]
        time.sleep(0.02)
    raise RuntimeError(f"the picker {label!r} offered nothing for {text!r}")


# --- the benchmark ---------------------------------------------------------------------------


@dataclass
class Writer:
    """Ingestion and the marts cycle in a loop against the benchmark's home, until stopped: the
    ingestion's write path in this process, the cycle in the warm marts worker."""

    worker: MartsWorker
    warehouse: Warehouse
    history: History
    ticks_per_round: int
    cycles: int = 0
    ticks: int = 0
    cycle_seconds: list[float] = field(default_factory=list)
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
                self.cycle_seconds.append(self.worker.run("cycle").seconds)
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
        """A full page load of `page`."""
        self.add(page, kind, load_page(driver, f"{base}/{page_urls()[page]}{query}"))

    def add(self, page: str, kind: str, load: PageLoad) -> None:
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
    publish_runs: int,
    publish: Callable[[], None] | None,
) -> None:
    """Full page loads: `first`, `runs` cached ones per page, then `publish_runs` rounds after a new
    snapshot (`publish`; None: the writer publishes) and the app database's cache TTL."""
    from dashboards.common import QUERY_TTL  # imports streamlit: only when measuring

    pages = list(queries)
    for page in pages:
        if first:
            samples.measure(driver, base, page, queries[page], "first")
        for _ in range(runs):
            samples.measure(driver, base, page, queries[page], "cached")
    for _ in range(publish_runs):
        time.sleep(QUERY_TTL + 1)
        if publish is not None:
            publish()
        for page in pages:
            samples.measure(driver, base, page, queries[page], "after_publish")


def navigation_rounds(samples: Samples, driver: Any, base: str, event: str | None, runs: int) -> None:
    """`runs` rounds of in-app navigation through every page, from one full load of the app; on the
    Event page, then choosing `event` (its "Home v Away") in the picker."""
    titles = page_titles()
    load_page(driver, f"{base}/")  # the default page: visited last in each round
    order = [*list(titles)[1:], *list(titles)[:1]]
    for _ in range(runs):
        for page in order:
            title = titles[page]
            samples.add(page, "navigation", navigate(driver, nav_link(driver, title), title))
            if page == "event" and event is not None:
                option = picker_option(driver, "Event", event)
                samples.add("event_picked", "navigation", navigate(driver, option, title, CHART))


def busiest_event(settings: Settings) -> tuple[str, str] | None:
    """The current event with the most published price history (the Event page's heaviest): its id
    and "Home v Away"."""
    reader = MartsReader.from_settings(settings)
    try:
        top = reader.query(
            """
            select m.canonical_event_id, e.home_team || ' v ' || e.away_team as name, count(*) as ticks
            from marts.fct_price_history h
            join marts.fct_line_movements m using (selection_key)
            join marts.dim_events e using (canonical_event_id)
            group by 1, 2 order by 3 desc, 1 limit 1
            """
        )
    except Exception:
        top = reader.query(
            "select canonical_event_id, home_team || ' v ' || away_team as name "
            "from marts.dim_events order by starts_at limit 1"
        )
    finally:
        reader.dispose()
    return None if top.empty else (str(top["canonical_event_id"].iloc[0]), str(top["name"].iloc[0]))


def _sizes(settings: Settings) -> dict[str, float]:
    snapshot = settings.home / "published.duckdb"
    return {
        "warehouse_mb": round(settings.duckdb_path.stat().st_size / 1e6),
        "published_mb": round(snapshot.stat().st_size / 1e6) if snapshot.exists() else 0,
    }


@click.command()
@click.option("--ticks", default=10_000_000, show_default=True, help="Ticks of simulated history.")
@click.option(
    "--runs", default=5, show_default=True, help="Cached full page loads per page (after the first)."
)
@click.option(
    "--publish-runs", default=3, show_default=True, help="Rounds of full page loads after a new publish."
)
@click.option(
    "--nav-runs", default=5, show_default=True, help="Rounds of in-app navigation through every page."
)
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
    ticks: int,
    runs: int,
    publish_runs: int,
    nav_runs: int,
    writer: bool,
    writer_ticks: int,
    seed: int,
    home: Path | None,
) -> None:
    """Render time of every app page in headless Chromium on a long history, quiet and under writes:
    full page loads and in-app navigation.

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

        def publish() -> None:  # the same marts again, as a new snapshot
            with held_for_dbt(settings) as held:
                held.publish()

        with MartsWorker(settings) as worker:
            full = worker.run("full")  # every model built, then published
            busiest = busiest_event(settings)
            queries = {page: "" for page in page_paths()}
            if busiest is not None and "event" in queries:
                queries["event"] = f"?event_id={busiest[0]}"
            event_name = None if busiest is None else busiest[1]
            quiet, quiet_nav, busy, busy_nav = Samples(), Samples(), Samples(), Samples()
            loop = Writer(worker, warehouse, history, writer_ticks)
            driver = chromium(paths)
            try:
                with serve_app(root, root / "streamlit.log") as base:
                    # The root URL first: it runs app.py's st.navigation, as a user's first visit
                    # does (a page URL opened first would run the page file alone, see tests/browser).
                    root_first = load_page(driver, f"{base}/")
                    rounds(
                        quiet, driver, base, queries, first=True, runs=runs, publish_runs=publish_runs,
                        publish=publish,
                    )  # fmt: skip
                    navigation_rounds(quiet_nav, driver, base, event_name, nav_runs)
                    if writer:
                        loop.start()
                        while loop.cycles == 0 and not loop.failures and loop.thread is not None:
                            time.sleep(0.5)  # the first cycle published: the writer is in its stride
                        rounds(
                            busy, driver, base, queries, first=False, runs=runs, publish_runs=publish_runs,
                            publish=None,
                        )  # fmt: skip
                        navigation_rounds(busy_nav, driver, base, event_name, nav_runs)
                        loop.halt()
            finally:
                loop.halt()
                driver.quit()
        result: dict[str, Any] = {
            "benchmark": "dashboard",
            "ticks": history.tick_count,
            "generation_s": round(generation_s, 1),
            "marts_worker_start_s": round(worker.start_seconds, 1),
            "full_refresh_and_publish_s": round(full.seconds, 1),
            **_sizes(settings),
            "target_s": TARGET_SECONDS,
            "runs": {"first": 1, "cached": runs, "after_publish": publish_runs, "navigation": nav_runs},
            "event_id": None if busiest is None else busiest[0],
            "root_first_s": None if root_first.seconds is None else round(root_first.seconds, 3),
            "quiet": quiet.summary(),
            "quiet_navigation": quiet_nav.summary(),
        }
        if writer:
            result["under_writes"] = {
                **busy.summary(),
                "writer_cycles": loop.cycles,
                "writer_ticks": loop.ticks,
                "writer_cycle_p50_s": round(float(np.median(loop.cycle_seconds)), 2)
                if loop.cycle_seconds
                else None,
                "writer_failures": loop.failures[:5],
            }
            result["under_writes_navigation"] = busy_nav.summary()
        warehouse.dispose()
        click.echo(json.dumps(result))
