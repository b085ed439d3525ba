"""`oddly backtest` on the real football-data.co.uk season 2025/26 (12 divisions, 1,445 matches),
imported with oddly.importers: every detector type and the Kaunitz et al. strategy graded, with
the closes, the settlements and the strategy's bets recomputed here from the CSV files with the
csv module (never through the importer's price code), and the run logged to MLflow.

Prints the summary (`pytest -s`); the README quotes it."""

from __future__ import annotations

import csv
import math
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from oddly.cli import main
from oddly.config import SHIPPED_CONFIG
from oddly.detect.rules import load_rules
from oddly.grading.backtest import BacktestConfig, run_backtest
from oddly.grading.closing import closing_lines
from oddly.grading.history import read_events, read_ticks
from oddly.grading.run import GradingRun
from oddly.importers import football_data
from oddly.warehouse.store import Warehouse

pytestmark = pytest.mark.slow

DIVISIONS = ("E0", "E1", "E2", "E3", "D1", "D2", "SP1", "SP2", "I1", "I2", "F1", "F2")
# The 2025/26 books with 1X2 prices, spelled out here: column prefix → the warehouse's name.
BOOKS = {
    "B365": "bet365",
    "BFD": "betfred",
    "BMGM": "betmgm",
    "BV": "betvictor",
    "BW": "bwin",
    "CL": "coral",
    "LB": "ladbrokes",
    "PS": "pinnacle",
    "BFE": "betfair_ex",
}
OUTCOMES = {"H": "home", "D": "draw", "A": "away"}
COMMISSION = {"betfair_ex": 0.05}
ALPHA = 0.05


@dataclass(frozen=True)
class Season:
    warehouse: Warehouse
    home: Path
    rows: pd.DataFrame  # one row per match of the CSV files, with its source event id
    run: GradingRun


def _price(text: str | None) -> float | None:
    try:
        value = float(text or "")
    except ValueError:
        return None
    return value if 1.0 < value <= 5000.0 else None


def read_csv_rows(folder: Path) -> pd.DataFrame:
    records = []
    for division in DIVISIONS:
        with (folder / f"{division}.csv").open(encoding="utf-8-sig", newline="") as handle:
            for row in csv.DictReader(handle):
                if not row.get("HomeTeam"):
                    continue
                day = datetime.strptime(row["Date"], "%d/%m/%Y").date()
                record: dict[str, object] = {
                    "source_event_id": football_data.source_event_id(
                        row["Div"], day, row["HomeTeam"], row["AwayTeam"]
                    ),
                    "FTR": row["FTR"],
                    "FTHG": int(row["FTHG"]),
                    "FTAG": int(row["FTAG"]),
                }
                for column, text in row.items():
                    if column and column[-1] in "HDA" and column[:-1] in {*BOOKS, "Avg", "PSC", "BFEC"}:
                        record[column] = _price(text)
                records.append(record)
    return pd.DataFrame(records)


@pytest.fixture(scope="module")
def season(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Season]:
    home = tmp_path_factory.mktemp("season")
    warehouse = Warehouse(f"duckdb:///{home / 'warehouse.duckdb'}")
    folder = shared_data / "football-data"
    for division in DIVISIONS:
        football_data.import_files(warehouse, [folder / f"{division}.csv"])
    rules = load_rules(SHIPPED_CONFIG / "rules.yaml")
    run = run_backtest(warehouse, rules, BacktestConfig(resamples=1000))
    ids = pd.DataFrame(warehouse.query("select source_event_id, canonical_event_id from raw.results"))
    rows = read_csv_rows(folder).merge(ids, on="source_event_id", how="left", validate="one_to_one")
    print("\n" + run.describe())
    print(run.summary.to_string())
    yield Season(warehouse, home, rows, run)
    warehouse.dispose()


def test_every_detector_type_and_the_strategy_is_graded(season: Season) -> None:
    summary = season.run.summary.query("horizon == 'all'").set_index("type")
    for kind in ("value", "sharp_drop", "steam", "out_of_line", "arbitrage", "stale_line", "kaunitz"):
        assert summary.loc[kind, "signals"] > 0, kind
        # every signal has a close (each event here has Pinnacle's or the exchange's) and a result
        assert summary.loc[kind, "with_close"] == summary.loc[kind, "signals"], kind
        assert summary.loc[kind, "settled"] == summary.loc[kind, "signals"], kind
        assert (
            summary.loc[kind, "clv_ci_low"]
            <= summary.loc[kind, "mean_clv"]
            <= summary.loc[kind, "clv_ci_high"]
        )
        assert summary.loc[kind, "roi_ci_low"] <= summary.loc[kind, "roi"] <= summary.loc[kind, "roi_ci_high"]
    assert summary.loc["kaunitz", "source"] == "strategy"
    # an arbitrage's CLV is its guaranteed return: positive, every one of them
    assert summary.loc["arbitrage", "beat_close_share"] == 1.0
    bets = season.run.bets
    legs = bets.loc[bets["type"] == "arbitrage"].groupby("signal_key")["stake"].sum()
    assert legs.to_numpy() == pytest.approx(1.0, abs=1e-3)
    assert season.run.counts["events"] == 1445


def test_closing_fair_prices_are_pinnacles_closing_prices_made_fair(season: Season) -> None:
    rules = load_rules(SHIPPED_CONFIG / "rules.yaml")
    events = read_events(season.warehouse)
    closes = closing_lines(read_ticks(season.warehouse, events, rules.sharp_books), rules.sharp_books)
    one_x_two = closes.loc[closes["market"] == "1x2"].set_index(["canonical_event_id", "outcome"])
    rows = season.rows
    with_pinnacle = rows.loc[rows[["PSCH", "PSCD", "PSCA"]].notna().all(axis=1)]
    assert len(with_pinnacle) > 1300
    found = 0
    for row in with_pinnacle.itertuples():
        total = 1 / row.PSCH + 1 / row.PSCD + 1 / row.PSCA
        for suffix, outcome in OUTCOMES.items():
            key = (row.canonical_event_id, outcome)
            if key not in one_x_two.index:
                continue
            close = one_x_two.loc[key]
            assert close["closing_bookmaker"] == "pinnacle"
            assert close["closing_price"] == getattr(row, f"PSC{suffix}")
            assert close["fair_probability"] == pytest.approx(1 / getattr(row, f"PSC{suffix}") / total)
        found += (row.canonical_event_id, "home") in one_x_two.index
    assert found >= 0.99 * len(with_pinnacle)
    # matches without Pinnacle's close fall back to the exchange's
    fallback = one_x_two.loc[one_x_two["closing_bookmaker"] == "betfair_ex"]
    no_pinnacle = set(rows.loc[rows[["PSCH", "PSCD", "PSCA"]].isna().any(axis=1), "canonical_event_id"])
    assert set(fallback.index.get_level_values(0)) <= no_pinnacle


def test_results_settle_every_1x2_bet_as_the_csv_says(season: Season) -> None:
    bets = season.run.bets.loc[season.run.bets["market"] == "1x2"]
    assert len(bets) > 1000
    assert bets["result"].notna().all()
    results = season.rows.set_index("canonical_event_id")["FTR"]
    won = bets["outcome"] == bets["canonical_event_id"].map(results).map(OUTCOMES)
    assert (bets["result"] == won.map({True: "win", False: "loss"})).all()
    expected = (bets["price"] - 1.0) * (1.0 - bets["commission"]) * bets["stake"]
    assert bets.loc[won, "profit"].to_numpy() == pytest.approx(expected[won].to_numpy())
    assert bets.loc[~won, "profit"].to_numpy() == pytest.approx(-bets.loc[~won, "stake"].to_numpy())


def expected_kaunitz(rows: pd.DataFrame) -> dict[str, tuple[str, float]]:
    """The paper's rule on the CSV's pre-match columns: average = football-data's Avg, best = the
    best price of the books held (the exchange after 5 %), more than three books; one bet a match."""
    bets: dict[str, tuple[str, float]] = {}
    for row in rows.to_dict("records"):
        complete = {
            book
            for book in BOOKS
            if all(row.get(f"{book}{s}") is not None and not pd.isna(row.get(f"{book}{s}")) for s in OUTCOMES)
        }
        best: tuple[float, str, float] | None = None
        for suffix, outcome in OUTCOMES.items():
            prices = {b: row[f"{b}{suffix}"] for b in complete}
            if len(prices) < 4:
                best = None
                break
            net = {b: 1 + (p - 1) * (1 - COMMISSION.get(BOOKS[b], 0.0)) for b, p in prices.items()}
            average = row.get(f"Avg{suffix}")
            if average is None or pd.isna(average):
                average = sum(prices.values()) / len(prices)
            top = max(net, key=lambda b: net[b])
            edge = (1 / average - ALPHA) * net[top] - 1
            if edge > 0 and (best is None or edge > best[0]):
                best = (edge, outcome, prices[top])
        if best is not None:
            bets[row["canonical_event_id"]] = (best[1], best[2])
    return bets


def test_the_kaunitz_bets_are_the_papers_rule_on_the_csv(season: Season) -> None:
    strategy = season.run.bets.loc[season.run.bets["type"] == "kaunitz"]
    found = {r.canonical_event_id: (r.outcome, r.price) for r in strategy.itertuples()}
    assert found == expected_kaunitz(season.rows)
    # its CLV is measured against the close like every signal's
    assert strategy["clv"].notna().all()
    closes = season.rows.set_index("canonical_event_id")
    for bet in strategy.itertuples():
        close = closes.loc[bet.canonical_event_id]
        if pd.isna(close[["PSCH", "PSCD", "PSCA"]]).any():
            continue
        total = 1 / close["PSCH"] + 1 / close["PSCD"] + 1 / close["PSCA"]
        suffix = {v: k for k, v in OUTCOMES.items()}[bet.outcome]
        fair = 1 / close[f"PSC{suffix}"] / total
        assert bet.clv == pytest.approx(bet.effective_price * fair - 1)


def test_oddly_backtest_stores_the_run_and_logs_it_to_mlflow(
    season: Season, migrated_mlflow_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    from oddly.appdb import open_app_db
    from oddly.grading import views

    shutil.copyfile(migrated_mlflow_db, season.home / "mlflow.db")
    uri = f"sqlite:///{season.home / 'mlflow.db'}"
    monkeypatch.setenv("ODDLY_HOME", str(season.home))
    # the command points MLflow at the home's store; these are put back after the test
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    for name in (
        "ODDLY_WAREHOUSE_URL",
        "ODDLY_APP_DATABASE_URL",
        "ODDLY_MLFLOW_TRACKING_URI",
        "ODDLY_DATABASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    season.warehouse.dispose()  # the command opens the file itself
    result = CliRunner().invoke(
        main,
        [
            *("backtest", "--since", "2025-09-01", "--until", "2025-11-01"),
            *("--types", "value,arbitrage", "--margin", "0.05", "--resamples", "500"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "kaunitz" in result.output and "value" in result.output and "MLflow: experiment" in result.output
    engine = open_app_db(f"sqlite:///{season.home / 'app.db'}")
    run = views.runs(engine, "backtest").iloc[0]
    assert run["since"] == pd.Timestamp("2025-09-01", tz="UTC")
    summary = views.summary(engine, run["run_id"]).set_index("type")
    assert set(summary.index) == {"value", "arbitrage", "kaunitz"}
    early = views.summary(engine, run["run_id"], "early").set_index("type")
    assert early.loc["kaunitz", "signals"] == summary.loc["kaunitz", "signals"]  # an hour before kick-off
    stored = views.bets(engine, run["run_id"], limit=100_000)
    assert (stored["kick_off"] >= pd.Timestamp("2025-09-01", tz="UTC")).all()
    assert (stored["kick_off"] < pd.Timestamp("2025-11-01", tz="UTC")).all()
    engine.dispose()

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("oddly-backtest")
    assert experiment is not None
    logged = client.get_run(run["mlflow_run_id"])
    assert logged.data.params["rules_version"] == load_rules(SHIPPED_CONFIG / "rules.yaml").version
    assert logged.data.params["kaunitz_alpha"] == "0.05"
    assert logged.data.params["since"].startswith("2025-09-01")
    assert logged.data.metrics["value.n"] == summary.loc["value", "signals"]
    assert logged.data.metrics["value.mean_clv"] == pytest.approx(summary.loc["value", "mean_clv"])
    assert logged.data.metrics["value.early.n"] == early.loc["value", "signals"]
    for name in ("roi", "roi_ci_low", "roi_ci_high", "clv_ci_low", "clv_ci_high", "beat_close_share"):
        assert math.isfinite(logged.data.metrics[f"arbitrage.{name}"])
    artifact = mlflow.artifacts.download_artifacts(run_id=logged.info.run_id, artifact_path="graded_bets.csv")
    assert len(pd.read_csv(artifact)) == len(stored)


@pytest.mark.postgres
def test_duckdb_and_postgresql_grade_the_same_bets(shared_data: Path, pg_url: str, tmp_path: Path) -> None:
    rules = load_rules(SHIPPED_CONFIG / "rules.yaml")
    runs = []
    for url in (f"duckdb:///{tmp_path / 'w.duckdb'}", pg_url):
        warehouse = Warehouse(url)
        for division in ("E0", "D1"):
            football_data.import_files(warehouse, [shared_data / "football-data" / f"{division}.csv"])
        runs.append(run_backtest(warehouse, rules, BacktestConfig(resamples=200)))
        warehouse.dispose()
    columns = ["signal_key", "leg", "bookmaker", "price", "closing_price", "clv", "result", "profit"]
    duckdb, postgres = (
        r.bets[columns].sort_values(["signal_key", "leg"]).reset_index(drop=True) for r in runs
    )
    assert len(duckdb) > 500
    pd.testing.assert_frame_equal(duckdb, postgres)
    pd.testing.assert_frame_equal(runs[0].summary, runs[1].summary)
