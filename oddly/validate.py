"""Vectorized validation of a batch of price rows: the same rules as `oddly.model.PriceRow`, run
as column masks, with a reason a person can read for every row that fails."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from oddly.model import (
    LINE_MARKETS,
    MAX_PRICE,
    MIN_PRICE_EXCLUSIVE,
    RAW_PREFIX,
    SELECTION_KEY,
    Market,
    Outcome,
    PriceColumns,
    Reject,
    Status,
    price_problem,
)

# Event-level text that must not be blank (market and outcome are checked against the vocabulary).
_REQUIRED_EVENT_TEXT = ("bookmaker", "source_event_id", "sport", "home", "away", "period")
_MARKETS = pa.array([m.value for m in Market])
_OUTCOMES = pa.array([o.value for o in Outcome])
_STATUSES = pa.array([s.value for s in Status])
_LINE_MARKETS = pa.array(sorted(m.value for m in LINE_MARKETS))


@dataclass
class Validated:
    table: pa.Table
    rejects: list[Reject]


def _known(column: pa.ChunkedArray, vocabulary: pa.Array) -> pa.ChunkedArray:
    return pc.or_(pc.is_in(column, value_set=vocabulary), pc.starts_with(column, RAW_PREFIX))


def validate_batch(table: pa.Table, source: PriceColumns) -> Validated:
    """Split a batch (built by `source.to_table`) into valid rows and rejects with reasons."""
    n = table.num_rows
    if n == 0:
        return Validated(table, [])
    checks: list[tuple[str, pa.ChunkedArray | pa.Array]] = []
    # Event-level fields are checked once per event, then spread to the event's rows.
    events, rows_of = source.event_table(), pa.array(source.event_index())
    for name in _REQUIRED_EVENT_TEXT:
        col = events[name]
        blank = pc.or_(pc.is_null(col), pc.equal(pc.utf8_trim_whitespace(col), ""))
        checks.append((f"{name} is missing", blank.take(rows_of)))
    price = table["price"]
    bad_price = pc.or_kleene(
        pc.is_null(price),
        pc.or_kleene(
            pc.invert(pc.is_finite(price)),
            pc.or_kleene(pc.less_equal(price, MIN_PRICE_EXCLUSIVE), pc.greater(price, MAX_PRICE)),
        ),
    )
    checks.append(("price", pc.fill_null(bad_price, True)))
    checks.append(("unknown market", pc.invert(pc.fill_null(_known(table["market"], _MARKETS), True))))
    checks.append(("unknown outcome", pc.invert(pc.fill_null(_known(table["outcome"], _OUTCOMES), True))))
    checks.append(
        ("unknown status", pc.invert(pc.fill_null(pc.is_in(table["status"], value_set=_STATUSES), False)))
    )
    line = table["line"]
    needs_line = pc.is_in(table["market"], value_set=_LINE_MARKETS)
    checks.append(
        ("line missing for a line market", pc.fill_null(pc.and_(needs_line, pc.is_null(line)), False))
    )
    checks.append(("line is not finite", pc.fill_null(pc.invert(pc.is_finite(line)), False)))
    checks.append(("starts_at is missing", pc.is_null(events["starts_at"]).take(rows_of)))

    masks = np.vstack([np.asarray(m.to_numpy(zero_copy_only=False), dtype=bool) for _, m in checks])
    bad = masks.any(axis=0)
    if not bad.any():
        return Validated(table, [])
    rejects = []
    event_index = rows_of.to_numpy()
    for i in np.flatnonzero(bad):
        record = source.raw_record(int(i), event_index)
        reasons = [
            _price_reason(record["price"]) if label == "price" else _describe(label, table, int(i))
            for (label, _), failed in zip(checks, masks[:, i], strict=True)
            if failed
        ]
        reason = "; ".join(reasons)
        rejects.append(Reject(reason, record, record["bookmaker"] or "", record["source_event_id"]))
    return Validated(table.filter(pa.array(~bad)), rejects)


def _price_reason(raw: object) -> str:
    return price_problem(raw) or f"price {raw!r} is not a decimal odd"


def _describe(label: str, table: pa.Table, i: int) -> str:
    if label in ("unknown market", "unknown outcome", "unknown status"):
        column = label.split()[1]
        return f"{label} {table[column][i].as_py()!r}"
    if label == "line missing for a line market":
        return f"market {table['market'][i].as_py()} needs a line"
    return label


def latest_per_selection(table: pa.Table) -> pa.Table:
    """One row per selection (SELECTION_KEY), the last one in batch order: when several payloads
    of one cycle quote the same selection (a list and a game endpoint), the later answer wins."""
    if table.num_rows == 0:
        return table
    keyed = table.append_column("_ord", pa.array(np.arange(table.num_rows)))
    keys = [name if name != "line" else "_line" for name in SELECTION_KEY]
    keyed = keyed.append_column("_line", pc.fill_null(keyed["line"], -1e9))
    last = keyed.group_by(keys, use_threads=False).aggregate([("_ord", "max")])["_ord_max"]
    if len(last) == table.num_rows:
        return table
    return table.take(np.sort(last.to_numpy()))
