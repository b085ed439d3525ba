"""The Dagster instance settings (`$DAGSTER_HOME/dagster.yaml`), written from Oddly's settings.

Only YAML is written here: `oddly/` never imports Dagster. SQLite under `.oddly/dagster/` by
default; PostgreSQL (dagster-postgres) when `ODDLY_DAGSTER_PG_URL` is set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import click
import yaml

from oddly.config import Settings, get_settings
from oddly.pg_schema import ensure_schema

# Ingestion assets that write the warehouse share this pool; DuckDB takes one writer at a time.
WAREHOUSE_WRITER_POOL = "warehouse_writer"


def dagster_instance_config(settings: Settings) -> dict[str, Any]:
    config: dict[str, Any] = {
        "telemetry": {"enabled": False},
        "run_coordinator": {"module": "dagster._core.run_coordinator", "class": "QueuedRunCoordinator"},
        "concurrency": {
            # op granularity: runs start in parallel and only the writing step waits for the slot
            "pools": {"default_limit": 1, "granularity": "op"},
            "runs": {"max_concurrent_runs": 6},
        },
        # every sensor evaluated at once: each feed's poll and the marts cycle run in the code server
        "sensors": {"use_threads": True, "num_workers": 8},
        "code_servers": {"local_startup_timeout": 180},
    }
    if settings.dagster_pg_url:
        config["storage"] = {"postgres": {"postgres_url": dagster_postgres_url(settings.dagster_pg_url)}}
    else:
        config["storage"] = {"sqlite": {"base_dir": str(settings.dagster_home / "storage")}}
    return config


def dagster_postgres_url(url: str) -> str:
    """The URL dagster-postgres gets: its psycopg2 driver named explicitly (SQLAlchemy 2.1 would
    pick psycopg 3, with which dagster-postgres' NOTIFY fails) and no password, which libpq reads
    from PGPASSWORD instead (see `password_env`), so none is written to disk."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    userinfo = netloc[0].split(":", 1)[0] + "@" if len(netloc) == 2 else ""
    return urlunsplit(("postgresql+psycopg2", userinfo + netloc[-1], parts.path, parts.query, ""))


def password_env(url: str | None) -> dict[str, str]:
    """PGPASSWORD for a child process, when the URL carries a password."""
    password = urlsplit(url).password if url else None
    return {"PGPASSWORD": unquote(password)} if password else {}


def write_dagster_yaml(settings: Settings) -> Path:
    """Create `$DAGSTER_HOME` and its dagster.yaml (and, in server mode, Dagster's schema); returns
    the file."""
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    if settings.dagster_pg_url:
        ensure_schema(settings.dagster_pg_url)
    path = settings.dagster_home / "dagster.yaml"
    path.write_text(
        "# Written by `oddly dagster-home` from ODDLY_* settings; edits are overwritten.\n"
        + yaml.safe_dump(dagster_instance_config(settings), sort_keys=False)
    )
    return path


@click.command("dagster-home")
def dagster_home_command() -> None:
    """Write the Dagster instance settings and print the DAGSTER_HOME to export."""
    settings = get_settings()
    path = write_dagster_yaml(settings)
    click.echo(f"wrote {path}")
    click.echo(f"export DAGSTER_HOME={settings.dagster_home}")
