"""Server mode on one PostgreSQL: each store's URL is the database's with its own search path, and
ODDLY_DATABASE_URL fills in every store not given a URL of its own."""

from __future__ import annotations

from oddly.config import Settings
from oddly.dagster_home import dagster_postgres_url
from oddly.pg_schema import in_schema, schema_of

DB = "postgresql://oddly:s3cret@db.internal:5432/oddly"


def test_a_store_url_is_the_database_url_with_its_own_search_path() -> None:
    app = in_schema(DB, "app")
    assert app == "postgresql://oddly:s3cret@db.internal:5432/oddly?options=-csearch_path%3Dapp"
    assert schema_of(app) == "app" and schema_of(DB) is None
    # other parameters are kept; a search path already there is replaced, other options kept
    tuned = in_schema(
        f"{DB}?sslmode=require&options=-cstatement_timeout%3D5000%20-csearch_path%3Dold", "mlflow"
    )
    assert schema_of(tuned) == "mlflow" and "sslmode=require" in tuned
    assert "statement_timeout%3D5000" in tuned and "old" not in tuned


def test_one_database_url_places_every_store_and_a_stores_own_url_wins() -> None:
    settings = Settings(database_url=DB)
    assert settings.warehouse_url == DB
    assert schema_of(settings.resolved_app_database_url) == "app"
    assert settings.resolved_app_database_url.startswith("postgresql+psycopg://oddly:s3cret@db.internal")
    assert schema_of(settings.dagster_pg_url or "") == "dagster"
    assert schema_of(settings.resolved_mlflow_tracking_uri) == "mlflow"
    # dagster-postgres gets its psycopg2 driver and no password (PGPASSWORD carries it), the schema kept
    dagster = dagster_postgres_url(settings.dagster_pg_url or "")
    assert dagster.startswith("postgresql+psycopg2://oddly@db.internal") and "s3cret" not in dagster
    assert schema_of(dagster) == "dagster"

    own = Settings(database_url=DB, app_database_url="sqlite:////tmp/app.db")
    assert own.resolved_app_database_url == "sqlite:////tmp/app.db" and own.warehouse_url == DB
    assert Settings().dagster_pg_url is None  # embedded: nothing derived
