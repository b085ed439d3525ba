"""Settling bets on match results, column-wise: 1X2, double chance, moneyline, totals and team
totals, handicaps and both teams to score, for the full time, the first half or the second half.

Every market reduces to a margin per bet: how far the result is on the bet's side of its line
(goals over the line for an over, the home side's goal difference plus its handicap for a home
handicap, +1 or -1 for a 1X2 outcome). A positive margin wins, zero pushes (stake back), negative
loses. An Asian quarter line (-0.25, 0.75, 2.25 …) is two bets of half the stake on the lines a
quarter either side, so it can win or lose half. Handicap lines are the home side's (as stored):
the away side of line L plays -L.

A bet is left unsettled (result and shares missing) when its market has no rule here (raw
markets, `win`), its period is not ft / 1h / 2h, a line market has no line, or the goals it needs
are unknown; `unsettled_reason` says which.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

RESULTS = ("win", "half_win", "push", "half_loss", "loss")
TOTAL_MARKETS = ("total", "asian_total")
TEAM_TOTAL_MARKETS = ("team_total_home", "team_total_away")
HANDICAP_MARKETS = ("handicap", "asian_handicap")
LINE_MARKETS = (*TOTAL_MARKETS, *TEAM_TOTAL_MARKETS, *HANDICAP_MARKETS)
NO_LINE_MARKETS = ("1x2", "moneyline", "double_chance", "btts")
SETTLED_MARKETS = (*LINE_MARKETS, *NO_LINE_MARKETS)
PERIODS = ("ft", "1h", "2h")
RESULT_COLUMNS = ("home_goals", "away_goals", "home_goals_ht", "away_goals_ht")


def period_goals(frame: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Home and away goals of each row's period (NaN where unknown or the period is not settled)."""
    goals = {c: pd.to_numeric(frame[c], errors="coerce").astype("float64") for c in RESULT_COLUMNS}
    period = frame["period"]
    home = pd.Series(np.nan, index=frame.index)
    away = pd.Series(np.nan, index=frame.index)
    for name, h, a in (
        ("ft", goals["home_goals"], goals["away_goals"]),
        ("1h", goals["home_goals_ht"], goals["away_goals_ht"]),
        ("2h", goals["home_goals"] - goals["home_goals_ht"], goals["away_goals"] - goals["away_goals_ht"]),
    ):
        rows = period.eq(name)
        home = home.where(~rows, h)
        away = away.where(~rows, a)
    return home, away


def is_quarter_line(line: pd.Series | np.ndarray) -> np.ndarray:
    """True for lines ending in .25 or .75 (four times the line is an odd integer)."""
    values = np.asarray(line, dtype="float64")
    with np.errstate(invalid="ignore"):
        return np.isclose(np.mod(values * 4.0, 2.0), 1.0)


def _line_margin(
    market: pd.Series, outcome: pd.Series, line: np.ndarray, h: np.ndarray, a: np.ndarray
) -> np.ndarray:
    """The margin of each line-market bet at `line` (NaN for anything else)."""
    m, o = market.to_numpy(), outcome.to_numpy()
    total = np.isin(m, TOTAL_MARKETS)
    goals = np.select([total, m == "team_total_home", m == "team_total_away"], [h + a, h, a], np.nan)
    handicap = np.isin(m, HANDICAP_MARKETS)
    over_under = total | np.isin(m, TEAM_TOTAL_MARKETS)
    return np.select(
        [
            over_under & (o == "over"),
            over_under & (o == "under"),
            handicap & (o == "home"),
            handicap & (o == "away"),
        ],
        [goals - line, line - goals, h - a + line, a - h - line],
        np.nan,
    )


def _plain_margin(market: pd.Series, outcome: pd.Series, h: np.ndarray, a: np.ndarray) -> np.ndarray:
    """+1 won, -1 lost, 0 void (a moneyline draw) for the markets without a line (NaN otherwise)."""
    m, o = market.to_numpy(), outcome.to_numpy()
    diff = h - a
    won = np.sign(diff)  # 1 home won, 0 draw, -1 away won (NaN when unknown)
    one_x_two = m == "1x2"
    moneyline = m == "moneyline"
    chance = m == "double_chance"
    btts = m == "btts"
    both = np.where(np.isnan(h) | np.isnan(a), np.nan, np.where((h > 0) & (a > 0), 1.0, -1.0))

    def yes_no(condition: np.ndarray) -> np.ndarray:
        return np.where(np.isnan(diff), np.nan, np.where(condition, 1.0, -1.0))

    return np.select(
        [
            one_x_two & (o == "home"),
            one_x_two & (o == "draw"),
            one_x_two & (o == "away"),
            moneyline & (o == "home"),
            moneyline & (o == "away"),
            chance & (o == "home_draw"),
            chance & (o == "home_away"),
            chance & (o == "draw_away"),
            btts & (o == "yes"),
            btts & (o == "no"),
        ],
        [
            yes_no(diff > 0),
            yes_no(diff == 0),
            yes_no(diff < 0),
            won,
            -won,
            yes_no(diff >= 0),
            yes_no(diff != 0),
            yes_no(diff <= 0),
            both,
            -both,
        ],
        np.nan,
    )


def settle(bets: pd.DataFrame) -> pd.DataFrame:
    """Each bet's settlement: `win_share` and `loss_share` of its stake (0, 0.5 or 1; the rest is
    returned), `result` (one of RESULTS) and `unsettled_reason` where it cannot be settled.

    `bets` needs market, period, line, outcome and the result columns home_goals, away_goals,
    home_goals_ht, away_goals_ht (NaN where unknown), index kept."""
    h_series, a_series = period_goals(bets)
    h, a = h_series.to_numpy(), a_series.to_numpy()
    market, outcome = bets["market"].astype("object"), bets["outcome"].astype("object")
    line = pd.to_numeric(bets["line"], errors="coerce").astype("float64").to_numpy()
    quarter = is_quarter_line(line)
    low = np.where(quarter, line - 0.25, line)
    high = np.where(quarter, line + 0.25, line)
    line_market = np.isin(market.to_numpy(), LINE_MARKETS)
    first = np.where(
        line_market, _line_margin(market, outcome, low, h, a), _plain_margin(market, outcome, h, a)
    )
    second = np.where(line_market, _line_margin(market, outcome, high, h, a), first)
    known = ~np.isnan(first) & ~np.isnan(second)
    win = np.where(known, ((first > 0).astype(float) + (second > 0).astype(float)) / 2.0, np.nan)
    loss = np.where(known, ((first < 0).astype(float) + (second < 0).astype(float)) / 2.0, np.nan)
    result = np.select(
        [win == 1.0, (win == 0.5) & (loss == 0.0), loss == 1.0, (loss == 0.5) & (win == 0.0), known],
        ["win", "half_win", "loss", "half_loss", "push"],
        default="",
    )
    out = pd.DataFrame(
        {
            "win_share": win,
            "loss_share": loss,
            "result": pd.Series(result, index=bets.index).replace("", None),
        },
        index=bets.index,
    )
    out["unsettled_reason"] = _why_unsettled(bets, market, line, h, a, known)
    return out


def _why_unsettled(
    bets: pd.DataFrame, market: pd.Series, line: np.ndarray, h: np.ndarray, a: np.ndarray, known: np.ndarray
) -> pd.Series:
    m = market.to_numpy()
    reasons = np.select(
        [
            known,
            ~np.isin(m, SETTLED_MARKETS),
            ~bets["period"].isin(PERIODS).to_numpy(),
            np.isin(m, LINE_MARKETS) & np.isnan(line),
            np.isnan(h) | np.isnan(a),
        ],
        [
            "",
            "market not settled from goals",
            "period not settled from goals",
            "line missing",
            "no result yet",
        ],
        default="outcome not part of its market",
    )
    return pd.Series(reasons, index=bets.index).replace("", None)


def profit(effective_price: pd.Series, stake: pd.Series, settled: pd.DataFrame) -> pd.Series:
    """Profit of each bet at its stake: what the won share pays less the lost share (NaN unsettled)."""
    return stake * (settled["win_share"] * (effective_price - 1.0) - settled["loss_share"])
