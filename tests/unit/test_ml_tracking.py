"""Where MLflow keeps its runs: always an explicit store, SQLite under ODDLY_HOME by default."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml.tracking import Tracking
from oddly.config import Settings


def test_the_default_store_is_sqlite_under_oddly_home_with_artifacts_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ODDLY_MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("ODDLY_HOME", str(tmp_path / "home"))
    tracking = Tracking.from_settings(Settings())
    assert tracking.uri == f"sqlite:///{(tmp_path / 'home' / 'mlflow.db').resolve()}"
    assert tracking.uri.startswith("sqlite:////")  # absolute, whatever the working directory
    assert tracking.artifact_root == (tmp_path / "home" / "mlartifacts").resolve()


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        ("postgresql://mlflow@db:5432/oddly", "postgresql+psycopg://mlflow@db:5432/oddly"),
        ("postgres://mlflow@db/oddly", "postgresql+psycopg://mlflow@db/oddly"),
        ("postgresql+psycopg://mlflow@db/oddly", "postgresql+psycopg://mlflow@db/oddly"),
        ("sqlite:////srv/mlflow.db", "sqlite:////srv/mlflow.db"),
    ],
)
def test_a_configured_store_is_used_with_the_installed_postgres_driver(
    configured: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ODDLY_MLFLOW_TRACKING_URI", configured)
    assert Tracking.from_settings(Settings()).uri == expected
