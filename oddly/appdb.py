"""The app database: alerts, their audit trail, the Telegram outbox and the subscriptions.

SQLite under the home by default (zero set-up), PostgreSQL when `ODDLY_APP_DATABASE_URL` is set;
one SQLAlchemy code path for both. Every app table is defined on `metadata` here, so `open_app_db`
creates them all (idempotently) before anything reads or writes.

SQLite is set up for several processes at once (the Dagster runs deciding alerts, the sender, the
bot, Streamlit): WAL so readers never block the writer, a busy timeout so a second writer waits
instead of failing, foreign keys enforced, and every transaction opened with `BEGIN IMMEDIATE` so
a read-then-write transaction takes the write lock up front (a deferred one would fail with
"database is locked" when it tries to upgrade while another process writes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from oddly.config import Settings, with_psycopg_driver
from oddly.pg_schema import ensure_schema

metadata = sa.MetaData()

# How long a SQLite writer waits for another process's transaction before giving up.
SQLITE_BUSY_TIMEOUT_MS = 30_000


def make_engine(url: str) -> sa.Engine:
    """An engine for the app database at `url` (tables not created: see `open_app_db`)."""
    url = with_psycopg_driver(url)
    if not url.startswith("sqlite"):
        return sa.create_engine(url, pool_pre_ping=True)
    database = sa.engine.make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url)
    sa.event.listen(engine, "connect", _sqlite_connect)
    sa.event.listen(engine, "begin", _sqlite_begin)
    return engine


def open_app_db(url_or_settings: str | Settings) -> sa.Engine:
    """The app database with all its tables created (safe to call on every start)."""
    url = url_or_settings if isinstance(url_or_settings, str) else url_or_settings.resolved_app_database_url
    _register_tables()
    ensure_schema(url)  # server mode: the app's own schema of the one database
    engine = make_engine(url)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # processes starting together: their DDL one at a time
            conn.execute(sa.text("select pg_advisory_xact_lock(hashtext('oddly.app.schema'))"))
        metadata.create_all(conn)
    return engine


def _register_tables() -> None:
    """Import the modules that define the app tables, so `metadata` knows them all."""
    from oddly.alerts import audit, outbox, subscriptions  # noqa: F401
    from oddly.grading import store  # noqa: F401


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own would be deferred and late).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("pragma journal_mode=wal")
    cursor.execute(f"pragma busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("pragma foreign_keys=on")
    cursor.close()


def _sqlite_begin(conn: sa.Connection) -> None:
    conn.exec_driver_sql("begin immediate")
