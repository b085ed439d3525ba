"""The grading core on hand-computed cases: closing-line value, the sharp book's no-vig close,
settlement of every market type (pushes and quarter lines included), the bootstrap, the Kaunitz et
al. rule, signals from detections, steam moves from ticks, and the vectorized replay against the
live fast path moment by moment."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from oddly.detect.detection import Detection
from oddly.detect.pipeline import detect_fresh
from oddly.detect.rules import Rules
from oddly.grading.backtest import BacktestConfig, event_batches
from oddly.grading.closing import closing_lines
from oddly.grading.grade import bet_frame, grade
from oddly.grading.kaunitz import KaunitzParams, kaunitz_bets, state_before
from oddly.grading.replay import detect_history, power_fair, steam_moves
from oddly.grading.settle import settle
from oddly.grading.signals import DRIFTING, SHORT_BOOK, bets_from_detections, first_signals
from oddly.grading.stats import bootstrap_ratio, clv, net_price, per_signal, summarize

KICK_OFF = datetime(2025, 9, 20, 15, 0, tzinfo=UTC)
RULES = Rules(version="test")


def tick(book: str, outcome: str, price: float, minutes_before: float, **extra: object) -> dict[str, object]:
    return {
        "canonical_event_id": "ev1",
        "kick_off": KICK_OFF,
        "bookmaker": book,
        "source_event_id": f"{book}-1",
        "market": "1x2",
        "period": "ft",
        "line": None,
        "outcome": outcome,
        "price": price,
        "status": "open",
        "observed_at": KICK_OFF - timedelta(minutes=minutes_before),
        "is_live": False,
        **extra,
    }


# --- closing-line value ------------------------------------------------------------------------


def test_clv_is_price_times_fair_closing_probability_minus_one() -> None:
    assert clv(pd.Series([2.10]), pd.Series([0.5])).iloc[0] == pytest.approx(0.05)
    assert clv(pd.Series([1.80]), pd.Series([0.5])).iloc[0] == pytest.approx(-0.10)
    # Betfair's 5 % on net winnings: 2.10 pays 1 + 1.10 x 0.95 = 2.045
    assert net_price(pd.Series([2.10]), pd.Series([0.05])).iloc[0] == pytest.approx(2.045)
    assert clv(net_price(pd.Series([2.10]), pd.Series([0.05])), pd.Series([0.5])).iloc[0] == pytest.approx(
        0.0225
    )


def test_close_is_pinnacles_last_open_prices_before_kick_off_made_fair() -> None:
    ticks = pd.DataFrame(
        [
            tick("pinnacle", "home", 2.10, 600),
            tick("pinnacle", "draw", 3.40, 600),
            tick("pinnacle", "away", 3.80, 600),
            tick("pinnacle", "home", 2.00, 10),  # the last home price before kick-off
            tick("pinnacle", "draw", 9.99, 5, status="suspended"),  # suspended: not a price
            tick("pinnacle", "away", 1.20, -20, is_live=True),  # in play: after the close
            tick("betfair_ex", "home", 2.06, 5),
            tick("betfair_ex", "draw", 3.60, 5),
            tick("betfair_ex", "away", 4.00, 5),
        ]
    )
    closes = closing_lines(ticks, ["pinnacle", "betfair_ex"]).set_index(["market", "outcome"])
    total = 1 / 2.00 + 1 / 3.40 + 1 / 3.80
    assert closes.loc[("1x2", "home"), "closing_bookmaker"] == "pinnacle"
    assert closes.loc[("1x2", "home"), "closing_price"] == 2.00
    assert closes.loc[("1x2", "draw"), "closing_price"] == 3.40
    assert closes.loc[("1x2", "home"), "fair_probability"] == pytest.approx(0.5 / total)
    assert closes.loc[("1x2", "away"), "closing_overround"] == pytest.approx(total - 1)
    assert closes.loc[("1x2", "home"), "closing_at"] == KICK_OFF - timedelta(minutes=10)
    # double chance from the 1X2 close: home or draw = p(home) + p(draw)
    assert closes.loc[("double_chance", "home_draw"), "fair_probability"] == pytest.approx(
        (1 / 2.00 + 1 / 3.40) / total
    )
    assert sum(closes.loc["1x2", "fair_probability"]) == pytest.approx(1.0)


def test_close_falls_back_to_the_exchange_when_pinnacle_lacks_an_outcome() -> None:
    ticks = pd.DataFrame(
        [
            tick("pinnacle", "home", 2.00, 30),
            tick("pinnacle", "draw", 3.40, 30),
            tick("betfair_ex", "home", 2.06, 5),
            tick("betfair_ex", "draw", 3.60, 5),
            tick("betfair_ex", "away", 4.00, 5),
        ]
    )
    closes = closing_lines(ticks, ["pinnacle", "betfair_ex"]).query("market == '1x2'").set_index("outcome")
    total = 1 / 2.06 + 1 / 3.60 + 1 / 4.00
    assert set(closes["closing_bookmaker"]) == {"betfair_ex"}
    assert closes.loc["away", "fair_probability"] == pytest.approx(0.25 / total)


# --- settlement --------------------------------------------------------------------------------

SETTLEMENTS = [
    # market, period, line, outcome, home goals, away goals, (ht home, ht away), result, profit at 2.0
    ("1x2", "ft", None, "home", 2, 1, (0, 0), "win", 1.0),
    ("1x2", "ft", None, "draw", 2, 1, (0, 0), "loss", -1.0),
    ("1x2", "ft", None, "away", 2, 1, (0, 0), "loss", -1.0),
    ("1x2", "1h", None, "home", 1, 2, (1, 0), "win", 1.0),  # the first half only
    ("double_chance", "ft", None, "home_draw", 1, 1, (0, 0), "win", 1.0),
    ("double_chance", "ft", None, "draw_away", 2, 1, (0, 0), "loss", -1.0),
    ("double_chance", "ft", None, "home_away", 0, 0, (0, 0), "loss", -1.0),
    ("moneyline", "ft", None, "home", 1, 1, (0, 0), "push", 0.0),  # no draw outcome: void
    ("total", "ft", 2.5, "over", 2, 1, (0, 0), "win", 1.0),
    ("total", "ft", 3.0, "over", 2, 1, (0, 0), "push", 0.0),  # integer line: stake back
    ("total", "ft", 3.0, "under", 2, 1, (0, 0), "push", 0.0),
    ("total", "ft", 2.25, "over", 1, 1, (0, 0), "half_loss", -0.5),  # half on 2 (push), half on 2.5
    ("total", "ft", 2.75, "over", 2, 1, (0, 0), "half_win", 0.5),  # half on 2.5 (win), half on 3
    ("asian_total", "ft", 2.75, "under", 2, 1, (0, 0), "half_loss", -0.5),
    ("total", "2h", 1.5, "over", 3, 1, (1, 0), "win", 1.0),  # second half: 2 + 1 goals
    ("team_total_home", "ft", 1.5, "over", 2, 0, (0, 0), "win", 1.0),
    ("team_total_away", "ft", 0.5, "under", 2, 0, (0, 0), "win", 1.0),
    ("asian_handicap", "ft", -0.25, "home", 1, 1, (0, 0), "half_loss", -0.5),  # half on 0, half on -0.5
    ("asian_handicap", "ft", -0.25, "away", 1, 1, (0, 0), "half_win", 0.5),  # the away side plays +0.25
    ("asian_handicap", "ft", -0.75, "home", 2, 1, (0, 0), "half_win", 0.5),  # -0.5 wins, -1 pushes
    ("asian_handicap", "ft", -1.0, "home", 2, 1, (0, 0), "push", 0.0),
    ("asian_handicap", "ft", -1.0, "away", 2, 1, (0, 0), "push", 0.0),
    ("asian_handicap", "ft", 0.5, "home", 0, 1, (0, 0), "loss", -1.0),
    ("asian_handicap", "ft", 0.5, "away", 0, 1, (0, 0), "win", 1.0),  # away at -0.5
    ("handicap", "ft", 1.0, "away", 1, 2, (0, 0), "push", 0.0),  # away at -1, wins by one
    ("btts", "ft", None, "yes", 1, 1, (0, 0), "win", 1.0),
    ("btts", "ft", None, "no", 1, 1, (0, 0), "loss", -1.0),
    ("btts", "ft", None, "yes", 2, 0, (0, 0), "loss", -1.0),
]


@pytest.mark.parametrize(
    ("market", "period", "line", "outcome", "home", "away", "half_time", "result", "profit_at_2"), SETTLEMENTS
)
def test_settlement_by_hand(
    market: str,
    period: str,
    line: float | None,
    outcome: str,
    home: int,
    away: int,
    half_time: tuple[int, int],
    result: str,
    profit_at_2: float,
) -> None:
    bets = bet_frame(
        [
            {
                "source": "backtest",
                "signal_key": "s",
                "type": "value",
                "canonical_event_id": "ev1",
                "market": market,
                "period": period,
                "line": line,
                "outcome": outcome,
                "price": 2.0,
            }
        ]
    )
    results = pd.DataFrame(
        [
            {
                "canonical_event_id": "ev1",
                "result_source": "football_data",
                "home_goals": float(home),
                "away_goals": float(away),
                "home_goals_ht": float(half_time[0]),
                "away_goals_ht": float(half_time[1]),
            }
        ]
    )
    graded = grade(bets, pd.DataFrame(columns=["canonical_event_id"]), results)
    assert graded.loc[0, "result"] == result
    assert graded.loc[0, "profit"] == pytest.approx(profit_at_2)


def test_a_quarter_line_is_two_half_stakes_on_the_neighbouring_lines() -> None:
    frame = pd.DataFrame(
        {
            "market": ["asian_handicap"],
            "period": ["ft"],
            "line": [-0.75],
            "outcome": ["home"],
            "home_goals": [1.0],
            "away_goals": [0.0],
            "home_goals_ht": [0.0],
            "away_goals_ht": [0.0],
        }
    )
    settled = settle(frame)
    # home -0.75 winning by one: half on -0.5 wins, half on -1 is returned
    assert (settled.loc[0, "win_share"], settled.loc[0, "loss_share"]) == (0.5, 0.0)
    graded = grade(
        bet_frame(
            [
                {
                    "signal_key": "s",
                    "canonical_event_id": "e",
                    "market": "asian_handicap",
                    "period": "ft",
                    "line": -0.75,
                    "outcome": "away",
                    "price": 1.90,
                }
            ]
        ),
        pd.DataFrame(columns=["canonical_event_id"]),
        pd.DataFrame(
            [
                {
                    "canonical_event_id": "e",
                    "result_source": "x",
                    "home_goals": 1.0,
                    "away_goals": 0.0,
                    "home_goals_ht": 0.0,
                    "away_goals_ht": 0.0,
                }
            ]
        ),
    )
    # the away side of the home line -0.75 plays +0.75; losing by one, half on +0.5 loses and half
    # on +1 is returned, whatever the price
    assert graded.loc[0, "result"] == "half_loss" and graded.loc[0, "profit"] == pytest.approx(-0.5)


def test_bets_that_cannot_be_settled_say_why() -> None:
    frame = pd.DataFrame(
        {
            "market": ["1x2", "raw:g136", "total", "1x2"],
            "period": ["ft", "ft", "ft", "q1"],
            "line": [None, None, None, None],
            "outcome": ["home", "x", "over", "home"],
            "home_goals": [np.nan, 1.0, 1.0, 1.0],
            "away_goals": [np.nan, 0.0, 0.0, 0.0],
            "home_goals_ht": [np.nan] * 4,
            "away_goals_ht": [np.nan] * 4,
        }
    )
    settled = settle(frame)
    assert settled["result"].isna().all()
    assert settled["unsettled_reason"].tolist() == [
        "no result yet",
        "market not settled from goals",
        "line missing",
        "period not settled from goals",
    ]


# --- bootstrap ---------------------------------------------------------------------------------


def test_bootstrap_is_seeded_contains_the_estimate_and_narrows_with_more_data() -> None:
    rng = np.random.default_rng(1)
    small = rng.normal(0.02, 0.3, 100)
    large = rng.normal(0.02, 0.3, 10_000)
    first = bootstrap_ratio(small, resamples=2000, seed=7)
    again = bootstrap_ratio(small, resamples=2000, seed=7)
    assert first == again
    shuffled = bootstrap_ratio(rng.permutation(small), resamples=2000, seed=7)
    assert (shuffled.low, shuffled.high) == pytest.approx((first.low, first.high))
    assert first.point == pytest.approx(small.mean())
    assert first.low < first.point < first.high
    wide = first.high - first.low
    narrow = bootstrap_ratio(large, resamples=2000, seed=7)
    assert narrow.low < narrow.point < narrow.high
    assert narrow.high - narrow.low < wide / 5  # ~ 1 / sqrt(100): ten times narrower
    # for a mean the percentile interval is close to ± 1.96 standard errors
    assert wide == pytest.approx(2 * 1.96 * small.std() / math.sqrt(small.size), rel=0.15)


def test_bootstrap_resamples_matches_not_bets() -> None:
    # five bets on each of 40 matches, identical within a match: as uncertain as 40 bets, not 200
    per_match = np.random.default_rng(3).normal(0.0, 1.0, 40)
    values = np.repeat(per_match, 5)
    clusters = np.repeat(np.arange(40), 5)
    by_match = bootstrap_ratio(values, clusters=clusters, seed=1)
    by_bet = bootstrap_ratio(values, seed=1)
    assert by_match.point == pytest.approx(by_bet.point)
    order = np.random.default_rng(4).permutation(values.size)
    reordered = bootstrap_ratio(values[order], clusters=clusters[order], seed=1)
    assert (reordered.low, reordered.high) == pytest.approx((by_match.low, by_match.high))
    assert (by_match.high - by_match.low) > 1.8 * (by_bet.high - by_bet.low)  # about sqrt(5) wider
    constant = bootstrap_ratio(np.full(30, 0.05), seed=1)
    assert (constant.low, constant.point, constant.high) == pytest.approx((0.05, 0.05, 0.05))
    empty = bootstrap_ratio(np.array([np.nan]))
    assert math.isnan(empty.point)


def test_an_arbitrage_is_one_signal_whose_legs_share_its_unit() -> None:
    legs = pd.DataFrame(
        {
            "source": "backtest",
            "type": "arbitrage",
            "signal_key": "arb",
            "canonical_event_id": "e",
            "taken_at": KICK_OFF - timedelta(minutes=90),
            "kick_off": KICK_OFF,
            "stake": [0.5, 0.5],
            "effective_price": [2.1, 2.1],
            "clv": [0.05, 0.05],
            "profit": [0.55, -0.5],
        }
    )
    one = per_signal(legs).iloc[0]
    assert (one["stake"], one["profit"], one["clv"], one["price"]) == pytest.approx((1.0, 0.05, 0.05, 2.1))
    summary = summarize(legs, resamples=200).set_index("horizon")
    assert summary.index.tolist() == ["all", "early"]  # taken 90 minutes before kick-off
    summary = summary.loc["all"]
    assert (summary["signals"], summary["settled"]) == (1, 1)
    assert summary["roi"] == pytest.approx(0.05) and summary["beat_close_share"] == 1.0


# --- the Kaunitz et al. rule -------------------------------------------------------------------


def kaunitz_state(event: str, prices: dict[str, tuple[float, float, float]]) -> list[dict[str, object]]:
    rows = []
    for book, triple in prices.items():
        for outcome, price in zip(("home", "draw", "away"), triple, strict=True):
            rows.append({**tick(book, outcome, price, 120), "canonical_event_id": event})
    return rows


def test_kaunitz_backs_the_best_price_beating_the_average_by_the_margin() -> None:
    state = pd.DataFrame(
        # A: avg home 2.00 (p 0.50), best home 2.30 at e: (0.50 - 0.05) x 2.30 - 1 = +3.5 %
        kaunitz_state(
            "A",
            {
                "a": (2.00, 3.4, 3.9),
                "b": (1.95, 3.5, 4.0),
                "c": (2.05, 3.3, 3.8),
                "d": (2.10, 3.4, 3.9),
                "e": (2.30, 3.2, 3.5),
                "market_avg": (2.00, 3.4, 3.9),
            },
        )
        # B: no price beats its average by 5 points
        + kaunitz_state(
            "B",
            {"a": (2.0, 3.4, 3.9), "b": (2.05, 3.45, 4.0), "c": (2.0, 3.5, 3.9), "d": (2.1, 3.4, 3.8)},
        )
        # C: two outcomes qualify; the larger expected margin wins. No market_avg: the books' mean.
        + kaunitz_state(
            "C",
            {
                "a": (3.0, 3.0, 2.6),
                "b": (3.0, 3.0, 2.6),
                "c": (3.0, 3.0, 2.6),
                "d": (3.0, 3.0, 2.6),
                "e": (3.9, 3.0, 3.4),
            },
        )
        # D: only three books: the paper needs more than three
        + kaunitz_state("D", {"a": (2.0, 3.4, 3.9), "b": (2.0, 3.4, 3.9), "c": (3.0, 3.4, 3.9)})
    )
    bets = kaunitz_bets(state, KaunitzParams(alpha=0.05), {}).set_index("canonical_event_id")
    assert sorted(bets.index) == ["A", "C"]
    assert bets.loc["A", ["outcome", "bookmaker", "price"]].tolist() == ["home", "e", 2.30]
    assert bets.loc["A", "strength"] == pytest.approx((1 / 2.00 - 0.05) * 2.30 - 1)
    # C: home avg 3.18: (1/3.18 - 0.05) x 3.9 - 1 = +3.1 %; away avg 2.76: (1/2.76 - 0.05) x 3.4 - 1 = +6.2 %
    assert bets.loc["C", ["outcome", "price"]].tolist() == ["away", 3.4]
    assert (1 / 3.18 - 0.05) * 3.9 - 1 > 0  # home qualifies too, with less
    assert bets.loc["C", "strength"] == pytest.approx((1 / 2.76 - 0.05) * 3.4 - 1)
    assert (bets["source"] == "strategy").all() and (bets["type"] == "kaunitz").all()
    # a larger margin keeps only A's... and then not even A's (3.5 % < the 10-point margin's need)
    assert kaunitz_bets(state, KaunitzParams(alpha=0.10), {}).empty


def test_kaunitz_counts_an_exchange_after_its_commission_and_only_prices_before_the_lead() -> None:
    rows = kaunitz_state(
        "A",
        {
            "a": (2.0, 3.4, 3.9),
            "b": (2.0, 3.4, 3.9),
            "c": (2.0, 3.4, 3.9),
            "betfair_ex": (2.30, 3.4, 3.9),
            "market_avg": (2.0, 3.4, 3.9),
        },
    )
    # 2.30 at the exchange pays 2.235 after 5 %: (0.5 - 0.05) x 2.235 - 1 = +0.6 %, still a bet
    bets = kaunitz_bets(pd.DataFrame(rows), KaunitzParams(), {"betfair_ex": 0.05})
    assert bets.loc[0, "strength"] == pytest.approx(0.45 * 2.235 - 1)
    late = pd.DataFrame([{**r, "observed_at": KICK_OFF - timedelta(minutes=30)} for r in rows])
    assert state_before(late, 60).empty  # priced 30 min before kick-off: after the 60-minute lead


# --- signals from detections -------------------------------------------------------------------


def detection(
    kind: str, book: str, outcome: str, reasons: dict[str, object], minutes: float = 60
) -> Detection:
    return Detection(
        type=kind,
        canonical_event_id="ev1",
        source_event_id=None,
        bookmaker=book,
        market="1x2",
        period="ft",
        line=None,
        outcome=outcome,
        detected_at=KICK_OFF - timedelta(minutes=minutes),
        strength=1.5,
        reasons=reasons,
        explanation="",
        rules_version="test",
    )


def test_signals_back_the_right_price_and_skip_what_is_no_bet() -> None:
    best = pd.DataFrame(
        [
            {
                "canonical_event_id": "ev1",
                "market": "1x2",
                "period": "ft",
                "line_key": -1e9,
                "moment": KICK_OFF - timedelta(minutes=60),
                "outcome": "home",
                "bookmaker": "bet365",
                "price": 2.2,
                "commission": 0.0,
                "books": 4,
            }
        ]
    )
    found = [
        detection("value", "bwin", "home", {"price": 2.3, "edge": 0.04}),
        detection("out_of_line", "coral", "draw", {"price": 3.9, "probability_points": -4.0}),
        detection("out_of_line", "coral", "away", {"price": 3.0, "probability_points": 4.0}),
        detection("sharp_drop", "pinnacle", "home", {"price": 2.0, "previous_price": 2.2}),
        detection("steam", "pinnacle", "away", {"direction": "drifting"}),
        detection(
            "arbitrage",
            "bwin",
            "home",
            {
                "legs": [
                    {
                        "outcome": "home",
                        "bookmaker": "bwin",
                        "price": 2.2,
                        "commission": 0.0,
                        "stake_share": 0.5,
                    },
                    {
                        "outcome": "draw",
                        "bookmaker": "coral",
                        "price": 4.5,
                        "commission": 0.0,
                        "stake_share": 0.25,
                    },
                    {
                        "outcome": "away",
                        "bookmaker": "b",
                        "price": 4.5,
                        "commission": 0.0,
                        "stake_share": 0.25,
                    },
                ]
            },
        ),
    ]
    bets, skipped = bets_from_detections(found, best)
    by_type = bets.groupby("type")
    assert by_type.size().to_dict() == {"value": 1, "out_of_line": 1, "sharp_drop": 1, "arbitrage": 3}
    value = bets.loc[bets["type"] == "value"].iloc[0]
    assert (value["bookmaker"], value["price"], value["stake"]) == ("bwin", 2.3, 1.0)
    drop = bets.loc[bets["type"] == "sharp_drop"].iloc[0]
    assert (drop["bookmaker"], drop["signal_bookmaker"], drop["price"]) == ("bet365", "pinnacle", 2.2)
    assert bets.loc[bets["type"] == "arbitrage", "stake"].sum() == pytest.approx(1.0)
    assert skipped == {f"out_of_line: {SHORT_BOOK}": 1, f"steam: {DRIFTING}": 1}
    # the same value seen again later is the same bet: only the first counts
    again = bets_from_detections(
        [*found, detection("value", "bwin", "home", {"price": 2.25}, minutes=30)], best
    )[0]
    kept, dropped = first_signals(again)
    assert dropped == 1 and kept.loc[kept["type"] == "value", "price"].tolist() == [2.3]


# --- replay ------------------------------------------------------------------------------------


def test_steam_moves_group_books_moving_one_way_within_the_window() -> None:
    def move(book: str, minutes_after: float, price: float, previous: float) -> dict[str, object]:
        return {**tick(book, "home", price, 600 - minutes_after), "previous_price": previous}

    ticks = pd.DataFrame(
        [
            move("pinnacle", 0, 1.90, 2.00),
            move("bet365", 2, 1.91, 2.00),
            move("bwin", 4, 1.92, 2.00),
            move("coral", 7, 1.90, 2.00),  # past the 5-minute window of the first mover
            move("betfred", 3, 1.99, 2.00),  # under one probability point: not significant
            move("ladbrokes", 4, 2.10, 2.00),  # the other way
        ]
    )
    steams = steam_moves(ticks, ["pinnacle"])
    assert len(steams) == 1
    steam = steams.iloc[0]
    assert (steam["first_bookmaker"], steam["books"], steam["direction"]) == ("pinnacle", 3, "shortening")
    assert steam["bookmakers"] == "pinnacle,bet365,bwin" and bool(steam["first_mover_is_sharp"])
    assert steam["last_moved_at"] == KICK_OFF - timedelta(minutes=596)
    points = [100 * (1 / p - 1 / 2.0) for p in (1.90, 1.91, 1.92)]
    assert steam["mean_probability_points"] == pytest.approx(sum(points) / 3)


def test_power_method_probabilities_sum_to_one_and_keep_the_order() -> None:
    implied = np.array([1 / 1.5, 1 / 4.2, 1 / 7.0, 1 / 1.9, 1 / 1.95])
    fair = power_fair(implied, np.array([0, 0, 0, 1, 1]))
    assert fair[:3].sum() == pytest.approx(1.0) and fair[3:].sum() == pytest.approx(1.0)
    assert fair[0] > fair[1] > fair[2]
    k = math.log(fair[0]) / math.log(implied[0])
    assert fair[1] == pytest.approx(implied[1] ** k)  # one exponent for the whole market


def test_the_replay_finds_what_the_polls_would_have_found_moment_by_moment() -> None:
    """Every moment's fresh ticks judged by the live fast path (`detect_fresh` with the latest price
    of every other selection as state) find the same out-of-line, arbitrage and sharp-drop
    detections as the vectorized replay."""
    rng = np.random.default_rng(11)
    books = ["pinnacle", "bet365", "bwin", "coral", "betfair_ex"]
    rows: list[dict[str, object]] = []
    last: dict[tuple[str, str, str], float] = {}
    for minute in range(0, 300, 15):
        for event in ("ev1", "ev2"):
            for book in rng.choice(books, size=2, replace=False):
                fair = {"home": 0.45, "draw": 0.28, "away": 0.27}
                for outcome, p in fair.items():
                    price = round(1 / (p * rng.uniform(0.96, 1.12)), 2)
                    key = (event, str(book), outcome)
                    rows.append(
                        {
                            **tick(str(book), outcome, price, 400 - minute),
                            "canonical_event_id": event,
                            "source_event_id": f"{book}-{event}",
                            "previous_price": last.get(key),
                        }
                    )
                    last[key] = price
    ticks = pd.DataFrame(rows)
    rules = Rules(version="test")
    types = ("out_of_line", "arbitrage", "sharp_drop")
    replayed, _ = detect_history(ticks, rules, types)

    live: list[Detection] = []
    for _, fresh in ticks.groupby("observed_at", sort=True):
        state = ticks.loc[ticks["observed_at"] < fresh["observed_at"].iloc[0]]
        state = state.drop_duplicates(["bookmaker", "canonical_event_id", "outcome"], keep="last")
        live += detect_fresh(fresh, state.drop(columns="previous_price"), rules)

    def keys(found: list[Detection]) -> set[tuple[object, ...]]:
        return {
            (d.type, d.canonical_event_id, d.bookmaker, d.outcome, d.detected_at, round(d.strength, 6))
            for d in found
            if d.type in types
        }

    assert keys(live) and keys(replayed) == keys(live)
    assert {d.type for d in replayed} == set(types)


def test_batches_close_at_either_bound_and_never_split_an_event() -> None:
    sizes = pd.Series({"a": 400, "b": 500, "c": 300, "d": 5000, "e": 10})
    config = BacktestConfig(events_per_batch=2, snapshot_rows_per_batch=1000)
    batches = event_batches(["a", "b", "c", "d", "e"], sizes, config)
    assert batches == [{"a", "b"}, {"c"}, {"d"}, {"e"}]  # c would pass 1,000 rows; d alone exceeds it
    assert event_batches(["x", "y"], pd.Series(dtype="int64"), config) == [{"x", "y"}]


def test_value_appears_when_the_sharp_book_moves_past_a_soft_price() -> None:
    """bet365's home 2.30 is no value against pinnacle's first prices, and becomes value when
    pinnacle shortens the home side two hours later: detected then, not when bet365 priced it."""
    ticks = pd.DataFrame(
        [
            *(
                tick("bet365", o, p, 300)
                for o, p in zip(("home", "draw", "away"), (2.30, 3.30, 3.20), strict=True)
            ),
            *(
                tick("pinnacle", o, p, 300)
                for o, p in zip(("home", "draw", "away"), (2.30, 3.40, 3.45), strict=True)
            ),
            *(
                tick("pinnacle", o, p, 180)
                for o, p in zip(("home", "draw", "away"), (1.95, 3.70, 4.20), strict=True)
            ),
        ]
    ).assign(previous_price=None)
    found, _ = detect_history(ticks, RULES, ("value",))
    assert [(d.bookmaker, d.outcome, d.detected_at) for d in found] == [
        ("bet365", "home", KICK_OFF - timedelta(minutes=180))
    ]
    # the power method by bisection: the exponent k with Σ q^k = 1 over pinnacle's later prices
    implied = [1 / 1.95, 1 / 3.70, 1 / 4.20]
    low, high = 0.5, 2.0
    for _ in range(100):
        k = (low + high) / 2
        low, high = (k, high) if sum(q**k for q in implied) > 1 else (low, k)
    assert found[0].reasons["fair_probability"] == pytest.approx(implied[0] ** k, abs=1e-6)
    assert found[0].reasons["edge"] == pytest.approx(2.30 * implied[0] ** k - 1, abs=1e-6)
