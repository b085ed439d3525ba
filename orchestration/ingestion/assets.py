"""One ingestion asset per configured feed: one poll (`oddly.poll`: fetch → parse → validate → diff →
append, the fast detectors, their alerts) — the same call its sensor makes on every tick."""

import dagster as dg

from oddly.config import FeedConfig, get_settings
from oddly.dagster_home import WAREHOUSE_WRITER_POOL
from oddly.ingest import IngestReport
from oddly.poll import PollReport, poll_feed
from orchestration.resources import AppDatabaseResource, WarehouseResource


def feed_asset_key(feed: FeedConfig) -> dg.AssetKey:
    return dg.AssetKey(["raw", "feed", feed.name])


# Detections listed in a run's metadata (all of them are counted).
MAX_DETECTIONS_SHOWN = 10


def report_table(report: IngestReport) -> str:
    """A small markdown table so the Dagster UI tells the run's story without opening logs."""
    rows = [
        ("status", report.status),
        ("prices seen", report.prices_seen),
        ("ticks written", report.ticks_written),
        ("rejected (quarantined)", report.rejected),
        (
            "unmapped codes",
            ", ".join(f"{c} ×{n}" for c, n in sorted(report.unmapped_codes.items())[:8]) or "none",
        ),
        ("HTTP", report.http_outcome),
        (
            "fetch / parse / write s",
            f"{report.fetch_seconds:.2f} / {report.parse_seconds:.2f} / {report.write_seconds:.2f}",
        ),
    ]
    if report.error:
        rows.append(("error", report.error))
    shown = "<br>".join(d.explanation for d in report.detections[:MAX_DETECTIONS_SHOWN])
    more = len(report.detections) - MAX_DETECTIONS_SHOWN
    rows.append(("detections", f"{len(report.detections)}" + (f": {shown}" if shown else "")))
    if more > 0:
        rows.append(("", f"and {more} more"))
    if report.detection_error:
        rows.append(("detection error", report.detection_error))
    return "| | |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)


def poll_metadata(poll: PollReport) -> dict[str, object]:
    """What a poll reports to Dagster (the sensor's materialization, or the asset's)."""
    return {**poll.as_metadata(), "report": dg.MetadataValue.md(report_table(poll.ingest))}


def build_feed_asset(feed: FeedConfig) -> dg.AssetsDefinition:
    @dg.asset(
        key=feed_asset_key(feed),
        group_name="ingestion",
        kinds={"python", "duckdb"},
        pool=WAREHOUSE_WRITER_POOL,
        tags={"oddly/feed": feed.name},
        description=f"Change-only ticks of {feed.bookmaker} via the {feed.agent} agent ({feed.base_url}). "
        f"Its sensor poll_{feed.name} ingests it every {feed.interval_seconds:g} s in the code server; "
        "materializing it here runs one poll in a run.",
        metadata={
            "bookmaker": feed.bookmaker,
            "agent": feed.agent,
            "interval_seconds": feed.interval_seconds,
        },
    )
    def ingest(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource, app_db: AppDatabaseResource
    ) -> dg.MaterializeResult:
        poll = poll_feed(
            feed,
            warehouse.get(),
            get_settings(),
            app_db.engine,
            feed_run_id=f"{feed.name}-{context.run.run_id}",
        )
        metadata = poll_metadata(poll)
        context.log.info(poll.ingest.summary_line())
        if poll.failed:
            raise dg.Failure(description=poll.ingest.error, metadata=metadata)
        for problem in poll.problems:
            context.log.warning(problem)
        return dg.MaterializeResult(metadata=metadata)

    return ingest
