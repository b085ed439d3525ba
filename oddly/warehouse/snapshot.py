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
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from oddly.warehouse.store import Warehouse, duckdb_config

SNAPSHOT_FILE = "published.duckdb"  # not marts.duckdb: its catalog would shadow schema `marts`
# The relations readers get: every table dbt built in these schemas.
PUBLISHED_SCHEMAS = ("marts",)
# Marts that keep history: readers get the rows of the events on offer (the warehouse keeps the
# rest), so a publish costs what is current, not the length of the history.
PUBLISHED_ROWS = {
    "marts.fct_steam_moves": "where canonical_event_id in (select canonical_event_id from marts.dim_events)",
}
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
    seconds: float


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
    t0 = time.perf_counter()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    staging.unlink(missing_ok=True)
    with warehouse.marts_writer():
        source = duckdb.connect(str(warehouse.duckdb_path), config=duckdb_config())
        try:
            rows, load_seq = _copy_marts(source, staging, load_seq)
        except BaseException:
            staging.unlink(missing_ok=True)
            raise
        finally:
            source.close()
    if not rows:
        staging.unlink(missing_ok=True)
        return None
    published_at = datetime.now(UTC)
    _write_info(staging, rows, load_seq, published_at)
    os.replace(staging, target)
    return Snapshot(target, published_at, load_seq, rows, time.perf_counter() - t0)


def _copy_marts(
    source: duckdb.DuckDBPyConnection, staging: Path, load_seq: int | None
) -> tuple[dict[str, int], int]:
    schemas = ", ".join(f"'{s}'" for s in PUBLISHED_SCHEMAS)
    relations = source.execute(
        "select table_schema, table_name from information_schema.tables "
        f"where table_schema in ({schemas}) and table_type = 'BASE TABLE' order by 1, 2"
    ).fetchall()
    if load_seq is None:
        [(last,)] = source.execute("select coalesce(max(load_seq), 0) from raw.feed_runs").fetchall()
        load_seq = int(last)
    # Each mart travels as Arrow into the new file's own DuckDB, not through an ATTACH of that file
    # to the warehouse: attaching and detaching a database while the polls of this process bind
    # their queries on the same warehouse made DuckDB lose its table functions now and then
    # ("Table Function with name python_arrow_scan does not exist", a poll failed).
    rows: dict[str, int] = {}
    with duckdb.connect(str(staging)) as published:
        for schema in PUBLISHED_SCHEMAS:
            published.execute(f"create schema if not exists {schema}")
        for schema, table in relations:
            rows_sql = PUBLISHED_ROWS.get(f"{schema}.{table}", "")
            rows[f"{schema}.{table}"] = _copy(
                source, f"select * from {schema}.{table} {rows_sql}", published, f"{schema}.{table}"
            )
        if rows:
            published.execute("create schema if not exists ops")
            rows[FEED_HEALTH] = _copy(source, FEED_HEALTH_SQL, published, FEED_HEALTH)
    return rows, load_seq


def _copy(
    source: duckdb.DuckDBPyConnection, sql: str, published: duckdb.DuckDBPyConnection, table: str
) -> int:
    """`sql`'s rows on the warehouse, as `table` of the new file; how many."""
    data = source.sql(sql).to_arrow_table()
    published.register("_rows", data)
    published.execute(f"create table {table} as select * from _rows")
    published.unregister("_rows")
    return int(data.num_rows)


def _write_info(staging: Path, rows: dict[str, int], load_seq: int, published_at: datetime) -> None:
    with duckdb.connect(str(staging)) as con:
        con.execute(
            f"create table {INFO_TABLE} (relation varchar, row_count bigint, load_seq bigint, "
            "published_at timestamptz)"
        )
        con.executemany(
            f"insert into {INFO_TABLE} values (?, ?, ?, ?)",
            [(name, count, load_seq, published_at) for name, count in rows.items()],
        )
