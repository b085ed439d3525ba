"""What every page shares: the settings, the readers (cached once per server process), the query
cache, a warm-up of what some pages load on their first run, and how an empty or broken state is
shown — in words, never a traceback.

Pages read through the storage layer (`oddly.warehouse.reader.MartsReader` for the marts, the app
database for alerts, audit, outbox and scores) and the query functions in `oddly.views`, so the
bot and the app run the same SQL.

Marts query results are cached by the snapshot they were read from (`MartsReader.version()`): a
page run after a publish reads the new marts, and until then every run is served from the cache.
Answers that also depend on the time of day (minutes to kick-off, a feed gone silent) are
re-read at most every `clock` seconds besides. App-database results, and the marts on PostgreSQL
(no snapshot to tell a change by), are cached for `QUERY_TTL` seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Concatenate

import pandas as pd
import sqlalchemy as sa
import streamlit as st

from oddly.appdb import open_app_db
from oddly.config import Settings, get_settings
from oddly.warehouse.reader import MartsNotReadyError, MartsReader

# Seconds a query result is reused when there is no snapshot version to key it by: the marts
# refresh every feed cycle (10 s by default).
QUERY_TTL = 10
# Seconds an answer that ages with the time of day (minutes to kick-off, a feed gone silent) is
# reused at most, even while no new snapshot is published.
CLOCK_SECONDS = 60
# Cached marts results kept at most (results of past snapshots age out of the cache first) and
# for at most this many seconds.
CACHED_RESULTS = 512
CACHED_SECONDS = 15 * 60

# Seconds the warm-up waits after the app's first page, so as not to slow that page down.
WARM_UP_DELAY = 1.0

# The newest price older than this reads as feeds stopped (or ingestion / dbt not running).
STALE_AFTER_MINUTES = 5

logger = logging.getLogger(__name__)

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


@st.cache_resource(show_spinner=False)
def warm_up() -> threading.Thread:
    """Once per server process, in the background: import and open what some pages need on their
    first run (MLflow, the model code and the champion for Models, pandas' Styler for Event), so
    the first visit to them is as fast as the next."""
    thread = threading.Thread(target=_warm_up, args=(settings(),), name="oddly-warm-up", daemon=True)
    thread.start()
    return thread


def _warm_up(settings: Settings) -> None:
    time.sleep(WARM_UP_DELAY)
    import pandas.io.formats.style  # noqa: F401 - the Event page's price grid

    from ml import views
    from ml.tracking import Tracking

    try:
        views.warm_up(Tracking.from_settings(settings))
    except Exception as exc:  # the Models page says what is wrong when it is opened
        logger.info("models warm-up skipped: %s", exc)


@contextmanager
def explained() -> Iterator[None]:
    """Run a page section; a missing warehouse or database becomes a sentence with what to do."""
    try:
        yield
    except MartsNotReadyError:
        st.info(NO_DATA)
    except sa.exc.OperationalError as exc:
        st.warning(f"The database did not answer ({exc.orig}). Is it running? Retrying on the next refresh.")


MartsQuery = Callable[Concatenate[MartsReader, ...], pd.DataFrame]
AppQuery = Callable[Concatenate[sa.Engine, ...], pd.DataFrame]


def from_marts(query: MartsQuery, *args: Any, clock: int | None = None) -> pd.DataFrame:
    """`query(marts(), *args)`, cached by the query's name, its arguments and the snapshot read;
    with `clock`, also re-read every `clock` seconds (for answers that age with the time of day)."""
    version = marts().version()
    if version is None:  # PostgreSQL, or nothing published yet (the query then says so)
        version = _time_bucket(QUERY_TTL)
    elif clock is not None:
        version = f"{version}@{_time_bucket(clock)}"
    return _from_marts(_name(query), version, query, *args)


def from_app_db(query: AppQuery, *args: Any) -> pd.DataFrame:
    """`query(app_db(), *args)`, cached for QUERY_TTL seconds by the query's name and arguments."""
    return _from_app_db(_name(query), query, *args)


@st.cache_data(ttl=CACHED_SECONDS, max_entries=CACHED_RESULTS, show_spinner=False)
def _from_marts(key: str, version: str, _query: MartsQuery, *args: Any) -> pd.DataFrame:
    """Cached by `key` (the query's name), `version` and `args`; the function itself is not hashed."""
    return _query(marts(), *args)


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def _from_app_db(key: str, _query: AppQuery, *args: Any) -> pd.DataFrame:
    return _query(app_db(), *args)


def _time_bucket(seconds: int) -> str:
    return f"t{int(time.time() // seconds)}"


def _name(query: Callable[..., Any]) -> str:
    return f"{query.__module__}.{query.__qualname__}"


def freshness_note(newest_price_at: Any) -> None:
    """Say so when the newest price in the marts is old: the feeds, ingestion or dbt have stopped."""
    if newest_price_at is None or pd.isna(newest_price_at):
        return
    at = pd.Timestamp(newest_price_at)
    age = datetime.now(UTC) - (at.tz_localize(UTC) if at.tzinfo is None else at.tz_convert(UTC))
    minutes = age.total_seconds() / 60
    if minutes > STALE_AFTER_MINUTES:
        st.warning(
            f"The newest price is {_duration(minutes)} old: the feeds, ingestion or the dbt build may "
            "have stopped (see the Bookmakers page for feed health, Dagster for the runs). Showing the "
            "last published state."
        )


def _duration(minutes: float) -> str:
    if minutes < 120:
        return f"{minutes:.0f} min"
    if minutes < 48 * 60:
        return f"{minutes / 60:.0f} h"
    return f"{minutes / 1440:.0f} days"
