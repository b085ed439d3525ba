"""Where MLflow keeps runs, models and artifacts.

Embedded mode: the tracking and registry store is `sqlite:///$ODDLY_HOME/mlflow.db` and artifacts
live under `$ODDLY_HOME/mlartifacts`; server mode: `ODDLY_MLFLOW_TRACKING_URI` names a PostgreSQL
database. The URI is always set explicitly, never left to MLflow's default (a `./mlruns` file
store relative to whatever directory a process happens to start in).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from oddly.config import Settings
from oddly.pg_schema import ensure_schema

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

# One experiment per model family, and one for evaluation reports.
EXPERIMENT_PREFIX = "oddly-anomaly"
EVALUATION_EXPERIMENT = f"{EXPERIMENT_PREFIX}-evaluation"


@dataclass(frozen=True)
class Tracking:
    """A tracking store and the artifact root its experiments write to."""

    uri: str
    artifact_root: Path

    @classmethod
    def from_settings(cls, settings: Settings) -> Tracking:
        return cls(settings.resolved_mlflow_tracking_uri, settings.mlflow_artifacts_path.resolve())

    @classmethod
    def sqlite(cls, db: Path, artifact_root: Path) -> Tracking:
        return cls(f"sqlite:///{db.resolve()}", artifact_root.resolve())

    def activate(self) -> MlflowClient:
        """Point this process's MLflow (and child processes it starts) at this store."""
        import mlflow
        from mlflow.tracking import MlflowClient

        if self.uri.startswith("sqlite:///"):
            Path(self.uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        ensure_schema(self.uri)  # server mode: MLflow's own schema of the one database
        self.artifact_root.mkdir(parents=True, exist_ok=True)
        os.environ["MLFLOW_TRACKING_URI"] = self.uri
        os.environ["MLFLOW_REGISTRY_URI"] = self.uri
        mlflow.set_tracking_uri(self.uri)
        mlflow.set_registry_uri(self.uri)
        return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    def experiment(self, name: str) -> str:
        """The id of experiment `name`, created with its artifacts under the artifact root."""
        import mlflow

        found = mlflow.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        return str(mlflow.create_experiment(name, artifact_location=(self.artifact_root / name).as_uri()))

    def migrate(self) -> None:
        """Create or upgrade the store's tables now (MLflow would otherwise do it on first use)."""
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        SqlAlchemyStore(self.uri, self.artifact_root.as_uri())


def family_experiment(family: str) -> str:
    return f"{EXPERIMENT_PREFIX}-{family}"
