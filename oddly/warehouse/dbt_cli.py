"""`oddly dbt …`: dbt on the configured warehouse (project, profiles and target filled in)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click

from oddly.config import get_settings
from oddly.warehouse.dbt_env import DBT_PROJECT_DIR, dbt_env


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def dbt(args: tuple[str, ...]) -> None:
    """Run dbt on the configured warehouse (default: build).

    Example: `oddly dbt build`, `oddly dbt test -s marts`."""
    settings = get_settings()
    command = [
        str(Path(sys.executable).parent / "dbt"),
        *(args or ("build",)),
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
    ]
    sys.exit(subprocess.call(command, env={**os.environ, **dbt_env(settings)}))
