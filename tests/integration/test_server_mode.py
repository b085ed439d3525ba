"""Server mode on the local PostgreSQL: with ODDLY_DATABASE_URL alone, the app database, Dagster's
instance and MLflow each create their tables in their own schema of one database, next to the
warehouse's schemas, and work there."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import psycopg
import pytest

from ml.tracking import Tracking
from oddly.alerts.subscriptions import get_subscription, register_chat
from oddly.appdb import open_app_db
from oddly.config import Settings
from oddly.dagster_home import write_dagster_yaml
from oddly.model import now_utc
from oddly.warehouse.store import Warehouse

pytestmark = pytest.mark.postgres


def tables_by_schema(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select table_schema, count(*) from information_schema.tables "
            "where table_schema not in ('pg_catalog', 'information_schema') group by 1"
        ).fetchall()
    return {schema: n for schema, n in rows}


def test_one_database_url_puts_every_store_in_its_own_schema(pg_url: str, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, database_url=pg_url)

    app = open_app_db(settings)
    with app.begin() as conn:
        register_chat(conn, 7, now_utc())
    with app.connect() as conn:
        assert get_subscription(conn, 7) is not None
    app.dispose()

    warehouse = Warehouse.from_settings(settings)
    warehouse.ensure_schema()
    warehouse.dispose()

    write_dagster_yaml(settings)
    with dg.DagsterInstance.from_config(str(settings.dagster_home)) as instance:
        instance.report_runless_asset_event(dg.AssetMaterialization("server_mode"))
        assert instance.get_latest_materialization_event(dg.AssetKey("server_mode")) is not None

    client = Tracking.from_settings(settings).activate()
    assert client.search_experiments()  # MLflow created its tables (and the Default experiment)

    schemas = tables_by_schema(pg_url)
    assert schemas["app"] >= 5 and schemas["dagster"] >= 10 and schemas["mlflow"] >= 10
    assert schemas["raw"] >= 4
    assert "public" not in schemas  # nothing landed outside its store's schema
