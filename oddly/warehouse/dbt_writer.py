"""dbt as the builder of the marts, the same for `oddly dbt`, the Dagster marts asset and the marts
cycle: the warehouse is held while dbt runs, and a build that succeeded is published for readers
before anything else can build.

dbt run by another process (`oddly dbt`, the dbt asset's run) needs the DuckDB file to itself, so
ingestion waits instead of meeting DuckDB's lock. dbt run inside this process (the warm dbt of the
marts cycle, in the Dagster code server where the polls run too) holds only the marts' lane: the
polls go on writing ticks meanwhile, and the cycle reads the ticks up to a ceiling (`run_marts_cycle`)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from oddly.config import Settings
from oddly.warehouse.snapshot import Snapshot, SnapshotWriter, publish_snapshot, snapshot_path
from oddly.warehouse.store import Warehouse

# The environment's own dbt, whatever PATH the calling process (a Dagster run worker) was given.
DBT_EXECUTABLE = Path(sys.executable).parent / "dbt"


@dataclass(frozen=True)
class HeldWarehouse:
    """The warehouse, held for dbt."""

    warehouse: Warehouse
    home: Path

    def publish(self, load_seq: int | None = None) -> Snapshot | None:
        """Publish the marts dbt just built (from the ticks up to `load_seq`, when known); None on
        PostgreSQL (readers read the warehouse)."""
        return publish_snapshot(self.warehouse, snapshot_path(self.home), load_seq=load_seq)

    def snapshot_writer(self) -> SnapshotWriter | None:
        """A snapshot to fill while dbt builds, mart by mart (None on PostgreSQL)."""
        if self.warehouse.dialect != "duckdb":
            return None
        return SnapshotWriter(self.warehouse, snapshot_path(self.home))


@contextmanager
def held_for_dbt(settings: Settings, *, in_process: bool = False) -> Iterator[HeldWarehouse]:
    """Hold the configured warehouse while dbt writes it (PostgreSQL: nothing to hold). With
    `in_process` (dbt runs in this process, on a ceiling of ticks) this process's ingestion goes on
    meanwhile; otherwise it waits too."""
    warehouse = Warehouse.from_settings(settings)
    try:
        with warehouse.marts_writer(), nullcontext() if in_process else warehouse.exclusive():
            if not in_process:
                warehouse.hand_over()  # dbt may be another process: the file must be closed here
            yield HeldWarehouse(warehouse, settings.home)
    finally:
        warehouse.dispose()
