"""The `oddly` command line: one entry point, `--help` on every subcommand.

Subcommands live next to what they drive and are imported lazily, so `oddly --help` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

# subcommand name → "module:attribute" of a click command
COMMANDS = {
    "dbt": "oddly.warehouse.dbt_cli:dbt",
    "demo": "oddly.demo:demo",
    "match": "oddly.matching.cli:match",
    "import": "oddly.importers.cli:import_group",
    "simulate": "oddly.simulator.cli:simulate",
    "scan": "oddly.scan:scan",
    "record": "oddly.record:record_command",
    "replay": "oddly.replay:replay_command",
    "bench": "benchmarks.cli:bench",
    "dagster-home": "oddly.dagster_home:dagster_home_command",
    "train": "ml.cli:train",
    "evaluate": "ml.cli:evaluate",
    "backtest": "ml.backtest_cli:backtest",
    "send": "oddly.telegram.cli:send",
    "fake-telegram": "oddly.telegram.cli:fake_telegram",
    "bot": "oddly.telegram.bot:bot",
    "status": "ml.status:status",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        command: Any = getattr(importlib.import_module(module), attr)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="oddly-odds")
def main() -> None:
    """Oddly Odds: watch many bookmakers' odds and say what matters."""


if __name__ == "__main__":
    main()
