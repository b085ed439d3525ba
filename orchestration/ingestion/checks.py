"""Asset checks on each feed: no stored price at or below 1.0, and the feed is fresh."""

from datetime import UTC, datetime

import dagster as dg

from oddly.config import FeedConfig
from orchestration.ingestion.assets import feed_asset_key
from orchestration.resources import WarehouseResource

# A feed is stale when its last successful run is older than this many intervals.
STALE_AFTER_INTERVALS = 3


def build_feed_checks(feed: FeedConfig) -> list[dg.AssetChecksDefinition]:
    key = feed_asset_key(feed)

    @dg.asset_check(asset=key, name="prices_above_one", description="No stored price of this book is ≤ 1.0.")
    def prices_above_one(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        bad = int(
            warehouse.get().scalar(
                "select count(*) from raw.odds_ticks where bookmaker = :b and not (price > 1.0)",
                {"b": feed.bookmaker},
            )
        )
        return dg.AssetCheckResult(passed=bad == 0, metadata={"prices_at_or_below_one": bad})

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
