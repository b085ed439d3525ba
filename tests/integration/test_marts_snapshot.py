"""Published marts on the embedded warehouse: readers get complete snapshots, keep the one they
opened while a newer one is published, and never touch the file the writer holds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from oddly.warehouse.reader import MartsNotReadyError, MartsReader
from oddly.warehouse.snapshot import SnapshotWriter, publish_snapshot, snapshot_path
from oddly.warehouse.store import Warehouse


def build_mart(warehouse: Warehouse, rows: int) -> None:
    """Stand-in for a dbt build: a marts table with `rows` rows and one feed run."""
    warehouse.ensure_schema()
    with warehouse.begin() as conn:
        conn.exec_driver_sql("create schema if not exists marts")
        conn.exec_driver_sql(
            f"create or replace table marts.fct_prices_current as select range as selection_key, "
            f"1.5 + range / 10 as price from range({rows})"
        )
        conn.exec_driver_sql("create or replace view marts.a_view as select 1 as x")


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    return Warehouse.from_url(f"duckdb:///{tmp_path}/warehouse.duckdb")


def test_readers_wait_for_nothing_before_the_first_build(tmp_path: Path) -> None:
    reader = MartsReader(warehouse_url=None, home=tmp_path)
    with pytest.raises(MartsNotReadyError, match="no marts published yet"):
        reader.query("select * from marts.fct_prices_current")


def test_a_snapshot_holds_every_mart_table_with_its_row_count(warehouse: Warehouse, tmp_path: Path) -> None:
    build_mart(warehouse, 3)
    published = publish_snapshot(warehouse, snapshot_path(tmp_path))
    assert published is not None
    assert published.rows == {"marts.fct_prices_current": 3, "ops.feed_health": 0}  # no feed ran
    reader = MartsReader(warehouse_url=None, home=tmp_path)
    frame = reader.query(
        "select * from marts.fct_prices_current where price > :p order by price", {"p": 1.55}
    )
    assert frame["selection_key"].tolist() == [1, 2]
    info = reader.published()
    assert info[["relation", "row_count"]].values.tolist() == [
        ["marts.fct_prices_current", 3],
        ["ops.feed_health", 0],
    ]
    assert not list(tmp_path.glob(".published.duckdb.*")), "the staging file was left behind"


def test_an_open_reader_keeps_its_snapshot_while_a_newer_one_is_published(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    target = snapshot_path(tmp_path)
    build_mart(warehouse, 3)
    publish_snapshot(warehouse, target)
    reading = duckdb.connect(str(target), read_only=True)
    build_mart(warehouse, 5)
    publish_snapshot(warehouse, target)  # the reader's file is not locked against this
    assert reading.execute("select count(*) from marts.fct_prices_current").fetchone() == (3,)
    reading.close()
    reader = MartsReader(warehouse_url=None, home=tmp_path)
    assert reader.query("select count(*) as n from marts.fct_prices_current")["n"].tolist() == [5]


def test_the_writer_holding_the_warehouse_does_not_stop_snapshot_readers(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    """The premise: a read-only open of the warehouse fails while another process writes it,
    and the published snapshot reads fine at the same time."""
    build_mart(warehouse, 4)
    publish_snapshot(warehouse, snapshot_path(tmp_path))
    writer = duckdb.connect(str(warehouse.duckdb_path))  # this process writes the warehouse
    try:
        probe = (
            "import duckdb, sys\n"
            "try:\n"
            "    duckdb.connect(sys.argv[1], read_only=True)\n"
            "    print('opened')\n"
            "except duckdb.IOException as exc:\n"
            "    print('refused', exc)\n"
            "from oddly.warehouse.reader import MartsReader\n"
            "from pathlib import Path\n"
            "r = MartsReader(warehouse_url=None, home=Path(sys.argv[2]))\n"
            "print('snapshot rows', r.query('select count(*) as n from marts.fct_prices_current')['n'][0])\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", probe, str(warehouse.duckdb_path), str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        writer.close()
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("refused") and "lock" in lines[0].lower()
    assert lines[1] == "snapshot rows 4"


def test_nothing_is_published_before_a_mart_exists(warehouse: Warehouse, tmp_path: Path) -> None:
    warehouse.ensure_schema()
    assert publish_snapshot(warehouse, snapshot_path(tmp_path)) is None
    assert not snapshot_path(tmp_path).exists() and not list(tmp_path.glob(".published*"))


def test_a_mart_that_cannot_be_copied_beside_dbt_fails_the_publish_and_keeps_the_last_snapshot(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    build_mart(warehouse, 3)
    assert publish_snapshot(warehouse, snapshot_path(tmp_path)) is not None
    build_mart(warehouse, 5)
    with warehouse.marts_writer():
        writer = SnapshotWriter(warehouse, snapshot_path(tmp_path))
        writer.mart_built("marts", "fct_prices_current")
        writer.mart_built("marts", "fct_gone")  # reported built, then dropped: the copy fails
        with pytest.raises(duckdb.CatalogException, match="fct_gone"):
            writer.finish()
    reader = MartsReader(warehouse_url=None, home=tmp_path)
    assert int(reader.query("select count(*) as n from marts.fct_prices_current")["n"][0]) == 3
    assert not list(tmp_path.glob(".published*")), "the staging file was left behind"


def test_a_failed_build_publishes_nothing_of_what_was_copied_beside_it(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    build_mart(warehouse, 3)
    with warehouse.marts_writer():
        writer = SnapshotWriter(warehouse, snapshot_path(tmp_path))
        writer.mart_built("marts", "fct_prices_current")
        writer.mart_built("staging", "stg_ignored")  # not a published schema: never copied
        writer.abort()  # dbt failed after building it
    assert not snapshot_path(tmp_path).exists() and not list(tmp_path.glob(".published*"))
    with warehouse.marts_writer():
        writer = SnapshotWriter(warehouse, snapshot_path(tmp_path))
        writer.mart_built("marts", "fct_prices_current")
        published = writer.finish()
    assert published is not None and published.copied_beside_dbt == ("marts.fct_prices_current",)
    assert published.rows["marts.fct_prices_current"] == 3
