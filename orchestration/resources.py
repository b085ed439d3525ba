"""Resources: the warehouse, chosen by settings (embedded DuckDB or PostgreSQL), dbt, the app
database (alerts, scores) and the MLflow tracking store."""

from __future__ import annotations

import threading

import dagster as dg
import sqlalchemy as sa

from ml.tracking import Tracking
from oddly.appdb import open_app_db
from oddly.config import Settings, get_settings
from oddly.warehouse.store import Warehouse
from orchestration.warehouse.dbt_project import dbt_resource

_WAREHOUSES: dict[str, Warehouse] = {}
_WAREHOUSES_LOCK = threading.Lock()


class WarehouseResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The warehouse URL; empty means the embedded DuckDB file under ODDLY_HOME."""

    url: str = ""

    def get(self) -> Warehouse:
        """One `Warehouse` per URL for the life of the process: the code server's sensors poll
        every few seconds, and each would otherwise open a new connection pool and check the
        schema again."""
        url = self.url or get_settings().resolved_warehouse_url
        with _WAREHOUSES_LOCK:
            if url not in _WAREHOUSES:
                _WAREHOUSES[url] = Warehouse.from_url(url)
            return _WAREHOUSES[url]

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


class AppDatabaseResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The app database URL; empty means the SQLite file under ODDLY_HOME."""

    url: str = ""

    def engine(self) -> sa.Engine:
        return open_app_db(self.url or get_settings())


class MlflowResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The MLflow tracking and registry store; empty means the SQLite file under ODDLY_HOME."""

    tracking_uri: str = ""

    def tracking(self) -> Tracking:
        settings = get_settings()
        if self.tracking_uri:
            settings = settings.model_copy(update={"mlflow_tracking_uri": self.tracking_uri})
        return Tracking.from_settings(settings)


def resources_for(deployment: str) -> dict[str, object]:
    """Resources by deployment: `embedded` (DuckDB) or `server` (PostgreSQL)."""
    # Both read the URL from settings when used (ODDLY_WAREHOUSE_URL or ODDLY_DATABASE_URL), so no
    # connection string is written into the definitions Dagster stores.
    by_deployment: dict[str, dict[str, object]] = {
        "embedded": {"warehouse": WarehouseResource()},
        "server": {"warehouse": WarehouseResource()},
    }
    return {
        **by_deployment[deployment],
        "dbt": dbt_resource(),
        "app_db": AppDatabaseResource(),
        "mlflow": MlflowResource(),
    }
