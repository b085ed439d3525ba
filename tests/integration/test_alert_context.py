"""Alert context from a small warehouse (DuckDB and PostgreSQL): event, kick-off, every book's
current price on the selection and the fair price; a mart not built yet means fewer fields only."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from oddly.alerts.context import SelectionContext, enrich
from oddly.alerts.decide import Candidate, decide, to_candidates
from oddly.alerts.policy import parse_policy
from oddly.detect.detection import Detection
from oddly.matching.run import update_event_map
from oddly.warehouse.reader import MartsReader
from oddly.warehouse.snapshot import SNAPSHOT_FILE
from oddly.warehouse.store import Warehouse
from tests.integration.test_detect_ingest import IN_LINE, KICK_OFF, T0, book_prices

MOVED = T0 + timedelta(seconds=10)


def sharp_drop(canonical: str | None, book: str = "x") -> Detection:
    return Detection(
        type="sharp_drop",
        canonical_event_id=canonical,
        source_event_id=f"{book}-77",
        bookmaker=book,
        market="1x2",
        period="ft",
        line=None,
        outcome="home",
        detected_at=MOVED,
        strength=2.0,
        reasons={},  # no prices of its own: they come from the warehouse
        explanation=f"{book} shortened home",
        rules_version="r-1",
    )


def write(
    warehouse: Warehouse,
    book: str,
    prices: dict[tuple[str, float | None, str], float],
    at: datetime,
    run: str,
) -> None:
    table, record = book_prices(book, prices, at, run)
    warehouse.write_run(table, [], record)


@pytest.fixture
def filled(warehouse: Warehouse) -> tuple[Warehouse, str]:
    """Books a, b, c and x on one matched event; x then shortens home 2.0 → 1.6 and b lifts it to 2.3."""
    for book in ("a", "b", "c", "x"):
        write(warehouse, book, IN_LINE, T0, f"{book}-1")
    update_event_map(warehouse)
    write(warehouse, "x", {**IN_LINE, ("1x2", None, "home"): 1.6}, MOVED, "x-2")
    write(warehouse, "b", {**IN_LINE, ("1x2", None, "home"): 2.3}, MOVED, "b-2")
    # z lists the match after the matching ran: not in raw.event_map yet
    write(warehouse, "z", IN_LINE, MOVED, "z-1")
    canonical = warehouse.scalar("select canonical_event_id from raw.event_map where bookmaker = 'x'")
    return warehouse, str(canonical)


def marts_for(warehouse: Warehouse, home: Path) -> MartsReader:
    url = None if warehouse.dialect == "duckdb" else warehouse.url
    return MartsReader(warehouse_url=url, home=home)


def publish_consensus(warehouse: Warehouse, home: Path, canonical: str, fair: float) -> None:
    """A one-row marts.fct_consensus where readers look (the snapshot file, or the PostgreSQL warehouse)."""
    ddl = [
        "create schema if not exists marts",
        "create table marts.fct_consensus (canonical_event_id text, market text, period text, "
        "line double precision, outcome text, fair_probability_sharp_multiplicative double precision, "
        "fair_probability_all_multiplicative double precision)",
        f"insert into marts.fct_consensus values ('{canonical}', '1x2', 'ft', null, 'home', null, {fair})",
    ]
    if warehouse.dialect == "duckdb":
        with duckdb.connect(str(home / SNAPSHOT_FILE)) as conn:
            for sql in ddl:
                conn.execute(sql)
        return
    with warehouse.begin() as conn:
        for sql in ddl:
            conn.exec_driver_sql(sql)


def test_context_of_a_matched_selection_without_marts(filled: tuple[Warehouse, str], tmp_path: Path) -> None:
    warehouse, canonical = filled
    candidates = to_candidates([sharp_drop(canonical)])
    context = enrich(candidates, warehouse, marts_for(warehouse, tmp_path))  # no marts built: no error
    ctx = context[(canonical, "1x2", "ft", None, "home")]
    assert (ctx.event_name, ctx.sport, ctx.is_live) == ("Manta v 9 de Octubre", "football", False)
    assert ctx.starts_at == KICK_OFF
    assert {b: (q.price, q.previous_price) for b, q in ctx.prices.items()} == {
        "a": (2.0, None),
        "b": (2.3, 2.0),
        "c": (2.0, None),
        "x": (1.6, 2.0),
    }
    assert ctx.fair_probability is None

    (decision,) = decide(
        candidates, {}, parse_policy({"version": "1", "types": {"sharp_drop": {}}}), MOVED, context
    )
    alert = decision.alert
    assert alert is not None and alert.event_name == "Manta v 9 de Octubre" and alert.starts_at == KICK_OFF
    assert (alert.old_price, alert.new_price, alert.fair_price, alert.edge) == (2.0, 1.6, None, None)
    assert [(p.bookmaker, p.price) for p in alert.best_prices] == [("b", 2.3), ("a", 2.0), ("c", 2.0)]


def test_fair_price_comes_from_the_consensus_mart_once_built(
    filled: tuple[Warehouse, str], tmp_path: Path
) -> None:
    warehouse, canonical = filled
    publish_consensus(warehouse, tmp_path, canonical, fair=0.52)
    candidates = to_candidates([sharp_drop(canonical)])
    (ctx,) = enrich(candidates, warehouse, marts_for(warehouse, tmp_path)).values()
    assert ctx.fair_probability == pytest.approx(0.52)
    (decision,) = decide(
        candidates,
        {},
        parse_policy({"version": "1"}),
        MOVED,
        {c.selection: ctx for c in candidates if isinstance(c, Candidate)},
    )
    assert decision.alert is not None
    assert decision.alert.fair_price == pytest.approx(1 / 0.52, rel=1e-6)
    assert decision.alert.edge == pytest.approx(1.6 * 0.52 - 1, rel=1e-6)


def test_an_unmatched_event_gets_its_own_books_context(filled: tuple[Warehouse, str], tmp_path: Path) -> None:
    warehouse, _ = filled
    candidates = to_candidates([sharp_drop(None, book="z")])
    (ctx,) = enrich(candidates, warehouse, marts_for(warehouse, tmp_path)).values()
    assert ctx.event_name == "Manta v 9 de Octubre" and set(ctx.prices) == {"z"}


def test_no_warehouse_rows_or_no_sources_give_empty_context(filled: tuple[Warehouse, str]) -> None:
    warehouse, _ = filled
    unknown = to_candidates([sharp_drop("no-such-event")])
    assert enrich(unknown, warehouse) == {("no-such-event", "1x2", "ft", None, "home"): SelectionContext()}
    assert enrich(unknown, None, None) == {("no-such-event", "1x2", "ft", None, "home"): SelectionContext()}
    assert enrich([], warehouse) == {}
