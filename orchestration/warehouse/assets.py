"""The warehouse after ingestion: event matching (`raw.event_map`, in one call into `oddly.matching`),
then the dbt project built on it — staging → intermediate → marts, its tests as asset checks — with
the marts published for readers (`oddly.warehouse.dbt_writer`, the same code as `oddly dbt`)."""

from collections.abc import Iterator, Sequence
from typing import Any

import dagster as dg
from dagster._utils.env import environ
from dagster_dbt import DbtCliResource, DbtProject, dbt_assets
from dagster_dbt.core.dbt_cli_event import DbtCoreCliEventMessage

from oddly.dagster_home import WAREHOUSE_WRITER_POOL
from oddly.matching.run import MatchReport, update_event_map
from oddly.warehouse.dbt_env import dbt_env
from oddly.warehouse.dbt_runner import DbtOutcome
from oddly.warehouse.dbt_writer import held_for_dbt
from oddly.warehouse.snapshot import Snapshot
from orchestration.resources import WarehouseResource
from orchestration.warehouse.dbt_project import (
    DBT_PROJECT,
    OddlyDbtTranslator,
    prepared_manifest,
    prepared_manifest_json,
)

EVENT_MAP_KEY = dg.AssetKey(["raw", "event_map"])
ODDS_TICKS_KEY = dg.AssetKey(["raw", "odds_ticks"])
# Each cycle builds the models and runs their data tests (the `checks` selector of
# dbt_project/selectors.yml); unit tests check the SQL and belong to CI, and the tests over the whole
# raw history (tag raw_history) are for a daily `oddly dbt test --selector raw_history`.
DBT_BUILD = ["build", "--exclude-resource-type", "unit_test", "--exclude", "tag:raw_history"]
# Unmatched and ambiguous events shown in the matching asset's metadata.
EXAMPLES = 8


def odds_ticks_spec(feed_keys: Sequence[dg.AssetKey]) -> dg.AssetSpec:
    """The tick table every feed asset appends to, as the one upstream of the dbt source."""
    return dg.AssetSpec(
        ODDS_TICKS_KEY,
        deps=feed_keys,
        group_name="ingestion",
        description="Change-only price history (raw.odds_ticks), appended by every feed's ingestion asset.",
    )


def match_table(report: MatchReport) -> str:
    """Unmatched and ambiguous events with the reason, so the UI says what matching left open."""
    examples = [("unmatched", r) for r in report.unmatched] + [("ambiguous", r) for r in report.ambiguous]
    if not examples:
        return "every event matched or is new, none ambiguous"
    rows = [
        f"| {kind} | {r['bookmaker']} | {r['source_event_id']} | {r['home']} v {r['away']} | {r['reason']} |"
        for kind, r in examples[:EXAMPLES]
    ]
    return "| | book | event id | teams | why |\n|---|---|---|---|---|\n" + "\n".join(rows)


def match_metadata(report: MatchReport) -> dict[str, object]:
    """What a matching pass reports (the asset's materialization, or the marts sensor's)."""
    return {
        "events": report.events,
        "canonical_events": report.canonical_events,
        "matched_across_books": report.matched_across_books,
        "unmatched": len(report.unmatched),
        "ambiguous": len(report.ambiguous),
        "examples": dg.MetadataValue.md(match_table(report)),
    }


def build_event_map_asset(feed_keys: Sequence[dg.AssetKey]) -> dg.AssetsDefinition:
    @dg.asset(
        key=EVENT_MAP_KEY,
        deps=feed_keys,
        group_name="warehouse",
        kinds={"python"},
        pool=WAREHOUSE_WRITER_POOL,
        description="Every book's current events mapped to canonical events (oddly.matching): "
        "normalized names and aliases, same sport, kick-off within 15 minutes.",
    )
    def event_map(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        report = update_event_map(warehouse.get())
        context.log.info(
            f"{report.events} bookmaker events → {report.canonical_events} canonical events, "
            f"{report.matched_across_books} at more than one book"
        )
        return dg.MaterializeResult(metadata=match_metadata(report))

    return event_map


def build_dbt_assets(project: DbtProject = DBT_PROJECT) -> dg.AssetsDefinition:
    @dbt_assets(
        manifest=prepared_manifest(project),
        project=project,
        dagster_dbt_translator=OddlyDbtTranslator(),
        name="dbt_build",
        pool=WAREHOUSE_WRITER_POOL,
    )
    def dbt_build(
        context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource
    ) -> Iterator[Any]:
        settings = warehouse.settings()
        with held_for_dbt(settings) as held:
            # dbt.cli hands its process's environment to dbt: the target and connection go in there
            with environ(dbt_env(settings)):
                # one folder under ODDLY_HOME, reused: partial parsing stays warm, nothing piles up
                invocation = dbt.cli(DBT_BUILD, context=context, target_path=settings.home / "dbt_target")
            yield from invocation.stream()
            snapshot = held.publish()
        if snapshot is None:
            context.log.info("nothing to publish: on PostgreSQL readers read the marts in the warehouse")
        else:
            context.log.info(
                f"published {len(snapshot.rows)} marts to {snapshot.path} in {snapshot.seconds:.2f} s"
            )
        yield from (o for o in published(snapshot) if o.asset_key in context.assets_def.keys)

    return dbt_build


def published(snapshot: Snapshot | None) -> list[dg.AssetObservation]:
    """What readers now see of each mart, as an observation of that mart (nothing on PostgreSQL,
    where readers read the warehouse)."""
    if snapshot is None:
        return []
    return [
        dg.AssetObservation(
            asset_key=dg.AssetKey(relation.split(".")),
            metadata={
                "published_rows": rows,
                "published_at": dg.MetadataValue.timestamp(snapshot.published_at),
                "published_load_seq": snapshot.load_seq,
            },
        )
        for relation, rows in snapshot.rows.items()
        if relation.startswith("marts.")
    ]


def dbt_asset_events(
    outcome: DbtOutcome, project: DbtProject = DBT_PROJECT
) -> list[dg.AssetMaterialization | dg.AssetCheckEvaluation | dg.AssetObservation]:
    """An in-process dbt invocation's results as the events dagster-dbt makes of the dbt CLI's: a
    materialization per model built, a check evaluation per test, keyed by the same translator."""
    manifest = prepared_manifest_json(project)
    translator = OddlyDbtTranslator()
    events: list[Any] = []
    for raw in outcome.events:
        message = DbtCoreCliEventMessage(raw_event=raw, event_history_metadata={})
        events.extend(
            message.to_default_asset_events(
                manifest=manifest, dagster_dbt_translator=translator, project=project
            )
        )
    return events
