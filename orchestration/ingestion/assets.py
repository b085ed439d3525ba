"""One ingestion asset per configured feed: fetch → parse → validate → diff → append, in one
call into `oddly.ingest` (the same code `oddly scan` runs)."""

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from oddly.alerts.run import alert_fast_path
from oddly.config import FeedConfig, get_settings
from oddly.dagster_home import WAREHOUSE_WRITER_POOL
from oddly.detect.rules import rules_for_ingestion
from oddly.ingest import IngestReport, ingest_feed
from oddly.model import now_utc
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


def build_feed_asset(feed: FeedConfig) -> dg.AssetsDefinition:
    @dg.asset(
        key=feed_asset_key(feed),
        group_name="ingestion",
        kinds={"python", "duckdb"},
        pool=WAREHOUSE_WRITER_POOL,
        tags={"oddly/feed": feed.name},
        description=f"Change-only ticks of {feed.bookmaker} via the {feed.agent} agent ({feed.base_url}).",
        metadata={
            "bookmaker": feed.bookmaker,
            "agent": feed.agent,
            "interval_seconds": feed.interval_seconds,
        },
    )
    def ingest(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource, app_db: AppDatabaseResource
    ) -> dg.MaterializeResult:
        settings = get_settings()
        rules, rules_problem = rules_for_ingestion(settings.rules_file)
        wh = warehouse.get()
        report = ingest_feed(feed, wh, feed_run_id=f"{feed.name}-{context.run.run_id}", rules=rules)
        report.detection_error = report.detection_error or rules_problem
        # the fast path: this run's detections decided and queued now, not after dbt
        alerts, alert_error = alert_fast_path(
            app_db.engine,
            report.detections,
            policy_file=settings.alert_policy_file,
            app_url=settings.app_url,
            warehouse=wh,
            sharp_books=rules.sharp_books if rules else (),
            now=now_utc(),
        )
        metadata: dict[str, object] = {
            **report.as_metadata(),
            **({} if alerts is None else {f"alerts_{k}": v for k, v in alerts.as_metadata().items()}),
            "report": dg.MetadataValue.md(report_table(report)),
        }
        if alert_error:
            metadata["alert_error"] = alert_error
            context.log.warning(alert_error)
        context.log.info(report.summary_line())
        if report.status == "failed":
            raise dg.Failure(description=report.error, metadata=metadata)
        if report.error:
            context.log.warning(report.error)
        if report.detection_error:
            context.log.warning(report.detection_error)
        return dg.MaterializeResult(metadata=metadata)

    return ingest


def build_feed_job(feed: FeedConfig) -> UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        name=f"ingest_{feed.name}",
        selection=dg.AssetSelection.assets(feed_asset_key(feed)),
        executor_def=dg.in_process_executor,
        tags={"oddly/feed": feed.name},
        description=f"One ingestion run of feed {feed.name}.",
    )
