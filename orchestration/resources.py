"""Resources: the warehouse, chosen by settings (embedded DuckDB or PostgreSQL), and dbt."""

from __future__ import annotations

import dagster as dg

from oddly.config import Settings, get_settings
from oddly.warehouse.store import Warehouse
from orchestration.warehouse.dbt_project import dbt_resource


class WarehouseResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The warehouse URL; empty means the embedded DuckDB file under ODDLY_HOME."""

    url: str = ""

    def get(self) -> Warehouse:
        return Warehouse.from_url(self.url or get_settings().resolved_warehouse_url)

    def settings(self) -> Settings:
        """Oddly's settings pointed at this warehouse: what dbt and the published marts go by."""
        settings = get_settings()
        if not self.url or self.url == settings.resolved_warehouse_url:
            return settings
        if self.url.startswith("postgresql"):
            return settings.model_copy(update={"warehouse_url": self.url})
        raise ValueError(
            f"dbt builds the embedded warehouse at {settings.duckdb_path}, not {self.url}: leave the "
            "warehouse URL empty and set ODDLY_HOME to the folder of the DuckDB file instead"
        )


def resources_for(deployment: str) -> dict[str, object]:
    """Resources by deployment: `embedded` (DuckDB) or `server` (ODDLY_WAREHOUSE_URL)."""
    by_deployment: dict[str, dict[str, object]] = {
        "embedded": {"warehouse": WarehouseResource()},
        "server": {"warehouse": WarehouseResource(url=dg.EnvVar("ODDLY_WAREHOUSE_URL"))},
    }
    return {**by_deployment[deployment], "dbt": dbt_resource()}
