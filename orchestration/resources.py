"""Resources: the warehouse, chosen by settings (embedded DuckDB or PostgreSQL)."""

from __future__ import annotations

import dagster as dg

from oddly.config import get_settings
from oddly.warehouse.store import Warehouse


class WarehouseResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The warehouse URL; empty means the embedded DuckDB file under ODDLY_HOME."""

    url: str = ""

    def get(self) -> Warehouse:
        return Warehouse.from_url(self.url or get_settings().resolved_warehouse_url)


def resources_for(deployment: str) -> dict[str, object]:
    """Resources by deployment: `embedded` (DuckDB) or `server` (ODDLY_WAREHOUSE_URL)."""
    by_deployment: dict[str, dict[str, object]] = {
        "embedded": {"warehouse": WarehouseResource()},
        "server": {"warehouse": WarehouseResource(url=dg.EnvVar("ODDLY_WAREHOUSE_URL"))},
    }
    return by_deployment[deployment]
