"""The warm in-process dbt and the marts cycle the marts sensor runs: the project is parsed once per
process and reused, dbt releases the DuckDB file after every invocation (another process can open
it), a process's first cycle builds every model (the views too) and later cycles the `ingest_cycle`
selector, the marts are published, and the data tests run only when asked."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import duckdb
import pytest

from oddly.config import Settings
from oddly.model import PriceColumns, now_utc
from oddly.warehouse.cycle import run_marts_cycle
from oddly.warehouse.dbt_runner import DbtOutcome, WarmDbt, project_signature
from oddly.warehouse.reader import MartsReader
from oddly.warehouse.snapshot import PUBLISHED_ROWS
from oddly.warehouse.store import FeedRunRecord, Warehouse
from tests.integration.test_dbt_project import seed

pytestmark = pytest.mark.slow


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = Settings(home=tmp_path, warehouse_url=None)
    warehouse = Warehouse.from_settings(settings)
    seed(warehouse)
    warehouse.dispose()
    return settings


def opens_in_another_process(path: Path) -> str:
    """What another process reads from the DuckDB file (its error when the file is held)."""
    script = textwrap.dedent(
        f"""
        import duckdb
        with duckdb.connect({str(path)!r}) as con:
            print(con.execute("select count(*) from raw.odds_ticks").fetchone()[0])
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    return done.stdout.strip() or done.stderr.strip()[-300:]


def test_the_project_is_parsed_once_and_dbt_lets_go_of_the_file_after_each_invocation(
    settings: Settings,
) -> None:
    dbt = WarmDbt(settings)
    built = dbt.invoke(["run"])
    assert built.success, built.describe()
    names = {n.unique_id.split(".")[-1] for n in built.nodes}
    assert {"stg_raw__odds_ticks", "int_selection_state", "fct_prices_current", "fct_arbitrage"} <= names
    assert {e["info"]["name"] for e in built.events} == {"LogModelResult"}
    assert len(built.events) == len(built.nodes)
    assert opens_in_another_process(settings.duckdb_path) == "9"  # the seed's nine prices

    tested = dbt.invoke(["test", "--selector", "checks"])
    assert tested.success and tested.nodes and all(n.status == "pass" for n in tested.nodes)
    assert {e["info"]["name"] for e in tested.events} == {"LogTestResult"}
    assert dbt.parses == 1
    assert opens_in_another_process(settings.duckdb_path) == "9"


def test_a_failing_invocation_says_why_and_holds_nothing(settings: Settings) -> None:
    dbt = WarmDbt(settings)
    failed = dbt.invoke(["run", "--selector", "no_such_selector"])
    assert not failed.success and failed.error and "no_such_selector" in failed.error
    assert "no_such_selector" in failed.describe()
    assert opens_in_another_process(settings.duckdb_path) == "9"


def test_the_parse_is_redone_only_when_a_project_file_changes(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    model = tmp_path / "models" / "m.sql"
    model.write_text("select 1 as x")
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "manifest.json").write_text("{}")  # dbt's own output: not the project
    before = project_signature(tmp_path)
    (tmp_path / "target" / "manifest.json").write_text('{"changed": true}')
    assert project_signature(tmp_path) == before
    model.write_text("select 2 as x")
    assert project_signature(tmp_path) != before


def test_a_first_cycle_builds_every_model_and_later_ones_the_cycle_selector(settings: Settings) -> None:
    dbt = WarmDbt(settings)
    first = run_marts_cycle(settings, dbt, run_checks=True)
    assert first.success, first.describe()
    built = {n.unique_id.split(".")[-1] for n in first.models.nodes}
    assert "stg_raw__odds_ticks" in built  # a view: only a first cycle (re)creates them
    assert first.matching.canonical_events == 2 and first.matching.matched_across_books == 1
    assert first.checks is not None and first.checks.success
    assert first.snapshot is not None and first.snapshot.rows["marts.fct_prices_current"] == 9
    assert 0 < first.held_seconds == first.match_seconds < first.models.seconds < first.seconds

    later = run_marts_cycle(settings, dbt, run_checks=False)
    assert later.success and later.checks is None
    rebuilt = {n.unique_id.split(".")[-1] for n in later.models.nodes}
    assert "stg_raw__odds_ticks" not in rebuilt and "fct_prices_current" in rebuilt
    assert dbt.parses == 1
    prices = MartsReader(warehouse_url=None, home=settings.home).query(
        "select count(*) as n from marts.fct_prices_current"
    )
    assert int(prices["n"][0]) == 9
    assert "published" in later.describe() and "warehouse held" in later.describe()


def test_the_cycle_copies_each_mart_into_the_snapshot_as_soon_as_dbt_has_built_it(settings: Settings) -> None:
    dbt = WarmDbt(settings)
    assert run_marts_cycle(settings, dbt, run_checks=False).success
    cycle = run_marts_cycle(settings, dbt, run_checks=False)
    assert cycle.success and cycle.snapshot is not None, cycle.describe()
    built_marts = {
        f"marts.{n.unique_id.split('.')[-1]}"
        for n in cycle.models.nodes
        if n.unique_id.split(".")[-1].startswith(("fct_", "dim_"))
    }
    assert built_marts and set(cycle.snapshot.copied_beside_dbt) == built_marts
    assert cycle.snapshot.seconds_beside_dbt > 0
    copied = cycle.snapshot.copied_beside_dbt  # the steam moves published are those of the events built
    assert copied.index("marts.fct_steam_moves") > copied.index("marts.dim_events")
    # what readers get is what dbt built: every mart, row for row
    published = {k: v for k, v in cycle.snapshot.rows.items() if k.startswith("marts.")}
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        for name, count in published.items():
            rows_sql = PUBLISHED_ROWS.get(name, "")  # the history-sized marts: the events on offer
            assert con.execute(f"select count(*) from {name} {rows_sql}").fetchone() == (count,), name
        snapshot_rows = duckdb.connect(str(cycle.snapshot.path), read_only=True)
        try:
            for name in built_marts:
                theirs = snapshot_rows.execute(f"select * from {name} order by all").fetchall()
                ours = con.execute(f"select * from {name} {PUBLISHED_ROWS.get(name, '')} order by all")
                assert theirs == ours.fetchall(), name
        finally:
            snapshot_rows.close()


def write_a_move(settings: Settings, price: float) -> int:
    """What a poll of the same process writes: Chelsea's home price at 22Bet moves to `price`;
    the load sequence it got."""
    warehouse = Warehouse.from_settings(settings)
    starts_at = warehouse.scalar("select max(starts_at) from raw.odds_ticks")
    row = {
        "bookmaker": "22bet",
        "source_event_id": "78",
        "sport": "football",
        "home": "Chelsea",
        "away": "Arsenal",
        "starts_at": starts_at.timestamp(),
        "market": "1x2",
        "outcome": "home",
        "price": price,
    }
    now = now_utc()
    run = FeedRunRecord(
        f"move-{uuid.uuid4().hex}",
        "f",
        "22bet",
        "ok",
        now,
        now,
        1,
        1,
        0,
        0,
        0,
        "{}",
        0.0,
        0.0,
        0.0,
        "ok",
        None,
    )
    warehouse.write_run(PriceColumns.from_records([row]).to_table(now, run.feed_run_id), [], run)
    warehouse.dispose()
    assert run.load_seq is not None
    return run.load_seq


class PollDuringDbt(WarmDbt):
    """The warm dbt, with a poll of the same process writing a move in another thread just before
    each `dbt run` of a cycle: the poll must not wait for the cycle, and the cycle must not see it."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.loads: list[int] = []

    def invoke(self, args: Sequence[str], on_built: Callable[[str, str], None] | None = None) -> DbtOutcome:
        if args[0] == "run":
            poll = threading.Thread(target=lambda: self.loads.append(write_a_move(self.settings, 2.2)))
            poll.start()
            poll.join(timeout=60)
            assert not poll.is_alive(), "the poll waited for the marts cycle"
        return super().invoke(args, on_built)


def chelsea_home(settings: Settings) -> float:
    current = MartsReader(warehouse_url=None, home=settings.home).query(
        "select price from marts.fct_prices_current where bookmaker = '22bet' and source_event_id = '78' "
        "and outcome = 'home'"
    )
    return float(current["price"][0])


def test_polls_write_while_the_cycle_builds_and_the_cycle_reads_the_ticks_up_to_its_start(
    settings: Settings,
) -> None:
    dbt = PollDuringDbt(settings)
    first = run_marts_cycle(settings, dbt, run_checks=False)
    assert first.success, first.describe()
    assert len(dbt.loads) == 1  # the move was written while the cycle held the marts
    # built and published from the ticks before the move: every mart the same
    assert chelsea_home(settings) == 2.5
    assert first.snapshot is not None and first.snapshot.load_seq == dbt.loads[0] - 1
    warehouse = Warehouse.from_settings(settings)
    folded_up_to = warehouse.scalar("select max(last_load_seq) from intermediate.int_selection_state")
    assert folded_up_to == dbt.loads[0] - 1

    plain = WarmDbt(settings)
    later = run_marts_cycle(settings, plain, run_checks=True)
    assert later.success and later.checks is not None and later.checks.success, later.describe()
    assert chelsea_home(settings) == 2.2  # the next cycle takes the move
    assert later.snapshot is not None and later.snapshot.load_seq == dbt.loads[0]
    folded = warehouse.scalar("select sum(ticks) from intermediate.int_selection_state")
    assert folded == warehouse.scalar("select count(*) from raw.odds_ticks") == 10
    warehouse.dispose()


class PollsAllThroughDbt(WarmDbt):
    """The warm dbt with a poll of the same process writing moves without pause for as long as each
    `dbt run` lasts: the poll's connections and dbt's are open on the file at once."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.loads_during_run: list[int] = []
        self.errors: list[BaseException] = []

    def invoke(self, args: Sequence[str], on_built: Callable[[str, str], None] | None = None) -> DbtOutcome:
        if args[0] != "run":
            return super().invoke(args, on_built)
        running = threading.Event()
        done = threading.Event()

        def poll() -> None:
            price = 2.2
            running.wait()
            while not done.is_set():
                try:
                    self.loads_during_run.append(write_a_move(self.settings, price))
                except BaseException as exc:
                    self.errors.append(exc)
                    return
                price = 2.3 if price == 2.2 else 2.2

        thread = threading.Thread(target=poll)
        thread.start()
        running.set()
        try:
            return super().invoke(args, on_built)
        finally:
            done.set()
            thread.join(timeout=60)


def test_a_poll_and_the_cycle_open_the_file_at_once_without_error(settings: Settings) -> None:
    dbt = PollsAllThroughDbt(settings)
    cycle = run_marts_cycle(settings, dbt, run_checks=False)
    assert dbt.errors == []  # DuckDB took both: same configuration, different tables
    assert cycle.success, cycle.describe()
    assert len(dbt.loads_during_run) >= 2
    assert cycle.snapshot is not None and cycle.snapshot.load_seq < dbt.loads_during_run[0]
    again = run_marts_cycle(settings, WarmDbt(settings), run_checks=True)
    assert again.success and again.checks is not None and again.checks.success, again.describe()
    assert again.snapshot is not None and again.snapshot.load_seq == max(dbt.loads_during_run)
