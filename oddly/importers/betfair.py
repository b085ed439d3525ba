"""Betfair Exchange stream files into the warehouse: each file one feed run of ticks of `betfair_ex`
(change-only, by `oddly.importers.history.write_history`) and its exchange book in
`raw.exchange_prices`, in one transaction. Importing a file again writes nothing.

Reading and mapping are `oddly.feeds.betfair_stream`'s; here the rows are validated like any
feed's (rejects quarantined with their reason) and the exchange book is kept where it changed.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
from betfairlightweight.resources import MarketCatalogue

from oddly.feeds.betfair_stream import BOOK_FIELDS, BOOKMAKER, StreamReport, read_stream
from oddly.importers.history import write_history
from oddly.model import now_utc
from oddly.validate import validate_batch
from oddly.warehouse.store import FeedRunRecord, Warehouse

FEED = "betfair_stream"
SAME_TIME = "second observation of a selection at one publish time (the later one kept)"


@dataclass
class BetfairImport:
    """What importing one stream file did."""

    file: str
    stream: StreamReport
    price_rows: int = 0
    ticks: int = 0
    exchange_rows: int = 0
    already_stored: int = 0
    rejected: int = 0
    feed_run_id: str = ""
    seconds: float = 0.0
    skipped: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """The report in words, one line per fact."""
        s = self.stream
        skipped = {**s.skipped, **self.skipped}
        reasons = "; ".join(f"{reason} ×{n:,}" for reason, n in sorted(skipped.items())) or "nothing"
        unknown = ", ".join(f"{t} ×{n}" for t, n in s.unknown_market_types.items()) or "none"
        return [
            f"{self.file}: {len(s.markets)} markets ({', '.join(sorted(s.market_types)) or 'none'}), "
            f"{len(s.runners)} runners, {s.updates:,} updates from {s.lines:,} lines",
            f"  price rows {self.price_rows:,}, ticks written {self.ticks:,}, exchange-book rows "
            f"{self.exchange_rows:,}, already stored {self.already_stored:,}, rejected {self.rejected:,}",
            f"  market types kept raw: {unknown}; skipped: {reasons}",
        ]


def import_stream_file(
    warehouse: Warehouse, path: Path, catalogues: Iterable[MarketCatalogue] = ()
) -> BetfairImport:
    """Read one stream file and write it as one feed run; bad lines are counted, never raised."""
    started, t0 = now_utc(), time.perf_counter()
    report = StreamReport()
    result = BetfairImport(path.name, report)
    if not path.is_file():
        report.skip("file unreadable", f"{path}: no such file")
        return result
    batch = read_stream(path, catalogues, report)
    run_id = f"{FEED}-{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    table = batch.rows.to_table(started, run_id)
    observed = pa.array(batch.observed_ms * 1000, pa.int64()).cast(table.schema.field("observed_at").type)
    table = table.set_column(table.schema.get_field_index("observed_at"), "observed_at", observed)
    validated = validate_batch(table, batch.rows)
    prices, repeated = last_per_selection_and_time(validated.table)
    if repeated:
        result.skipped[SAME_TIME] = repeated
    book = book_changes(batch.exchange)
    result.price_rows, result.rejected = prices.num_rows, len(validated.rejects)
    record = FeedRunRecord(
        feed_run_id=run_id,
        feed=FEED,
        bookmaker=BOOKMAKER,
        status="ok" if prices.num_rows or not len(batch.rows) else "failed",
        started_at=started,
        finished_at=now_utc(),
        requests=1,
        prices_seen=len(batch.rows),
        ticks_written=0,
        rejected=len(validated.rejects),
        unmapped=sum(report.unknown_market_types.values()),
        unmapped_codes=json.dumps(dict(report.unknown_market_types), sort_keys=True),
        fetch_seconds=0.0,
        parse_seconds=time.perf_counter() - t0,
        write_seconds=0.0,
        http_outcome=f"file {path.name}: {report.lines} lines, {report.updates} updates",
        error=(
            f"{len(validated.rejects)} prices quarantined, see raw.quarantine" if validated.rejects else None
        ),
    )
    written = write_history(warehouse, prices, validated.rejects, record, ("exchange_prices", book))
    result.ticks, result.exchange_rows, result.already_stored = (
        written.ticks,
        written.side_rows,
        written.already_stored,
    )
    result.feed_run_id, result.seconds = run_id, time.perf_counter() - t0
    return result


def import_stream_files(
    warehouse: Warehouse, paths: Sequence[Path], catalogues: Iterable[MarketCatalogue] = ()
) -> list[BetfairImport]:
    catalogue_list = list(catalogues)
    return [import_stream_file(warehouse, Path(p), catalogue_list) for p in paths]


def last_per_selection_and_time(table: pa.Table) -> tuple[pa.Table, int]:
    """One row per selection and observation time, the last in file order (two messages of one
    publish time), and how many were dropped."""
    if table.num_rows == 0:
        return table, 0
    keys = table.select(["source_event_id", "market", "line", "outcome", "observed_at"]).to_pandas()
    keys["line"] = keys["line"].fillna(-1e9)
    last = ~keys.duplicated(keep="last").to_numpy()
    return table.filter(pa.array(last)), int((~last).sum())


def book_changes(book: pa.Table) -> pa.Table:
    """The exchange-book rows where a selection's book differs from its previous row (every runner
    of a market is listed at each of its updates; most of them did not change)."""
    if book.num_rows == 0:
        return book
    frame = book.select(["market_id", "selection_id", "handicap", *BOOK_FIELDS]).to_pandas()
    selection = frame.groupby(["market_id", "selection_id", "handicap"], sort=False).ngroup().to_numpy()
    order = np.lexsort((np.arange(len(frame)), selection))
    values = frame[list(BOOK_FIELDS)].iloc[order]
    same_selection = np.r_[False, selection[order][1:] == selection[order][:-1]]
    # nulls compare equal to nulls here: a value that stays absent is no change
    unchanged = (values.shift().eq(values) | (values.shift().isna() & values.isna())).all(axis=1).to_numpy()
    keep = np.zeros(len(frame), dtype=bool)
    keep[order] = ~(same_selection & unchanged)
    return book.filter(pa.array(keep))
