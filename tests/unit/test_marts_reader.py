"""MartsReader on the embedded store: the published snapshot opened once per version and reused,
a new snapshot renamed over it read by the next query, a query on the old one finishing on the old
one, threads querying while snapshots are replaced, and DuckDB's types read as the app needs them.

Snapshots are written as the publisher writes them (`oddly.warehouse.snapshot`): a new file beside
the published path, renamed over it."""

from __future__ import annotations

import multiprocessing
import os
import threading
from pathlib import Path
from typing import Any

import duckdb
import pytest

from oddly.warehouse.reader import MartsNotReadyError, MartsReader
from oddly.warehouse.snapshot import snapshot_path


def publish(home: Path, value: int) -> None:
    """A snapshot whose `marts.numbers` holds `value` (and `value` rows), moved over the published
    path atomically."""
    staging = home / f".published.{value}.tmp"
    with duckdb.connect(str(staging)) as con:
        con.execute("create schema marts")
        con.execute(f"create table marts.numbers as select {value} as value, i from range({value}) t(i)")
    os.replace(staging, snapshot_path(home))


def value(reader: MartsReader) -> int:
    return int(reader.query("select max(value) as v from marts.numbers")["v"].iloc[0])


def test_nothing_published_is_a_worded_error(tmp_path: Path) -> None:
    reader = MartsReader(warehouse_url=None, home=tmp_path)
    assert reader.version() is None
    with pytest.raises(MartsNotReadyError, match="no marts published yet"):
        reader.query("select 1")


def test_each_publish_is_a_new_version_read_by_the_next_query(tmp_path: Path) -> None:
    reader = MartsReader(warehouse_url=None, home=tmp_path)
    publish(tmp_path, 1)
    first = reader.version()
    assert value(reader) == 1 and reader.version() == first  # reading does not change it
    publish(tmp_path, 2)
    assert reader.version() not in (None, first)
    assert value(reader) == 2
    reader.dispose()


def test_a_query_on_a_replaced_snapshot_finishes_on_it(tmp_path: Path) -> None:
    """A cursor taken before a publish (a query under way) keeps reading the snapshot it started
    on, although its file was renamed over and no longer has a name; the reader's next query reads
    the new one, and closing the old one later breaks neither."""
    reader = MartsReader(warehouse_url=None, home=tmp_path)
    publish(tmp_path, 3)
    assert value(reader) == 3
    under_way = reader._cursor()
    publish(tmp_path, 5)
    assert value(reader) == 5
    assert under_way.execute("select count(*), max(value) from marts.numbers").fetchone() == (3, 3)
    under_way.close()
    assert value(reader) == 5
    reader.dispose()


def test_named_parameters_and_types(tmp_path: Path) -> None:
    publish(tmp_path, 4)
    reader = MartsReader(warehouse_url=None, home=tmp_path)
    frame = reader.query(
        "select sum(i) as total, cast(:at as timestamptz) as at, :label::varchar as text, "
        "1.5 as literal from marts.numbers where value = :v",
        {"v": 4, "at": "2026-11-22 12:00:00+00", "label": "x", "not_in_the_sql": 1},
    )
    row = frame.iloc[0]
    assert row["total"] == 6 and str(frame["total"].dtype) == "int64"  # a HUGEINT sum, as an integer
    assert str(row["at"]) == "2026-11-22 12:00:00+00:00"  # read in UTC
    assert row["text"] == "x" and row["literal"] == 1.5


def test_threads_query_while_snapshots_are_published(tmp_path: Path) -> None:
    """Each answer is one whole snapshot (as many rows as its value), never an error, and once the
    last publish is done every thread reads it."""
    publish(tmp_path, 1)
    reader = MartsReader(warehouse_url=None, home=tmp_path)
    last = 30
    done = threading.Event()
    errors: list[BaseException] = []
    seen: list[set[int]] = [set() for _ in range(4)]

    def read(found: set[int]) -> None:
        try:
            while not done.is_set():
                frame = reader.query("select max(value) as v, count(*) as n from marts.numbers")
                v, n = int(frame["v"].iloc[0]), int(frame["n"].iloc[0])
                assert v == n, f"snapshot {v} with {n} rows"
                found.add(v)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=read, args=(found,)) for found in seen]
    for thread in threads:
        thread.start()
    for v in range(2, last + 1):
        publish(tmp_path, v)
    for _ in range(3):
        assert value(reader) == last
    done.set()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert all(found and max(found) <= last for found in seen)
    reader.dispose()


def _read_in_child(reader: MartsReader, home: Path, answers: Any) -> None:
    before = value(reader)
    publish(home, 5)  # a new snapshot: the one inherited is let go of
    answers.put((before, value(reader)))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")
def test_a_forked_child_reads_with_the_reader_it_inherited(tmp_path: Path) -> None:
    """A process forked after the reader opened the snapshot (a worker pool, a forking server)
    opens its own: closing the parent's DuckDB there, at the next publish, would wait forever."""
    publish(tmp_path, 3)
    reader = MartsReader(warehouse_url=None, home=tmp_path)
    assert value(reader) == 3
    context = multiprocessing.get_context("fork")
    answers = context.Queue()
    child = context.Process(target=_read_in_child, args=(reader, tmp_path, answers))
    child.start()
    child.join(30)
    if child.exitcode is None:
        child.kill()
    assert child.exitcode == 0 and answers.get(timeout=5) == (3, 5)
    assert value(reader) == 5
    reader.dispose()
