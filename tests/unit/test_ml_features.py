"""Model features on hand-made price panels, and labels from the simulator's ground truth."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from ml.dataset import DatasetSpec, build_seed, label, simulate
from ml.features import FEATURES, compute_features
from tests.ml_panels import two_way_panel

T0 = datetime(2026, 3, 1, 15, 0, tzinfo=UTC)
KICK_OFF = T0 + timedelta(hours=2)
BOOKS = ("sharp", "soft_a", "soft_b", "soft_c")


def panel(prices: dict[tuple[int, str], tuple[float, float]], cycles: int = 4) -> pd.DataFrame:
    """A 1X2-free two-way market (over/under 2.5) at four books, before kick-off."""
    return two_way_panel(prices, BOOKS, T0, cycles, is_live=False, starts_at=KICK_OFF)


def features_at(frame: pd.DataFrame, cycle: int, book: str, outcome: str = "over") -> pd.Series:
    at = T0 + timedelta(seconds=10 * cycle)
    mask = (frame["observed_at"] == at) & (frame["bookmaker"] == book) & (frame["outcome"] == outcome)
    assert mask.sum() == 1
    return frame[mask].iloc[0]


EVEN = (1.95, 1.95)


def test_a_sharp_drop_followed_by_one_book_shows_in_moves_first_mover_and_lag() -> None:
    prices = {(0, b): EVEN for b in BOOKS}
    prices[(1, "sharp")] = (1.60, 2.45)  # the sharp book shortens the over a lot
    prices[(2, "soft_a")] = (1.62, 2.40)  # one soft book follows a cycle later
    p = panel(prices)
    features, profiles = compute_features(p, sharp_books={"sharp"})
    frame = pd.concat([p, features], axis=1)

    sharp = features_at(frame, 1, "sharp")
    assert sharp["move_pp"] == pytest.approx(100 * (1 / 1.60 - 1 / 1.95))
    assert sharp["move_pp_cycle"] == pytest.approx(100 * (1 / 1.60 - 1 / 1.95))
    assert sharp["sharp_moved_first"] == 1.0
    assert sharp["is_sharp"] == 1.0
    assert sharp["books_moved"] == 1.0

    follower = features_at(frame, 2, "soft_a")
    assert follower["move_pp"] == pytest.approx(100 * (1 / 1.62 - 1 / 1.95))
    assert follower["sharp_moved_first"] == 1.0
    assert follower["books_moved"] == 2.0
    assert follower["move_vs_sharp_pp"] == pytest.approx(
        100 * ((1 / 1.62 - 1 / 1.95) - (1 / 1.60 - 1 / 1.95))
    )

    # a book that has not moved: nothing of its own, but the sharp book moved before it
    still = features_at(frame, 2, "soft_b")
    assert still["move_pp"] == 0.0
    assert still["minutes_since_change"] == pytest.approx(20 / 60)
    assert still["sharp_moved_first"] == 1.0
    assert still["edge_vs_sharp"] == pytest.approx(1.95 * (1 / 1.60) / (1 / 1.60 + 1 / 2.45) - 1)

    lag = profiles.set_index(["bookmaker", "market"])["lag_seconds"]
    assert lag[("soft_a", "total")] == 10.0
    assert lag[("sharp", "total")] == 0.0
    assert np.isnan(lag[("soft_b", "total")])  # never followed: no lag measured
    assert features_at(frame, 3, "soft_a")["minutes_to_kick_off"] == pytest.approx(120 - 0.5)


def test_one_book_out_of_line_has_a_large_z_score_and_edge() -> None:
    prices = {(0, b): EVEN for b in BOOKS}
    prices[(0, "soft_a")] = (1.90, 2.00)
    prices[(0, "soft_b")] = (1.97, 1.93)
    prices[(1, "soft_c")] = (2.60, 1.50)  # soft_c suddenly offers far more on the over
    features, _ = compute_features(panel(prices), sharp_books={"sharp"})
    frame = pd.concat([panel(prices), features], axis=1)
    before, after = features_at(frame, 0, "soft_c"), features_at(frame, 1, "soft_c")
    assert abs(before["z_score"]) < 2
    assert after["z_score"] < -5  # its fair probability of the over is far below the others'
    others = np.mean(
        [(1 / 1.95) / (2 / 1.95), (1 / 1.90) / (1 / 1.90 + 1 / 2.00), (1 / 1.97) / (1 / 1.97 + 1 / 1.93)]
    )
    assert after["edge"] == pytest.approx(2.60 * others - 1)
    assert after["is_best_price"] == 1.0
    assert features_at(frame, 1, "sharp")["is_best_price"] == 0.0


def test_arbitrage_margin_is_positive_only_when_the_best_prices_lock_in_a_profit() -> None:
    prices = {(0, b): EVEN for b in BOOKS}
    prices[(1, "soft_a")] = (2.20, 1.70)
    features, _ = compute_features(panel(prices), sharp_books={"sharp"})
    frame = pd.concat([panel(prices), features], axis=1)
    assert features_at(frame, 0, "sharp")["arb_margin"] == pytest.approx(1 - 2 / 1.95)
    # best over 2.20 (soft_a), best under 1.95 (the others): 1/2.20 + 1/1.95 < 1
    assert features_at(frame, 1, "soft_b", "under")["arb_margin"] == pytest.approx(1 - 1 / 2.20 - 1 / 1.95)
    assert features_at(frame, 1, "soft_b", "under")["arb_margin"] > 0


def test_suspended_prices_carry_the_last_open_price_and_are_flagged() -> None:
    p = panel({(0, b): EVEN for b in BOOKS})
    blocked = (p["bookmaker"] == "soft_a") & (p["observed_at"] >= T0 + timedelta(seconds=20))
    p.loc[blocked, ["price", "status"]] = [1.001, "suspended"]
    features, _ = compute_features(p, sharp_books={"sharp"})
    frame = pd.concat([p, features], axis=1)
    row = features_at(frame, 2, "soft_a")
    assert row["suspended"] == 1.0
    assert row["move_pp"] == 0.0  # not a jump to 1.001
    assert row["is_best_price"] == 0.0
    assert features["usable"].all()


def test_panel_without_a_sharp_book_or_columns_is_refused() -> None:
    p = panel({(0, b): EVEN for b in BOOKS})
    with pytest.raises(ValueError, match="sharp"):
        compute_features(p, sharp_books=set())
    with pytest.raises(ValueError, match="starts_at"):
        compute_features(p.drop(columns="starts_at"), sharp_books={"sharp"})


SPEC = DatasetSpec(seeds=(3,), hours=0.25, n_events=8)


@pytest.fixture(scope="module")
def seed3() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return build_seed(3, SPEC)


def test_the_same_seed_gives_the_same_labelled_set(seed3: tuple[pd.DataFrame, ...]) -> None:
    frame, scenarios, _ = build_seed(3, SPEC)
    pd.testing.assert_frame_equal(frame, seed3[0], check_exact=True)  # to the last bit
    pd.testing.assert_frame_equal(scenarios.drop(columns="books"), seed3[1].drop(columns="books"))
    other, _, _ = build_seed(4, SPEC)
    assert not np.allclose(other["z_score"].fillna(0).head(500), frame["z_score"].fillna(0).head(500))


def test_every_feature_is_present_and_numeric_features_are_finite(seed3: tuple[pd.DataFrame, ...]) -> None:
    frame = seed3[0]
    assert set(FEATURES) <= set(frame.columns)
    numeric = frame[[f for f in FEATURES if f != "market"]]
    assert np.isfinite(numeric.to_numpy(dtype=float)[~numeric.isna().to_numpy()]).all()
    assert set(frame["label"].unique()) <= {-1, 0, 1}


def test_positive_rows_lie_in_their_scenario_at_its_books(seed3: tuple[pd.DataFrame, ...]) -> None:
    frame, scenarios, _ = seed3
    positives = frame[frame["label"] == 1].merge(
        scenarios[["scenario_id", "type", "start_at", "end_at", "event_id", "books", "g", "t"]],
        on="scenario_id",
        suffixes=("", "_scenario"),
    )
    assert len(positives) == (frame["label"] == 1).sum() > 0
    assert (positives["scenario_type"] == positives["type"]).all()
    assert (positives["event_id"] == positives["event_id_scenario"]).all()
    assert all(b in books for b, books in zip(positives["bookmaker"], positives["books"], strict=True))
    assert (positives["observed_at"] >= positives["start_at"]).all()
    late = positives["observed_at"] > positives["end_at"]
    assert (positives.loc[late, "type"] == "suspension").all()
    assert (positives.loc[positives["type"] == "suspension", "suspended"] == 1.0).all()
    drops = positives[positives["type"].isin(["sharp_drop", "steam"])]
    assert (drops["market"] == "1x2").all() and drops["outcome"].isin(["home", "away"]).all()


def test_sharp_drops_are_labelled_at_the_sharp_book_and_move_its_price(
    seed3: tuple[pd.DataFrame, ...],
) -> None:
    frame, scenarios, _ = seed3
    drops = scenarios[scenarios["type"] == "sharp_drop"]
    jumps = []
    for scenario_id in drops["scenario_id"]:
        rows = frame[(frame["scenario_id"] == scenario_id) & (frame["bookmaker"] == "pinnacle")]
        if not rows.empty:  # empty: injected in the window's last seconds
            jumps.append(rows["move_pp_cycle"].max())
    # the named side shortens at once at the sharp book: its implied probability jumps by points
    # (other scenarios on the same match may hide a few)
    assert len(jumps) >= 3
    assert np.mean(np.array(jumps) > 3) >= 0.8, jumps


def test_labels_leave_out_what_a_scenario_moved_without_naming() -> None:
    start = T0
    panel_rows = pd.DataFrame(
        {
            "observed_at": [start + timedelta(seconds=s) for s in (10, 10, 10, 400, 2000)],
            "bookmaker": ["22bet", "22bet", "melbet", "22bet", "22bet"],
            "event_id": ["e1"] * 5,
            "g": [1, 17, 1, 1, 1],
            "line": [np.nan, 2.5, np.nan, np.nan, np.nan],
            "t": [1, 9, 1, 1, 1],
            "status": ["open"] * 5,
        }
    )
    scenarios = pd.DataFrame(
        {
            "scenario_id": [7],
            "type": ["sharp_drop"],
            "start_at": [start],
            "end_at": [start + timedelta(seconds=300)],
            "event_id": ["e1"],
            "g": pd.array([1], dtype="Int64"),
            "line": [np.nan],
            "t": pd.array([1], dtype="Int64"),
            "books": [["22bet"]],
        }
    )
    labels = label(panel_rows, scenarios, cycle_seconds=10)
    # named selection in the window; another market of the event; a book not named; the
    # aftermath; long after
    assert labels["label"].tolist() == [1, -1, -1, -1, 0]
    assert labels["scenario_id"].iloc[0] == 7


def test_simulated_panel_covers_every_book_and_cycle() -> None:
    spec = DatasetSpec(seeds=(5,), hours=0.05, n_events=3, live_share=0.0)
    p, _ = simulate(5, spec)
    cycles = round(spec.hours * 3600 / spec.cycle_seconds)
    assert p["observed_at"].nunique() == cycles
    assert set(p["bookmaker"]) == {"pinnacle", "22bet", "1xbet", "melbet", "betwinner"}
    per_cycle = p.groupby("observed_at").size()
    assert (per_cycle == per_cycle.iloc[0]).all()
    assert set(p["market"]) == {"1x2", "total", "handicap"}
    assert (p["price"] > 1).all()
