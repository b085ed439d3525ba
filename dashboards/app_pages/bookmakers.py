"""Bookmakers: the trading-quality monitor. Feed health first (is every feed running?), then each
book's margin, staleness, lag behind the sharp book, suspension rate and out-of-line share."""

from __future__ import annotations

import streamlit as st

from dashboards.common import CLOCK_SECONDS, explained, from_marts
from oddly.views import quality

ALL_MARKETS = "All markets"

st.title("Bookmakers")

st.subheader("Feed health")
with explained():
    health = from_marts(quality.feed_health, clock=CLOCK_SECONDS)  # a feed gone silent
    if health.empty:
        st.info(
            "No feed has run yet (or the published marts predate the feed summary). Start the "
            "simulator or a feed (`make demo`); feed health appears with the next dbt build."
        )
    else:
        for problem in quality.feed_problems(health):
            st.error(problem)
        st.caption(
            f"As of {health['measured_at'].max():%Y-%m-%d %H:%M:%S} UTC (the last published snapshot)."
        )
        st.dataframe(
            health,
            hide_index=True,
            column_order=[
                "health",
                "feed",
                "bookmaker",
                "last_run_at",
                "last_status",
                "last_success_at",
                "runs_24h",
                "failed_runs_24h",
                "rejected_rows_24h",
                "quarantined_rows_24h",
                "last_error",
            ],
            column_config={
                "health": "Health",
                "feed": "Feed",
                "bookmaker": "Bookmaker",
                "last_run_at": st.column_config.DatetimeColumn(
                    "Last run (UTC)", format="YYYY-MM-DD HH:mm:ss"
                ),
                "last_status": "Last status",
                "last_success_at": st.column_config.DatetimeColumn(
                    "Last success (UTC)", format="YYYY-MM-DD HH:mm:ss"
                ),
                "runs_24h": "Runs 24 h",
                "failed_runs_24h": "Failed 24 h",
                "rejected_rows_24h": "Rejected rows 24 h",
                "quarantined_rows_24h": "Quarantined 24 h",
                "last_error": "Last error",
            },
        )

st.subheader("Line quality")
st.caption(
    "Over the active events: mean overround (margin), seconds behind the freshest other book "
    "(staleness), median seconds to follow a sharp-book move (lag, over the last 24 h), share of ticks "
    "that were suspensions, and share of prices 3+ probability points off the other books."
)
with explained():
    choices = from_marts(quality.quality_choices)
    if choices.empty:
        st.info("No bookmaker quality yet: it needs current prices from at least one feed and a dbt build.")
    else:
        left, right = st.columns([1, 2])
        market = left.selectbox("Market", [ALL_MARKETS, *choices["market"].unique()], key="quality_market")
        books = right.multiselect("Bookmakers", sorted(choices["bookmaker"].unique()), key="quality_books")
        frame = from_marts(
            quality.bookmaker_quality, None if market == ALL_MARKETS else market, tuple(sorted(books))
        )
        st.dataframe(
            frame,
            hide_index=True,
            column_config={
                "bookmaker": "Bookmaker",
                "is_sharp": st.column_config.CheckboxColumn("Sharp"),
                "markets": "Markets",
                "selections": "Selections",
                "ticks": "Ticks",
                "mean_margin": st.column_config.NumberColumn("Margin", format="percent"),
                "mean_stale_seconds": st.column_config.NumberColumn("Staleness (s)", format="%.0f"),
                "sharp_moves_followed": "Sharp moves followed",
                "lag_seconds": st.column_config.NumberColumn("Lag behind sharp (s)", format="%.0f"),
                "suspension_rate": st.column_config.NumberColumn("Suspensions", format="percent"),
                "out_of_line_share": st.column_config.NumberColumn("Out of line", format="percent"),
            },
        )
