"""One sensor per feed, and the sensor does the poll: on every tick, in Dagster's long-lived code
server, it ingests the feed, runs the fast detectors and decides their alerts (`oddly.poll`), then
reports the poll as a materialization of the feed's asset (an observation when the feed failed).

Not a run per poll: a run is a new process that imports the whole code location, seconds of CPU
each; at five feeds every 5 s that was more start-up than two cores could do, and alerts came a
minute late (BENCHMARKS.md, `oddly bench latency`). A tick costs the poll itself.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

import dagster as dg
import sqlalchemy as sa

from oddly.config import FeedConfig, get_settings
from oddly.poll import poll_feed
from orchestration.ingestion.assets import feed_asset_key, poll_metadata
from orchestration.resources import AppDatabaseResource, WarehouseResource
from orchestration.runs import EVERY_LOOP_SECONDS, serve_metrics

log = logging.getLogger(__name__)
# A pass of the daemon's loop this much before the interval is up still polls: the loop comes every
# 5 s, and a poll's start lags its pass by however long the daemon's threads took to get to it.
EARLY_SECONDS = 2.5


class StoreDownError(RuntimeError):
    """A poll whose write the warehouse did not take (a database restarted, unreachable, or a
    transaction it aborted), in words."""


@dataclass(frozen=True)
class PollCursor:
    """Polls made so far and when the last one started (epoch s): a restarted daemon goes on
    counting and keeps the feed's pace."""

    polls: int = 0
    started: float = 0.0

    @classmethod
    def parse(cls, cursor: str | None) -> PollCursor:
        if not cursor:
            return cls()
        if cursor.isdigit():  # the cursor of earlier versions: the count alone
            return cls(int(cursor))
        raw = json.loads(cursor)
        return cls(int(raw["polls"]), float(raw["started"]))

    def dump(self) -> str:
        return json.dumps({"polls": self.polls, "started": self.started})


def build_feed_sensor(feed: FeedConfig) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"poll_{feed.name}",
        # evaluated on every pass of the daemon's loop; the sensor keeps the feed's interval itself
        minimum_interval_seconds=EVERY_LOOP_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Polls {feed.name} every {feed.interval_seconds:g} s (the daemon's loop comes every 5 s "
        "at best): ingests it, detects and decides alerts, and reports the poll on the feed's asset.",
    )
    def poll(
        context: dg.SensorEvaluationContext, warehouse: WarehouseResource, app_db: AppDatabaseResource
    ) -> dg.SensorResult | dg.SkipReason:
        serve_metrics()
        cursor = PollCursor.parse(context.cursor)
        now = time.time()
        wait = cursor.started + feed.interval_seconds - EARLY_SECONDS - now
        if wait > 0:
            return dg.SkipReason(f"next poll of {feed.name} in {wait:.1f} s")
        # Each poll's feed-run id is new, and the warehouse's diff makes a repeated poll (a tick
        # evaluated again after a daemon restart) write nothing twice.
        try:
            report = poll_feed(feed, warehouse.get(), get_settings(), app_db.engine)
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            # its write is one transaction (and the cursor is not moved): nothing to undo, all to redo
            reason = (str(exc.orig or exc).strip().splitlines() or [type(exc).__name__])[0]
            raise StoreDownError(
                f"feed {feed.name}: the warehouse did not take this poll's write ({reason}); "
                "nothing of it was written; the next poll tries again"
            ) from exc
        after = PollCursor(cursor.polls + 1, now).dump()
        metadata = {**poll_metadata(report), "poll": cursor.polls + 1}
        key = feed_asset_key(feed)
        for problem in report.problems:
            context.log.warning(problem)
        if report.failed:
            return dg.SensorResult(
                asset_events=[dg.AssetObservation(asset_key=key, metadata=metadata)],
                cursor=after,
                skip_reason=report.ingest.error,
            )
        log.info(report.ingest.summary_line())
        return dg.SensorResult(
            asset_events=[dg.AssetMaterialization(asset_key=key, metadata=metadata)], cursor=after
        )

    return poll
