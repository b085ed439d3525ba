"""The warehouse: raw change-only ticks, the latest price per selection, the feed-run log and the
quarantine, on DuckDB (embedded default) or PostgreSQL, through one code path.

A run's ticks, its quarantined records and its feed-run row are written in one transaction, so a
crash leaves either all of a run or none of it. DuckDB allows one process at a time on a file: every
DuckDB connection here holds an exclusive lock file for its short life, so parallel Dagster runs
queue instead of failing; within a process, the writers of ticks and the builder of the marts take
separate lanes of that hold (ARCHITECTURE.md, "Writers: one process at a time …").
"""

from __future__ import annotations

import fcntl
import functools
import io
import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from oddly.model import PRICE_COLUMNS, PRICE_SCHEMA, Reject, utc
from oddly.warehouse import schema

if TYPE_CHECKING:
    from oddly.config import Settings

# Largest quarantined record kept, so one huge broken payload cannot bloat the table.
MAX_RECORD_CHARS = 64_000
# The selection key: a 64-bit hash of (bookmaker, event, market, period, line, outcome). Two
# selections sharing one is a 2^-64 chance per pair; the diff joins on it instead of six columns.
_SELECTION_KEY = {
    "duckdb": "cast(hash(bookmaker, source_event_id, market, period, line, outcome) >> 1 as bigint)",
    "postgresql": (
        "hashtextextended(concat_ws('|', bookmaker, source_event_id, market, period, "
        "coalesce(line::text, ''), outcome), 0)"
    ),
}
_COLS = ", ".join(PRICE_COLUMNS)
# What `write_run_ticks` hands back: the ticks as raw.odds_ticks holds them, without the load sequence.
_TICK_SCHEMA = pa.schema(
    [pa.field("selection_key", pa.int64()), *PRICE_SCHEMA, pa.field("previous_price", pa.float64())]
)


class WarehouseBusyError(RuntimeError):
    pass


# The lanes of a process's hold on the DuckDB file (`_ProcessLock`).
WRITER_LANE = "writer"  # raw ticks, the run log, the event map, anything else written in SQL
MARTS_LANE = "marts"  # dbt building the marts in this process


@dataclass
class FeedRunRecord:
    """The feed-run log row: what one ingestion run of one feed did, in numbers and words."""

    feed_run_id: str
    feed: str
    bookmaker: str
    status: str
    started_at: datetime
    finished_at: datetime
    requests: int
    prices_seen: int
    ticks_written: int
    rejected: int
    unmapped: int
    unmapped_codes: str
    fetch_seconds: float
    parse_seconds: float
    write_seconds: float
    http_outcome: str
    error: str | None
    load_seq: int | None = None


class Warehouse:
    def __init__(self, url: str, *, lock_timeout_seconds: float = 300.0) -> None:
        self.url = url
        self.engine = _make_engine(url)
        self.dialect: str = self.engine.dialect.name
        self.lock_timeout_seconds = lock_timeout_seconds
        self._duckdb_path = _duckdb_file(url) if self.dialect == "duckdb" else None
        self._schema_ready = False

    @classmethod
    def from_url(cls, url: str) -> Warehouse:
        return cls(url)

    @classmethod
    def from_settings(cls, settings: Settings) -> Warehouse:
        return cls(settings.resolved_warehouse_url)

    @property
    def duckdb_path(self) -> Path:
        """The DuckDB file (embedded mode only)."""
        if self._duckdb_path is None:
            raise ValueError(f"{self!r} is not a DuckDB warehouse")
        return self._duckdb_path

    def __repr__(self) -> str:
        return f"Warehouse({self.engine.url.render_as_string(hide_password=True)})"

    # --- connections -------------------------------------------------------------------------

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A connection in a transaction; commits on success, rolls back on any error."""
        with self.exclusive(), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the DuckDB file for this process as its writer (other processes wait; PostgreSQL:
        no-op).

        Reentrant within a process, so a caller can hold it around a dbt build and still use
        `begin()`; other threads of the process that write wait like other processes do."""
        if self._duckdb_path is None:
            yield
            return
        with _ProcessLock.held(self._duckdb_path, self.lock_timeout_seconds, WRITER_LANE):
            yield

    @contextmanager
    def marts_writer(self) -> Iterator[None]:
        """Hold the DuckDB file for this process as the builder of the marts, for dbt run inside
        this process (the warm dbt of the marts cycle). Other processes wait, and so does another
        marts build of this process, but this process's writers of raw ticks (`exclusive`) go on:
        DuckDB lets the connections of one process write different tables at once, and the cycle
        reads only the ticks up to the load it saw when it started (var `load_seq_ceiling`). A dbt
        run by another process needs the file to itself: `exclusive` as well (`held_for_dbt`)."""
        if self._duckdb_path is None:
            yield
            return
        with _ProcessLock.held(self._duckdb_path, self.lock_timeout_seconds, MARTS_LANE):
            yield

    def hand_over(self) -> None:
        """While this process holds the file (both lanes) for another process — dbt's CLI, a child
        it starts — close the connection it keeps open meanwhile (`_anchor`): DuckDB would refuse
        that process the file. The next hold opens one again."""
        if self._duckdb_path is not None:
            _ProcessLock.drop_anchor(self._duckdb_path)

    def ensure_schema(self) -> None:
        """Create what is missing of the raw schema. A schema already in place costs one catalog
        read and no DDL: an ALTER, even one that changes nothing, takes an exclusive table lock
        that a concurrent poll's write deadlocks against."""
        if self._schema_ready:
            return
        with self.exclusive(), self.engine.connect() as conn:
            complete = _schema_complete(conn)
        if not complete:
            with self.begin() as conn:
                if self.dialect == "postgresql":
                    # several processes (and the code server's sensors) may start at once on a new
                    # database: one at a time, and only the first one creates anything
                    conn.execute(sa.text("select pg_advisory_xact_lock(hashtext('oddly.raw.schema'))"))
                if not _schema_complete(conn):
                    conn.execute(sa.text(f"create schema if not exists {schema.RAW_SCHEMA}"))
                    schema.metadata.create_all(conn)
                    for table, column, sql_type in schema.ADDED_COLUMNS:
                        conn.exec_driver_sql(
                            f"alter table {schema.RAW_SCHEMA}.{table} "
                            f"add column if not exists {column} {sql_type}"
                        )
        self._schema_ready = True

    # --- writing -----------------------------------------------------------------------------

    def write_run(self, prices: pa.Table, rejects: list[Reject], run: FeedRunRecord) -> int:
        """Append the ticks of one run (only selections whose price or status changed), its
        quarantined records and its feed-run row, all in one transaction. Returns ticks written.
        Writing the same prices again writes nothing: the diff is against the latest prices."""
        return self._write_run(prices, rejects, run, keep_ticks=False)[0]

    def write_run_ticks(self, prices: pa.Table, rejects: list[Reject], run: FeedRunRecord) -> pa.Table:
        """`write_run`, returning the ticks it wrote (their `selection_key`, the price columns and
        `previous_price`), read inside the transaction and handed back after it committed: what
        the fast detectors run on."""
        ticks = self._write_run(prices, rejects, run, keep_ticks=True)[1]
        return _TICK_SCHEMA.empty_table() if ticks is None else ticks

    def _write_run(
        self, prices: pa.Table, rejects: list[Reject], run: FeedRunRecord, *, keep_ticks: bool
    ) -> tuple[int, pa.Table | None]:
        self.ensure_schema()
        t0 = time.perf_counter()
        with self.begin() as conn:
            if self.dialect == "postgresql":
                # One writer at a time, as on DuckDB: load_seq then grows in commit order, so an
                # incremental dbt model never skips a run that committed after a later-numbered one.
                conn.execute(sa.text("select pg_advisory_xact_lock(hashtext('oddly.raw.write'))"))
            run.load_seq = int(
                conn.execute(sa.text("select coalesce(max(load_seq), 0) + 1 from raw.feed_runs")).scalar_one()
            )
            ticks, kept = (
                self._append_changes(conn, prices, run.load_seq, keep_ticks) if prices.num_rows else (0, None)
            )
            if rejects:
                self.bulk_insert(conn, "raw.quarantine", _quarantine_table(rejects, run))
            run.ticks_written = ticks
            run.write_seconds = time.perf_counter() - t0
            conn.execute(schema.feed_runs.insert().values(**asdict(run)))
        return ticks, kept

    def _append_changes(
        self, conn: Connection, prices: pa.Table, load_seq: int, keep_ticks: bool = False
    ) -> tuple[int, pa.Table | None]:
        """Ticks for the selections whose price or status differs from the stored latest one
        (and, with `keep_ticks`, the ticks themselves). `prices` holds one row per selection (see
        `oddly.validate.latest_per_selection`)."""
        self._load_temp(conn, "_incoming", prices.select(list(PRICE_COLUMNS)))
        conn.exec_driver_sql("drop table if exists _changed")
        conn.exec_driver_sql(
            f"""
            create temp table _changed as
            select c.*, l.price as previous_price
            from (select {_SELECTION_KEY[self.dialect]} as selection_key, * from _incoming) c
            left join raw.latest_prices l on l.selection_key = c.selection_key
            where l.price is null or l.price <> c.price or l.status <> c.status
            """
        )
        changed: int = conn.exec_driver_sql("select count(*) from _changed").scalar_one()
        kept = (
            self._arrow_in(conn, f"select selection_key, {_COLS}, previous_price from _changed")
            if keep_ticks and changed
            else None
        )
        if changed:
            keyed = f"selection_key, {_COLS}, previous_price"
            conn.exec_driver_sql(
                f"insert into raw.odds_ticks ({keyed}, load_seq) "
                f"select {keyed}, {int(load_seq)} from _changed"
            )
            conn.exec_driver_sql(
                "delete from raw.latest_prices l using _changed c where l.selection_key = c.selection_key"
            )
            conn.exec_driver_sql(
                "insert into raw.latest_prices (selection_key, price, status, observed_at) "
                "select selection_key, price, status, observed_at from _changed"
            )
        conn.exec_driver_sql("drop table if exists _changed")
        self._drop_temp(conn, "_incoming")
        return int(changed), kept

    def _load_temp(self, conn: Connection, name: str, table: pa.Table) -> None:
        """Make an Arrow table queryable as `name`: DuckDB reads it in place, PostgreSQL gets a
        temporary table filled by COPY."""
        if self.dialect == "duckdb":
            conn.connection.driver_connection.register(name, table)  # type: ignore[union-attr]
            return
        conn.exec_driver_sql(f"drop table if exists {name}")
        columns = ", ".join(f"{f.name} {_pg_type(f.type)}" for f in table.schema)
        conn.exec_driver_sql(f"create temp table {name} ({columns}) on commit drop")
        self._copy_csv(conn, name, table)

    def _drop_temp(self, conn: Connection, name: str) -> None:
        if self.dialect == "duckdb":
            conn.connection.driver_connection.unregister(name)  # type: ignore[union-attr]
        else:
            conn.exec_driver_sql(f"drop table if exists {name}")

    def bulk_insert(self, conn: Connection, target: str, table: pa.Table) -> None:
        """Append an Arrow table to `target` inside the caller's transaction (bulk path)."""
        cols = ", ".join(table.column_names)
        if self.dialect == "duckdb":
            raw = conn.connection.driver_connection
            raw.register("_bulk_arrow", table)  # type: ignore[union-attr]
            conn.exec_driver_sql(f"insert into {target} ({cols}) select {cols} from _bulk_arrow")
            raw.unregister("_bulk_arrow")  # type: ignore[union-attr]
        else:
            self._copy_csv(conn, target, table)

    @staticmethod
    def _copy_csv(conn: Connection, target: str, table: pa.Table) -> None:
        buffer = io.BytesIO()
        pacsv.write_csv(table, buffer, pacsv.WriteOptions(include_header=False))
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        cols = ", ".join(table.column_names)
        with cursor.copy(f"copy {target} ({cols}) from stdin with (format csv)") as copy:
            copy.write(buffer.getvalue())

    # --- reading -----------------------------------------------------------------------------

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        self.ensure_schema()
        with self.begin() as conn:
            result = conn.execute(sa.text(sql), params or {})
            return [dict(row._mapping) for row in result]

    def scalar(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        self.ensure_schema()
        with self.begin() as conn:
            return conn.execute(sa.text(sql), params or {}).scalar()

    def arrow(self, sql: str) -> pa.Table:
        """A query's result as an Arrow table (DuckDB natively; PostgreSQL through pandas)."""
        self.ensure_schema()
        with self.begin() as conn:
            return self._arrow_in(conn, sql)

    def arrow_with(self, queries: Sequence[str], inputs: Mapping[str, pa.Table]) -> list[pa.Table]:
        """Queries that read Arrow tables as relations named by `inputs` (DuckDB reads them in
        place, PostgreSQL gets temporary tables), in one transaction; one result per query.
        `selection_key_sql` computes the selection key from a relation's key columns."""
        self.ensure_schema()
        with self.begin() as conn:
            for name, table in inputs.items():
                self._load_temp(conn, name, table)
            results = [self._arrow_in(conn, sql) for sql in queries]
            for name in inputs:
                self._drop_temp(conn, name)
        return results

    @property
    def selection_key_sql(self) -> str:
        """The SQL expression of the selection key over columns bookmaker, source_event_id,
        market, period, line and outcome: the key raw.latest_prices is stored by."""
        return _SELECTION_KEY[self.dialect]

    def _arrow_in(self, conn: Connection, sql: str) -> pa.Table:
        if self.dialect == "duckdb":
            raw = conn.connection.driver_connection
            return raw.sql(sql).to_arrow_table()  # type: ignore[union-attr]
        import pandas as pd

        return pa.Table.from_pandas(pd.read_sql_query(sa.text(sql), conn), preserve_index=False)

    def count_ticks(self, feed_run_id: str | None = None) -> int:
        if feed_run_id is None:
            return int(self.scalar("select count(*) from raw.odds_ticks"))
        return int(
            self.scalar("select count(*) from raw.odds_ticks where feed_run_id = :r", {"r": feed_run_id})
        )

    def current_prices(
        self, where: str = "true", params: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """The latest tick of every selection (optionally filtered on tick columns `t.…`)."""
        return self.query(
            "select t.* from raw.odds_ticks t join raw.latest_prices l "
            f"on t.selection_key = l.selection_key and t.observed_at = l.observed_at where {where}",
            params,
        )

    def count_bad_prices(self) -> int:
        return int(self.scalar("select count(*) from raw.odds_ticks where price <= 1.0 or price is null"))

    def last_success(self, feed: str) -> datetime | None:
        value = self.scalar(
            "select max(finished_at) from raw.feed_runs where feed = :f and status in ('ok', 'partial')",
            {"f": feed},
        )
        return _as_utc(value)

    def feed_runs(self, feed: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        where = "where feed = :f" if feed else ""
        return self.query(
            f"select * from raw.feed_runs {where} order by started_at desc limit :n", {"f": feed, "n": limit}
        )

    def quarantined(self, feed_run_id: str | None = None) -> list[dict[str, Any]]:
        where = "where feed_run_id = :r" if feed_run_id else ""
        return self.query(f"select * from raw.quarantine {where}", {"r": feed_run_id})

    def dispose(self) -> None:
        self.engine.dispose()


class _ProcessLock:
    """One flock per DuckDB file per process, counted: flock is per open file, so a second open
    in the same process would wait for the first forever. Within the process, threads wait on the
    reentrant lock of their lane (the raw-tick writers, the marts builder); the file is held while
    any lane is."""

    _guard: ClassVar[threading.Lock] = threading.Lock()
    _locks: ClassVar[dict[Path, _ProcessLock]] = {}

    def __init__(self, path: Path) -> None:
        self.db_path = path
        self.lock_path = path.with_name(path.name + ".lock")
        self.anchor: Any = None  # a connection open while the file is held (`_anchor`)
        self.lanes = {WRITER_LANE: threading.RLock(), MARTS_LANE: threading.RLock()}
        self.file_guard = threading.Lock()  # the count and the handle
        self.depth = 0
        self.handle: Any = None

    @classmethod
    @contextmanager
    def held(cls, path: Path, timeout: float, lane: str = WRITER_LANE) -> Iterator[None]:
        with cls._guard:
            lock = cls._locks.setdefault(path.resolve(), cls(path))
        thread_lock = lock.lanes[lane]
        if not thread_lock.acquire(timeout=timeout):
            raise WarehouseBusyError(f"warehouse {path} is busy in this process for over {timeout:.0f} s")
        try:
            lock._hold_file(timeout)
            try:
                yield
            finally:
                lock._release_file()
        finally:
            thread_lock.release()

    @classmethod
    def drop_anchor(cls, path: Path) -> None:
        with cls._guard:
            lock = cls._locks.get(path.resolve())
        if lock is not None:
            with lock.file_guard:
                if lock.anchor is not None:
                    lock.anchor.close()
                    lock.anchor = None

    def _hold_file(self, timeout: float) -> None:
        with self.file_guard:
            if self.depth == 0:
                self.handle = _flock(self.lock_path, timeout)
                self.anchor = _anchor(self.db_path)
            self.depth += 1

    def _release_file(self) -> None:
        with self.file_guard:
            self.depth -= 1
            if self.depth == 0:
                if self.anchor is not None:  # the last connection: DuckDB checkpoints and lets go
                    self.anchor.close()
                    self.anchor = None
                fcntl.flock(self.handle, fcntl.LOCK_UN)
                self.handle.close()
                self.handle = None


# One DuckDB connection is opened at a time in a process. DuckDB's Python client hands a database
# it is still opening to a second thread's connect before it has registered its own table functions
# there: that thread's next Arrow scan failed with "Table Function with name python_arrow_scan does
# not exist" (a poll now and then, while another thread opened the file).
_CONNECT_GUARD = threading.Lock()


def connect_duckdb(path: Path, **kwargs: Any) -> Any:
    """A connection to the warehouse file with the process's configuration, opened one at a time."""
    import duckdb

    with _CONNECT_GUARD:
        return duckdb.connect(str(path), config=duckdb_config(), **kwargs)


def _anchor(path: Path) -> Any:
    """A connection kept open while this process holds the file, so the database stays open between
    the short-lived connections of its threads (each would otherwise open the file again, reading
    its catalog, and close it with a checkpoint); None when it cannot be opened (the connection that
    needs it says why)."""
    import duckdb

    try:
        return connect_duckdb(path)
    except duckdb.Error:
        return None


def _flock(lock_path: Path, timeout: float) -> Any:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(lock_path, "a")  # noqa: SIM115 - closed by _ProcessLock when released
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            if time.monotonic() > deadline:
                handle.close()
                raise WarehouseBusyError(
                    f"warehouse {lock_path.with_suffix('')} is busy: another process has held it for "
                    f"over {timeout:.0f} s; nothing was written, try again"
                ) from None
            time.sleep(0.02)


def _schema_complete(conn: Connection) -> bool:
    """Every table and column of the raw schema is there (read from the catalog)."""
    expected = {
        (table.name, column.name) for table in schema.metadata.tables.values() for column in table.columns
    } | {(table, column) for table, column, _ in schema.ADDED_COLUMNS}
    present = {
        (str(table), str(column))
        for table, column in conn.execute(
            sa.text("select table_name, column_name from information_schema.columns where table_schema = :s"),
            {"s": schema.RAW_SCHEMA},
        )
    }
    return expected <= present


@functools.cache
def duckdb_config() -> dict[str, str | bool | int | float | list[str]]:
    """The configuration the warehouse's DuckDB file is opened with, by every connection of a
    process: duckdb_engine's (it names itself in DuckDB's user agent). DuckDB refuses a second
    connection to an open file with another configuration, and the code server opens the file
    three ways at once — the polls through SQLAlchemy, the warm dbt (profiles.yml reads
    ODDLY_DUCKDB_USER_AGENT), the publish."""
    import duckdb_engine

    if not duckdb_engine.supports_user_agent:
        return {}
    return {"custom_user_agent": f"duckdb_engine/{duckdb_engine.__version__}(sqlalchemy/{sa.__version__})"}


def _make_engine(url: str) -> sa.Engine:
    if url.startswith("duckdb"):
        path = _duckdb_file(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        # No pool: a DuckDB file must be closed between uses so other processes can open it.
        engine = sa.create_engine(url, poolclass=NullPool)

        @sa.event.listens_for(engine, "do_connect")
        def one_at_a_time(dialect: Any, record: Any, cargs: Any, cparams: Any) -> Any:
            with _CONNECT_GUARD:  # see connect_duckdb
                return dialect.connect(*cargs, **cparams)

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return sa.create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=2)


def _duckdb_file(url: str) -> Path:
    path = url.split(":///", 1)[1] if ":///" in url else ""
    if not path or path == ":memory:":
        raise ValueError(
            f"warehouse URL {url!r} must name a DuckDB file, e.g. duckdb:////abs/path/warehouse.duckdb"
        )
    return Path(path)


def _pg_type(dtype: pa.DataType) -> str:
    if pa.types.is_timestamp(dtype):
        return "timestamptz"
    if pa.types.is_floating(dtype):
        return "double precision"
    if pa.types.is_integer(dtype):
        return "bigint"
    if pa.types.is_boolean(dtype):
        return "boolean"
    return "text"


def _quarantine_table(rejects: list[Reject], run: FeedRunRecord) -> pa.Table:
    ts = pa.timestamp("us", tz="UTC")
    n = len(rejects)
    return pa.table(
        {
            "feed_run_id": pa.array([run.feed_run_id] * n, pa.string()),
            "feed": pa.array([run.feed] * n, pa.string()),
            "bookmaker": pa.array([r.bookmaker or run.bookmaker for r in rejects], pa.string()),
            "source_event_id": pa.array([r.source_event_id for r in rejects], pa.string()),
            "observed_at": pa.array([run.finished_at] * n, ts),
            "reason": pa.array([r.reason for r in rejects], pa.string()),
            "record": pa.array([_record_text(r.record) for r in rejects], pa.string()),
        }
    )


def _record_text(record: Any) -> str:
    if isinstance(record, bytes):
        text = record.decode("utf-8", errors="replace")
    elif isinstance(record, str):
        text = record
    else:
        text = json.dumps(record, default=str, ensure_ascii=False)
    return text[:MAX_RECORD_CHARS]


def _as_utc(value: Any) -> datetime | None:
    return None if value is None else utc(value)
