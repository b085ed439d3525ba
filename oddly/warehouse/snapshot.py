"""Published marts: what readers (the Streamlit app, the bot) see on the embedded warehouse.

DuckDB lets one process write a file, and a read-only open fails while it does; a reader that
opened the warehouse itself would also see a mart half-way through a rebuild. So after each
successful dbt build the builder — still holding the marts' lane — copies the marts into a new
DuckDB file and renames it over `$ODDLY_HOME/published.duckdb`. The rename is atomic: a reader opens
either the previous complete snapshot or the new one, never a file being written, and an open
reader keeps its snapshot (the old inode lives until it closes). No process ever writes the
published file, so read-only opens never meet a lock.

Besides the marts, the snapshot holds `ops.feed_health`: one row per feed summarizing
`raw.feed_runs` and `raw.quarantine` (`FEED_HEALTH_SQL`). Readers may not open the warehouse for
the raw tables, and copying them would grow every snapshot with each run; the summary is a few
rows, as fresh as the snapshot.

On PostgreSQL nothing is published: dbt replaces a table or applies an incremental delete+insert
in one transaction, so readers see the old or the new rows, never a mix.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from oddly.warehouse.store import Warehouse, connect_duckdb

SNAPSHOT_FILE = "published.duckdb"  # not marts.duckdb: its catalog would shadow schema `marts`
# The relations readers get: every table dbt built in these schemas.
PUBLISHED_SCHEMAS = ("marts",)
# Marts that keep history: readers get the rows of the events on offer (the warehouse keeps the
# rest), so a publish costs what is current, not the length of the history.
PUBLISHED_ROWS = {
    "marts.fct_steam_moves": "where canonical_event_id in (select canonical_event_id from marts.dim_events)",
}
# The marts those filters read: a filtered mart is copied once they are built too (a build of every
# model may build the steam moves before the events, even the first time, when there are none).
PUBLISHED_ROWS_READ = {"marts.fct_steam_moves": ("marts.dim_events",)}
# Bookkeeping table in the snapshot: one row per published relation, with its row count.
INFO_TABLE = "main.snapshot_info"
# Feed health: per feed, its last run and last success, failed runs and quarantined records over
# the last 24 h. Plain SQL that DuckDB and PostgreSQL both run: published in the snapshot
# (embedded), run on the warehouse itself by readers in server mode. Only plain aggregates touch the
# whole run log (a publish must not cost a sort of every run ever made); the window ranks the few
# rows of each feed's latest start.
FEED_HEALTH = "ops.feed_health"
FEED_HEALTH_SQL = """
with last_runs as (
    select
        feed,
        max(started_at) as last_run_at,
        max(case when status <> 'failed' then finished_at end) as last_success_at
    from raw.feed_runs
    group by feed
),
latest as (
    select runs.feed, runs.bookmaker, runs.status, runs.error,
        row_number() over (partition by runs.feed order by runs.feed_run_id desc) as pick
    from raw.feed_runs runs
    join last_runs on last_runs.feed = runs.feed and runs.started_at = last_runs.last_run_at
),
day as (
    select
        feed,
        count(*) as runs_24h,
        count(*) filter (where status = 'failed') as failed_runs_24h,
        coalesce(sum(rejected), 0) as rejected_rows_24h
    from raw.feed_runs
    where started_at >= now() - interval '24 hours'
    group by feed
),
quarantined as (
    select feed, count(*) as quarantined_rows_24h
    from raw.quarantine
    where observed_at >= now() - interval '24 hours'
    group by feed
)
select
    latest.feed,
    latest.bookmaker,
    last_runs.last_run_at,
    latest.status as last_status,
    latest.error as last_error,
    last_runs.last_success_at,
    coalesce(day.runs_24h, 0) as runs_24h,
    coalesce(day.failed_runs_24h, 0) as failed_runs_24h,
    coalesce(day.rejected_rows_24h, 0) as rejected_rows_24h,
    coalesce(quarantined.quarantined_rows_24h, 0) as quarantined_rows_24h,
    now() as measured_at
from latest
join last_runs on last_runs.feed = latest.feed
left join day on day.feed = latest.feed
left join quarantined on quarantined.feed = latest.feed
where latest.pick = 1
order by latest.feed
"""


@dataclass(frozen=True)
class Snapshot:
    path: Path
    published_at: datetime
    load_seq: int
    rows: dict[str, int]
    seconds: float  # writing it after dbt finished (what it adds to a cycle)
    seconds_beside_dbt: float = 0.0  # copying marts while dbt built the next ones
    copied_beside_dbt: tuple[str, ...] = ()  # those marts, in the order dbt built them


def snapshot_path(home: Path) -> Path:
    return home / SNAPSHOT_FILE


def publish_snapshot(warehouse: Warehouse, target: Path, *, load_seq: int | None = None) -> Snapshot | None:
    """Copy every table of the marts into a new file and move it over `target` atomically.

    Returns None on PostgreSQL (readers read the warehouse itself there) and when no mart has
    been built yet (readers keep being told so). The feed-health summary goes with the marts.
    `load_seq`: the last load the marts were built from (the cycle's ceiling; by default the last
    load written, right when nothing writes ticks meanwhile). Holds the marts' lane only: this
    process's ingestion goes on writing ticks while the marts are copied."""
    if warehouse.dialect != "duckdb":
        return None
    with warehouse.marts_writer():
        return SnapshotWriter(warehouse, target).finish(load_seq)


class SnapshotWriter:
    """A snapshot being written while dbt builds: each mart is copied into the new file as soon as
    dbt has built it (`mart_built`, from dbt's result events; a thread of its own copies it while dbt
    goes on with the next models), and `finish` copies what is left, then moves the file over
    `target`. The caller holds the marts' lane from before the first mart is built to the end of
    `finish` (or `abort`), so no mart changes under the copy; a mart copied early is the one dbt
    built in this invocation, from the same ceiling of ticks as the rest."""

    def __init__(self, warehouse: Warehouse, target: Path) -> None:
        if warehouse.dialect != "duckdb":
            raise ValueError("only the embedded warehouse (DuckDB) is published")
        self.warehouse = warehouse
        self.target = target
        target.parent.mkdir(parents=True, exist_ok=True)
        self.staging = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        self.staging.unlink(missing_ok=True)
        self.rows: dict[str, int] = {}
        self.early_seconds = 0.0  # copying while dbt built (overlapped with the models)
        self.early: list[str] = []
        self._built: set[str] = set()  # marts dbt has built so far
        self._queued: set[str] = set()  # of them, those handed to the copying thread
        self._queue: queue.SimpleQueue[tuple[str, str] | None] = queue.SimpleQueue()
        self._failure: BaseException | None = None
        self._source = connect_duckdb(warehouse.duckdb_path)
        self._published = duckdb.connect(str(self.staging))
        for schema in (*PUBLISHED_SCHEMAS, "ops"):
            self._published.execute(f"create schema if not exists {schema}")
        self._thread: threading.Thread | None = None

    def mart_built(self, schema: str, table: str) -> None:
        """dbt built `schema.table` (a table, committed): copy it now, beside the next models, or,
        when its published rows are filtered by other marts, once those are built too."""
        if schema not in PUBLISHED_SCHEMAS:
            return
        self._built.add(f"{schema}.{table}")
        if self._thread is None:
            self._thread = threading.Thread(target=self._copy_queued, name="snapshot-writer", daemon=True)
            self._thread.start()
        for name in sorted(self._built - self._queued):
            if set(PUBLISHED_ROWS_READ.get(name, ())) <= self._built:
                self._queued.add(name)
                mart_schema, mart = name.split(".", 1)
                self._queue.put((mart_schema, mart))

    def _copy_queued(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._failure is not None:
                continue
            t0 = time.perf_counter()
            try:
                self._copy_mart(*item)
                self.early.append(".".join(item))
            except BaseException as exc:  # reported by finish, in the caller's thread
                self._failure = exc
            self.early_seconds += time.perf_counter() - t0

    def _copy_mart(self, schema: str, table: str) -> None:
        name = f"{schema}.{table}"
        rows_sql = PUBLISHED_ROWS.get(name, "")
        self.rows[name] = _copy(self._source, f"select * from {name} {rows_sql}", self._published, name)

    def _stop_copying(self) -> None:
        """Let the copying thread finish what it was handed, and end it."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def finish(self, load_seq: int | None = None) -> Snapshot | None:
        """Copy the marts not copied yet and the feed health, then move the file over `target`;
        None when no mart has been built yet. `load_seq`: the last load the marts were built from
        (by default the last load written, right when nothing writes ticks meanwhile)."""
        t0 = time.perf_counter()
        try:
            self._stop_copying()
            if self._failure is not None:
                raise self._failure
            schemas = ", ".join(f"'{s}'" for s in PUBLISHED_SCHEMAS)
            relations = self._source.execute(
                "select table_schema, table_name from information_schema.tables "
                f"where table_schema in ({schemas}) and table_type = 'BASE TABLE' order by 1, 2"
            ).fetchall()
            if load_seq is None:
                [(last,)] = self._source.execute(
                    "select coalesce(max(load_seq), 0) from raw.feed_runs"
                ).fetchall()
                load_seq = int(last)
            for schema, table in relations:
                if f"{schema}.{table}" not in self.rows:
                    self._copy_mart(schema, table)
            if not self.rows:
                self.abort()
                return None
            self.rows[FEED_HEALTH] = _copy(self._source, FEED_HEALTH_SQL, self._published, FEED_HEALTH)
            published_at = datetime.now(UTC)
            _write_info(self._published, self.rows, load_seq, published_at)
            self._close()
        except BaseException:
            self.abort()
            raise
        os.replace(self.staging, self.target)
        seconds = time.perf_counter() - t0
        return Snapshot(
            self.target,
            published_at,
            load_seq,
            dict(self.rows),
            seconds,
            seconds_beside_dbt=self.early_seconds,
            copied_beside_dbt=tuple(self.early),
        )

    def abort(self) -> None:
        """Nothing is published: the new file is removed."""
        self._stop_copying()
        self._close()
        self.staging.unlink(missing_ok=True)

    def _close(self) -> None:
        """Close both connections (again: nothing happens)."""
        self._published.close()
        self._source.close()


def _copy(
    source: duckdb.DuckDBPyConnection, sql: str, published: duckdb.DuckDBPyConnection, table: str
) -> int:
    """`sql`'s rows on the warehouse, as `table` of the new file; how many. Each mart travels as
    Arrow into the new file's own DuckDB: the new file is never attached to the warehouse's
    database, which the polls of this process share."""
    data = source.sql(sql).to_arrow_table()
    published.register("_rows", data)
    published.execute(f"create table {table} as select * from _rows")
    published.unregister("_rows")
    return int(data.num_rows)


def _write_info(
    con: duckdb.DuckDBPyConnection, rows: dict[str, int], load_seq: int, published_at: datetime
) -> None:
    con.execute(
        f"create table {INFO_TABLE} (relation varchar, row_count bigint, load_seq bigint, "
        "published_at timestamptz)"
    )
    con.executemany(
        f"insert into {INFO_TABLE} values (?, ?, ?, ?)",
        [(name, count, load_seq, published_at) for name, count in rows.items()],
    )
