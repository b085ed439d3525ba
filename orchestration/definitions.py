"""The Dagster code location: assembles the domains and picks resources by deployment."""

from __future__ import annotations

import dagster as dg

from oddly.config import get_settings
from orchestration.alerts.definitions import alerts_definitions
from orchestration.ingestion.definitions import ingestion_definitions
from orchestration.ml.definitions import ml_definitions
from orchestration.ops.retention import retention_definitions
from orchestration.resources import resources_for
from orchestration.warehouse.definitions import warehouse_definitions

settings = get_settings()
deployment = "server" if settings.warehouse_url else "embedded"

defs = dg.Definitions.merge(
    ingestion_definitions(settings.config),
    warehouse_definitions(settings.config),
    ml_definitions(),
    alerts_definitions(),
    retention_definitions(),
    dg.Definitions(resources=resources_for(deployment)),
)
