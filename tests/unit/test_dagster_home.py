"""The Dagster instance settings written from Oddly's settings."""

from __future__ import annotations

from pathlib import Path

import yaml
from dagster._core.instance.config import dagster_instance_config

from oddly.config import Settings
from oddly.dagster_home import dagster_postgres_url, password_env, write_dagster_yaml


def test_embedded_instance_is_sqlite_under_oddly_home_with_a_writer_pool(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    path = write_dagster_yaml(settings)
    assert path == tmp_path / "dagster" / "dagster.yaml"
    config = yaml.safe_load(path.read_text())
    assert config["storage"] == {"sqlite": {"base_dir": str(tmp_path / "dagster" / "storage")}}
    assert config["concurrency"]["pools"] == {"default_limit": 1, "granularity": "op"}
    assert config["telemetry"] == {"enabled": False}
    dagster_instance_config(str(path.parent))  # Dagster itself accepts the file


def test_server_instance_uses_dagster_postgres_without_writing_the_password(tmp_path: Path) -> None:
    url = "postgresql://oddly:s3cr%40t@db.internal:5433/oddly?sslmode=require"
    settings = Settings(home=tmp_path, dagster_pg_url=url)
    text = write_dagster_yaml(settings).read_text()
    assert "s3cr" not in text
    assert yaml.safe_load(text)["storage"] == {
        "postgres": {"postgres_url": "postgresql+psycopg2://oddly@db.internal:5433/oddly?sslmode=require"}
    }
    assert password_env(url) == {"PGPASSWORD": "s3cr@t"}
    assert password_env("postgresql://postgres@127.0.0.1/x") == {} == password_env(None)
    assert (
        dagster_postgres_url("postgresql://postgres@127.0.0.1:5432/db")
        == "postgresql+psycopg2://postgres@127.0.0.1:5432/db"
    )
