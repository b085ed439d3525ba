"""The Bookmakers, Alerts, Models and Rules pages with `AppTest`: each runs without an exception,
shows the seeded rows, narrows its table with a filter, and explains an empty or broken state."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dashboards.common import NO_DATA
from ml import scores_store
from ml.features import NUMERIC_FEATURES
from ml.tracking import Tracking
from oddly.alerts.outbox import Outbox, decide_and_queue
from oddly.alerts.policy import parse_policy
from oddly.alerts.subscriptions import register_chat
from oddly.appdb import open_app_db
from oddly.config import SHIPPED_CONFIG, Settings
from oddly.detect.detection import Detection
from oddly.detect.rules import load_rules
from oddly.model import now_utc
from oddly.views.rules_store import history
from oddly.warehouse.schema import feed_runs
from oddly.warehouse.snapshot import publish_snapshot, snapshot_path
from oddly.warehouse.store import Warehouse
from tests.dashboards.conftest import MarketHome

pytestmark = pytest.mark.slow

OpenPage = Callable[..., AppTest]


def no_errors(app: AppTest) -> None:
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, [e.value for e in app.error]


def tables(app: AppTest, column: str) -> list[pd.DataFrame]:
    """The page's tables that have `column`, in page order."""
    return [d.value for d in app.dataframe if column in d.value.columns]


def table(app: AppTest, column: str) -> pd.DataFrame:
    """The one table with `column`."""
    found = tables(app, column)
    assert len(found) == 1, (
        f"{len(found)} tables with {column!r}: {[e.value for e in (*app.info, *app.warning)]}"
    )
    return found[0]


def texts(app: AppTest, kind: str) -> list[str]:
    return [str(e.value) for e in getattr(app, kind)]


# --- bookmakers ----------------------------------------------------------------------------------


def test_bookmakers_shows_feed_health_and_quality_and_filters_by_book(
    open_page: OpenPage, market_home: MarketHome
) -> None:
    app = open_page(market_home.home, "bookmakers")
    no_errors(app)
    health = table(app, "quarantined_rows_24h")
    assert health[["feed", "health", "last_status"]].values.tolist() == [["f", "ok", "ok"]]
    assert health["runs_24h"].tolist() == [4]
    quality = table(app, "mean_margin")
    assert set(quality["bookmaker"]) == {"pinnacle", "22bet", "bet365", "1xbet"}
    assert quality.set_index("bookmaker").loc["pinnacle", "is_sharp"]
    assert (quality["mean_margin"] > 0).all()
    app.multiselect(key="quality_books").set_value(["1xbet", "bet365"]).run()
    no_errors(app)
    assert sorted(table(app, "mean_margin")["bookmaker"]) == ["1xbet", "bet365"]


def test_bookmakers_says_a_feed_is_down(open_page: OpenPage, tmp_path: Path) -> None:
    warehouse = Warehouse.from_settings(Settings(home=tmp_path))
    warehouse.ensure_schema()
    now = now_utc()
    run = dict(
        bookmaker="x", requests=1, prices_seen=0, ticks_written=0, rejected=0, unmapped=0,
        unmapped_codes="", fetch_seconds=0.0, parse_seconds=0.0, write_seconds=0.0, http_outcome="503",
        load_seq=None,
    )  # fmt: skip
    with warehouse.begin() as conn:
        conn.execute(
            feed_runs.insert(),
            [
                {
                    **run,
                    "feed_run_id": "a",
                    "feed": "linefeed",
                    "status": "ok",
                    "error": None,
                    "started_at": now - timedelta(minutes=9),
                    "finished_at": now - timedelta(minutes=9),
                },
                {
                    **run,
                    "feed_run_id": "b",
                    "feed": "linefeed",
                    "status": "failed",
                    "error": "HTTP 503 after 3 tries; keeping last prices",
                    "started_at": now - timedelta(minutes=1),
                    "finished_at": now - timedelta(minutes=1),
                },
            ],
        )
        conn.exec_driver_sql("create schema marts")
        conn.exec_driver_sql(
            "create table marts.fct_bookmaker_quality (bookmaker varchar, market varchar, is_sharp boolean, "
            "selections bigint, ticks bigint, mean_margin double, mean_stale_seconds double, "
            "median_stale_seconds double, sharp_moves_followed bigint, median_lag_seconds double, "
            "suspension_rate double, out_of_line_share double)"
        )
    assert publish_snapshot(warehouse, snapshot_path(tmp_path)) is not None
    warehouse.dispose()
    app = open_page(tmp_path, "bookmakers")
    assert not app.exception
    assert texts(app, "error") == [
        "feed linefeed is down: its last run failed (HTTP 503 after 3 tries; keeping last prices)."
    ]
    assert table(app, "quarantined_rows_24h")["health"].tolist() == ["down"]
    assert any("No bookmaker quality yet" in t for t in texts(app, "info"))


def test_bookmakers_on_an_empty_home_explains_what_to_start(open_page: OpenPage, tmp_path: Path) -> None:
    app = open_page(tmp_path, "bookmakers")
    no_errors(app)
    assert texts(app, "info") == [NO_DATA, NO_DATA]


# --- alerts --------------------------------------------------------------------------------------

POLICY = parse_policy(
    {
        "version": "p-ui",
        "types": {
            "sharp_drop": {"yellow_strength": 1.0, "red_strength": 1.5},
            "steam": {"yellow_strength": 1.0, "red_strength": 1.5},
        },
        "kickoff": {"red_within_hours": None},
    }
)


def detection(kind: str, event: str, book: str, strength: float, at: datetime) -> Detection:
    return Detection(
        type=kind,
        canonical_event_id=event,
        source_event_id=f"{book}-{event}",
        bookmaker=book,
        market="1x2",
        period="ft",
        line=None,
        outcome="home",
        detected_at=at,
        strength=strength,
        reasons={"previous_price": 2.0, "price": 1.7},
        explanation=f"{book} {kind} on {event}",
        rules_version="r-ui",
    )


@pytest.fixture
def alerts_home(tmp_path: Path) -> Path:
    """Two chats; a red sharp drop sent to one chat and dead at the other, a yellow steam move in
    the digests, and a detection under its threshold, only recorded."""
    engine = open_app_db(Settings(home=tmp_path))
    now = now_utc()
    with engine.begin() as conn:
        for chat in ("100", "200"):
            register_chat(conn, chat, now - timedelta(days=1))
    candidates = [
        detection("sharp_drop", "ev-red", "pinnacle", 2.0, now - timedelta(minutes=2)),
        detection("steam", "ev-yellow", "bet365", 1.2, now - timedelta(minutes=1)),
        detection("sharp_drop", "ev-weak", "22bet", 0.5, now - timedelta(minutes=1)),
    ]
    decide_and_queue(engine, candidates, POLICY, now, lambda alert: (alert.explanation, None))
    outbox = Outbox(engine)
    first, second = outbox.claim_due(10, now)
    outbox.mark_sent(first.id, 555, now)
    outbox.mark_dead(second.id, "Forbidden: bot was blocked by the user")
    engine.dispose()
    return tmp_path


def test_alerts_feed_shows_severity_reasons_and_delivery(open_page: OpenPage, alerts_home: Path) -> None:
    app = open_page(alerts_home, "alerts")
    no_errors(app)
    feed = tables(app, "delivery")[0].set_index("type")
    assert sorted(feed.index) == ["sharp_drop", "steam"], "the recorded decision is not in the feed"
    assert feed.loc["sharp_drop", "severity"] == "🔴 red" and feed.loc["steam", "severity"] == "🟡 yellow"
    assert feed.loc["sharp_drop", "delivery"] == "1/2 sent, 1 failed"
    assert feed.loc["steam", "delivery"] == "0/2 sent, 2 waiting"  # in both chats' digests
    assert feed.loc["sharp_drop", "reasons"] == "previous_price: 2.0; price: 1.7"
    app.segmented_control(key="feed_severity").set_value("red").run()
    no_errors(app)
    assert tables(app, "delivery")[0]["type"].tolist() == ["sharp_drop"]


def test_audit_search_finds_every_decision_and_filters(open_page: OpenPage, alerts_home: Path) -> None:
    app = open_page(alerts_home, "alerts")
    audit = tables(app, "delivery")[1]
    assert sorted(audit["action"]) == ["digest", "queued", "recorded"]
    assert audit.set_index("action").loc["recorded", "delivery"] == "not sent"
    app.selectbox(key="audit_type").set_value("sharp_drop")
    app.selectbox(key="audit_action").set_value("recorded")
    app.button[0].click().run()
    no_errors(app)
    found = tables(app, "delivery")[1]
    assert found[["type", "bookmaker", "action"]].values.tolist() == [["sharp_drop", "22bet", "recorded"]]
    app.selectbox(key="audit_type").set_value("any")
    app.selectbox(key="audit_action").set_value("any")
    app.selectbox(key="audit_event").set_value("ev-red")
    app.button[0].click().run()
    assert app.selectbox(key="audit_alert").value == tables(app, "delivery")[1]["alert_id"].iloc[0]
    deliveries = table(app, "telegram_message_id")
    assert sorted(deliveries["status"]) == ["dead", "queued", "queued", "sent"]


def test_alerts_on_an_empty_app_database_explains(open_page: OpenPage, tmp_path: Path) -> None:
    app = open_page(tmp_path, "alerts")
    no_errors(app)
    assert any("No alert decided yet" in t for t in texts(app, "info"))


# --- models --------------------------------------------------------------------------------------


def log_family(tracking: Tracking, family: str, pr_auc: float) -> str:
    """A training run of `family` with the metrics `ml.train` logs, and a small real model
    registered from it; returns the version."""
    import mlflow

    from ml.models import AnomalyScorer
    from ml.registry import MODEL_NAME

    rng = np.random.default_rng(1)
    rows = pd.DataFrame({f: rng.normal(size=400) for f in NUMERIC_FEATURES}).assign(market="1x2")
    scorer = AnomalyScorer("isolation_forest", params={"n_estimators": 5}).fit(rows)
    with mlflow.start_run(
        experiment_id=tracking.experiment(f"oddly-anomaly-{family}"), run_name=family
    ) as run:
        mlflow.set_tags({"family": family, "heldout_set": "abc123"})
        mlflow.log_metrics(
            {
                "heldout.overall.pr_auc": pr_auc,
                "heldout.overall.precision_at_k": pr_auc + 0.1,
                "heldout.overall.median_ttd_seconds": 30.0,
                "fit_seconds": 1.0,
            }
        )
        info = mlflow.sklearn.log_model(
            scorer, name="model", serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE
        )
    version = mlflow.register_model(
        info.model_uri, MODEL_NAME, tags={"family": family, "run_id": run.info.run_id}
    )
    return str(version.version)


@pytest.fixture
def models_home(tracking: Tracking, tmp_path: Path) -> Path:
    """Two families' runs, the second promoted champion, and drifted sampled scores."""
    from mlflow.tracking import MlflowClient

    from ml.registry import CHAMPION, MODEL_NAME

    log_family(tracking, "lof", 0.4)
    best = log_family(tracking, "hgb", 0.7)
    client = MlflowClient()
    client.set_registered_model_alias(MODEL_NAME, CHAMPION, best)
    client.set_model_version_tag(MODEL_NAME, best, "promotion", "no champion yet; PR-AUC 0.7000")
    client.set_model_version_tag(MODEL_NAME, best, "heldout_pr_auc", "0.700000")
    engine = open_app_db(Settings(home=tmp_path))
    now = datetime.now(UTC)
    n = 300
    rng = np.random.default_rng(2)
    scored = pd.DataFrame(
        {
            "scored_at": now, "observed_at": now - timedelta(minutes=5), "selection_key": range(n),
            "canonical_event_id": "e", "bookmaker": "b", "market": "1x2", "period": "ft", "line": None,
            "outcome": "home", "price": 2.0, "score": 0.1, "threshold": 0.5, "is_candidate": False,
            "in_sample": True, "model_version": best, "reasons": None,
            **{f"f_{f}": rng.normal(size=n) for f in NUMERIC_FEATURES},
        }
    )  # fmt: skip
    scored["f_move_pp"] = scored["f_move_pp"] + 5.0  # far from the training reference: drifted
    scores_store.write(
        engine,
        scored,
        {"scored_at": now, "latest_observed_at": now, "model_version": best, "rows_scored": n,
         "candidates": 0, "seconds": 0.1},
    )  # fmt: skip
    engine.dispose()
    return tmp_path


def test_models_show_runs_champion_history_and_drift(open_page: OpenPage, models_home: Path) -> None:
    app = open_page(models_home, "models")
    no_errors(app)
    metrics = {m.label: m.value for m in app.metric}
    assert metrics == {"Champion version": "2", "Family": "hgb", "Held-out PR-AUC": "0.700"}
    versions = table(app, "promotion")
    assert versions[["version", "champion"]].values.tolist() == [[2, True], [1, False]]
    runs = table(app, "precision_at_k")
    assert sorted(zip(runs["family"], runs["pr_auc"], strict=True)) == [("hgb", 0.7), ("lof", 0.4)]
    drift = table(app, "psi").set_index("feature")
    assert drift.loc["move_pp", "drifted"] and drift["psi"].idxmax() == "move_pp"
    assert any("move_pp" in w for w in texts(app, "warning"))
    app.multiselect(key="run_families").set_value(["lof"]).run()
    no_errors(app)
    assert table(app, "precision_at_k")["family"].tolist() == ["lof"]


def test_models_without_a_store_or_champion_explain(
    open_page: OpenPage, tmp_path: Path, tracking: Tracking
) -> None:
    empty = tmp_path / "empty"
    app = open_page(empty, "models")
    no_errors(app)
    assert any("no MLflow store yet" in t for t in texts(app, "info"))
    assert not (empty / "mlflow.db").exists(), "the page created a store"
    app = open_page(tmp_path, "models")  # the tracking fixture's store: migrated, nothing trained
    no_errors(app)
    info = texts(app, "info")
    assert any("No champion model yet" in t for t in info) and any("No training run yet" in t for t in info)


def test_the_warm_up_reads_the_store_and_leaves_mlflow_pointed_where_it_was(
    models_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It runs in a background thread of the app: it must not point the process's MLflow elsewhere."""
    import mlflow

    from ml import views

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///elsewhere.db")
    before = mlflow.get_tracking_uri()
    views.warm_up(Tracking.from_settings(Settings(home=models_home)))
    assert mlflow.get_tracking_uri() == before
    assert os.environ["MLFLOW_TRACKING_URI"] == "sqlite:///elsewhere.db"


def test_the_warm_up_never_creates_a_store(tmp_path: Path) -> None:
    from ml import views

    with pytest.raises(views.ModelsUnavailable, match="no MLflow store yet"):
        views.warm_up(Tracking.from_settings(Settings(home=tmp_path)))
    assert not (tmp_path / "mlflow.db").exists()


# --- rules ---------------------------------------------------------------------------------------


def test_an_invalid_rules_edit_names_the_field_and_saves_nothing(open_page: OpenPage, tmp_path: Path) -> None:
    app = open_page(tmp_path, "rules")
    no_errors(app)
    current = tables(app, "setting")[0].set_index("setting")
    assert current.loc["arbitrage.min_margin", "value"] == "0.005"
    text = str(app.text_area(key="rules_yaml").value)
    app.text_area(key="rules_yaml").set_value(text.replace("min_books: 3", "min_books: 1"))
    app.text_input(key="rules_saved_by").set_value("ana")
    app.button[0].click().run()
    assert not app.exception
    assert any("Nothing was saved" in e and "steam.min_books" in e for e in texts(app, "error"))
    assert not (tmp_path / "rules.yaml").exists()
    assert history(open_app_db(Settings(home=tmp_path)), "rules").empty


def test_a_valid_rules_edit_is_the_next_version_the_runs_load(
    open_page: OpenPage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = open_page(tmp_path, "rules")
    shipped = load_rules(SHIPPED_CONFIG / "rules.yaml").version
    text = str(app.text_area(key="rules_yaml").value)
    app.text_area(key="rules_yaml").set_value(text.replace("min_margin: 0.005", "min_margin: 0.008"))
    app.text_input(key="rules_saved_by").set_value("ana")
    app.text_input(key="rules_note").set_value("fewer thin arbs")
    app.button[0].click().run()
    no_errors(app)
    rules = load_rules(Settings().rules_file)
    assert Settings().rules_file == tmp_path / "rules.yaml"
    assert rules.arbitrage.min_margin == 0.008 and rules.version != shipped
    assert any(f"Saved version {rules.version}" in s for s in texts(app, "success"))
    assert f'version: "{rules.version}"' in str(app.text_area(key="rules_yaml").value)
    versions = tables(app, "saved_by")[0]
    assert versions[["version", "saved_by", "note"]].values.tolist()[0] == [
        rules.version,
        "ana",
        "fewer thin arbs",
    ]
    # the policy tab saves its own versions, to its own file
    policy = str(app.text_area(key="policy_yaml").value)
    app.text_area(key="policy_yaml").set_value(
        policy.replace("resend_strength_ratio: 1.5", "resend_strength_ratio: 2")
    )
    app.text_input(key="policy_saved_by").set_value("ana")
    app.button[1].click().run()
    no_errors(app)
    assert "resend_strength_ratio: 2" in Settings().alert_policy_file.read_text()
    assert Settings().alert_policy_file == tmp_path / "alert_policy.yaml"
