"""Fixtures for the Streamlit app's tests: a home with a seeded warehouse whose marts are built and
published by `oddly dbt build` (once per session), alerts in its app database, and the app run
with `streamlit.testing.v1.AppTest` against it or against an empty home.

The seed (times relative to now, prices home / draw / away on the match result):

- Manchester United v Tottenham Hotspur, Premier League, in 3 h, at four books. 40 min ago every
  book opened near 2.0 on the home win; then pinnacle (4 min ago), 22bet (3 min) and bet365 (2 min)
  shortened it to ~1.78: three price drops and a steam move; 1xbet stayed at 2.08, out of line and
  a value bet against pinnacle's fair price. One red alert on the home win is in the audit trail.
- Chelsea v Arsenal, Premier League, in 5 h: the best prices across 22bet, bet365 and pinnacle
  (2.9 / 3.9 / 2.8) add up to 95.8 %, an arbitrage.
- Real Madrid v Barcelona, La Liga, in 30 h, at two books: nothing special (for the kick-off and
  league filters).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from oddly.alerts.audit import decisions
from oddly.appdb import open_app_db
from oddly.config import Settings
from oddly.matching.run import update_event_map
from oddly.model import PriceColumns, now_utc
from oddly.warehouse.reader import MartsReader
from oddly.warehouse.store import FeedRunRecord, Warehouse
from tests.integration.test_dbt_project import dbt

DASHBOARDS = Path(__file__).resolve().parents[2] / "dashboards"
PAGES = ("scanner", "event", "divergence", "bookmakers", "alerts", "backtest", "models", "rules")
APP_TIMEOUT = 30  # seconds for one AppTest run (the first imports altair and pandas' styler)

Event = tuple[str, str, str, str, float]  # source event id, home, away, league, hours to kick-off
MAN_UTD: Event = ("1", "Manchester United", "Tottenham Hotspur", "Premier League", 3)
CHELSEA: Event = ("2", "Chelsea", "Arsenal", "Premier League", 5)
MADRID: Event = ("3", "Real Madrid", "Barcelona", "La Liga", 30)

OPENING = {
    ("pinnacle", MAN_UTD): (2.0, 3.6, 4.0),
    ("22bet", MAN_UTD): (1.95, 3.5, 3.9),
    ("bet365", MAN_UTD): (2.0, 3.5, 3.8),
    ("1xbet", MAN_UTD): (2.08, 3.55, 3.9),
    ("pinnacle", CHELSEA): (2.6, 3.9, 2.7),
    ("22bet", CHELSEA): (2.5, 3.4, 2.8),
    ("bet365", CHELSEA): (2.9, 3.2, 2.6),
    ("pinnacle", MADRID): (1.5, 4.5, 6.5),
    ("22bet", MADRID): (1.52, 4.4, 6.0),
}
STEAM = (("pinnacle", 4, (1.8, 3.6, 4.0)), ("22bet", 3, (1.75, 3.5, 3.9)), ("bet365", 2, (1.78, 3.5, 3.8)))


@dataclass(frozen=True)
class MarketHome:
    """A home with published marts: its path and the canonical ids of the seeded events."""

    home: Path
    man_utd: str
    chelsea: str
    madrid: str


def write_prices(
    warehouse: Warehouse, run_id: str, at: datetime, prices: Mapping[tuple[str, Event], tuple[float, ...]]
) -> None:
    now = now_utc()
    rows = [
        {
            "bookmaker": book,
            "source_event_id": f"{book}-{event[0]}",
            "sport": "football",
            "league": event[3],
            "home": event[1],
            "away": event[2],
            "starts_at": (now + timedelta(hours=event[4])).replace(second=0, microsecond=0).timestamp(),
            "market": "1x2",
            "outcome": outcome,
            "price": price,
        }
        for (book, event), triple in prices.items()
        for outcome, price in zip(("home", "draw", "away"), triple, strict=True)
    ]
    run = FeedRunRecord(
        run_id, "f", "x", "ok", at, at, 1, len(rows), 0, 0, 0, "{}", 0.0, 0.0, 0.0, "ok", None
    )
    warehouse.write_run(PriceColumns.from_records(rows).to_table(at, run_id), [], run)


def record_alert(settings: Settings, event_id: str, at: datetime) -> None:
    engine = open_app_db(settings)
    with engine.begin() as conn:
        conn.execute(
            decisions.insert().values(
                alert_id="a-steam-1",
                type="steam",
                severity="red",
                action="queued",
                decision_reason="steam: 3 books in 2 min",
                canonical_event_id=event_id,
                bookmaker="pinnacle",
                market="1x2",
                period="ft",
                line=None,
                outcome="home",
                policy_version="p1",
                inputs={},
                decided_at=at,
            )
        )
    engine.dispose()


@pytest.fixture(scope="session")
def market_home(tmp_path_factory: pytest.TempPathFactory) -> MarketHome:
    """The seeded home (see the module's docstring), built and published once per session."""
    home = tmp_path_factory.mktemp("dashboards-marts")
    settings = Settings(home=home)
    warehouse = Warehouse.from_settings(settings)
    now = now_utc()
    write_prices(warehouse, "r0", now - timedelta(minutes=40), OPENING)
    for i, (book, minutes_ago, prices) in enumerate(STEAM, 1):
        write_prices(warehouse, f"r{i}", now - timedelta(minutes=minutes_ago), {(book, MAN_UTD): prices})
    update_event_map(warehouse)
    warehouse.dispose()
    built = dbt(settings, "build")
    assert built.returncode == 0, built.stdout[-3000:]
    ids = MartsReader.from_settings(settings).query(
        "select canonical_event_id, home_team from marts.dim_events"
    )
    by_home = dict(zip(ids["home_team"], ids["canonical_event_id"].astype(str), strict=True))
    found = MarketHome(home, by_home[MAN_UTD[1]], by_home[CHELSEA[1]], by_home[MADRID[1]])
    record_alert(settings, found.man_utd, now - timedelta(minutes=3))
    return found


@pytest.fixture(scope="session")
def app_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The app's entry point and pages, copied to a temporary folder, with a placeholder for each
    page not written yet (the repository is never touched)."""
    root = tmp_path_factory.mktemp("app") / "dashboards"
    (root / "app_pages").mkdir(parents=True)
    shutil.copy(DASHBOARDS / "app.py", root / "app.py")
    for page in PAGES:
        source = DASHBOARDS / "app_pages" / f"{page}.py"
        target = root / "app_pages" / f"{page}.py"
        if source.exists():
            shutil.copy(source, target)
        else:
            target.write_text(f"import streamlit as st\n\nst.title({page.capitalize()!r})\n")
    return root / "app.py"


def use_home(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """Point the app at `home` (embedded stores) and forget what earlier tests cached."""
    monkeypatch.setenv("ODDLY_HOME", str(home))
    for name in ("ODDLY_WAREHOUSE_URL", "ODDLY_APP_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def open_page(app_script: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., AppTest]]:
    """`open_page(home, "event", event_id=…)`: the app on `home`, run on one page with those query
    parameters; returns the AppTest after the run."""

    def run(home: Path, page: str, **query: str) -> AppTest:
        use_home(monkeypatch, home)
        app = AppTest.from_file(str(app_script), default_timeout=APP_TIMEOUT)
        app.run()
        app.switch_page(f"app_pages/{page}.py")
        app.query_params.update(query)
        return app.run()

    yield run
    st.cache_data.clear()
    st.cache_resource.clear()
