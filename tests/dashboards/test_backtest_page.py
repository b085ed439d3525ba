"""The Backtest page with `AppTest`: the summary of a stored backtest run (the alert types and the
Kaunitz et al. strategy side by side, with their intervals), the live standing, the graded bets
narrowed by the filters, and an empty app database explained in words.

The page is run on its own (dashboards/app.py's navigation is not edited here), and never imported
by the test module: a page runs its queries when imported."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import altair as alt
import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from oddly.appdb import open_app_db
from oddly.grading.grade import bet_frame, grade
from oddly.grading.run import GradingRun
from oddly.grading.stats import summarize
from oddly.grading.store import write_run

pytestmark = pytest.mark.slow

PAGE = Path(__file__).resolve().parents[2] / "dashboards" / "app_pages" / "backtest.py"
KICK_OFF = datetime(2025, 10, 4, 15, 0, tzinfo=UTC)


def graded(source: str, rows: list[tuple[str, str, str, float]]) -> pd.DataFrame:
    """(type, event, bookmaker, price) bets on home wins, closed at Pinnacle 2.00 / 3.50 / 4.00."""
    bets = bet_frame(
        [
            {
                "source": "strategy" if kind == "kaunitz" else source,
                "signal_key": f"{kind}-{i}",
                "type": kind,
                "canonical_event_id": event,
                "event_name": f"{event} v Rovers",
                "kick_off": KICK_OFF,
                "market": "1x2",
                "period": "ft",
                "outcome": "home",
                "bookmaker": book,
                "price": price,
                "taken_at": KICK_OFF - timedelta(hours=2),
            }
            for i, (kind, event, book, price) in enumerate(rows)
        ]
    )
    implied = [1 / 2.0, 1 / 3.5, 1 / 4.0]
    closes = pd.DataFrame(
        [
            {
                "canonical_event_id": event,
                "market": "1x2",
                "period": "ft",
                "line_key": -1e9,
                "outcome": "home",
                "closing_bookmaker": "pinnacle",
                "closing_price": 2.0,
                "closing_at": KICK_OFF,
                "closing_overround": sum(implied) - 1,
                "fair_probability": implied[0] / sum(implied),
            }
            for event in {r[1] for r in rows}
        ]
    )
    results = pd.DataFrame(
        [
            {
                "canonical_event_id": event,
                "result_source": "test",
                "home_goals": 2.0 if event == "United" else 0.0,
                "away_goals": 1.0,
                "home_goals_ht": 0.0,
                "away_goals_ht": 0.0,
            }
            for event in {r[1] for r in rows}
        ]
    )
    return grade(bets, closes, results)


def store(home: Path) -> None:
    engine = open_app_db(f"sqlite:///{home / 'app.db'}")
    backtest = graded(
        "backtest",
        [
            ("value", "United", "bet365", 2.2),
            ("value", "City", "bwin", 2.3),
            ("sharp_drop", "United", "bet365", 2.05),
            ("kaunitz", "City", "pinnacle", 2.4),
        ],
    )
    live = graded("live", [("steam", "United", "coral", 2.1)])
    for source, bets in (("backtest", backtest), ("live", live)):
        started = datetime(2025, 10, 5, tzinfo=UTC)
        run = GradingRun(
            run_id=f"{source}-1",
            source=source,
            started_at=started,
            finished_at=started,
            params={"rules_version": "r1", "since": "2025-10-01T00:00:00+00:00", "until": ""},
            bets=bets,
            summary=summarize(bets, resamples=200),
            skipped=Counter({"steam: drifting steam: no single bet follows it": 3}),
            counts={"signals": bets["signal_key"].nunique(), "events": 2},
        )
        write_run(engine, run, replace_live=source == "live")
    engine.dispose()


def open_page(home: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("ODDLY_HOME", str(home))
    for name in ("ODDLY_WAREHOUSE_URL", "ODDLY_APP_DATABASE_URL", "ODDLY_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    st.cache_data.clear()
    st.cache_resource.clear()
    return AppTest.from_file(str(PAGE), default_timeout=30).run()


def table(app: AppTest, column: str) -> list[pd.DataFrame]:
    return [d.value for d in app.dataframe if column in d.value.columns]


def test_backtest_page_shows_types_beside_the_strategy_and_filters_bets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store(tmp_path)
    app = open_page(tmp_path, monkeypatch)
    assert not app.exception, [e.value for e in app.exception]
    backtest, live = table(app, "roi_ci_high")
    assert backtest["type"].tolist() == ["value", "sharp drop", "Kaunitz et al. (strategy)"]
    assert backtest["source"].tolist() == ["backtest", "backtest", "strategy"]
    value = backtest.set_index("type").loc["value"]
    fair = (1 / 2.0) / (1 / 2.0 + 1 / 3.5 + 1 / 4.0)
    assert value["mean_clv"] == pytest.approx(((2.2 + 2.3) / 2) * fair - 1)
    assert value["roi"] == pytest.approx((1.2 - 1.0) / 2)  # United won, City lost
    assert live["type"].tolist() == ["steam"]
    charts = app.get("vega_lite_chart")
    assert len(charts) == 4  # CLV and ROI with their intervals, for the backtest and for the live alerts
    for chart in charts:
        spec = json.loads(chart.proto.spec)
        alt.LayerChart.from_dict({**spec, "data": {"values": []}}, validate=True)  # valid Vega-Lite
    bets = table(app, "signal_key")
    assert len(bets[0]) == 4 and len(bets[1]) == 1
    app.multiselect(key="backtest_types").set_value(["kaunitz"]).run()
    assert not app.exception
    narrowed = table(app, "signal_key")[0]
    assert narrowed["type"].tolist() == ["kaunitz"] and narrowed["bookmaker"].tolist() == ["pinnacle"]
    app.toggle(key="backtest_settled").set_value(True).run()
    assert len(table(app, "signal_key")[0]) == 1


def test_backtest_page_explains_an_empty_app_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = open_page(tmp_path, monkeypatch)
    assert not app.exception
    infos = " ".join(str(i.value) for i in app.info)
    assert "Nothing graded yet" in infos and "`oddly backtest`" in infos
    assert "No live alert graded yet" in infos
    st.cache_data.clear()
