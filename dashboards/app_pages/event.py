"""Event: one match's prices at every book, each outcome's line movement over time with the fair
price and the alerts decided on it, and the current prices with the best one highlighted.

Opened by query parameters (`?event_id=…&market=…&outcome=…&line=…&period=…`, as alert messages
and the Scanner link it); without them, pick an event."""

from __future__ import annotations

from typing import Any

import pandas as pd
import sqlalchemy as sa
import streamlit as st

from dashboards.common import explained, freshness_note, from_app_db, from_marts
from oddly.views import market as views

Market = tuple[str, str, float | None]


ALL_LEAGUES = "All leagues"


def pick_event(events: pd.DataFrame, event_id: str | None) -> str | None:
    """A league (the linked event's, to begin with), then one of its events: the picker sends the
    browser one league's events, not the thousands on offer."""
    ids = events["canonical_event_id"].astype(str)
    league = events["league"].where(events["league"].fillna("") != "", events["sport"]).astype(str)
    leagues = [ALL_LEAGUES, *sorted(league.unique())]
    linked = league[ids == event_id]
    state = st.session_state
    if not linked.empty and state.get("event_league_of") != event_id:  # a link to an event
        state["event_league"], state["event_league_of"] = linked.iloc[0], event_id
    if state.get("event_league") not in leagues:
        state["event_league"] = ALL_LEAGUES
    chosen_league = st.selectbox("League", leagues, key="event_league")
    shown = events[league == chosen_league] if chosen_league != ALL_LEAGUES else events
    kick_off = pd.to_datetime(shown["starts_at"], utc=True).dt.strftime("%a %d %b %H:%M")
    names = shown["home_team"] + " v " + shown["away_team"] + " · " + league[shown.index] + " · " + kick_off
    labels = dict(zip(ids[shown.index], names + " UTC", strict=True))
    options = list(labels)
    chosen = st.selectbox(
        "Event",
        options,
        index=options.index(event_id) if event_id in labels else None,
        format_func=labels.__getitem__,
        placeholder="Pick an event",
    )
    if chosen != event_id:
        state["event_league_of"] = chosen  # chosen here: the league stays as the user has it
        st.query_params.clear()
        if chosen is not None:
            st.query_params["event_id"] = chosen
    return chosen


def pick_market(markets: pd.DataFrame, prices: pd.DataFrame) -> Market:
    options: list[Market] = [
        (str(m), str(p), views.number(v))
        for m, p, v in markets[["market", "period", "line"]].itertuples(index=False)
    ]
    wanted = _market_from_query(options) or views.main_market(prices)
    chosen = st.selectbox(
        "Market",
        options,
        index=options.index(wanted) if wanted in options else 0,
        format_func=lambda m: views.market_words(*m),
    )
    if chosen != wanted:
        st.query_params["market"], st.query_params["period"] = chosen[0], chosen[1]
        if chosen[2] is None:
            st.query_params.pop("line", None)
        else:
            st.query_params["line"] = f"{chosen[2]:g}"
        st.query_params.pop("outcome", None)
    return chosen


def _market_from_query(options: list[Market]) -> Market | None:
    """The market the link names; without a period, full time first; without a line, the busiest."""
    market = st.query_params.get("market")
    if market is None:
        return None
    period, line = st.query_params.get("period"), st.query_params.get("line")
    try:
        wanted_line = None if line is None else float(line)
    except ValueError:
        wanted_line = None
    fits = [
        o
        for o in options
        if o[0] == market and (period is None or o[1] == period) and (line is None or o[2] == wanted_line)
    ]
    return sorted(fits, key=lambda o: o[1] != "ft")[0] if fits else None


FAIR_ROW = "fair (no-vig)"
BEST_STYLE = "background-color: #c8f7c5; font-weight: bold"
ALERT_FIELDS = ("type", "severity", "bookmaker", "action", "decision_reason")  # an alert's tooltip


def current_prices(
    prices: pd.DataFrame, fair: pd.DataFrame, outcomes: list[str], names: dict[str, str]
) -> None:
    grid = prices.groupby(["bookmaker", "outcome"])["price"].max().unstack("outcome")
    grid = grid.reindex(columns=outcomes)
    styles = pd.DataFrame("", index=grid.index, columns=grid.columns)
    styles[grid.eq(grid.max())] = BEST_STYLE
    grid.loc[FAIR_ROW] = fair.set_index("outcome")["fair_price"].reindex(outcomes)
    styles.loc[FAIR_ROW] = ""
    styled = (
        grid.rename(columns=names)
        .style.format("{:.2f}", na_rep="–")
        .apply(lambda _: styles.rename(columns=names), axis=None)
    )
    st.subheader("Current prices")
    st.caption("The best price per outcome highlighted; the last row is the fair price without the margin.")
    st.dataframe(styled, key="event_prices")


def movement_chart(
    history: pd.DataFrame, fair_price: float | None, markers: pd.DataFrame, title: str
) -> dict[str, Any]:
    """A Vega-Lite spec (written out: Altair's schema validation costs more than the page's
    queries): each book's price as a step line with a point per tick, the fair price dashed, the
    alerts decided as red rules."""
    datasets: dict[str, pd.DataFrame] = {"ticks": history[["bookmaker", "observed_at", "price"]]}
    layers: list[dict[str, Any]] = [
        {
            "data": {"name": "ticks"},
            "mark": {"type": "line", "interpolate": "step-after", "point": {"size": 18}},
            "encoding": {
                "x": {"field": "observed_at", "type": "temporal", "title": None},
                "y": {"field": "price", "type": "quantitative", "title": "Price", "scale": {"zero": False}},
                "color": {"field": "bookmaker", "type": "nominal", "title": "Bookmaker"},
                "tooltip": [
                    {"field": "bookmaker", "type": "nominal"},
                    {"field": "price", "type": "quantitative", "format": ".2f"},
                    {"field": "observed_at", "type": "temporal", "title": "from", "format": "%H:%M:%S"},
                ],
            },
        }
    ]
    if fair_price is not None:
        datasets["fair"] = pd.DataFrame({"fair_price": [fair_price], "label": ["fair price"]})
        layers.append(
            {
                "data": {"name": "fair"},
                "mark": {"type": "rule", "strokeDash": [6, 4], "color": "gray", "size": 2},
                "encoding": {
                    "y": {"field": "fair_price", "type": "quantitative"},
                    "tooltip": [
                        {"field": "label", "type": "nominal", "title": ""},
                        {"field": "fair_price", "type": "quantitative", "format": ".2f"},
                    ],
                },
            }
        )
    if not markers.empty:
        datasets["alerts"] = markers
        layers.append(
            {
                "data": {"name": "alerts"},
                "mark": {"type": "rule", "color": "crimson", "strokeDash": [2, 2]},
                "encoding": {
                    "x": {"field": "decided_at", "type": "temporal"},
                    "tooltip": [
                        {"field": "decided_at", "type": "temporal", "title": "alert", "format": "%H:%M:%S"},
                        *({"field": f, "type": "nominal"} for f in ALERT_FIELDS),
                    ],
                },
            }
        )
    return {"title": title, "height": 260, "datasets": datasets, "layer": layers}


def event_page(event_id: str, event: pd.Series) -> None:
    home, away = str(event["home_team"]), str(event["away_team"])
    st.header(f"{home} v {away}")
    st.caption(
        " · ".join(
            str(v)
            for v in (
                event["sport"],
                event.get("league"),
                f"kick-off {pd.Timestamp(event['starts_at']):%a %d %b %H:%M} UTC",
                "live" if event.get("is_live") else None,
                f"{event['bookmaker_count']} books",
            )
            if views.present(v)
        )
    )
    prices = from_marts(views.event_prices, event_id)
    if prices.empty:
        st.info("No book has an open price on this event right now (suspended, or every line is closed).")
        return
    market, period, line = pick_market(from_marts(views.event_markets, event_id), prices)
    chosen = views.market_rows(prices, market, period, line)
    outcomes = sorted(chosen["outcome"].unique(), key=views.outcome_rank)
    wanted = st.query_params.get("outcome")
    if wanted in outcomes:
        outcomes.remove(wanted)
        outcomes.insert(0, wanted)
    names = {o: views.outcome_words(o, line, home, away) for o in outcomes}
    fair = from_marts(views.fair_prices, event_id, market, period, line)
    current_prices(chosen, fair, outcomes, names)

    st.subheader("Line movement")
    history = from_marts(views.price_history, event_id, market, period, line)
    markers = alert_markers(event_id, market, period, line)
    fair_by_outcome = fair.set_index("outcome")["fair_price"]
    st.caption(
        "Each book's price, every tick of the recent hours the marts publish; dashed: the fair price; "
        "red: alerts decided on this market."
    )
    for outcome in outcomes:
        fair_price = views.number(fair_by_outcome.get(outcome))
        st.vega_lite_chart(
            spec=movement_chart(
                history[history["outcome"] == outcome],
                fair_price,
                markers[markers["outcome"].isna() | (markers["outcome"] == outcome)],
                names[outcome],
            ),
            width="stretch",
        )


def alert_markers(event_id: str, market: str, period: str, line: float | None) -> pd.DataFrame:
    """The audit trail's decisions; an unreachable app database leaves the charts without them."""
    try:
        return from_app_db(views.alert_markers, event_id, market, period, line)
    except sa.exc.SQLAlchemyError as exc:  # the chart is worth showing without its markers
        st.caption(f"Alert markers unavailable: the app database did not answer ({exc}).")
        return pd.DataFrame(
            columns=["decided_at", "type", "severity", "action", "bookmaker", "outcome", "decision_reason"]
        )


st.title("Event")
with explained():
    freshness_note(from_marts(views.newest_price_at)["at"].iloc[0])
    events = from_marts(views.events)
    asked = st.query_params.get("event_id")
    if events.empty:
        st.info(
            "No current events in the marts: events leave them a few hours after kick-off. "
            "Start a feed or the simulator."
        )
    else:
        if asked is not None and asked not in set(events["canonical_event_id"].astype(str)):
            st.warning(
                f"No current event has the id `{asked}`: it may have finished (events leave the marts a "
                "few hours after kick-off) or the link is mistyped. Pick another event below."
            )
        chosen_id = pick_event(events, asked)
        if chosen_id is None:
            st.info("Pick an event to see its prices and line movement.")
        else:
            row = events[events["canonical_event_id"].astype(str) == chosen_id].iloc[0]
            event_page(chosen_id, row)
