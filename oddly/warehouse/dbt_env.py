"""Environment for running the dbt project against the configured warehouse."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from oddly.config import REPO_ROOT, Settings
from oddly.warehouse.store import duckdb_config

DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"


def dbt_env(settings: Settings) -> dict[str, str]:
    """ODDLY_DBT_TARGET and the connection settings profiles.yml reads, from ODDLY_* settings."""
    env = {"ODDLY_HOME": str(settings.home), "ODDLY_DBT_TARGET": "duckdb"}
    # dbt opens the file as the polls of the same process do, or DuckDB refuses one of them
    env["ODDLY_DUCKDB_USER_AGENT"] = str(duckdb_config().get("custom_user_agent", ""))
    if settings.warehouse_url:
        url = urlsplit(settings.warehouse_url)
        env.update(
            ODDLY_DBT_TARGET="postgres",
            ODDLY_PG_HOST=url.hostname or "127.0.0.1",
            ODDLY_PG_PORT=str(url.port or 5432),
            ODDLY_PG_USER=unquote(url.username or "postgres"),
            ODDLY_PG_PASSWORD=unquote(url.password or ""),
            ODDLY_PG_DBNAME=url.path.lstrip("/") or "postgres",
        )
    return env
