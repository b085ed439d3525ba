"""`oddly bench …`: benchmarks whose figures go into BENCHMARKS.md (never timed tests)."""

from __future__ import annotations

import click

from benchmarks.ingest import ingest


@click.group()
def bench() -> None:
    """Measure speed and memory; print one JSON line per benchmark."""


bench.add_command(ingest)
