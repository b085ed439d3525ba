"""Divergence: books x events, each cell the book's edge against the consensus of the other books
(leave-one-out, no-vig) on one market: where a book stands apart, and which way."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pandas as pd
import streamlit as st

from dashboards.common import explained, freshness_note, from_marts
from oddly.views import market as views


def heatmap(grid: pd.DataFrame) -> dict[str, Any]:
    """A Vega-Lite spec (written out: Altair's schema validation costs more than the query):
    events down, books across, each cell coloured by the book's edge."""
    limit = max(5.0, float(grid["edge_pct"].abs().quantile(0.95)))  # one outlier must not wash out the rest
    shown = ["event", "bookmaker", "selection", "price", "edge_pct", "probability_points", "other_books"]
    return {
        "data": grid[[*shown, "spread"]],
        "mark": {"type": "rect"},
        "encoding": {
            "x": {
                "field": "bookmaker",
                "type": "nominal",
                "title": "Bookmaker",
                "axis": {"orient": "top", "labelAngle": -30},
            },
            "y": {
                "field": "event",
                "type": "nominal",
                "title": None,
                "sort": {"field": "spread", "order": "descending"},
            },
            "color": {
                "field": "edge_pct",
                "type": "quantitative",
                "title": "Edge %",
                "scale": {"scheme": "redblue", "domain": [-limit, limit], "domainMid": 0, "clamp": True},
            },
            "tooltip": [
                {"field": "event", "type": "nominal"},
                {"field": "bookmaker", "type": "nominal"},
                {"field": "selection", "type": "nominal"},
                {"field": "price", "type": "quantitative", "format": ".2f"},
                {"field": "edge_pct", "type": "quantitative", "title": "edge %", "format": "+.1f"},
                {
                    "field": "probability_points",
                    "type": "quantitative",
                    "title": "probability points",
                    "format": "+.1f",
                },
                {"field": "other_books", "type": "quantitative", "title": "other books"},
            ],
        },
        "height": {"step": 22},
    }


def with_words(grid: pd.DataFrame, market: str, period: str) -> pd.DataFrame:
    return grid.assign(
        selection=[
            views.selection_words(market, period, r.line, r.outcome, r.home_team, r.away_team)
            for r in grid.itertuples()
        ],
        link=[
            f"event?{urlencode({'event_id': e, 'market': market, 'period': period, 'outcome': o})}"
            for e, o in zip(grid["canonical_event_id"], grid["outcome"], strict=True)
        ],
    )


st.title("Divergence")
st.caption(
    "Each cell: the book's best edge on the market against the other books' consensus "
    "(price × their no-vig probability − 1). Blue: the book is longer than the rest (value if they "
    "are right); red: shorter. The events with the widest spread come first."
)
with explained():
    freshness_note(from_marts(views.newest_price_at)["at"].iloc[0])
    markets = from_marts(views.divergence_markets)
    if markets.empty:
        st.info(
            "No market is quoted by two or more books yet, so there is nothing to compare. Add a "
            "second bookmaker feed (or start the simulator, which prices several)."
        )
    else:
        options = [(str(m), str(p)) for m, p in markets[["market", "period"]].itertuples(index=False)]
        catalog = from_marts(views.sports_and_leagues)
        left, middle, right = st.columns(3)
        market, period = left.selectbox(
            "Market", options, format_func=lambda o: views.market_words(o[0], o[1], None)
        )
        sports = middle.multiselect("Sport", sorted(catalog["sport"].dropna().unique()))
        events_shown = right.slider("Events", min_value=5, max_value=100, value=30, step=5)
        grid = from_marts(views.divergence_grid, market, period, tuple(sports), events_shown)
        if grid.empty:
            st.info("No event of these sports has this market at two or more books right now.")
        else:
            grid = with_words(grid, market, period)
            st.vega_lite_chart(spec=heatmap(grid), width="stretch")
            st.subheader("Largest edges")
            st.dataframe(
                grid.sort_values("edge_pct", ascending=False).head(20),
                hide_index=True,
                column_order=["event", "bookmaker", "selection", "price", "edge_pct", "other_books", "link"],
                column_config={
                    "event": "Event",
                    "bookmaker": "Bookmaker",
                    "selection": "Selection",
                    "price": st.column_config.NumberColumn("Price", format="%.2f"),
                    "edge_pct": st.column_config.NumberColumn("Edge %", format="%+.1f"),
                    "other_books": "Other books",
                    "link": st.column_config.LinkColumn("Event", display_text="Open"),
                },
            )
