"""dbt in this process, kept warm: the project is parsed once and every later invocation reuses the
parsed manifest (dbt's `dbtRunner(manifest=…)`).

A dbt CLI process costs seconds before it touches the warehouse — importing dbt, loading the
project, its adapter and manifest (BENCHMARKS.md, `oddly bench marts`) — and on DuckDB it would do
so while holding the one writer's place. A long-lived process (Dagster's code server, where the
marts sensor runs; `oddly dbt`) pays that once, so an incremental cycle costs its models only.

Each invocation hands back what dbt did in the form dagster-dbt reads from dbt's JSON log (the
result events: one per model and test), its run results, and the time it took. On DuckDB the
adapter's connection is closed after every invocation, so the file is free for the next writer.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oddly.config import Settings
from oddly.warehouse.dbt_env import DBT_PROJECT_DIR, dbt_env

# dbt events that report one node's outcome (what dagster-dbt turns into materializations and checks).
RESULT_EVENTS = frozenset({"LogModelResult", "LogTestResult", "LogSeedResult", "LogSnapshotResult"})
# Files whose change makes a parsed manifest stale.
PROJECT_SUFFIXES = (".sql", ".yml", ".yaml", ".csv", ".md")


class DbtInvocationError(RuntimeError):
    """dbt could not run at all (a broken project or profile), as opposed to a model that failed."""


@dataclass(frozen=True)
class NodeResult:
    unique_id: str
    status: str
    seconds: float
    message: str | None
    failures: int | None


@dataclass
class DbtOutcome:
    """One dbt invocation: whether it succeeded, what each node did, and the result events."""

    args: list[str]
    success: bool
    seconds: float
    nodes: list[NodeResult] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    @property
    def failed(self) -> list[NodeResult]:
        return [n for n in self.nodes if n.status in ("error", "fail", "runtime error")]

    def slowest(self, n: int = 5) -> list[NodeResult]:
        return sorted(self.nodes, key=lambda node: node.seconds, reverse=True)[:n]

    def describe(self) -> str:
        verb = " ".join(a for a in self.args[:3] if not a.startswith("--"))
        if self.error:
            return f"dbt {verb}: {self.error}"
        failed = self.failed
        problems = "; ".join(f"{n.unique_id.split('.')[-1]} {n.status}: {n.message}" for n in failed[:3])
        state = "ok" if self.success else f"{len(failed)} failed ({problems})"
        return f"dbt {verb}: {len(self.nodes)} nodes in {self.seconds:.2f} s, {state}"


def project_signature(project_dir: Path = DBT_PROJECT_DIR) -> tuple[tuple[str, int], ...]:
    """The project's files and their modification times: a parse is reused while this holds."""
    files = []
    for path in sorted(project_dir.rglob("*")):
        parts = path.relative_to(project_dir).parts
        if parts[0] in ("target", "logs", "dbt_packages") or not path.is_file():
            continue
        if path.suffix in PROJECT_SUFFIXES:
            files.append((str(path), path.stat().st_mtime_ns))
    return tuple(files)


class WarmDbt:
    """dbt for one warehouse, in this process, one invocation at a time (dbt is not re-entrant).

    `target_path` holds dbt's artifacts and partial-parse state (under ODDLY_HOME by default, apart
    from the manifest `make manifest` prepares for Dagster in `dbt_project/target`)."""

    def __init__(self, settings: Settings, target_path: Path | None = None) -> None:
        self.settings = settings
        self.target_path = target_path or settings.home / "dbt_target"
        self.log_path = settings.home / "dbt_logs"
        self._lock = threading.Lock()
        self._manifest: Any = None
        self._signature: tuple[tuple[str, int], ...] = ()
        self._built: tuple[tuple[str, int], ...] | None = None
        self.parses = 0

    @property
    def built_current_project(self) -> bool:
        """Whether this process has run every model of the project as parsed now (views included:
        a cycle's selector leaves them out, they change only with the code)."""
        return self._built is not None and self._built == self._signature

    def mark_built(self) -> None:
        self._built = self._signature

    def _flags(self) -> list[str]:
        return [
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(self.target_path),
            "--log-path",
            str(self.log_path),
        ]

    def prepare(self) -> None:
        """Parse the project now (outside any warehouse hold) unless the last parse still holds."""
        with self._lock, self._environment():
            self._ensure_manifest()

    def _ensure_manifest(self) -> Any:
        signature = project_signature()
        if self._manifest is None or signature != self._signature:
            from dbt.cli.main import dbtRunner

            result = dbtRunner().invoke(["parse", "--quiet", *self._flags()])
            if not result.success or result.result is None:
                raise DbtInvocationError(f"dbt could not parse {DBT_PROJECT_DIR}: {result.exception}")
            self._manifest, self._signature = result.result, signature
            self.parses += 1
        return self._manifest

    def invoke(self, args: Sequence[str], on_built: Callable[[str, str], None] | None = None) -> DbtOutcome:
        """Run one dbt command (`["run", "--selector", "ingest_cycle"]`) with the parsed manifest.
        `on_built(schema, name)` is told of each table dbt has built and committed, as it happens
        (called on dbt's thread: it must be quick)."""
        from dbt.cli.main import dbtRunner
        from dbt_common.events.functions import msg_to_dict

        events: list[dict[str, Any]] = []

        def collect(msg: Any) -> None:
            if msg.info.name in RESULT_EVENTS:
                events.append(msg_to_dict(msg))
                if on_built is not None and msg.info.name == "LogModelResult":
                    built = _built_table(msg.data)
                    if built is not None:
                        on_built(*built)

        with self._lock, self._environment():
            manifest = self._ensure_manifest()
            t0 = time.perf_counter()
            try:
                # --no-write-json: the outcome is read from the result objects, and writing the
                # manifest and run results (a megabyte of JSON) each cycle cost the cycle, and the
                # polls sharing the process, a few tenths of a second of CPU
                result = dbtRunner(manifest=manifest, callbacks=[collect]).invoke(
                    [*args, "--quiet", "--no-write-json", *self._flags()]
                )
            finally:
                release_duckdb()
            seconds = time.perf_counter() - t0
        outcome = DbtOutcome(list(args), bool(result.success), seconds, events=events)
        if result.exception is not None:
            outcome.error = f"{type(result.exception).__name__}: {result.exception}"
        for node in getattr(result.result, "results", None) or []:
            outcome.nodes.append(
                NodeResult(
                    unique_id=node.node.unique_id,
                    status=str(getattr(node.status, "value", node.status)),
                    seconds=float(node.execution_time or 0.0),
                    message=node.message,
                    failures=node.failures,
                )
            )
        return outcome

    @contextmanager
    def _environment(self) -> Iterator[None]:
        """The variables profiles.yml reads (target, DuckDB path, PostgreSQL connection), for the call."""
        wanted = dbt_env(self.settings)
        before = {key: os.environ.get(key) for key in wanted}
        os.environ.update(wanted)
        try:
            yield
        finally:
            for key, value in before.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def _built_table(result: Any) -> tuple[str, str] | None:
    """The schema and name of the table a model result reports built (None: it failed, or it is a
    view or an ephemeral model)."""
    info = result.node_info
    if str(result.status).lower() == "error" or info.materialized not in ("table", "incremental"):
        return None
    relation = info.node_relation
    return (relation.schema, relation.alias) if relation.schema and relation.alias else None


def release_duckdb() -> None:
    """Close dbt-duckdb's process-wide connection, so the DuckDB file is free for other processes."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # dbt-duckdb is not installed: nothing of it to close
        return
    with DuckDBConnectionManager._LOCK:
        environment = DuckDBConnectionManager._ENV
        if environment is not None:
            environment.close()
        DuckDBConnectionManager._ENV = None
