"""What every page shares: the settings, the readers (cached once per server process), and how an
empty or broken state is shown — in words, never a traceback.

Pages read through the storage layer (`oddly.warehouse.reader.MartsReader` for the marts, the app
database for alerts, audit, outbox and scores) and the query functions in `oddly.views`, so the
bot and the app run the same SQL. Query results are cached with a short TTL (`QUERY_TTL`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
import streamlit as st

from oddly.appdb import open_app_db
from oddly.config import Settings, get_settings
from oddly.warehouse.reader import MartsNotReadyError, MartsReader

# Seconds a query result is reused: the marts refresh every feed cycle (10 s by default).
QUERY_TTL = 10

NO_DATA = (
    "No market data yet. Start the simulator or a feed (`make demo` does both), and the marts "
    "appear after the first ingestion cycle and dbt build."
)


@st.cache_resource
def settings() -> Settings:
    return get_settings()


@st.cache_resource
def marts() -> MartsReader:
    """The marts reader: the published snapshot (embedded) or PostgreSQL; never blocks a writer."""
    return MartsReader.from_settings(settings())


@st.cache_resource
def app_db() -> sa.Engine:
    """The app database (decisions, outbox, subscriptions, scores)."""
    return open_app_db(settings())


@contextmanager
def explained() -> Iterator[None]:
    """Run a page section; a missing warehouse or database becomes a sentence with what to do."""
    try:
        yield
    except MartsNotReadyError:
        st.info(NO_DATA)
    except sa.exc.OperationalError as exc:
        st.warning(f"The database did not answer ({exc.orig}). Is it running? Retrying on the next refresh.")
