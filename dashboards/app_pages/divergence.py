"""Divergence: books x events, each cell the book's edge against the consensus of the other books
(leave-one-out, no-vig) on one market: where a book stands apart, and which way."""

from __future__ import annotations

from urllib.parse import urlencode

import altair as alt
import pandas as pd
import streamlit as st

from dashboards.common import explained, freshness_note, from_marts
from oddly.views import market as views


def heatmap(grid: pd.DataFrame) -> alt.Chart:
    limit = max(5.0, float(grid["edge_pct"].abs().quantile(0.95)))  # one outlier must not wash out the rest
    return (
        alt.Chart(grid)
        .mark_rect()
        .encode(
            x=alt.X("bookmaker:N", title="Bookmaker", axis=alt.Axis(orient="top", labelAngle=-30)),
            y=alt.Y("event:N", title=None, sort=alt.EncodingSortField("spread", order="descending")),
            color=alt.Color(
                "edge_pct:Q",
                title="Edge %",
                scale=alt.Scale(scheme="redblue", domain=[-limit, limit], domainMid=0, clamp=True),
            ),
            tooltip=[
                alt.Tooltip("event:N"),
                alt.Tooltip("bookmaker:N"),
                alt.Tooltip("selection:N"),
                alt.Tooltip("price:Q", format=".2f"),
                alt.Tooltip("edge_pct:Q", title="edge %", format="+.1f"),
                alt.Tooltip("probability_points:Q", title="probability points", format="+.1f"),
                alt.Tooltip("other_books:Q", title="other books"),
            ],
        )
        .properties(height=alt.Step(22))
    )


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
            st.altair_chart(heatmap(grid), width="stretch")
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
