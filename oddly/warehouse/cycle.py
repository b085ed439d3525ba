"""One marts cycle after ingestion, as the Dagster marts sensor runs it in the long-lived code server
(and `oddly bench marts` times it): match events (when ticks brought an event the map does not
know, and in full every few minutes), run the models new
ticks change (dbt's `ingest_cycle` selector; every model on a process's first cycle and after the project
changed, which also creates the views) in the warm in-process dbt, publish the marts for
readers, and — when due — run the data tests of the current-state models (`checks`).

The project is parsed before the warehouse is held, and the polls of the same process wait only
for the matching: dbt builds from the ticks committed when the cycle started while the polls write
new ones (`run_marts_cycle`). The marts are published as soon as the models succeed; the data tests
then report as Dagster asset checks (a failing test is shown there, it does not hide the marts from readers).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from oddly import metrics
from oddly.config import Settings
from oddly.matching.run import MatchReport, MatchState, refresh_event_map
from oddly.warehouse.dbt_runner import DbtOutcome, WarmDbt
from oddly.warehouse.dbt_writer import held_for_dbt
from oddly.warehouse.snapshot import Snapshot

CYCLE_MODELS = ["run", "--selector", "ingest_cycle"]
# The first cycle of a process, or after the project changed: every model, views included.
ALL_MODELS = ["run"]
CYCLE_CHECKS = ["test", "--selector", "checks"]
# The dbt var that bounds the ticks a cycle's models read (macro `within_ceiling`).
LOAD_SEQ_CEILING = "load_seq_ceiling"


@dataclass
class MartsCycle:
    matching: MatchReport | None  # None: no new event since the last pass, the map stands
    models: DbtOutcome
    checks: DbtOutcome | None
    snapshot: Snapshot | None
    seconds: float
    match_seconds: float

    @property
    def held_seconds(self) -> float:
        """How long this process's polls had to wait, at most: the matching, the one step that
        takes the writers' lane."""
        return self.match_seconds

    def timings(self) -> dict[str, float]:
        """Where the cycle's time went, in seconds (for the sensor's report)."""
        return {
            "cycle_seconds": round(self.seconds, 3),
            "warehouse_held_seconds": round(self.held_seconds, 3),
            "match_seconds": round(self.match_seconds, 3),
            "dbt_models_seconds": round(self.models.seconds, 3),
            "publish_seconds": round(self.snapshot.seconds, 3) if self.snapshot else 0.0,
            # copying marts while dbt built the next ones: not part of the cycle's length
            "publish_beside_dbt_seconds": round(self.snapshot.seconds_beside_dbt, 3) if self.snapshot else 0,
            "dbt_tests_seconds": round(self.checks.seconds, 3) if self.checks else 0.0,
        }

    @property
    def success(self) -> bool:
        return self.models.success

    def describe(self) -> str:
        matched = (
            "no new events"
            if self.matching is None
            else f"{self.matching.events} events matched into {self.matching.canonical_events}"
        )
        parts = [matched, self.models.describe()]
        if self.snapshot is not None:
            parts.append(f"published {len(self.snapshot.rows)} relations in {self.snapshot.seconds:.2f} s")
        if self.checks is not None:
            parts.append(self.checks.describe())
        return "; ".join(parts) + f" ({self.seconds:.2f} s, warehouse held {self.held_seconds:.2f} s)"


def run_marts_cycle(
    settings: Settings, dbt: WarmDbt, *, run_checks: bool, matching: MatchState | None = None
) -> MartsCycle:
    """Match (a full pass unless `matching` says the map already covers every event), build and
    publish the marts; with `run_checks`, then test them.

    The polls of this process keep writing ticks while dbt builds: the cycle holds the marts' lane
    of the warehouse, and the writers' lane only while it matches. Its models read the ticks up to
    the last load committed when it started (var `load_seq_ceiling`), so every mart of a cycle is
    built from the same ticks, and a later load waits for the next cycle. `held_seconds` is how
    long the polls had to wait: the matching."""
    t0 = time.perf_counter()
    dbt.prepare()
    matching = matching or MatchState()
    with held_for_dbt(settings, in_process=True) as held:
        with held.warehouse.exclusive():
            held_at = time.perf_counter()
            matched = refresh_event_map(held.warehouse, matching)
            match_seconds = time.perf_counter() - held_at
        # the last load the matching read, with no poll writing: a poll writing now commits a later one
        ceiling = matching.load_seq
        on_ceiling = ["--vars", json.dumps({LOAD_SEQ_CEILING: ceiling})]
        first = not dbt.built_current_project
        # the marts go into the readers' next snapshot as dbt builds them, beside the next models
        writer = held.snapshot_writer()
        snapshot = None
        try:
            models = dbt.invoke(
                [*(ALL_MODELS if first else CYCLE_MODELS), *on_ceiling],
                on_built=writer.mart_built if writer else None,
            )
            if first and models.success:
                dbt.mark_built()
            snapshot = writer.finish(load_seq=ceiling) if writer and models.success else None
        finally:
            if writer is not None and snapshot is None:
                writer.abort()
        checks = dbt.invoke(CYCLE_CHECKS) if run_checks and models.success else None
    cycle = MartsCycle(matched, models, checks, snapshot, time.perf_counter() - t0, match_seconds)
    metrics.MARTS_CYCLES.labels("ok" if cycle.success else "failed").inc()
    metrics.MARTS_CYCLE_SECONDS.observe(cycle.seconds)
    return cycle
