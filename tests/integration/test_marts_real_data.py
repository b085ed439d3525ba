"""The marts on real prices: the 1X2 prices of football-data.co.uk's 12 divisions of season 2025/26
(`../shared/data/football-data/`), imported as ticks of the pre-match observation, built, then the
closing observation on top and built again (incremental). What the marts say is compared with the
same facts computed independently from the CSV files with pandas, and with what is known about
these markets: Pinnacle's margin is about 5 % on football-data's pre-match prices and smaller at
close, and arbitrage among the sportsbooks shows in a small share of matches.

Real numbers (1,445 matches; they are asserted below):
- Pinnacle's median 1X2 overround: 4.854 % pre-match (1,359 matches), 3.450 % at close (1,362).
- Matches whose best prices over the nine books add up to under 100 %: 79 (5.5 %) pre-match,
  514 (35.6 %) at close. Betfair Exchange's back prices are before its commission on winnings;
  after 5 % of it (fct_arbitrage's default): 10 (0.7 %) and 188 (13.0 %). Without the exchange:
  7 (0.5 %) and 130 (9.0 %); without the exchange and Pinnacle: 1 (0.1 %) and 7 (0.5 %). The
  closing share stays larger: football-data takes each book's closing price at its own moment.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from oddly.config import Settings
from oddly.importers.football_data import ONE_X_TWO, ImportReport, Observation, import_files
from oddly.warehouse.store import Warehouse
from tests.conftest import drop_pg_database, make_pg_database
from tests.integration.test_dbt_project import dbt

pytestmark = pytest.mark.slow

DIVISIONS = ("E0", "E1", "E2", "E3", "D1", "D2", "SP1", "SP2", "I1", "I2", "F1", "F2")
# The test's own reading of the columns (not the importer's), for an independent computation.
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
MATCH = ["league", "home_team", "away_team"]
# The marts these checks read, with everything they are built from (and their dbt tests).
SELECT = ("--select", "+fct_prices_current", "+fct_arbitrage", "+fct_consensus", "+dim_events")
# A season of finished matches: every event counts, not only those around the newest tick.
ALL_EVENTS = ("--vars", "{active_hours_after_kick_off: null}")
# Best prices adding up to exactly 100 % are no arbitrage; float sums of such a set land within this
# of 1 on either side (Guingamp v Clermont at close: 1/1.68 + 1/4.2 + 1/6 = 1).
TIE = 1e-9
# The exchange's commission on winnings fct_arbitrage applies by default (dbt var exchange_commission).
COMMISSION = {"betfair_ex": 0.05}


# --- the CSV, read independently with pandas -------------------------------------------------


def read_csv_prices(folder: Path) -> pd.DataFrame:
    """One row per match × book × outcome: its pre-match price and, as the warehouse holds it after
    the closing run, the closing price of a complete closing set, else the pre-match one."""
    frames = []
    for division in DIVISIONS:
        raw = pd.read_csv(folder / f"{division}.csv", encoding="utf-8-sig")
        for code, book in BOOKS.items():
            pre = _complete_set(raw, code)
            close = _complete_set(raw, code + "C")
            missing = close.isna().any(axis=1)
            close.loc[missing] = pre.loc[missing]
            for suffix, outcome in OUTCOMES.items():
                frames.append(
                    pd.DataFrame(
                        {
                            "league": raw["Div"],
                            "home_team": raw["HomeTeam"],
                            "away_team": raw["AwayTeam"],
                            "bookmaker": book,
                            "outcome": outcome,
                            Observation.PREMATCH.value: pre[suffix],
                            Observation.CLOSING.value: close[suffix],
                        }
                    )
                )
    return pd.concat(frames, ignore_index=True)


def _complete_set(raw: pd.DataFrame, prefix: str) -> pd.DataFrame:
    """A book's H/D/A prices where all three are sound decimal odds, else all three NaN."""
    prices = raw[[prefix + s for s in OUTCOMES]].apply(pd.to_numeric, errors="coerce")
    prices.columns = list(OUTCOMES)
    prices.loc[~(prices > 1).all(axis=1)] = np.nan
    return prices


def observed(prices: pd.DataFrame, observation: Observation) -> pd.DataFrame:
    frame = prices[[*MATCH, "bookmaker", "outcome", observation.value]].rename(
        columns={observation.value: "price"}
    )
    return frame.dropna(subset=["price"]).reset_index(drop=True)


def overround_by_match(prices: pd.DataFrame, book: str) -> pd.Series:
    one = prices[prices["bookmaker"] == book]
    return (1 / one["price"]).groupby([one[c] for c in MATCH]).sum() - 1


def best_totals(
    prices: pd.DataFrame, exclude: tuple[str, ...] = (), commission: dict[str, float] | None = None
) -> pd.Series:
    """Per match, the sum of 1 / best price of each outcome over the books not excluded, each price
    after the book's commission on winnings."""
    kept = prices[~prices["bookmaker"].isin(exclude)]
    rate = kept["bookmaker"].map(commission or {}).fillna(0.0)
    net = 1 + (kept["price"] - 1) * (1 - rate)
    best = net.groupby([kept[c] for c in [*MATCH, "outcome"]]).max()
    return (1 / best).groupby(level=MATCH).sum()


def arbitrage_matches(totals: pd.Series) -> set[tuple[str, str, str]]:
    return set(totals[totals < 1 - TIE].index)


def power_no_vig(prices: list[float]) -> list[float]:
    """Fair probabilities q_i^k with sum 1, k found by bisection (independent of the mart's Newton)."""
    q = np.array([1 / p for p in prices])
    low, high = 1.0, 2.0
    for _ in range(200):
        k = (low + high) / 2
        low, high = (k, high) if (q**k).sum() > 1 else (low, k)
    return list(q ** ((low + high) / 2))


# --- the warehouse, imported and built twice --------------------------------------------------


@dataclass
class Phase:
    """What the marts say after one observation was imported and built."""

    report: ImportReport
    build_output: str
    prices: pd.DataFrame  # fct_prices_current, 1X2
    arbitrage: pd.DataFrame  # fct_arbitrage with the match's names
    no_vig: pd.DataFrame  # int_no_vig_by_book of the sharp books
    consensus: pd.DataFrame  # fct_consensus
    ticks_per_selection: dict[int, int]  # int_selection_state: ticks → selections


def read_phase(warehouse: Warehouse, report: ImportReport, output: str) -> Phase:
    def frame(sql: str) -> pd.DataFrame:
        return pd.DataFrame(warehouse.query(sql))

    ticks = frame("select ticks, count(*) as n from intermediate.int_selection_state group by ticks")
    return Phase(
        report=report,
        build_output=output.replace("  ", " "),
        prices=frame(
            "select canonical_event_id, league, home_team, away_team, starts_at, bookmaker, outcome, "
            "price, overround from marts.fct_prices_current where market = '1x2'"
        ),
        arbitrage=frame(
            "select e.league, e.home_team, e.away_team, a.outcome, a.best_bookmaker, a.best_price, "
            "a.best_net_price, a.implied_total, a.is_arbitrage from marts.fct_arbitrage a "
            "join marts.dim_events e on e.canonical_event_id = a.canonical_event_id where a.market = '1x2'"
        ),
        no_vig=frame(
            "select canonical_event_id, bookmaker, outcome, price, overround, "
            "fair_probability_multiplicative, fair_probability_power from intermediate.int_no_vig_by_book "
            "where bookmaker in ('pinnacle', 'betfair_ex')"
        ),
        consensus=frame("select * from marts.fct_consensus where market = '1x2'"),
        ticks_per_selection={int(t): int(n) for t, n in ticks.itertuples(index=False)},
    )


@pytest.fixture(scope="module")
def football_data(shared_data: Path) -> Path:
    folder = shared_data / "football-data"
    missing = [d for d in DIVISIONS if not (folder / f"{d}.csv").is_file()]
    if missing:
        pytest.skip(f"football-data files {missing} are absent from {folder}")
    return folder


@pytest.fixture(scope="module")
def csv_prices(football_data: Path) -> pd.DataFrame:
    return read_csv_prices(football_data)


@pytest.fixture(scope="module", params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def phases(
    request: pytest.FixtureRequest, football_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[Observation, Phase]]:
    """Pre-match imported and built, then closing imported and built incrementally; the marts read
    after each. (One database for the module's tests: what `pg_url` makes, for a whole module.)"""
    url = make_pg_database("oddly_real") if request.param == "postgres" else None
    try:
        settings = Settings(home=tmp_path_factory.mktemp(f"real_{request.param}"), warehouse_url=url)
        paths = [football_data / f"{d}.csv" for d in DIVISIONS]
        result: dict[Observation, Phase] = {}
        for observation in (Observation.PREMATCH, Observation.CLOSING):
            warehouse = Warehouse.from_settings(settings)
            # the nine books' 1X2 (the import also reads totals, Asian handicaps and Max/Avg)
            report = import_files(warehouse, paths, [observation], layouts=[ONE_X_TWO], aggregates=False)
            warehouse.dispose()
            built = dbt(settings, "build", *SELECT, *ALL_EVENTS)
            assert built.returncode == 0, built.stdout[-3000:]
            result[observation] = read_phase(warehouse, report, built.stdout)
            warehouse.dispose()
        yield result
    finally:
        if url:
            drop_pg_database(url)


# football-data's two observations (oddsportal's `opening` is not one of them)
OBSERVATIONS = (Observation.PREMATCH, Observation.CLOSING)
PHASES = pytest.mark.parametrize("observation", OBSERVATIONS, ids=[o.value for o in OBSERVATIONS])


# --- the checks -------------------------------------------------------------------------------


def test_import_reads_every_match_and_book(
    phases: dict[Observation, Phase], csv_prices: pd.DataFrame
) -> None:
    report = phases[Observation.PREMATCH].report
    assert report.fixtures == report.rows == 1445
    assert report.encodings == {f"{d}.csv": "utf-8-sig" for d in DIVISIONS}
    assert not report.unknown_codes
    # the only gaps in the real files: books that did not quote a match at all (no bad cells)
    assert set(report.skipped) == {"price set not quoted (all cells empty)"}
    assert report.quotes == {"prematch": 12874, "closing": 12917}
    # one map row per book event: each book quoting the match at either observation
    quoting = csv_prices.dropna(subset=["closing"]).drop_duplicates([*MATCH, "bookmaker"])
    assert report.event_map_rows == len(quoting) == 12917


@PHASES
def test_current_prices_are_the_csv_prices(
    phases: dict[Observation, Phase], csv_prices: pd.DataFrame, observation: Observation
) -> None:
    """Every 1X2 price of fct_prices_current is the CSV's (closing: the closing set where the book
    has one, else its pre-match set, since a tick is only written on change) and no other."""
    columns = [*MATCH, "bookmaker", "outcome", "price"]
    mart = phases[observation].prices[columns].sort_values(columns[:-1]).reset_index(drop=True)
    expected = observed(csv_prices, observation).sort_values(columns[:-1]).reset_index(drop=True)
    pd.testing.assert_frame_equal(mart, expected[columns], check_dtype=False)
    # one canonical event per CSV row, every book's event joined to it
    assert phases[observation].prices.groupby(MATCH)["canonical_event_id"].nunique().eq(1).all()
    assert phases[observation].prices["canonical_event_id"].nunique() == 1445


def test_pinnacle_overround_about_5_percent_pre_match_and_lower_at_close(
    phases: dict[Observation, Phase], csv_prices: pd.DataFrame
) -> None:
    medians = {}
    for observation in OBSERVATIONS:
        mart = phases[observation].prices.query("bookmaker == 'pinnacle'").groupby(MATCH)["overround"].first()
        expected = overround_by_match(observed(csv_prices, observation), "pinnacle")
        pd.testing.assert_series_equal(mart.sort_index(), expected.sort_index(), check_names=False)
        no_vig = phases[observation].no_vig.query("bookmaker == 'pinnacle'")
        assert sorted(no_vig.groupby("canonical_event_id")["overround"].first()) == pytest.approx(
            sorted(expected)
        )
        medians[observation] = float(mart.median())
    assert len(phases[Observation.PREMATCH].no_vig.query("bookmaker == 'pinnacle'")) == 3 * 1359
    assert len(phases[Observation.CLOSING].no_vig.query("bookmaker == 'pinnacle'")) == 3 * 1362
    # the real numbers: 4.854 % pre-match (the "about 5 %"), 3.450 % at close ("under 4 %")
    assert 0.0480 < medians[Observation.PREMATCH] < 0.0490
    assert 0.0340 < medians[Observation.CLOSING] < 0.0350
    assert medians[Observation.CLOSING] < medians[Observation.PREMATCH] - 0.01


@PHASES
def test_arbitrage_matches_are_those_of_the_csv(
    phases: dict[Observation, Phase], csv_prices: pd.DataFrame, observation: Observation
) -> None:
    arbitrage = phases[observation].arbitrage
    assert arbitrage.groupby(MATCH).size().eq(3).all() and len(arbitrage) == 3 * 1445
    totals = arbitrage.groupby(MATCH)["implied_total"].first()
    expected = best_totals(observed(csv_prices, observation), commission=COMMISSION)
    pd.testing.assert_series_equal(totals.sort_index(), expected.sort_index(), check_names=False)
    flagged = set(arbitrage.loc[arbitrage["is_arbitrage"], MATCH].itertuples(index=False, name=None))
    assert flagged == arbitrage_matches(expected)
    assert len(flagged) == {Observation.PREMATCH: 10, Observation.CLOSING: 188}[observation]
    exchange = arbitrage[arbitrage["best_bookmaker"] == "betfair_ex"]
    net = 1 + (exchange["best_price"] - 1) * 0.95
    assert np.allclose(exchange["best_net_price"], net, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("observation", "excluded", "count", "bound"),
    [
        # pre-match, all nine books: 5.5 %; an exchange back price before commission often beats
        # every sportsbook (after 5 % of it: 10, asserted on the mart above)
        (Observation.PREMATCH, (), 79, 0.08),
        # pre-match sportsbooks (5-7 % margins, Pinnacle's about 5 %): an arbitrage is rare
        (Observation.PREMATCH, ("betfair_ex",), 7, 0.01),
        (Observation.PREMATCH, ("betfair_ex", "pinnacle"), 1, 0.01),
        # at close: with the exchange (0.7 % median margin before commission) not small at all
        # (after commission: 188)
        (Observation.CLOSING, (), 514, 0.40),
        # at close with Pinnacle (3.5 %) against the soft books' closing lines: 9 %
        (Observation.CLOSING, ("betfair_ex",), 130, 0.10),
        # the soft books among themselves stay as rare as pre-match
        (Observation.CLOSING, ("betfair_ex", "pinnacle"), 7, 0.01),
    ],
)
def test_arbitrage_share(
    phases: dict[Observation, Phase],
    csv_prices: pd.DataFrame,
    observation: Observation,
    excluded: tuple[str, ...],
    count: int,
    bound: float,
) -> None:
    """The share of matches with an arbitrage: what the CSV gives, what the mart's current prices
    give (best price per outcome over the same books), the exact count and an upper bound."""
    from_csv = arbitrage_matches(best_totals(observed(csv_prices, observation), excluded))
    from_mart = arbitrage_matches(best_totals(phases[observation].prices, excluded))
    assert from_mart == from_csv
    assert len(from_csv) == count
    assert len(from_csv) / 1445 < bound


@PHASES
def test_no_vig_of_one_match_equals_a_hand_computation(
    phases: dict[Observation, Phase], football_data: Path, observation: Observation
) -> None:
    """Liverpool v Bournemouth, 15 Aug 2025, 20:00 UK (19:00 UTC): Pinnacle's and Betfair Exchange's
    prices from the CSV, their margin taken off by hand, against the marts."""
    row = pd.read_csv(football_data / "E0.csv", encoding="utf-8-sig").iloc[0]
    assert (row["HomeTeam"], row["AwayTeam"], row["Date"], row["Time"]) == (
        "Liverpool",
        "Bournemouth",
        "15/08/2025",
        "20:00",
    )
    infix = "C" if observation is Observation.CLOSING else ""
    books = {book: [float(row[f"{code}{infix}{s}"]) for s in OUTCOMES] for code, book in BOOKS.items()}
    if observation is Observation.PREMATCH:
        assert books["pinnacle"] == [1.28, 6.56, 9.07] and books["betfair_ex"] == [1.34, 6.6, 9.4]
    phase = phases[observation]
    match = phase.prices.query("home_team == 'Liverpool' and away_team == 'Bournemouth'")
    assert pd.Timestamp(match["starts_at"].iloc[0]) == pd.Timestamp("2025-08-15 19:00", tz="UTC")
    event = match["canonical_event_id"].iloc[0]
    fair: dict[str, list[float]] = {}
    for book in ("pinnacle", "betfair_ex"):
        implied = [1 / p for p in books[book]]
        fair[book] = [q / sum(implied) for q in implied]
        rows = phase.no_vig[
            (phase.no_vig["canonical_event_id"] == event) & (phase.no_vig["bookmaker"] == book)
        ]
        mart = rows.set_index("outcome")
        outcomes = list(OUTCOMES.values())
        assert list(mart.loc[outcomes, "price"]) == books[book]
        assert mart.loc[outcomes, "overround"].iloc[0] == pytest.approx(sum(implied) - 1, abs=1e-12)
        assert list(mart.loc[outcomes, "fair_probability_multiplicative"]) == pytest.approx(fair[book])
        assert list(mart.loc[outcomes, "fair_probability_power"]) == pytest.approx(
            power_no_vig(books[book]), abs=1e-9
        )
    # the sharp consensus is the mean of the two sharp books' multiplicative no-vig probabilities
    consensus = phase.consensus[phase.consensus["canonical_event_id"] == event].set_index("outcome")
    for i, outcome in enumerate(OUTCOMES.values()):
        sharp = (fair["pinnacle"][i] + fair["betfair_ex"][i]) / 2
        assert consensus.loc[outcome, "fair_probability_sharp_multiplicative"] == pytest.approx(sharp)
        assert consensus.loc[outcome, "bookmakers"] == 9


def test_closing_run_writes_only_the_moves(
    phases: dict[Observation, Phase], csv_prices: pd.DataFrame
) -> None:
    """Change-only ticks: the closing run writes a tick where the closing price differs from the
    pre-match one (or the book had none), and the second build folds them in incrementally."""
    changed = csv_prices["closing"].notna() & (csv_prices["closing"] != csv_prices["prematch"])
    new = changed & csv_prices["prematch"].isna()
    closing = phases[Observation.CLOSING]
    assert closing.report.ticks == {"closing": int(changed.sum())} == {"closing": 31730}
    assert phases[Observation.PREMATCH].report.ticks == {"prematch": 38622}
    assert closing.ticks_per_selection == {
        1: 38622 + int(new.sum()) - int((changed & ~new).sum()),
        2: int((changed & ~new).sum()),
    }
    assert "incremental model intermediate.int_selection_state" in closing.build_output
