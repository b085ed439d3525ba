"""One marts cycle after ingestion, as the Dagster marts sensor runs it in the long-lived code server
(and `oddly bench marts` times it): with the warehouse held, match events (when ticks brought an
event the map does not know, and in full every few minutes), run the models new
ticks change (dbt's `ingest_cycle` selector; every model on a process's first cycle and after the project
changed, which also creates the views) in the warm in-process dbt, publish the marts for
readers, and — when due — run the data tests of the current-state models (`checks`).

The project is parsed before the warehouse is held, so ingestion waits only for the models
themselves. The marts are published as soon as the models succeed; the data tests then report as
Dagster asset checks (a failing test is shown there, it does not hide the marts from readers).
"""

from __future__ import annotations

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


@dataclass
class MartsCycle:
    matching: MatchReport | None  # None: no new event since the last pass, the map stands
    models: DbtOutcome
    checks: DbtOutcome | None
    snapshot: Snapshot | None
    held_seconds: float  # how long ingestion had to wait, at most
    seconds: float
    match_seconds: float

    def timings(self) -> dict[str, float]:
        """Where the cycle's time went, in seconds (for the sensor's report)."""
        return {
            "cycle_seconds": round(self.seconds, 3),
            "warehouse_held_seconds": round(self.held_seconds, 3),
            "match_seconds": round(self.match_seconds, 3),
            "dbt_models_seconds": round(self.models.seconds, 3),
            "publish_seconds": round(self.snapshot.seconds, 3) if self.snapshot else 0.0,
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
    publish the marts; with `run_checks`, then test them."""
    t0 = time.perf_counter()
    dbt.prepare()
    with held_for_dbt(settings) as held:
        held_at = time.perf_counter()
        matched = refresh_event_map(held.warehouse, matching or MatchState())
        match_seconds = time.perf_counter() - held_at
        first = not dbt.built_current_project
        models = dbt.invoke(ALL_MODELS if first else CYCLE_MODELS)
        if first and models.success:
            dbt.mark_built()
        snapshot = held.publish() if models.success else None
        checks = dbt.invoke(CYCLE_CHECKS) if run_checks and models.success else None
        held_seconds = time.perf_counter() - held_at
    cycle = MartsCycle(
        matched, models, checks, snapshot, held_seconds, time.perf_counter() - t0, match_seconds
    )
    metrics.MARTS_CYCLES.labels("ok" if cycle.success else "failed").inc()
    metrics.MARTS_CYCLE_SECONDS.observe(cycle.seconds)
    return cycle
