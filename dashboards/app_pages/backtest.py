"""Backtest: how every alert type and the reference strategy did against what followed — closing-line
value against the sharp book's no-vig close and return at level stakes, each with its bootstrap
95 % interval — for a backtest run (`oddly backtest`) or the live alerts graded so far, and the
graded bets behind them."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboards.common import explained, from_app_db
from oddly.grading import views
from oddly.grading.stats import HORIZON_NAMES, HORIZONS

NO_RUNS = (
    "Nothing graded yet. Import history (`oddly import football-data …`) and run `oddly backtest`; "
    "live alerts are graded every 15 minutes once their events kick off (Dagster job grade_alerts)."
)
NO_LIVE = (
    "No live alert graded yet: alerts are graded once their events kick off (the Dagster schedule "
    "grade_alerts_every_15_minutes, or `oddly backtest --live`)."
)
TYPE_NAMES = {
    "value": "value",
    "sharp_drop": "sharp drop",
    "steam": "steam",
    "out_of_line": "out of line",
    "arbitrage": "arbitrage",
    "stale_line": "stale line",
    "kaunitz": "Kaunitz et al. (strategy)",
}
SUMMARY_COLUMNS: dict[str, Any] = {
    "type": "Type",
    "signals": st.column_config.NumberColumn("Signals", format="%d"),
    "with_close": st.column_config.NumberColumn("With close", format="%d"),
    "mean_clv": st.column_config.NumberColumn("Mean CLV", format="percent"),
    "clv_ci_low": st.column_config.NumberColumn("CLV 95 % low", format="percent"),
    "clv_ci_high": st.column_config.NumberColumn("CLV 95 % high", format="percent"),
    "beat_close_share": st.column_config.NumberColumn("Beat the close", format="percent"),
    "settled": st.column_config.NumberColumn("Settled", format="%d"),
    "roi": st.column_config.NumberColumn("ROI", format="percent"),
    "roi_ci_low": st.column_config.NumberColumn("ROI 95 % low", format="percent"),
    "roi_ci_high": st.column_config.NumberColumn("ROI 95 % high", format="percent"),
    "profit": st.column_config.NumberColumn("Profit (units)", format="%.2f"),
    "mean_price": st.column_config.NumberColumn("Mean price", format="%.2f"),
    "matches": st.column_config.NumberColumn("Matches", format="%d"),
}
BET_COLUMNS: dict[str, Any] = {
    "taken_at": st.column_config.DatetimeColumn("Taken (UTC)", format="YYYY-MM-DD HH:mm"),
    "type": "Type",
    "event_name": "Event",
    "kick_off": st.column_config.DatetimeColumn("Kick-off (UTC)", format="YYYY-MM-DD HH:mm"),
    "market": "Market",
    "line": st.column_config.NumberColumn("Line", format="%g"),
    "outcome": "Outcome",
    "bookmaker": "Bookmaker",
    "price": st.column_config.NumberColumn("Price", format="%.2f"),
    "stake": st.column_config.NumberColumn("Stake", format="%.3f"),
    "closing_bookmaker": "Closing book",
    "fair_probability": st.column_config.NumberColumn("Fair close", format="percent"),
    "fair_price": st.column_config.NumberColumn("Fair closing price", format="%.2f"),
    "clv": st.column_config.NumberColumn("CLV", format="percent"),
    "beat_close": st.column_config.CheckboxColumn("Beat close"),
    "result": "Result",
    "profit": st.column_config.NumberColumn("Profit", format="%.3f"),
    "severity": "Severity",
    "note": st.column_config.TextColumn("Note", width="medium"),
    "unsettled_reason": "Not settled because",
    "signal_key": "Signal",
}


def named(summary: pd.DataFrame) -> pd.DataFrame:
    return summary.assign(type=summary["type"].map(lambda t: TYPE_NAMES.get(t, t)))


def interval_chart(summary: pd.DataFrame, measure: str, low: str, high: str, title: str) -> dict[str, Any]:
    """Each type's point estimate with its 95 % interval, the strategy beside the alert types (a
    plain Vega-Lite spec: no altair import on the page's first run)."""
    data = named(summary).dropna(subset=[measure, low, high])
    rows = data[["type", "source", "signals", measure, low, high]].to_dict("records")
    y = {"field": "type", "type": "nominal", "sort": None, "title": None}
    return {
        "data": {"values": rows},
        "height": 40 * max(len(rows), 1),
        "layer": [
            {
                "mark": {"type": "rule", "strokeWidth": 2},
                "encoding": {
                    "y": y,
                    "x": {"field": low, "type": "quantitative", "axis": {"format": "%"}, "title": title},
                    "x2": {"field": high},
                },
            },
            {
                "mark": {"type": "point", "filled": True, "size": 80},
                "encoding": {
                    "y": y,
                    "x": {"field": measure, "type": "quantitative"},
                    "color": {"field": "source", "type": "nominal", "title": "Source"},
                    "tooltip": [
                        {"field": "type"},
                        {"field": "source"},
                        {"field": measure, "type": "quantitative", "format": ".2%"},
                        {"field": low, "type": "quantitative", "format": ".2%"},
                        {"field": high, "type": "quantitative", "format": ".2%"},
                        {"field": "signals", "type": "quantitative"},
                    ],
                },
            },
            {
                "mark": {"type": "rule", "strokeDash": [4, 4], "color": "gray"},
                "encoding": {"x": {"datum": 0}},
            },
        ],
    }


def show_summary(summary: pd.DataFrame) -> None:
    if summary.empty:
        st.info("This run graded no signal (no detection or strategy bet in its window).")
        return
    st.dataframe(
        named(summary)[["source", *SUMMARY_COLUMNS]],
        hide_index=True,
        column_config={"source": "Source", **SUMMARY_COLUMNS},
    )
    left, right = st.columns(2)
    left.vega_lite_chart(
        spec=interval_chart(summary, "mean_clv", "clv_ci_low", "clv_ci_high", "Mean CLV, 95 % CI"),
        width="stretch",
    )
    right.vega_lite_chart(
        spec=interval_chart(summary, "roi", "roi_ci_low", "roi_ci_high", "ROI at level stakes, 95 % CI"),
        width="stretch",
    )


def show_bets(run_id: str | None, key: str) -> None:
    choices = from_app_db(views.bet_choices, run_id)
    if choices.empty:
        return
    st.subheader("Graded bets")
    left, middle, right = st.columns([2, 2, 1])
    types = left.multiselect(
        "Types",
        sorted(choices["type"].dropna().unique()),
        format_func=lambda t: TYPE_NAMES.get(t, t),
        key=f"{key}_types",
    )
    books = middle.multiselect(
        "Bookmakers", sorted(choices["bookmaker"].dropna().unique()), key=f"{key}_books"
    )
    settled = right.toggle("Settled only", key=f"{key}_settled")
    found = from_app_db(views.bets, run_id, tuple(types), tuple(books), settled)
    if found.empty:
        st.info("No graded bet matches these filters.")
        return
    st.caption(f"{len(found):,} bet legs, newest first (at most 5,000); an arbitrage has one row per leg.")
    st.dataframe(found[list(BET_COLUMNS)], hide_index=True, column_config=BET_COLUMNS)


def run_label(runs: pd.DataFrame) -> dict[str, str]:
    labels = {}
    for r in runs.itertuples():
        window = " … ".join(
            "open" if pd.isna(t) else pd.Timestamp(t).strftime("%Y-%m-%d") for t in (r.since, r.until)
        )
        labels[r.run_id] = (
            f"{pd.Timestamp(r.started_at):%Y-%m-%d %H:%M} · kick-offs {window} · rules {r.rules_version} · "
            f"{r.signals:,} signals"
        )
    return labels


st.title("Backtest")
st.caption(
    "CLV: the price taken (after an exchange's commission) × the sharp book's no-vig closing "
    "probability − 1: what the bet was worth if the close is right. ROI: profit at one unit per "
    "signal over the settled signals. Intervals resample whole matches (2,000 draws, seeded)."
)
backtest_tab, live_tab = st.tabs(["Backtest runs", "Live alerts"])


def pick_horizon(key: str) -> str:
    picked = st.segmented_control(
        "Signals taken",
        list(HORIZONS),
        format_func=lambda h: HORIZON_NAMES[h],
        default="all",
        key=key,
        help="A signal in the last hour before kick-off is judged against a close minutes away.",
    )
    return str(picked or "all")


with backtest_tab, explained():
    found_runs = from_app_db(views.runs, "backtest")
    if found_runs.empty:
        st.info(NO_RUNS)
    else:
        labels = run_label(found_runs)
        run_id = st.selectbox("Run", list(labels), format_func=labels.get, key="backtest_run")
        picked = found_runs.set_index("run_id").loc[run_id]
        if picked["mlflow_run_id"]:
            st.caption(f"Logged to MLflow (experiment oddly-backtest) as run {picked['mlflow_run_id']}.")
        show_summary(from_app_db(views.summary, run_id, pick_horizon("backtest_horizon")))
        if picked["skipped"]:
            with st.expander("Not graded, and why"):
                st.write(picked["skipped"])
        show_bets(run_id, "backtest")

with live_tab, explained():
    live_run = from_app_db(views.runs, "live")
    if live_run.empty:
        st.info(NO_LIVE)
    else:
        latest = live_run.iloc[0]
        when = pd.Timestamp(latest["started_at"])
        st.caption(
            f"Standing after the last grading pass ({when:%Y-%m-%d %H:%M} UTC): "
            "every live alert's latest grade."
        )
        show_summary(from_app_db(views.summary, str(latest["run_id"]), pick_horizon("live_horizon")))
        show_bets(None, "live")
