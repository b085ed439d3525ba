"""The dbt project as Dagster sees it: where it lives, how its nodes become asset keys and groups,
and the dbt CLI resource. The manifest is prepared by `make manifest` (`oddly dbt parse`), never
here: loading the code location must not parse the project."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject

from oddly.config import Settings
from oddly.matching.run import MatchState
from oddly.warehouse.dbt_env import DBT_PROJECT_DIR
from oddly.warehouse.dbt_runner import WarmDbt
from oddly.warehouse.dbt_writer import DBT_EXECUTABLE

DBT_PROJECT = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


class OddlyDbtTranslator(DagsterDbtTranslator):
    """Keys are relations, `<schema>/<table>`: a dbt source is then the asset that writes its raw table
    (`raw/odds_ticks`, `raw/event_map`) and a model reads as the table people query
    (`marts/fct_prices_current`). Groups are the model folders: staging, intermediate, marts.

    get_asset_key and get_group_name, not get_asset_spec: dagster-dbt also calls get_asset_key
    directly (selection, test observations), so the keys agree everywhere."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        table = dbt_resource_props.get("identifier") or dbt_resource_props["alias"]
        return dg.AssetKey([dbt_resource_props["schema"], table])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return str(dbt_resource_props["fqn"][1])


def dbt_resource(project: DbtProject = DBT_PROJECT) -> DbtCliResource:
    return DbtCliResource(project_dir=project, dbt_executable=str(DBT_EXECUTABLE))


def prepared_manifest(project: DbtProject = DBT_PROJECT) -> Path:
    """The manifest the install step prepared; when it is missing, say how to make it (no parse here)."""
    if not project.manifest_path.exists():
        raise FileNotFoundError(
            f"dbt manifest {project.manifest_path} is missing: run `make manifest` (it runs "
            "`.venv/bin/oddly dbt parse`), then reload the code location"
        )
    return project.manifest_path


_manifests: dict[Path, tuple[int, dict[str, Any]]] = {}
_warm: dict[tuple[str, str], tuple[WarmDbt, MatchState]] = {}
_warm_lock = threading.Lock()


def prepared_manifest_json(project: DbtProject = DBT_PROJECT) -> dict[str, Any]:
    """The prepared manifest's content, read again only when `make manifest` rewrote it."""
    path = prepared_manifest(project)
    mtime = path.stat().st_mtime_ns
    cached = _manifests.get(path)
    if cached is None or cached[0] != mtime:
        cached = (mtime, json.loads(path.read_text()))
        _manifests[path] = cached
    return cached[1]


def warm_dbt(settings: Settings) -> tuple[WarmDbt, MatchState]:
    """This process's warm dbt and matching state for the warehouse `settings` name (created on
    first use: a new code server parses the project once and matches in full on its first cycle)."""
    key = (str(settings.home), settings.resolved_warehouse_url)
    with _warm_lock:
        if key not in _warm:
            _warm[key] = (WarmDbt(settings), MatchState())
        return _warm[key]
