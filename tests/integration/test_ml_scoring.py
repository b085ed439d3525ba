"""Live scoring on a real warehouse (simulator → ingestion → dbt marts): each fresh grid time is
scored once, candidates carry their reasons, a sample is kept for drift; the Dagster scoring asset
with and without a champion; the drift check on unshifted and shifted data."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from ml import scores_store
from ml.dataset import LabelledSet, build
from ml.features import NUMERIC_FEATURES
from ml.live_panel import live_panel
from ml.models import AnomalyScorer
from ml.registry import promote_if_better, register
from ml.scoring import DRIFT_MIN_ROWS, live_drift, score_fresh
from ml.tracking import Tracking
from ml.train import TrainConfig
from oddly.appdb import open_app_db
from oddly.config import Settings
from oddly.ingest import ingest_feeds
from oddly.matching.run import update_event_map
from oddly.simulator.config import SimConfig
from oddly.simulator.server import start_in_thread
from oddly.warehouse.store import Warehouse
from orchestration.ml.assets import NO_CHAMPION, anomaly_scores, feature_drift
from orchestration.resources import AppDatabaseResource, MlflowResource, WarehouseResource
from tests.integration.test_dbt_project import dbt
from tests.integration.test_ml_registry import SMALL, fit
from tests.simulated import simulator_feeds

pytestmark = pytest.mark.slow

CYCLE = 1.0  # grid spacing of these tests: the ingestion cycles below run a second apart
SHARP = ["pinnacle"]


def ingest_cycle(sim, warehouse: Warehouse) -> None:  # type: ignore[no-untyped-def]
    sim.call(lambda: sim.market.advance(10))
    reports = ingest_feeds(simulator_feeds(sim), warehouse)
    assert all(r.status == "ok" for r in reports), [r.error for r in reports]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, object]]:
    """A home whose warehouse has four ingestion cycles, a second apart, and its marts built; and
    the simulator, still running, for more cycles."""
    home = tmp_path_factory.mktemp("scored-home")
    config = SimConfig(seed=23, n_events=6, markets_per_event=3, manual_clock=True, scenarios_per_hour=600)
    with start_in_thread(config) as sim:
        warehouse = Warehouse.from_url(f"duckdb:///{home}/warehouse.duckdb")
        for _ in range(4):
            ingest_cycle(sim, warehouse)
            time.sleep(CYCLE)
        update_event_map(warehouse)
        warehouse.dispose()
        result = dbt(Settings(home=home), "build", "--exclude-resource-type", "unit_test")
        assert result.returncode == 0, result.stdout[-3000:]
        yield home, sim


@pytest.fixture
def home(built: tuple[Path, object], tmp_path: Path) -> Path:
    """A private copy of the built home, so a test may ingest more."""
    copy = tmp_path / "home"
    shutil.copytree(built[0], copy, ignore=shutil.ignore_patterns("dbt_target", "dbt_logs"))
    return copy


@pytest.fixture(scope="module")
def labelled() -> tuple[LabelledSet, LabelledSet]:
    return build(SMALL), build(SMALL.with_seeds((101,)))


@pytest.fixture(scope="module")
def scorer(labelled: tuple[LabelledSet, LabelledSet]) -> AnomalyScorer:
    train_set, heldout = labelled
    rows = train_set.scored
    model = AnomalyScorer("hgb", params={"max_iter": 60}).fit(rows, rows["label"].to_numpy())
    model.threshold_ = float(np.quantile(model.predict(heldout.scored), 0.95))
    return model


def app_engine(home: Path) -> sa.Engine:
    return open_app_db(f"sqlite:///{home}/app.db")


def scored_rows(engine: sa.Engine) -> pd.DataFrame:
    scores_store.ensure_tables(engine)
    with engine.connect() as conn:
        return pd.read_sql_query(sa.select(scores_store.model_scores), conn)


def test_each_fresh_grid_time_is_scored_once_and_candidates_carry_reasons(
    home: Path, built: tuple[Path, object], scorer: AnomalyScorer
) -> None:
    warehouse = Warehouse.from_url(f"duckdb:///{home}/warehouse.duckdb")
    engine = app_engine(home)
    panel = live_panel(warehouse, after=None, cycle_seconds=CYCLE)
    # every selection of the marts at every grid time since its first tick, and nothing else
    first_seen = pd.DataFrame(
        warehouse.query("select selection_key, min(observed_at) as first from raw.odds_ticks group by 1")
    )
    fresh = panel.panel[panel.fresh.to_numpy()]
    latest = pd.Timestamp(warehouse.scalar("select max(observed_at) from raw.odds_ticks"))
    grid = pd.Series([latest - pd.Timedelta(seconds=CYCLE * i) for i in range(30)])  # MAX_FRESH_CYCLES
    assert pd.Timestamp(panel.latest) == latest
    assert set(fresh["observed_at"]) <= set(grid)
    expected = sum(int((grid >= pd.Timestamp(f)).sum()) for f in first_seen["first"])
    assert len(fresh) == expected

    first = score_fresh(warehouse, engine, scorer, "7", SHARP, cycle_seconds=CYCLE)
    assert first.rows_scored == int(fresh["price"].notna().sum()) > 0
    assert first.candidates == len(first.top) > 0
    kept = scored_rows(engine)
    assert len(kept) == first.rows_written
    assert set(kept["model_version"]) == {"7"}
    candidates = kept[kept["is_candidate"]]
    assert len(candidates) == first.candidates
    assert (candidates["score"] > candidates["threshold"]).all()
    for text in candidates["reasons"]:
        reasons = json.loads(text)
        assert 1 <= len(reasons) <= 3 and all(r["feature"] in (*NUMERIC_FEATURES, "market") for r in reasons)
        assert all("normal" in r["normal"] or r["feature"] == "market" for r in reasons)
    sample = kept[kept["in_sample"]]
    assert 0 < len(sample) < 0.2 * first.rows_scored  # ~5 %
    assert sample[[f"f_{f}" for f in ("move_pp", "books_moved")]].notna().all().all()

    # nothing new observed: nothing scored twice
    again = score_fresh(warehouse, engine, scorer, "7", SHARP, cycle_seconds=CYCLE)
    assert again.rows_scored == 0 and len(scored_rows(engine)) == len(kept)

    # a new cycle: only the grid times after the previous run's latest are scored
    time.sleep(CYCLE)
    sim = built[1]
    ingest_cycle(sim, warehouse)
    later = score_fresh(warehouse, engine, scorer, "7", SHARP, cycle_seconds=CYCLE)
    assert later.rows_scored > 0
    rows = scored_rows(engine)
    new = rows[rows["id"] > kept["id"].max()]
    assert len(new) == later.rows_written
    assert (pd.to_datetime(new["observed_at"], utc=True) > pd.Timestamp(first.latest)).all()
    assert not rows.duplicated(["selection_key", "observed_at"]).any()
    warehouse.dispose()


def test_without_a_champion_the_asset_says_so_and_scores_nothing(
    home: Path, tracking: Tracking, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ODDLY_HOME", str(home))
    result = materialize(home, tracking)
    assert result.success
    [event] = result.asset_materializations_for_node("ml__anomaly_scores")
    meta = {k: v.value for k, v in event.metadata.items()}
    assert meta["champion"] == "none" and meta["note"] == NO_CHAMPION and meta["rows_scored"] == 0
    [check] = result.get_asset_check_evaluations()
    assert check.passed and "no champion" in (check.description or "")
    assert scored_rows(app_engine(home)).empty


def test_with_a_champion_the_asset_scores_with_its_version_and_checks_drift(
    home: Path, tracking: Tracking, labelled: tuple[LabelledSet, LabelledSet], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ODDLY_HOME", str(home))
    train_set, heldout = labelled
    version = register(fit(TrainConfig("hgb", fit_rows=3_000), train_set, heldout, tracking))
    assert promote_if_better(tracking.activate(), version, heldout).promoted
    result = materialize(home, tracking)
    assert result.success
    [event] = result.asset_materializations_for_node("ml__anomaly_scores")
    meta = {k: v.value for k, v in event.metadata.items()}
    assert meta["model_version"] == version and meta["champion"] == f"hgb version {version}"
    rows = scored_rows(app_engine(home))
    assert meta["rows_scored"] > 0 and meta["rows_kept"] == len(rows)
    assert set(rows["model_version"]) == {version}
    assert "| score | book |" in meta["top_candidates"] or "no candidate" in meta["top_candidates"]
    # one short cycle is too little to judge drift on: said, not guessed
    [check] = result.get_asset_check_evaluations()
    assert check.passed and "not judged" in (check.description or "")

    # a day of sampled rows whose kick-off times and margins moved: the check warns and names them
    from ml.registry import load_champion

    champion_model, _ = load_champion(tracking.activate())  # type: ignore[misc]
    shift = {"minutes_to_kick_off": 600.0, "book_margin": 0.05}
    write_sample(app_engine(home), sampled(champion_model.reference_.sample, shift, 3_000, seed=4))
    [check] = materialize(home, tracking).get_asset_check_evaluations()
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    meta = {k: v.value for k, v in check.metadata.items()}
    assert set(str(meta["drifted"]).split(", ")) == {"minutes_to_kick_off", "book_margin"}
    assert "minutes_to_kick_off" in (check.description or "")


def materialize(home: Path, tracking: Tracking) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [anomaly_scores, feature_drift],
        resources={
            "warehouse": WarehouseResource(),
            "app_db": AppDatabaseResource(url=f"sqlite:///{home}/app.db"),
            "mlflow": MlflowResource(tracking_uri=tracking.uri),
        },
    )


def sampled(reference: pd.DataFrame, shift: dict[str, float], n: int, seed: int) -> pd.DataFrame:
    """`n` rows drawn from the training reference, some features shifted, as scoring keeps them."""
    rows = reference.sample(n, replace=True, random_state=seed).reset_index(drop=True)
    for name, by in shift.items():
        rows[name] = rows[name] + by
    now = datetime.now(UTC)
    return rows.rename(columns={f: f"f_{f}" for f in rows.columns}).assign(
        scored_at=now,
        observed_at=now - timedelta(minutes=5),
        selection_key=np.arange(n),
        canonical_event_id="e",
        bookmaker="b",
        market="1x2",
        period="ft",
        line=None,
        outcome="home",
        price=2.0,
        score=0.1,
        threshold=0.5,
        is_candidate=False,
        in_sample=True,
        model_version="1",
        reasons=None,
    )


def write_sample(engine: sa.Engine, rows: pd.DataFrame) -> None:
    for column in scores_store.SCORE_COLUMNS:
        if column not in rows:
            rows[column] = None
    scores_store.write(
        engine,
        rows,
        {
            "scored_at": datetime.now(UTC),
            "latest_observed_at": datetime.now(UTC),
            "model_version": "1",
            "rows_scored": len(rows),
            "candidates": 0,
            "seconds": 0.1,
        },
    )


def test_the_drift_check_passes_on_the_training_distribution_and_names_shifted_features(
    tmp_path: Path, scorer: AnomalyScorer
) -> None:
    reference = scorer.reference_.sample
    steady = app_engine(tmp_path / "steady")
    write_sample(steady, sampled(reference, {}, 3_000, seed=1))
    outcome = live_drift(steady, scorer)
    assert outcome.report is not None and outcome.report.drifted == [], outcome.note
    assert outcome.rows == 3_000

    shifted = app_engine(tmp_path / "shifted")
    write_sample(
        shifted, sampled(reference, {"minutes_to_kick_off": 600.0, "book_margin": 0.05}, 3_000, seed=2)
    )
    outcome = live_drift(shifted, scorer)
    assert outcome.report is not None
    assert set(outcome.report.drifted) == {"minutes_to_kick_off", "book_margin"}, outcome.report.psi
    assert "minutes_to_kick_off" in outcome.note and "book_margin" in outcome.note

    few = app_engine(tmp_path / "few")
    write_sample(few, sampled(reference, {}, DRIFT_MIN_ROWS - 1, seed=3))
    assert live_drift(few, scorer).report is None


def test_the_training_asset_registers_and_promotes_only_a_better_model(tracking: Tracking) -> None:
    from mlflow.tracking import MlflowClient

    from ml.registry import MODEL_NAME, champion
    from orchestration.ml.assets import anomaly_model

    small = {
        "train_seeds": "1",
        "heldout_seeds": "101",
        "hours": 0.25,
        "events": 10,
        "scenarios_per_hour": 60.0,
    }
    resources = {"mlflow": MlflowResource(tracking_uri=tracking.uri)}

    def train(families: list[str]) -> dict[str, object]:
        config = {"ops": {"ml__anomaly_model": {"config": {**small, "families": families}}}}
        result = dg.materialize([anomaly_model], resources=resources, run_config=config)
        assert result.success
        [event] = result.asset_materializations_for_node("ml__anomaly_model")
        return {k: v.value for k, v in event.metadata.items()}

    first = train(["hgb"])
    assert first["promoted"] is True and "no champion yet" in str(first["promotion"])
    assert "| hgb | 1 |" in str(first["versions"])
    # an unsupervised baseline on the same worlds does worse: registered, not promoted
    second = train(["isolation_forest"])
    assert second["promoted"] is False and "does not beat" in str(second["promotion"])
    client = MlflowClient(tracking.uri, tracking.uri)
    assert str(champion(client).version) == "1"  # type: ignore[union-attr]
    assert len(client.search_model_versions(f"name = '{MODEL_NAME}'")) == 2

    overlapping = dg.materialize(
        [anomaly_model],
        resources=resources,
        run_config={"ops": {"ml__anomaly_model": {"config": {**small, "heldout_seeds": "1"}}}},
        raise_on_error=False,
    )
    assert not overlapping.success
