"""Scanner: every current opportunity (drops, steam, value, arbitrage, out-of-line books) in one
sortable table, filtered, refreshing itself; filter presets saved in the app database."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pandas as pd
import streamlit as st

from dashboards.common import CLOCK_SECONDS, QUERY_TTL, app_db, explained, freshness_note, from_marts
from oddly.views import market as views

TYPE_NAMES = {
    "drop": "Price drop (30 min)",
    "steam": "Steam move",
    "value": "Value bet",
    "arbitrage": "Arbitrage",
    "out_of_line": "Book out of line",
}
KICK_OFF_WINDOWS: dict[str, float | None] = {
    "any time": None,
    "1 h": 1,
    "3 h": 3,
    "6 h": 6,
    "12 h": 12,
    "24 h": 24,
    "48 h": 48,
    "7 days": 168,
}
KEYS = {  # ScannerFilters field -> widget key
    "sports": "scanner_sports",
    "leagues": "scanner_leagues",
    "bookmakers": "scanner_bookmakers",
    "types": "scanner_types",
    "min_size_pct": "scanner_min_size",
    "max_hours_to_kick_off": "scanner_kick_off",
}


def filter_widgets(catalog: pd.DataFrame, books: pd.DataFrame) -> views.ScannerFilters:
    state = st.session_state
    left, middle, right = st.columns(3)
    sports = left.multiselect("Sport", _options(catalog["sport"], KEYS["sports"]), key=KEYS["sports"])
    in_sports = catalog[catalog["sport"].isin(sports)] if sports else catalog
    leagues = middle.multiselect(
        "League", _options(in_sports["league"], KEYS["leagues"]), key=KEYS["leagues"]
    )
    bookmakers = right.multiselect(
        "Bookmaker", _options(books["bookmaker"], KEYS["bookmakers"]), key=KEYS["bookmakers"]
    )
    left, middle, right = st.columns(3)
    state.setdefault(KEYS["types"], list(views.OPPORTUNITY_TYPES))
    types = left.multiselect(
        "Type", views.OPPORTUNITY_TYPES, format_func=TYPE_NAMES.__getitem__, key=KEYS["types"]
    )
    min_size = middle.number_input(
        "Minimum size (% drop or edge; steam: probability points)",
        min_value=0.0,
        max_value=100.0,
        step=0.5,
        key=KEYS["min_size_pct"],
    )
    window = right.selectbox("Kick-off within", list(KICK_OFF_WINDOWS), key=KEYS["max_hours_to_kick_off"])
    return views.ScannerFilters(
        sports=tuple(sports),
        leagues=tuple(leagues),
        bookmakers=tuple(bookmakers),
        types=tuple(types),
        min_size_pct=float(min_size),
        max_hours_to_kick_off=KICK_OFF_WINDOWS[window],
    )


def _options(values: pd.Series, key: str) -> list[str]:
    """The values on offer, plus any still selected (a loaded preset may name a finished league)."""
    chosen = st.session_state.get(key) or []
    return sorted({str(v) for v in values.dropna()} | set(chosen))


def _load_preset(stored: dict[str, views.ScannerFilters]) -> None:
    """Put a saved preset into the filter widgets (a callback: runs before they are drawn)."""
    filters = stored.get(st.session_state.get("scanner_preset") or "")
    if filters is None:
        return
    for field, key in KEYS.items():
        value: Any = getattr(filters, field)
        if field == "max_hours_to_kick_off":
            value = next((k for k, v in KICK_OFF_WINDOWS.items() if v == value), "any time")
        st.session_state[key] = list(value) if isinstance(value, tuple) else value


def preset_controls(filters: views.ScannerFilters) -> None:
    with st.expander("Filter presets"):
        stored = views.presets(app_db())
        left, right = st.columns(2)
        left.selectbox(
            "Saved presets", list(stored), index=None, key="scanner_preset", placeholder="none yet"
        )
        left.button("Load", on_click=_load_preset, args=(stored,), disabled=not stored)
        name = right.text_input("Save these filters as", key="scanner_preset_name", max_chars=80)
        if right.button("Save", disabled=not name.strip()):
            views.save_preset(app_db(), name, filters)
            st.success(f"Saved preset “{name.strip()}”.")


@st.fragment(run_every=QUERY_TTL)
def opportunities(filters: views.ScannerFilters) -> None:
    with explained():
        table = from_marts(views.scanner, filters, clock=CLOCK_SECONDS)  # minutes to kick-off
        freshness_note(from_marts(views.newest_price_at)["at"].iloc[0])
        if table.empty:
            st.info(
                "No current opportunity matches these filters. Widen them (more types, a lower "
                "minimum, any kick-off time), or wait for the next refresh."
            )
            return
        counts = table["type"].value_counts()
        st.caption(
            f"{len(table)} opportunities · "
            + " · ".join(
                f"{counts[t]} {TYPE_NAMES[t].lower()}" for t in views.OPPORTUNITY_TYPES if t in counts
            )
            + f" · refreshed every {QUERY_TTL} s"
        )
        shown = table.assign(
            type=table["type"].map(TYPE_NAMES),
            hours_to_kick_off=table["minutes_to_kick_off"] / 60,
            link=[f"event?{urlencode(_link_query(r))}" for r in table.itertuples()],
        )
        st.dataframe(
            shown,
            hide_index=True,
            column_order=[
                "type",
                "event",
                "league",
                "hours_to_kick_off",
                "bookmaker",
                "selection",
                "price",
                "reference_price",
                "size_pct",
                "books",
                "seen_at",
                "link",
            ],
            column_config={
                "type": "Type",
                "event": "Event",
                "league": "League",
                "hours_to_kick_off": st.column_config.NumberColumn("Kick-off in (h)", format="%.1f"),
                "bookmaker": "Bookmaker",
                "selection": "Selection",
                "price": st.column_config.NumberColumn("Price", format="%.2f"),
                "reference_price": st.column_config.NumberColumn(
                    "Against", format="%.2f", help="Price 30 min ago, fair price, or the others' consensus"
                ),
                "size_pct": st.column_config.NumberColumn("Size %", format="%.1f"),
                "books": "Books",
                "seen_at": st.column_config.DatetimeColumn("Seen", format="HH:mm:ss"),
                "link": st.column_config.LinkColumn("Event", display_text="Open"),
            },
        )


def _link_query(row: Any) -> dict[str, str]:
    query = {"event_id": str(row.canonical_event_id), "market": str(row.market), "period": str(row.period)}
    if views.present(row.line):
        query["line"] = f"{float(row.line):g}"
    if views.present(row.outcome):
        query["outcome"] = str(row.outcome)
    return query


st.title("Scanner")
st.caption("Every current opportunity across the books, largest first. Click a column header to sort.")
with explained():
    chosen = filter_widgets(from_marts(views.sports_and_leagues), from_marts(views.bookmakers))
    with explained():
        preset_controls(chosen)
    opportunities(chosen)
