"""Reading the marts from the app and the bot, never blocked by ingestion or dbt.

Embedded mode reads the published snapshot (`oddly.warehouse.snapshot`), opened read-only for
each query so a newer snapshot is picked up as soon as it is published; server mode reads the
PostgreSQL warehouse, where dbt's transactions keep readers on complete tables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from oddly.config import Settings
from oddly.warehouse.snapshot import INFO_TABLE, snapshot_path


class MartsNotReadyError(RuntimeError):
    """No marts have been published yet."""


class MartsReader:
    def __init__(self, *, warehouse_url: str | None, home: Path) -> None:
        self.snapshot = None if warehouse_url else snapshot_path(home)
        if warehouse_url:
            url = warehouse_url.replace("postgresql://", "postgresql+psycopg://", 1)
            self.engine = sa.create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=2)
        else:
            # a fresh read-only open per query: never a lock, and always the newest snapshot
            self.engine = sa.create_engine(
                f"duckdb:///{self.snapshot}", poolclass=NullPool, connect_args={"read_only": True}
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> MartsReader:
        return cls(warehouse_url=settings.warehouse_url, home=settings.home)

    def query(self, sql: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """A query over `marts.*` as a DataFrame (`:name` parameters)."""
        if self.snapshot is not None and not self.snapshot.exists():
            raise MartsNotReadyError(
                f"no marts published yet at {self.snapshot}: they appear after the first dbt build "
                "(`oddly dbt build`, or the Dagster marts job after the first ingestion)"
            )
        with self.engine.connect() as conn:
            return pd.read_sql_query(sa.text(sql), conn, params=params or {})

    def published(self) -> pd.DataFrame:
        """Embedded mode: what the current snapshot holds (relation, row_count, load_seq,
        published_at). Server mode: empty."""
        if self.snapshot is None:
            return pd.DataFrame(columns=["relation", "row_count", "load_seq", "published_at"])
        return self.query(f"select * from {INFO_TABLE} order by relation")

    def dispose(self) -> None:
        self.engine.dispose()
