"""Training, tracking and promotion on small simulated sets, against a temporary MLflow store."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ml.dataset import DatasetSpec, LabelledSet, build
from ml.registry import CHAMPION, CHAMPION_URI, MODEL_NAME, champion, load_scorer, promote_if_better, register
from ml.tracking import Tracking
from ml.train import TrainConfig, train
from oddly.config import get_settings

SMALL = DatasetSpec(seeds=(1, 2), hours=0.3, n_events=10, scenarios_per_hour=60)
# Two features that say nothing about a price: a model on them alone must do worse.
UNINFORMATIVE = ("minutes_to_kick_off", "is_live")


@pytest.fixture(scope="module")
def train_set() -> LabelledSet:
    return build(SMALL)


@pytest.fixture(scope="module")
def heldout() -> LabelledSet:
    return build(SMALL.with_seeds((101,)))


def fit(config: TrainConfig, train_set: LabelledSet, heldout: LabelledSet, tracking: Tracking):  # type: ignore[no-untyped-def]
    return train(
        TrainConfig(**{**config.__dict__, "importance_rows": 2_000, "importance_repeats": 1}),
        train_set,
        heldout,
        tracking,
    )


@pytest.mark.parametrize(
    ("family", "estimator_param"),
    [("isolation_forest", "model.n_estimators"), ("lof", "model.novelty"), ("hgb", "model.max_iter")],
)
def test_a_training_run_records_params_metrics_plots_and_the_model(
    family: str, estimator_param: str, train_set: LabelledSet, heldout: LabelledSet, tracking: Tracking
) -> None:
    from mlflow.tracking import MlflowClient

    trained = fit(TrainConfig(family, fit_rows=3_000), train_set, heldout, tracking)
    client = MlflowClient()
    run = client.get_run(trained.run_id)
    assert run.data.params["family"] == family
    assert run.info.experiment_id == tracking.experiment(f"oddly-anomaly-{family}")
    assert run.data.params["features"].split(",")[:2] == ["move_pp", "move_pp_cycle"]
    assert run.data.params["train.seeds"] == "1,2" and run.data.params["heldout.seeds"] == "101"
    assert run.data.params["train_window"].startswith("2026-01-01T12:00:10")
    # the outlier detectors fit a sample; the classifier every positive and that many negatives
    positives = (train_set.frame["label"] == 1).sum() if family == "hgb" else 0
    assert run.data.params["fit_rows"] == str(3_000 + positives)
    assert estimator_param in run.data.params
    metrics = run.data.metrics
    assert metrics["heldout.overall.pr_auc"] == pytest.approx(trained.pr_auc)
    assert 0 < metrics["heldout.overall.pr_auc"] < 1
    assert metrics["heldout.overall.positives"] == (heldout.frame["label"] == 1).sum()
    assert "heldout.sharp_drop.median_ttd_seconds" in metrics
    artifacts = {a.path for a in client.list_artifacts(trained.run_id)}
    assert {
        "pr_curve.png",
        "feature_importances.csv",
        "feature_importances.png",
        "features.json",
        "heldout_report.txt",
        "heldout_metrics.csv",
    } <= artifacts
    assert Path(run.info.artifact_uri.removeprefix("file://")).is_relative_to(tracking.artifact_root)
    importances = client.download_artifacts(trained.run_id, "feature_importances.csv")
    assert Path(importances).read_text().splitlines()[0] == "feature,importance,std"
    # the logged model scores exactly as the one trained
    logged = load_scorer(trained.model_uri)
    rows = heldout.scored.head(500)
    assert np.allclose(logged.predict(rows), trained.scorer.predict(rows))


def test_a_better_model_takes_the_champion_alias_and_a_worse_one_does_not(
    train_set: LabelledSet, heldout: LabelledSet, tracking: Tracking
) -> None:
    client = tracking.activate()
    assert champion(client) is None

    weak = fit(TrainConfig("hgb", features=UNINFORMATIVE), train_set, heldout, tracking)
    weak_version = register(weak)
    first = promote_if_better(client, weak_version, heldout)
    assert first.promoted and first.champion_version is None

    strong = fit(TrainConfig("hgb"), train_set, heldout, tracking)
    assert strong.pr_auc > weak.pr_auc + 0.2
    strong_version = register(strong)
    second = promote_if_better(client, strong_version, heldout)
    assert second.promoted, second.reason
    assert second.champion_version == weak_version
    assert second.champion_pr_auc == pytest.approx(weak.pr_auc)
    assert second.candidate_pr_auc == pytest.approx(strong.pr_auc)

    worse = fit(TrainConfig("hgb", features=UNINFORMATIVE, random_state=3), train_set, heldout, tracking)
    worse_version = register(worse)
    third = promote_if_better(client, worse_version, heldout)
    assert not third.promoted
    assert "does not beat" in third.reason
    assert str(champion(client).version) == strong_version  # type: ignore[union-attr]
    tags = client.get_model_version(MODEL_NAME, worse_version).tags
    assert tags["heldout_set"] == heldout.spec.fingerprint()
    assert float(tags["heldout_pr_auc"]) == pytest.approx(worse.pr_auc, abs=1e-6)

    # what scoring loads is the strong model
    rows = heldout.scored.head(1_000)
    assert np.allclose(load_scorer(CHAMPION_URI).predict(rows), strong.scorer.predict(rows))


def test_an_equal_model_does_not_replace_the_champion(
    train_set: LabelledSet, heldout: LabelledSet, tracking: Tracking
) -> None:
    client = tracking.activate()
    model = fit(TrainConfig("isolation_forest", fit_rows=3_000), train_set, heldout, tracking)
    first = register(model)
    assert promote_if_better(client, first, heldout).promoted
    again = register(model)  # the very same model, a second version
    decision = promote_if_better(client, again, heldout)
    assert not decision.promoted
    assert decision.candidate_pr_auc == pytest.approx(decision.champion_pr_auc)
    assert str(client.get_model_version_by_alias(MODEL_NAME, CHAMPION).version) == first
    assert promote_if_better(client, first, heldout).reason == "it is already the champion"


@pytest.mark.slow
def test_oddly_train_then_evaluate_from_the_command_line(
    migrated_mlflow_db: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from oddly.cli import main

    db = tmp_path / "home" / "mlflow.db"
    db.parent.mkdir()
    shutil.copyfile(migrated_mlflow_db, db)
    monkeypatch.setenv("ODDLY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "unset-by-test")
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "unset-by-test")
    data = ["--heldout-seeds", "101", "--hours", "0.2", "--events", "8"]
    runner = CliRunner()
    result = runner.invoke(main, ["evaluate", *data])
    assert result.exit_code != 0 and "no champion" in result.output

    families = ["--family", "hgb", "--family", "isolation_forest"]  # LOF is slow to score; trained above
    result = runner.invoke(main, ["train", "--train-seeds", "1-2", *families, *data])
    assert result.exit_code == 0, result.output
    assert f"sqlite:///{db.resolve()}" in result.output
    assert "hgb (run" in result.output and "isolation_forest (run" in result.output
    assert "oddly-anomaly version 1 is now the champion" in result.output  # hgb, trained first, wins
    assert (tmp_path / "home" / "ml" / "datasets").is_dir()  # generated once, kept

    result = runner.invoke(main, ["evaluate", *data])
    assert result.exit_code == 0, result.output
    assert "overall" in result.output and "sharp_drop" in result.output
    assert "median_ttd_seconds" in result.output
    assert "rule detectors replayed on the same rows" in result.output and "model_beats_rule" in result.output

    result = runner.invoke(main, ["train", "--train-seeds", "1-2", "--family", "isolation_forest", *data])
    assert result.exit_code == 0, result.output
    assert "was not promoted" in result.output  # the supervised champion is far ahead


@pytest.mark.postgres
def test_runs_and_the_registry_work_on_a_postgresql_store(
    pg_url: str, train_set: LabelledSet, heldout: LabelledSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ODDLY_MLFLOW_TRACKING_URI", pg_url)
    monkeypatch.setenv("ODDLY_HOME", str(tmp_path))
    store = Tracking.from_settings(get_settings())
    assert store.uri.startswith("postgresql+psycopg://")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", store.uri)
    client = store.activate()
    trained = fit(TrainConfig("isolation_forest", fit_rows=2_000), train_set, heldout, store)
    decision = promote_if_better(client, register(trained), heldout)
    assert decision.promoted
    assert str(champion(client).version) == decision.version  # type: ignore[union-attr]
    assert np.allclose(
        load_scorer(CHAMPION_URI).predict(heldout.scored.head(200)),
        trained.scorer.predict(heldout.scored.head(200)),
    )
