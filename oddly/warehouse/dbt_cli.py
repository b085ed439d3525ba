"""`oddly dbt …`: dbt on the configured warehouse (project, profiles and target filled in), as the
one writer of the embedded warehouse, publishing the marts for readers when a build succeeds."""

from __future__ import annotations

import os
import subprocess
import sys

import click

from oddly.config import Settings, get_settings
from oddly.warehouse.dbt_env import DBT_PROJECT_DIR, dbt_env
from oddly.warehouse.dbt_writer import DBT_EXECUTABLE, held_for_dbt

# dbt commands that change the marts; readers get a new snapshot after each that succeeds.
BUILDING_COMMANDS = {"build", "run", "seed", "snapshot"}
# dbt commands that never open the warehouse, so they need not wait for it (`make install` parses).
OFFLINE_COMMANDS = {"parse", "ls", "list", "deps", "clean", "init"}


def run_dbt(settings: Settings, args: tuple[str, ...]) -> int:
    """Run dbt with the warehouse held (ingestion waits meanwhile) and publish on success."""
    command = [
        str(DBT_EXECUTABLE),
        *args,
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
    ]
    env = {**os.environ, **dbt_env(settings)}
    subcommand = next((a for a in args if not a.startswith("-")), "")
    if subcommand in OFFLINE_COMMANDS:
        return subprocess.call(command, env=env)
    with held_for_dbt(settings) as held:
        code = subprocess.call(command, env=env)
        if code == 0 and subcommand in BUILDING_COMMANDS:
            held.publish()
    return code


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def dbt(args: tuple[str, ...]) -> None:
    """Run dbt on the configured warehouse (default: build).

    Example: `oddly dbt build`, `oddly dbt test -s marts`. On the embedded warehouse a successful
    build or run also publishes the marts for the app and the bot ($ODDLY_HOME/published.duckdb)."""
    sys.exit(run_dbt(get_settings(), args or ("build",)))
