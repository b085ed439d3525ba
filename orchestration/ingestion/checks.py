"""Asset checks on each feed: no stored price at or below 1.0, and the feed is fresh."""

from datetime import UTC, datetime, timedelta

import dagster as dg

from oddly.config import FeedConfig
from orchestration.ingestion.assets import feed_asset_key
from orchestration.resources import WarehouseResource

# A feed is stale when its last successful run is older than this many intervals.
STALE_AFTER_INTERVALS = 3
# The prices the price check reads: the feed's runs of the last day (an aggregator feed carries
# many books, so runs, not a bookmaker, say whose ticks they are), found past a load-sequence
# bound so the scan costs that day, not the history.
CHECK_HOURS = 24
BAD_PRICES_SQL = """
    with runs as (select feed_run_id, load_seq from raw.feed_runs where feed = :feed and started_at >= :since)
    select count(*) from raw.odds_ticks t
    where t.load_seq >= (select coalesce(min(load_seq), 0) from runs)
        and t.feed_run_id in (select feed_run_id from runs)
        and not (t.price > 1.0)
"""


def build_feed_checks(feed: FeedConfig) -> list[dg.AssetChecksDefinition]:
    key = feed_asset_key(feed)

    @dg.asset_check(
        asset=key,
        name="prices_above_one",
        description=f"No price this feed stored in the last {CHECK_HOURS} h, of any book, is ≤ 1.0.",
    )
    def prices_above_one(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        since = datetime.now(UTC) - timedelta(hours=CHECK_HOURS)
        bad = int(warehouse.get().scalar(BAD_PRICES_SQL, {"feed": feed.name, "since": since}))
        return dg.AssetCheckResult(
            passed=bad == 0, metadata={"prices_at_or_below_one": bad, "window_hours": CHECK_HOURS}
        )

    @dg.asset_check(
        asset=key,
        name="fresh",
        description=f"The last successful run is under {STALE_AFTER_INTERVALS} intervals old.",
    )
    def fresh(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        last = warehouse.get().last_success(feed.name)
        limit = STALE_AFTER_INTERVALS * feed.interval_seconds
        if last is None:
            return dg.AssetCheckResult(
                passed=False, metadata={"last_success": "never"}, severity=dg.AssetCheckSeverity.WARN
            )
        age = (datetime.now(UTC) - last).total_seconds()
        return dg.AssetCheckResult(
            passed=age <= limit,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"last_success": last.isoformat(), "age_seconds": round(age, 1), "limit_seconds": limit},
        )

    return [prices_above_one, fresh]
