"""`oddly bench …`: benchmarks whose figures go into BENCHMARKS.md (never timed tests)."""

from __future__ import annotations

import click

from benchmarks.dashboard import dashboard
from benchmarks.import_bench import import_bench
from benchmarks.ingest import ingest
from benchmarks.latency import latency
from benchmarks.marts import marts
from benchmarks.replay_bench import replay_bench
from benchmarks.score import score
from benchmarks.soak import soak


@click.group()
def bench() -> None:
    """Measure speed and memory; print one JSON line per benchmark."""


bench.add_command(dashboard)
bench.add_command(import_bench)
bench.add_command(ingest)
bench.add_command(latency)
bench.add_command(marts)
bench.add_command(replay_bench)
bench.add_command(score)
bench.add_command(soak)
