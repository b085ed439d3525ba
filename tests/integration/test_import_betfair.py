"""`oddly import betfair`: stream files written as one feed run each, change-only and idempotent, on
DuckDB and PostgreSQL; the ticks are exactly the changes of the best back price or status the
reader saw (counted here with pandas), the exchange book lands beside them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from oddly.cli import main
from oddly.feeds.betfair_stream import read_stream
from oddly.importers.betfair import import_stream_files
from oddly.warehouse.store import Warehouse

FILES = ("BASIC-1.132153978", "1.197931750", "1.197931751")


def expected_ticks(path: Path) -> int:
    """Per selection, the observations whose (price, status) differ from the previous one."""
    batch = read_stream(path)
    rows = batch.rows.to_table(pd.Timestamp(0, tz="UTC").to_pydatetime(), "t").to_pandas()
    rows["at"] = batch.observed_ms
    rows = rows.drop_duplicates(["market", "outcome", "line", "at"], keep="last")
    key = rows["market"] + "|" + rows["outcome"] + "|" + rows["line"].fillna(-1e9).astype(str)
    changed = (rows["price"] != rows.groupby(key)["price"].shift()) | (
        rows["status"] != rows.groupby(key)["status"].shift()
    )
    return int(changed.sum())


def test_stream_files_become_change_only_ticks_once(warehouse: Warehouse, shared_data: Path) -> None:
    paths = [shared_data / "betfair" / name for name in FILES]
    first = import_stream_files(warehouse, paths)
    assert [r.ticks for r in first] == [expected_ticks(p) for p in paths] == [1211, 250, 200]
    assert [r.stream.updates for r in first] == [480, 166, 166]
    ticks = pd.DataFrame(warehouse.query("select * from raw.odds_ticks"))
    assert set(ticks["bookmaker"]) == {"betfair_ex"} and ticks["load_seq"].nunique() == 3
    # every tick but a selection's first carries the price before it
    firsts = ticks.sort_values("observed_at").groupby("selection_key").head(1)
    assert ticks["previous_price"].isna().sum() == len(firsts) == 14 + 6 + 6
    # the latest price of each selection is its last tick
    latest = pd.DataFrame(warehouse.current_prices())
    assert len(latest) == 26 and set(latest["status"]) == {"suspended"}  # all three markets closed
    book = pd.DataFrame(warehouse.query("select * from raw.exchange_prices"))
    assert len(book) == sum(r.exchange_rows for r in first) > 0
    assert book["selection_key"].isin(ticks["selection_key"]).all()
    # the settled runners of the closing definitions: the Hamilton winner, Sheffield's winner and
    # its two placed dogs (the PLACE market has two winners)
    winners = book.loc[book["runner_status"] == "WINNER", ["market", "outcome"]].drop_duplicates()
    assert set(winners.itertuples(index=False, name=None)) == {
        ("win", "raw:Brother Mcgonagall"),
        ("win", "raw:2. Sandwood Jet"),
        ("raw:place", "raw:2. Sandwood Jet"),
        ("raw:place", "raw:6. Coolavanny Galiv"),
    }
    # again: nothing written twice
    again = import_stream_files(warehouse, paths)
    assert [r.ticks for r in again] == [0, 0, 0] and [r.exchange_rows for r in again] == [0, 0, 0]
    assert warehouse.count_ticks() == len(ticks)
    assert warehouse.scalar("select count(*) from raw.exchange_prices") == len(book)
    runs = warehouse.feed_runs("betfair_stream")
    assert len(runs) == 6 and all(r["status"] == "ok" for r in runs)


@pytest.mark.slow
def test_the_cricket_file_through_the_command(shared_data: Path, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ODDLY_HOME", str(tmp_path))
    path = shared_data / "betfair" / "1.200806927"
    result = CliRunner().invoke(main, ["import", "betfair", str(path), str(tmp_path / "missing")])
    assert result.exit_code == 0, result.output
    assert "1.200806927: 1 markets (MATCH_ODDS), 2 runners, 18,529 updates from 18,529 lines" in result.output
    assert f"ticks written {expected_ticks(path):,}," in result.output
    assert "ticks written 1,491," in result.output
    assert "missing: 0 markets" in result.output and "file unreadable ×1" in result.output
