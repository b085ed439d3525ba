"""Shared test fixtures: the recorded real data beside the repo, temporary homes, PostgreSQL."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from ml.tracking import Tracking
from oddly.warehouse.store import Warehouse

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("ODDLY_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data` (recorded third-party data); tests that need it skip where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"recorded data folder {SHARED_DATA} is absent (set ODDLY_SHARED_DATA to use it)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def linefeed_data(shared_data: Path) -> Path:
    return shared_data / "linefeed"


PG_URL = os.environ.get("ODDLY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
# Where a process started by a test would find its stores and Telegram from the caller's environment:
# cleared, so a developer's own settings never leak into a test's stack.
STORE_ENV = (
    "ODDLY_DATABASE_URL",
    "ODDLY_WAREHOUSE_URL",
    "ODDLY_APP_DATABASE_URL",
    "ODDLY_DAGSTER_PG_URL",
    "ODDLY_MLFLOW_TRACKING_URI",
    "ODDLY_TELEGRAM_BOT_TOKEN",
)


def _pg_admin_connect():  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(PG_URL, autocommit=True, connect_timeout=5)


def make_pg_database(prefix: str) -> str:
    """A fresh database on the test PostgreSQL; returns its URL. Skips (fails in CI) when unreachable."""
    import uuid

    try:
        admin = _pg_admin_connect()
    except Exception as exc:
        if os.environ.get("CI"):
            raise RuntimeError(f"PostgreSQL at {PG_URL} is required in CI: {exc}") from exc
        pytest.skip(f"PostgreSQL at {PG_URL} unreachable ({exc}); set ODDLY_TEST_PG_URL")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with admin:
        admin.execute(f'create database "{name}"')
    base = PG_URL.rsplit("/", 1)[0]
    return f"{base}/{name}"


def drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with _pg_admin_connect() as admin:
        admin.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture
def pg_url() -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL database, dropped after the test."""
    url = make_pg_database("oddly_test")
    yield url
    drop_pg_database(url)


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Warehouse]:
    """An empty warehouse on each of DuckDB and PostgreSQL (a test module may define its own)."""
    url = (
        f"duckdb:///{tmp_path}/wh.duckdb" if request.param == "duckdb" else request.getfixturevalue("pg_url")
    )
    wh = Warehouse.from_url(url)
    yield wh
    wh.dispose()


@pytest.fixture(scope="session")
def migrated_mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated tracking store, made once (MLflow's migrations take seconds) and copied per test."""
    root = tmp_path_factory.mktemp("mlflow-template")
    Tracking.sqlite(root / "mlflow.db", root / "mlartifacts").migrate()
    return root / "mlflow.db"


@pytest.fixture
def tracking(migrated_mlflow_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Tracking]:
    """A fresh copy of the migrated store under `tmp_path`, active for this test."""
    import mlflow

    db = tmp_path / "mlflow.db"
    shutil.copyfile(migrated_mlflow_db, db)
    store = Tracking.sqlite(db, tmp_path / "mlartifacts")
    # activate() exports these; monkeypatch puts the previous values back afterwards
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", store.uri)
    store.activate()
    yield store
    if mlflow.active_run() is not None:
        mlflow.end_run()


@pytest.fixture(scope="session", autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every test's default ODDLY_HOME is a temporary folder: no test writes into the repo's
    `.oddly` (a test that needs its own home sets ODDLY_HOME itself)."""
    home = tmp_path_factory.mktemp("oddly-home")
    with pytest.MonkeyPatch.context() as patch:
        if "ODDLY_HOME" not in os.environ:
            patch.setenv("ODDLY_HOME", str(home))
        yield home
