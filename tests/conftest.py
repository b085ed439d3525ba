"""Shared test fixtures: the recorded real data beside the repo, temporary homes, PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

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
