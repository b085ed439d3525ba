"""The raw tables of the warehouse, one definition for DuckDB and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa

RAW_SCHEMA = "raw"

metadata = sa.MetaData(schema=RAW_SCHEMA)


def _price_columns() -> list[sa.Column[object]]:
    """The canonical price row (oddly.model.PRICE_SCHEMA) as SQL columns, after its selection key."""
    ts = sa.DateTime(timezone=True)
    return [
        sa.Column("selection_key", sa.BigInteger, nullable=False),
        sa.Column("bookmaker", sa.Text, nullable=False),
        sa.Column("source_event_id", sa.Text, nullable=False),
        sa.Column("sport", sa.Text, nullable=False),
        sa.Column("league", sa.Text),
        sa.Column("country", sa.Text),
        sa.Column("home", sa.Text, nullable=False),
        sa.Column("away", sa.Text, nullable=False),
        sa.Column("starts_at", ts, nullable=False),
        sa.Column("is_live", sa.Boolean, nullable=False),
        sa.Column("market", sa.Text, nullable=False),
        sa.Column("period", sa.Text, nullable=False),
        sa.Column("line", sa.Double),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("price", sa.Double, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("source_ts", ts),
        sa.Column("observed_at", ts, nullable=False),
        sa.Column("feed_run_id", sa.Text, nullable=False),
    ]


# Change-only history: a row when a price first appears, changes, or changes status. Each tick
# carries the selection's price before it (null on its first tick), so a move is one row, and the
# load sequence of the run that wrote it: writers are serialized, so `load_seq` only grows in
# commit order and dbt's incremental models take the ticks past the highest one they have seen.
odds_ticks = sa.Table(
    "odds_ticks",
    metadata,
    *_price_columns(),
    sa.Column("previous_price", sa.Double),
    sa.Column("load_seq", sa.BigInteger),
)

# Columns added after the first release: (table, column, SQL type), added to older files on open.
ADDED_COLUMNS: list[tuple[str, str, str]] = [
    ("odds_ticks", "previous_price", "double precision"),
    ("odds_ticks", "load_seq", "bigint"),
    ("feed_runs", "load_seq", "bigint"),
]

# The last price and status of every selection: what the next run diffs against. Slim on
# purpose, since every run rewrites part of it; the full row is the tick at (key, observed_at).
# `selection_key` is a 64-bit hash of SELECTION_KEY, so the diff joins on one integer.
latest_prices = sa.Table(
    "latest_prices",
    metadata,
    sa.Column("selection_key", sa.BigInteger, nullable=False),
    sa.Column("price", sa.Double, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
)

# One row per ingestion run of one feed, written in the same transaction as its ticks.
feed_runs = sa.Table(
    "feed_runs",
    metadata,
    sa.Column("feed_run_id", sa.Text, primary_key=True),
    sa.Column("feed", sa.Text, nullable=False),
    sa.Column("bookmaker", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("requests", sa.Integer, nullable=False),
    sa.Column("prices_seen", sa.Integer, nullable=False),
    sa.Column("ticks_written", sa.Integer, nullable=False),
    sa.Column("rejected", sa.Integer, nullable=False),
    sa.Column("unmapped", sa.Integer, nullable=False),
    sa.Column("unmapped_codes", sa.Text, nullable=False),
    sa.Column("fetch_seconds", sa.Double, nullable=False),
    sa.Column("parse_seconds", sa.Double, nullable=False),
    sa.Column("write_seconds", sa.Double, nullable=False),
    sa.Column("http_outcome", sa.Text, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("load_seq", sa.BigInteger),
)

# Records a feed sent that could not become price rows, with the reason.
quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("feed_run_id", sa.Text, nullable=False),
    sa.Column("feed", sa.Text, nullable=False),
    sa.Column("bookmaker", sa.Text, nullable=False),
    sa.Column("source_event_id", sa.Text),
    sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("record", sa.Text, nullable=False),
)

# Which canonical event each bookmaker's event is (oddly.matching), replaced as a whole per run.
event_map = sa.Table(
    "event_map",
    metadata,
    sa.Column("bookmaker", sa.Text, nullable=False),
    sa.Column("source_event_id", sa.Text, nullable=False),
    sa.Column("canonical_event_id", sa.Text, nullable=False),
    sa.Column("method", sa.Text, nullable=False),
    sa.Column("score", sa.Double, nullable=False),
    sa.Column("sport", sa.Text, nullable=False),
    sa.Column("home_normalized", sa.Text, nullable=False),
    sa.Column("away_normalized", sa.Text, nullable=False),
    sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("matched_at", sa.DateTime(timezone=True), nullable=False),
)

# Match results of imported history (oddly/importers), for grading signals against what happened:
# one row per source match, re-imports replace it; `canonical_event_id` is the matcher's id.
results = sa.Table(
    "results",
    metadata,
    sa.Column("source", sa.Text, primary_key=True),
    sa.Column("source_event_id", sa.Text, primary_key=True),
    sa.Column("canonical_event_id", sa.Text, nullable=False),
    sa.Column("sport", sa.Text, nullable=False),
    sa.Column("league", sa.Text),
    sa.Column("country", sa.Text),
    sa.Column("home", sa.Text, nullable=False),
    sa.Column("away", sa.Text, nullable=False),
    sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("home_goals", sa.Integer),
    sa.Column("away_goals", sa.Integer),
    sa.Column("result", sa.Text),
    sa.Column("home_goals_ht", sa.Integer),
    sa.Column("away_goals_ht", sa.Integer),
    sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
)

# An exchange's book behind its ticks (oddly/feeds/betfair_stream): best back and lay with sizes,
# last traded price and traded volume of a selection at each change of any of them, keyed like
# raw.odds_ticks (selection_key, observed_at); the tick's price is the best back price.
exchange_prices = sa.Table(
    "exchange_prices",
    metadata,
    sa.Column("selection_key", sa.BigInteger, nullable=False),
    sa.Column("bookmaker", sa.Text, nullable=False),
    sa.Column("source_event_id", sa.Text, nullable=False),
    sa.Column("market", sa.Text, nullable=False),
    sa.Column("period", sa.Text, nullable=False),
    sa.Column("line", sa.Double),
    sa.Column("outcome", sa.Text, nullable=False),
    sa.Column("market_id", sa.Text, nullable=False),
    sa.Column("selection_id", sa.BigInteger, nullable=False),
    sa.Column("handicap", sa.Double, nullable=False),
    sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("in_play", sa.Boolean, nullable=False),
    sa.Column("market_status", sa.Text, nullable=False),
    sa.Column("runner_status", sa.Text, nullable=False),
    sa.Column("back_price", sa.Double),
    sa.Column("back_size", sa.Double),
    sa.Column("lay_price", sa.Double),
    sa.Column("lay_size", sa.Double),
    sa.Column("last_traded_price", sa.Double),
    sa.Column("traded_volume", sa.Double),
    sa.Column("market_traded_volume", sa.Double),
    sa.Column("price_source", sa.Text, nullable=False),
    sa.Column("feed_run_id", sa.Text, nullable=False),
    sa.Column("load_seq", sa.BigInteger),
)

sa.Index("ix_feed_runs_feed_started", feed_runs.c.feed, feed_runs.c.started_at)
