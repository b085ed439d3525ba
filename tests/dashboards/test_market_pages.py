"""The Scanner, Event and Divergence pages with `AppTest` on published marts (see conftest.py for
the seed), and on a home with no marts yet."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboards.common import NO_DATA
from oddly.views import market as views
from oddly.warehouse.reader import MartsReader
from tests.dashboards.conftest import CHELSEA, OPENING, MarketHome

pytestmark = pytest.mark.slow

OpenPage = Callable[..., AppTest]


def no_errors(app: AppTest) -> None:
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, [e.value for e in app.error]


def scanner_rows(app: AppTest) -> set[tuple[str, str, str]]:
    rows = app.dataframe[0].value
    return {(r.type, r.event, r.bookmaker) for r in rows.itertuples()}


# --- scanner -------------------------------------------------------------------------------------


def test_scanner_lists_every_opportunity_type(open_page: OpenPage, market_home: MarketHome) -> None:
    app = open_page(market_home.home, "scanner")
    no_errors(app)
    rows = scanner_rows(app)
    man_utd, chelsea = "Manchester United v Tottenham Hotspur", "Chelsea v Arsenal"
    assert ("Price drop (30 min)", man_utd, "22bet") in rows
    assert ("Steam move", man_utd, "pinnacle") in rows  # the first mover
    assert ("Value bet", man_utd, "1xbet") in rows
    assert ("Book out of line", man_utd, "1xbet") in rows
    frame = app.dataframe[0].value
    arbitrage_books = {frozenset(b.split(", ")) for t, e, b in rows if (t, e) == ("Arbitrage", chelsea)}
    assert arbitrage_books == {frozenset({"bet365", "22bet", "pinnacle"})}
    assert frame["size_pct"].is_monotonic_decreasing
    arbitrage = frame[frame["type"] == "Arbitrage"].iloc[0]
    assert arbitrage["size_pct"] == pytest.approx(100 * (1 - (1 / 2.9 + 1 / 3.9 + 1 / 2.8)), abs=0.01)
    drop = frame[(frame["type"] == "Price drop (30 min)") & (frame["bookmaker"] == "22bet")].iloc[0]
    assert drop["size_pct"] == pytest.approx(100 * (1 - 1.75 / 1.95), abs=0.01)
    assert drop["selection"] == "Match result: Manchester United"
    assert drop["link"].startswith(f"event?event_id={market_home.man_utd}&market=1x2")


def test_scanner_filters_change_the_table(open_page: OpenPage, market_home: MarketHome) -> None:
    app = open_page(market_home.home, "scanner")
    everything = scanner_rows(app)
    app.multiselect(key="scanner_types").set_value(["arbitrage"]).run()
    no_errors(app)
    assert {t for t, _, _ in scanner_rows(app)} == {"Arbitrage"}
    app.multiselect(key="scanner_types").set_value(list(views.OPPORTUNITY_TYPES))
    app.multiselect(key="scanner_bookmakers").set_value(["1xbet"]).run()
    assert {b for _, _, b in scanner_rows(app)} == {"1xbet"}
    app.multiselect(key="scanner_bookmakers").set_value([])
    app.number_input(key="scanner_min_size").set_value(7.0).run()
    kept = app.dataframe[0].value
    assert (kept["size_pct"] >= 7).all() and 0 < len(kept) < len(everything)
    app.number_input(key="scanner_min_size").set_value(0.0)
    app.multiselect(key="scanner_leagues").set_value(["La Liga"]).run()
    assert app.info and "No current opportunity matches" in app.info[0].value


def test_scanner_presets_are_saved_and_loaded(open_page: OpenPage, market_home: MarketHome) -> None:
    app = open_page(market_home.home, "scanner")
    app.multiselect(key="scanner_types").set_value(["value", "out_of_line"])
    app.selectbox(key="scanner_kick_off").set_value("6 h")
    app.text_input(key="scanner_preset_name").set_value("soft books").run()
    app.button[1].click().run()  # Save
    no_errors(app)
    assert any("Saved preset “soft books”" in s.value for s in app.success)
    app.multiselect(key="scanner_types").set_value(list(views.OPPORTUNITY_TYPES))
    app.selectbox(key="scanner_kick_off").set_value("any time").run()
    app.selectbox(key="scanner_preset").set_value("soft books").run()
    app.button[0].click().run()  # Load
    no_errors(app)
    assert app.multiselect(key="scanner_types").value == ["value", "out_of_line"]
    assert app.selectbox(key="scanner_kick_off").value == "6 h"
    assert {t for t, _, _ in scanner_rows(app)} == {"Value bet", "Book out of line"}


# --- event ---------------------------------------------------------------------------------------


def test_event_page_opens_from_an_alert_link(open_page: OpenPage, market_home: MarketHome) -> None:
    app = open_page(market_home.home, "event", event_id=market_home.man_utd, market="1x2", outcome="away")
    no_errors(app)
    assert app.header[0].value == "Manchester United v Tottenham Hotspur"
    assert [b.value for b in app.selectbox] == ["Premier League", market_home.man_utd, ("1x2", "ft", None)]
    prices = app.dataframe[0].value
    assert list(prices.columns) == [
        "Tottenham Hotspur",
        "Manchester United",
        "Draw",
    ]  # the link's outcome first
    assert (
        prices.loc["22bet", "Manchester United"] == 1.75 and prices.loc["1xbet", "Manchester United"] == 2.08
    )
    assert "fair (no-vig)" in prices.index
    styles = app.dataframe[0].proto.arrow_data.styler.styles
    assert "font-weight: bold" in styles  # the best price highlighted
    charts = app.get("vega_lite_chart")
    assert len(charts) == 3  # one per outcome
    spec = charts[0].proto.spec
    assert "step-after" in spec and "crimson" not in spec  # the alert was on the home win
    assert "crimson" in charts[1].proto.spec and "decision_reason" in charts[1].proto.spec


def test_event_page_without_parameters_offers_a_picker(open_page: OpenPage, market_home: MarketHome) -> None:
    app = open_page(market_home.home, "event")
    no_errors(app)
    league, picker = app.selectbox
    assert league.value == "All leagues" and league.options == ["All leagues", "La Liga", "Premier League"]
    assert picker.value is None and len(picker.options) == 3
    assert "Pick an event" in app.info[0].value
    picker.set_value(market_home.chelsea).run()
    no_errors(app)
    assert app.header[0].value == "Chelsea v Arsenal"
    assert app.query_params["event_id"] == market_home.chelsea
    app.run()
    assert app.selectbox[0].value == "All leagues" and len(app.selectbox[1].options) == 3  # as chosen
    app.selectbox[0].set_value("La Liga").run()  # a league: pick one of its events
    no_errors(app)
    assert app.selectbox[0].value == "La Liga" and app.selectbox[1].value is None
    assert [o.split(" · ")[0] for o in app.selectbox[1].options] == ["Real Madrid v Barcelona"]
    assert "event_id" not in app.query_params and "Pick an event" in app.info[0].value


def test_event_page_explains_an_unknown_event(open_page: OpenPage, market_home: MarketHome) -> None:
    app = open_page(market_home.home, "event", event_id="no-such-event")
    no_errors(app)
    assert "No current event has the id `no-such-event`" in app.warning[0].value


def test_price_history_holds_each_line_to_the_newest_tick(market_home: MarketHome) -> None:
    reader = MartsReader(warehouse_url=None, home=market_home.home)
    history = views.price_history(reader, market_home.man_utd, "1x2", "ft", None)
    home_win = history[history["outcome"] == "home"]
    pinnacle = home_win[home_win["bookmaker"] == "pinnacle"]["price"].tolist()
    assert pinnacle == [2.0, 1.8, 1.8]  # opened, moved, held to now
    assert home_win[home_win["bookmaker"] == "1xbet"]["price"].tolist() == [2.08, 2.08]
    assert home_win.groupby("bookmaker")["observed_at"].max().nunique() == 1


# --- divergence --------------------------------------------------------------------------------


def no_vig(prices: tuple[float, ...]) -> list[float]:
    return [(1 / p) / sum(1 / q for q in prices) for p in prices]


def test_divergence_heatmap_has_a_cell_per_book_and_event(
    open_page: OpenPage, market_home: MarketHome
) -> None:
    app = open_page(market_home.home, "divergence")
    no_errors(app)
    assert app.get("vega_lite_chart"), "no heatmap"
    edges = app.dataframe[0].value
    assert edges["edge_pct"].is_monotonic_decreasing
    # Chelsea's draw at pinnacle, 3.9, against the mean of 22bet's and bet365's no-vig probabilities
    consensus = (no_vig(OPENING[("22bet", CHELSEA)])[1] + no_vig(OPENING[("bet365", CHELSEA)])[1]) / 2
    top = edges.iloc[0]
    assert (top["event"], top["bookmaker"]) == ("Chelsea v Arsenal", "pinnacle")
    assert top["selection"] == "Match result: Draw"
    assert top["edge_pct"] == pytest.approx(100 * (3.9 * consensus - 1), abs=1e-6)
    reader = MartsReader(warehouse_url=None, home=market_home.home)
    grid = views.divergence_grid(reader, "1x2", "ft")
    assert len(grid) == 4 + 3 + 2 and grid.groupby(["canonical_event_id", "bookmaker"]).size().max() == 1
    assert grid["spread"].is_monotonic_decreasing  # the widest spread first
    app.slider[0].set_value(5).run()
    no_errors(app)


# --- empty state ---------------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["scanner", "event", "divergence"])
def test_a_home_without_marts_explains_itself(open_page: OpenPage, tmp_path: Path, page: str) -> None:
    app = open_page(tmp_path, page, event_id="x")
    no_errors(app)
    assert [i.value for i in app.info] == [NO_DATA]
