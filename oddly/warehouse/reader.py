"""Reading the marts from the app and the bot, never blocked by ingestion or dbt.

Embedded mode reads the published snapshot (`oddly.warehouse.snapshot`). The file is opened
read-only once per version and reused by every query (each on its own cursor, so threads may query
at once); before each query a `stat` of the path tells whether a newer snapshot was renamed over
it (another inode, mtime or size), and then the new file is opened for the next queries. A query
already running on the old file finishes on it: its inode lives until the last cursor lets go.
Server mode reads the PostgreSQL warehouse, where dbt's transactions keep readers on complete
tables.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import sqlalchemy as sa

from oddly.config import Settings
from oddly.warehouse.snapshot import INFO_TABLE, snapshot_path

# The catalog the snapshot is attached as (not `marts`: it would shadow the schema of that name).
CATALOG = "published"
# `:name` parameters as SQLAlchemy's text() finds them (not a `::type` cast, nor `12:30` in a
# literal), rewritten for DuckDB; `:name::type` is the parameter cast.
_PARAMETER = re.compile(r"(?<![:\w\\]):(\w+)")
# DuckDB hands 128-bit integers (sum() of bigints) to pandas as floats; read them back as integers.
_WIDE_INTEGERS = {"HUGEINT", "UHUGEINT"}


class MartsNotReadyError(RuntimeError):
    """No marts have been published yet."""


@dataclass(frozen=True)
class _Opened:
    """One version of the snapshot, attached read-only in a private in-memory DuckDB (a direct open
    of the path would be handed DuckDB's cached instance of the previous file by that name)."""

    version: str
    database: duckdb.DuckDBPyConnection
    pid: int  # a forked child opens its own (DuckDB's state is not to be shared across a fork)


class MartsReader:
    def __init__(self, *, warehouse_url: str | None, home: Path) -> None:
        self.snapshot = None if warehouse_url else snapshot_path(home)
        self.engine: sa.Engine | None = None
        if warehouse_url:
            url = warehouse_url.replace("postgresql://", "postgresql+psycopg://", 1)
            self.engine = sa.create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=2)
        self._lock = threading.Lock()
        self._opened: _Opened | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> MartsReader:
        return cls(warehouse_url=settings.warehouse_url, home=settings.home)

    def version(self) -> str | None:
        """Which snapshot a query would read now: the published file's identity (inode, mtime,
        size), a new value after each publish. None on PostgreSQL (no snapshot: the warehouse
        itself), and before anything is published."""
        if self.snapshot is None:
            return None
        try:
            stat = os.stat(self.snapshot)
        except FileNotFoundError:
            return None
        return f"{stat.st_dev}:{stat.st_ino}:{stat.st_mtime_ns}:{stat.st_size}"

    def query(self, sql: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """A query over `marts.*` as a DataFrame (`:name` parameters)."""
        if self.engine is not None:
            with self.engine.connect() as conn:
                return pd.read_sql_query(sa.text(sql), conn, params=params or {})
        used = set(_PARAMETER.findall(sql))  # DuckDB refuses a parameter the SQL does not use
        bound = {name: value for name, value in (params or {}).items() if name in used}
        cursor = self._cursor()
        try:
            cursor.execute(_PARAMETER.sub(r"$\1", sql), bound)
            wide = [d[0] for d in cursor.description or () if str(d[1]) in _WIDE_INTEGERS]
            frame = cursor.df()
        finally:
            cursor.close()
        for column in wide:
            if not frame[column].isna().any():
                frame[column] = frame[column].astype("int64")
        return frame

    def published(self) -> pd.DataFrame:
        """Embedded mode: what the current snapshot holds (relation, row_count, load_seq,
        published_at). Server mode: empty."""
        if self.snapshot is None:
            return pd.DataFrame(columns=["relation", "row_count", "load_seq", "published_at"])
        return self.query(f"select * from {INFO_TABLE} order by relation")

    def dispose(self) -> None:
        if self.engine is not None:
            self.engine.dispose()
        with self._lock:
            opened, self._opened = self._opened, None
        if opened is not None:
            opened.database.close()

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor on the newest snapshot, opened once per version and reused."""
        assert self.snapshot is not None
        version = self.version()
        if version is None:
            raise MartsNotReadyError(
                f"no marts published yet at {self.snapshot}: they appear after the first dbt build "
                "(`oddly dbt build`, or the Dagster marts job after the first ingestion)"
            )
        with self._lock:
            opened = self._opened
            if opened is not None and opened.pid != os.getpid():
                _FORKED.append(opened)  # a forked child: closing it here would wait for lost threads
                opened = None
            if opened is None or opened.version != version:
                # the previous version is closed when its last running query lets go of it
                opened = self._opened = _Opened(version, _attach(self.snapshot), os.getpid())
            cursor = opened.database.cursor()
        cursor.execute(f"use {CATALOG}")
        return cursor


# Snapshots a forked child inherited open: never used nor closed there (DuckDB's worker threads did
# not follow the fork, and closing waits for them).
_FORKED: list[_Opened] = []


def _attach(path: Path) -> duckdb.DuckDBPyConnection:
    database = duckdb.connect(":memory:")
    try:
        database.execute("set global TimeZone = 'UTC'")  # timestamps read as UTC, as the app shows them
        quoted = str(path).replace("'", "''")
        database.execute(f"attach '{quoted}' as {CATALOG} (read_only)")
    except duckdb.Error as exc:
        database.close()
        if not path.exists():  # renamed away between the stat and the open
            raise MartsNotReadyError(f"no marts published at {path} any more") from exc
        raise
    except BaseException:
        database.close()
        raise
    return database
