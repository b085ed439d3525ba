"""The warehouse on DuckDB and on the real PostgreSQL: change-only ticks, idempotent writes, one
transaction per run, quarantine and the feed-run log."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from oddly.model import PriceColumns, Reject
from oddly.warehouse.store import FeedRunRecord, Warehouse, WarehouseBusyError

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
EVENT = {
    "bookmaker": "22bet",
    "source_event_id": "335841758",
    "sport": "football",
    "league": "Ecuador. Serie A",
    "country": "Ecuador",
    "home": "Manta",
    "away": "9 de Octubre",
    "starts_at": 1636416000.0,
}


def prices(*rows: tuple[str, str, float | None, float, str]) -> PriceColumns:
    return PriceColumns.from_records(
        {**EVENT, "market": m, "outcome": o, "line": line, "price": p, "status": s}
        for m, o, line, p, s in rows
    )


FIRST = prices(
    ("1x2", "home", None, 3.84, "open"),
    ("1x2", "draw", None, 3.54, "open"),
    ("1x2", "away", None, 1.896, "open"),
    ("total", "over", 2.5, 2.136, "open"),
    ("total", "over", 3.5, 3.64, "open"),
)


def run_record(run_id: str, at: datetime) -> FeedRunRecord:
    return FeedRunRecord(
        feed_run_id=run_id,
        feed="sim_22bet",
        bookmaker="22bet",
        status="ok",
        started_at=at,
        finished_at=at,
        requests=1,
        prices_seen=0,
        ticks_written=0,
        rejected=0,
        unmapped=0,
        unmapped_codes="{}",
        fetch_seconds=0.1,
        parse_seconds=0.0,
        write_seconds=0.0,
        http_outcome="1 requests: 1× HTTP 200",
        error=None,
    )


def write(
    wh: Warehouse, cols: PriceColumns, run_id: str, at: datetime, rejects: list[Reject] | None = None
) -> int:
    return wh.write_run(cols.to_table(at, run_id), rejects or [], run_record(run_id, at))


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Warehouse]:
    url = (
        f"duckdb:///{tmp_path}/wh.duckdb" if request.param == "duckdb" else request.getfixturevalue("pg_url")
    )
    wh = Warehouse.from_url(url)
    wh.ensure_schema()
    yield wh
    wh.dispose()


def test_first_sight_changes_and_status_changes_make_ticks(warehouse: Warehouse) -> None:
    assert write(warehouse, FIRST, "run-1", T0) == 5
    second = prices(
        ("1x2", "home", None, 3.70, "open"),  # price changed
        ("1x2", "draw", None, 3.54, "open"),  # unchanged
        ("1x2", "away", None, 1.896, "suspended"),  # status changed
        ("total", "over", 2.5, 2.136, "open"),  # unchanged
        ("total", "over", 3.5, 3.64, "open"),  # unchanged
        ("total", "under", 3.5, 1.24, "open"),  # new
    )
    assert write(warehouse, second, "run-2", T0 + timedelta(seconds=10)) == 3
    ticks = warehouse.query(
        "select outcome, line, price, status, feed_run_id from raw.odds_ticks where feed_run_id = 'run-2' "
        "order by outcome, line"
    )
    assert [(t["outcome"], t["line"], t["price"], t["status"]) for t in ticks] == [
        ("away", None, 1.896, "suspended"),
        ("home", None, 3.70, "open"),
        ("under", 3.5, 1.24, "open"),
    ]
    current = sorted(warehouse.current_prices("t.market = '1x2'"), key=lambda r: r["outcome"])
    assert [{"outcome": r["outcome"], "price": r["price"]} for r in current] == [
        {"outcome": "away", "price": 1.896},
        {"outcome": "draw", "price": 3.54},
        {"outcome": "home", "price": 3.70},
    ]
    assert warehouse.count_ticks() == 8


def test_a_retried_run_writes_nothing_twice(warehouse: Warehouse) -> None:
    assert write(warehouse, FIRST, "run-1", T0) == 5
    assert write(warehouse, FIRST, "run-1-retry", T0) == 0  # same payload, same moment
    assert write(warehouse, FIRST, "run-2", T0 + timedelta(seconds=10)) == 0  # same prices, later
    assert warehouse.count_ticks() == 5
    assert warehouse.scalar("select count(*) from raw.latest_prices") == 5


def test_quarantine_and_run_log_are_written_with_the_ticks(warehouse: Warehouse) -> None:
    bad = [
        Reject("price 0 is not a decimal odd (must be > 1)", {"C": 0, "G": 1, "T": 1}, "22bet", "335841758"),
        Reject("malformed JSON at byte 120", b'{"Value": [{"I": 1', "", None),
    ]
    write(warehouse, FIRST, "run-1", T0, bad)
    rows = warehouse.quarantined("run-1")
    assert sorted(r["reason"] for r in rows) == [
        "malformed JSON at byte 120",
        "price 0 is not a decimal odd (must be > 1)",
    ]
    assert {r["bookmaker"] for r in rows} == {"22bet"}
    assert any(r["record"] == '{"Value": [{"I": 1' for r in rows)
    run = warehouse.feed_runs("sim_22bet")[0]
    assert run["ticks_written"] == 5 and run["status"] == "ok" and run["write_seconds"] > 0
    assert warehouse.last_success("sim_22bet") == T0


def test_a_failing_write_leaves_nothing_half_written(warehouse: Warehouse) -> None:
    write(warehouse, FIRST, "run-1", T0)
    changed = prices(("1x2", "home", None, 4.2, "open"))
    with pytest.raises(Exception):  # noqa: B017 - the duplicate feed_run_id violates the primary key
        write(warehouse, changed, "run-1", T0 + timedelta(seconds=5), [Reject("x", {}, "22bet")])
    assert warehouse.count_ticks() == 5
    assert [r["price"] for r in warehouse.current_prices("t.outcome = 'home'")] == [3.84]
    assert warehouse.quarantined() == []
    assert len(warehouse.feed_runs()) == 1


def test_no_stored_price_is_at_or_below_one(warehouse: Warehouse) -> None:
    write(warehouse, FIRST, "run-1", T0)
    assert warehouse.count_bad_prices() == 0


def _write_in_process(url: str, run_id: str, price: float) -> int:
    wh = Warehouse.from_url(url)
    return wh.write_run(
        prices(("1x2", "home", None, price, "open")).to_table(T0, run_id), [], run_record(run_id, T0)
    )


def test_duckdb_writers_in_parallel_processes_queue_instead_of_failing(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path}/wh.duckdb"
    Warehouse.from_url(url).ensure_schema()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        written = pool.starmap(_write_in_process, [(url, f"run-{i}", 2.0 + i / 100) for i in range(8)])
    assert sorted(written) == [1] * 8
    assert Warehouse.from_url(url).count_ticks() == 8


def test_ticks_carry_previous_price_and_a_growing_load_sequence(warehouse: Warehouse) -> None:
    write(warehouse, FIRST, "r1", T0)
    moved = prices(("1x2", "home", None, 3.6, "open"), ("1x2", "draw", None, 3.54, "suspended"))
    write(warehouse, moved, "r2", T0 + timedelta(minutes=1))
    write(warehouse, FIRST, "r3", T0 + timedelta(minutes=2))
    rows = warehouse.query(
        "select feed_run_id, price, previous_price, load_seq from raw.odds_ticks "
        "where market = '1x2' and outcome in ('home', 'draw') order by outcome, load_seq"
    )
    assert [(r["feed_run_id"], r["price"], r["previous_price"], r["load_seq"]) for r in rows] == [
        ("r1", 3.54, None, 1),
        ("r2", 3.54, 3.54, 2),  # a status-only change keeps the price it had
        ("r3", 3.54, 3.54, 3),
        ("r1", 3.84, None, 1),
        ("r2", 3.6, 3.84, 2),
        ("r3", 3.84, 3.6, 3),
    ]
    runs = warehouse.query("select feed_run_id, load_seq from raw.feed_runs order by load_seq")
    assert [(r["feed_run_id"], r["load_seq"]) for r in runs] == [("r1", 1), ("r2", 2), ("r3", 3)]


def test_an_older_warehouse_file_gains_the_new_columns(tmp_path: Path) -> None:
    import duckdb

    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create schema raw")
    con.execute(
        "create table raw.odds_ticks (selection_key bigint, bookmaker text, source_event_id text, "
        "sport text, league text, country text, home text, away text, starts_at timestamptz, "
        "is_live boolean, market text, period text, line double, outcome text, price double, "
        "status text, source_ts timestamptz, observed_at timestamptz, feed_run_id text)"
    )
    con.close()
    wh = Warehouse.from_url(f"duckdb:///{path}")
    write(wh, FIRST, "r1", T0)
    assert wh.scalar("select max(load_seq) from raw.odds_ticks") == 1
    wh.dispose()


def test_the_file_lock_is_reentrant_in_a_process_and_shared_by_its_threads(tmp_path: Path) -> None:
    import threading

    wh = Warehouse.from_url(f"duckdb:///{tmp_path}/wh.duckdb")
    order: list[str] = []
    with wh.exclusive():
        write(wh, FIRST, "r1", T0)  # begin() inside exclusive() does not wait for itself
        other = threading.Thread(target=lambda: (wh.ensure_schema(), order.append("thread wrote")))
        wh._schema_ready = False
        other.start()
        other.join(timeout=0.5)
        order.append("holder done")
    other.join(timeout=30)
    assert order == ["holder done", "thread wrote"]
    wh.dispose()


def _exclusive_within(url: str, timeout: float) -> str:
    wh = Warehouse(url, lock_timeout_seconds=timeout)
    try:
        with wh.exclusive():
            return "held"
    except WarehouseBusyError as exc:
        return str(exc)


def test_the_marts_builder_lets_its_own_process_write_and_keeps_other_processes_out(tmp_path: Path) -> None:
    import threading

    url = f"duckdb:///{tmp_path}/wh.duckdb"
    wh = Warehouse.from_url(url)
    wh.ensure_schema()
    with wh.marts_writer():
        poll = threading.Thread(target=lambda: write(wh, FIRST, "r1", T0))
        poll.start()
        poll.join(timeout=30)
        assert not poll.is_alive()  # a writer of this process did not wait for the marts
        with wh.marts_writer():  # reentrant, like the writers' lane
            assert wh.count_ticks() > 0
        other = multiprocessing.get_context("spawn").Pool(1)
        try:
            assert "is busy" in other.apply(_exclusive_within, (url, 0.5))
        finally:
            other.close()
    assert _exclusive_within(url, 5) == "held"  # let go with the last lane
    wh.dispose()


def test_threads_opening_the_file_at_once_all_get_a_working_connection(tmp_path: Path) -> None:
    """DuckDB's Python client handed a database it was still opening to a second thread, whose Arrow
    scan then failed ("python_arrow_scan does not exist"): in the demo a poll failed now and then
    while the marts cycle's dbt opened the file. Connections of the process open one at a time, and
    a held file keeps one open, so the others find its database ready."""
    import threading

    import duckdb
    import pyarrow as pa

    from oddly.warehouse.store import connect_duckdb, duckdb_config

    wh = Warehouse.from_url(f"duckdb:///{tmp_path}/wh.duckdb")
    wh.ensure_schema()
    path = tmp_path / "wh.duckdb"
    wanted = pa.table({"selection_key": ["a", "b", "c"]})
    errors: list[str] = []
    counts: list[int] = []

    def scan(con: duckdb.DuckDBPyConnection) -> None:
        try:
            con.register("_wanted", wanted)
            counts.append(con.execute("select count(*) from _wanted").fetchone()[0])
        except duckdb.Error as exc:  # every failure is counted, not just the first
            errors.append(str(exc).splitlines()[0])
        finally:
            con.close()

    def own_connections() -> None:  # the publish's: no lane of their own
        for _ in range(300):
            scan(connect_duckdb(path))

    def poll() -> None:  # through the engine, on the writers' lane
        for _ in range(300):
            try:
                (table,) = wh.arrow_with(["select count(*) as n from _wanted"], {"_wanted": wanted})
                counts.append(table["n"][0].as_py())
            except Exception as exc:
                errors.append(str(exc).splitlines()[0])

    def dbt_like() -> None:  # dbt opens the file itself (not through connect_duckdb), on the marts' lane
        for _ in range(300):
            with wh.marts_writer():
                scan(duckdb.connect(str(path), config=duckdb_config()))

    threads = [threading.Thread(target=t) for t in (own_connections, own_connections, poll, dbt_like)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert errors == []
    assert counts == [3] * 1200
    wh.dispose()
