"""Writing a recorded history — many observations of each selection — as change-only ticks in one
transaction: the history counterpart of `Warehouse.write_run`, with its guarantees.

`write_run` takes one row per selection (a poll) and costs one transaction; a Betfair stream file
holds thousands of observations of each runner (the cricket file: 1,034 back-price changes of one
runner), which through `write_run` would take as many transactions (about 45 ms each on DuckDB)
and leave as many feed runs. Here the whole file is one run, written exactly as a sequence of
`write_run` calls would write it:

- a tick where a selection's price or status differs from its previous observation (the first one
  against `raw.latest_prices`), carrying the price before it (`previous_price`);
- observations not after the selection's latest stored one are left out, so importing a file
  again writes nothing, and an older file never makes an old price current;
- `raw.latest_prices` ends at each selection's last tick; the run's feed-run row, load sequence
  (under the same one-writer-at-a-time rule) and quarantined records commit with the ticks;
- optional side rows (the exchange book, `raw.exchange_prices`) are keyed by the same selection
  key and written in the same transaction, also only past what is stored.

It belongs beside `write_run` in `oddly.warehouse.store` (whose owners may move it there); it uses
the warehouse's public connection, bulk-insert and selection-key primitives.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import pyarrow as pa
import sqlalchemy as sa

from oddly.model import PRICE_COLUMNS, Reject
from oddly.warehouse import schema
from oddly.warehouse.store import FeedRunRecord, Warehouse, _quarantine_table

_COLS = ", ".join(PRICE_COLUMNS)


@dataclass
class HistoryWritten:
    ticks: int
    side_rows: int
    already_stored: int  # observations not after the selection's latest stored one


def write_history(
    warehouse: Warehouse,
    prices: pa.Table,
    rejects: list[Reject],
    run: FeedRunRecord,
    side: tuple[str, pa.Table] | None = None,
) -> HistoryWritten:
    """Append the change-only ticks of `prices` (PRICE_SCHEMA rows, any number per selection, each
    with its own `observed_at`; at most one per selection and time), and the rows of `side` (a raw
    table name and rows holding its columns but the selection key and load sequence), in one
    transaction with the run's quarantine and feed-run row."""
    warehouse.ensure_schema()
    t0 = time.perf_counter()
    key = warehouse.selection_key_sql
    with warehouse.begin() as conn:
        if warehouse.dialect == "postgresql":
            # the lock `write_run` takes: one writer at a time, so load_seq grows in commit order
            conn.execute(sa.text("select pg_advisory_xact_lock(hashtext('oddly.raw.write'))"))
        run.load_seq = int(
            conn.execute(sa.text("select coalesce(max(load_seq), 0) + 1 from raw.feed_runs")).scalar_one()
        )
        seq = int(run.load_seq)
        conn.exec_driver_sql("drop table if exists _history_in")
        conn.exec_driver_sql(f"create temp table _history_in as select {_COLS} from raw.odds_ticks limit 0")
        if prices.num_rows:
            warehouse.bulk_insert(conn, "_history_in", prices.select(list(PRICE_COLUMNS)))
        conn.exec_driver_sql("drop table if exists _keyed")
        conn.exec_driver_sql(
            f"""
            create temp table _keyed as
            select k.*, l.price as stored_price, l.status as stored_status,
                l.observed_at is not null and k.observed_at <= l.observed_at as is_stored
            from (select {key} as selection_key, * from _history_in) k
            left join raw.latest_prices l on l.selection_key = k.selection_key
            """
        )
        already = int(conn.exec_driver_sql("select count(*) from _keyed where is_stored").scalar_one())
        conn.exec_driver_sql("drop table if exists _history")
        conn.exec_driver_sql(
            f"""
            create temp table _history as
            with sequenced as (
                select *,
                    lag(price) over w as prior_price,
                    lag(status) over w as prior_status,
                    row_number() over w as position
                from _keyed
                where not is_stored
                window w as (partition by selection_key order by observed_at)
            )
            select selection_key, {_COLS}, coalesce(prior_price, stored_price) as previous_price
            from sequenced
            where (
                position = 1
                and (stored_price is null or stored_price <> price or stored_status <> status)
            ) or (position > 1 and (prior_price <> price or prior_status <> status))
            """
        )
        ticks = int(conn.exec_driver_sql("select count(*) from _history").scalar_one())
        if ticks:
            keyed = f"selection_key, {_COLS}, previous_price"
            conn.exec_driver_sql(
                f"insert into raw.odds_ticks ({keyed}, load_seq) select {keyed}, {seq} from _history"
            )
            conn.exec_driver_sql(
                "delete from raw.latest_prices l using (select distinct selection_key from _history) h "
                "where l.selection_key = h.selection_key"
            )
            conn.exec_driver_sql(
                """
                insert into raw.latest_prices (selection_key, price, status, observed_at)
                select selection_key, price, status, observed_at from (
                    select *, row_number() over (partition by selection_key order by observed_at desc) as n
                    from _history
                ) last where n = 1
                """
            )
        side_rows = _write_side(warehouse, conn, side, run, key) if side is not None else 0
        for name in ("_history", "_keyed", "_history_in"):
            conn.exec_driver_sql(f"drop table if exists {name}")
        if rejects:
            warehouse.bulk_insert(conn, "raw.quarantine", _quarantine_table(rejects, run))
        run.ticks_written = ticks
        run.write_seconds = time.perf_counter() - t0
        conn.execute(schema.feed_runs.insert().values(**asdict(run)))
    return HistoryWritten(ticks, side_rows, already)


def _write_side(
    warehouse: Warehouse, conn: sa.Connection, side: tuple[str, pa.Table], run: FeedRunRecord, key: str
) -> int:
    """The side rows past the latest stored one of their selection, stamped with the run."""
    name, rows = side
    if not rows.num_rows:
        return 0
    target = schema.metadata.tables[f"{schema.RAW_SCHEMA}.{name}"]
    columns = [c.name for c in target.columns if c.name not in ("selection_key", "feed_run_id", "load_seq")]
    listed = ", ".join(columns)
    conn.exec_driver_sql("drop table if exists _side_in")
    conn.exec_driver_sql(f"create temp table _side_in as select {listed} from raw.{name} limit 0")
    warehouse.bulk_insert(conn, "_side_in", rows.select(columns))
    conn.exec_driver_sql("drop table if exists _side_new")
    conn.exec_driver_sql(
        f"""
        create temp table _side_new as
        with keyed as (select {key} as selection_key, * from _side_in),
        stored as (
            select s.selection_key, max(s.observed_at) as last_at
            from raw.{name} s
            where s.selection_key in (select selection_key from keyed)
            group by s.selection_key
        )
        select k.* from keyed k left join stored on stored.selection_key = k.selection_key
        where stored.last_at is null or k.observed_at > stored.last_at
        """
    )
    inserted = int(conn.exec_driver_sql("select count(*) from _side_new").scalar_one())
    conn.execute(
        sa.text(
            f"insert into raw.{name} (selection_key, {listed}, feed_run_id, load_seq) "
            f"select selection_key, {listed}, :run, :seq from _side_new"
        ),
        {"run": run.feed_run_id, "seq": run.load_seq},
    )
    conn.exec_driver_sql("drop table if exists _side_new")
    conn.exec_driver_sql("drop table if exists _side_in")
    return inserted
