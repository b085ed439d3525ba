"""dbt as the warehouse's one writer, the same for `oddly dbt` and the Dagster marts asset: the
warehouse is held while dbt runs (ingestion waits instead of meeting DuckDB's lock), and a build
that succeeded is published for readers before anything else can write."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from oddly.config import Settings
from oddly.warehouse.snapshot import Snapshot, publish_snapshot, snapshot_path
from oddly.warehouse.store import Warehouse

# The environment's own dbt, whatever PATH the calling process (a Dagster run worker) was given.
DBT_EXECUTABLE = Path(sys.executable).parent / "dbt"


@dataclass(frozen=True)
class HeldWarehouse:
    """The warehouse, held for dbt."""

    warehouse: Warehouse
    home: Path

    def publish(self) -> Snapshot | None:
        """Publish the marts dbt just built; None on PostgreSQL (readers read the warehouse)."""
        return publish_snapshot(self.warehouse, snapshot_path(self.home))


@contextmanager
def held_for_dbt(settings: Settings) -> Iterator[HeldWarehouse]:
    """Hold the configured warehouse while dbt writes it (PostgreSQL: nothing to hold)."""
    warehouse = Warehouse.from_settings(settings)
    try:
        with warehouse.exclusive():
            yield HeldWarehouse(warehouse, settings.home)
    finally:
        warehouse.dispose()
