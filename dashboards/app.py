"""Oddly Odds, the analytics app: `streamlit run dashboards/app.py` (`make demo` starts it).

Only the navigation: one file a page under `app_pages/` — not `pages/`, which Streamlit would take
for an old-style multipage app, so a deep link opened first would skip this navigation. The Event
page's URL path is `event`, which alert messages link to (`/event?event_id=…&market=…&outcome=…`).
"""

from __future__ import annotations

import streamlit as st

from dashboards.common import warm_up

st.set_page_config(page_title="Oddly Odds", page_icon="📈", layout="wide")

pages = {
    "Markets": [
        st.Page("app_pages/scanner.py", title="Scanner", icon="🔎", url_path="scanner", default=True),
        st.Page("app_pages/event.py", title="Event", icon="📈", url_path="event"),
        st.Page("app_pages/divergence.py", title="Divergence", icon="🌡️", url_path="divergence"),
    ],
    "Monitoring": [
        st.Page("app_pages/bookmakers.py", title="Bookmakers", icon="🏦", url_path="bookmakers"),
        st.Page("app_pages/alerts.py", title="Alerts", icon="🔔", url_path="alerts"),
        st.Page("app_pages/backtest.py", title="Backtest", icon="🎯", url_path="backtest"),
    ],
    "Configuration": [
        st.Page("app_pages/models.py", title="Models", icon="🧠", url_path="models"),
        st.Page("app_pages/rules.py", title="Rules", icon="⚙️", url_path="rules"),
    ],
}

st.navigation(pages).run()
warm_up()  # once per server process, after the first page has run
