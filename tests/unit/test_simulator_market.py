"""The market simulator's model: reproducible, realistic margins and lags, labeled scenarios."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import orjson
import pytest

from oddly.simulator.config import SimConfig
from oddly.simulator.market import Market, apply_margin

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def market(**kw: object) -> Market:
    return Market(SimConfig(**{"seed": 5, "start": T0, "manual_clock": True, **kw}))


def events_by_book(m: Market, book: str) -> dict[int, dict]:
    return {e["I"]: e for e in m.linefeed_document(book)["Value"]}


def prices(event: dict, g: int) -> dict[tuple[int, float | None], float]:
    items = event["E"] + [i for group in event["AE"] for i in group["ME"]]
    return {(i["T"], i.get("P")): i["C"] for i in items if i["G"] == g}


def test_same_seed_same_market_different_seed_different_market() -> None:
    a, b, c = market(), market(), market(seed=6)
    for m in (a, b, c):
        m.advance(900)
    assert a.linefeed_payload("22bet") == b.linefeed_payload("22bet")
    assert a.ground_truth() == b.ground_truth() and a.ground_truth()
    assert a.linefeed_payload("22bet") != c.linefeed_payload("22bet")


def test_margins_per_book_are_between_2_and_8_percent() -> None:
    m = market(n_events=30, live_share=0.0)
    for book in m.config.books:
        overrounds = [
            sum(1 / p for p in prices(e, 1).values()) - 1 for e in events_by_book(m, book.name).values()
        ]
        assert 0.02 <= float(np.median(overrounds)) <= 0.085, book.name
    sharp = np.median(
        [sum(1 / p for p in prices(e, 1).values()) for e in events_by_book(m, "pinnacle").values()]
    )
    soft = np.median(
        [sum(1 / p for p in prices(e, 1).values()) for e in events_by_book(m, "betwinner").values()]
    )
    assert sharp < soft


def test_favourite_longshot_bias() -> None:
    p = np.array([[0.70, 0.20, 0.10]])
    q = apply_margin(p, 0.06)[0]
    assert q.sum() == pytest.approx(1.06, abs=1e-6)
    shortened = q / p[0]  # how much each implied probability was inflated
    assert shortened[2] > shortened[1] > shortened[0] > 1


def test_each_book_names_events_its_own_way() -> None:
    m = market(n_events=40)
    names = {b.name: {(e["O1"], e["O2"]) for e in events_by_book(m, b.name).values()} for b in m.config.books}
    ids = {b.name: set(events_by_book(m, b.name)) for b in m.config.books}
    assert names["pinnacle"] != names["22bet"] != names["1xbet"]
    assert not ids["pinnacle"] & ids["22bet"]


def test_the_sharp_book_moves_first_and_soft_books_follow_after_their_lag() -> None:
    m = market(n_events=5, live_share=0.0, scenarios_per_hour=0, moves_per_hour=0)
    m.advance(60)
    m.log_home[:] += 0.4  # a piece of news makes every home side stronger
    m.advance(1)
    sharp_now = m.book_prices("pinnacle")[0][:, 0]
    soft_now = m.book_prices("22bet")[0][:, 0]  # 22bet lags 15 s
    m.advance(20)
    soft_later = m.book_prices("22bet")[0][:, 0]
    m2 = market(n_events=5, live_share=0.0, scenarios_per_hour=0, moves_per_hour=0)
    m2.advance(61)
    before = m2.book_prices("pinnacle")[0][:, 0]
    assert (sharp_now < before).all()  # the sharp home price dropped at once
    assert (soft_later < soft_now).all()  # the soft book followed later


def test_live_goals_suspend_markets_with_the_placeholder_price() -> None:
    m = market(n_events=20, live_share=1.0, scenarios_per_hour=0)
    for _ in range(600):
        m.advance(1)
        goals = [s for s in m.ground_truth() if s["cause"].startswith("goal")]
        if goals:
            break
    assert goals, "no goal in 10 minutes of 20 live games"
    event_id = goals[0]["event_ids"]["22bet"]
    event = events_by_book(m, "22bet")[event_id]
    assert all(o.get("B") is True and o["C"] == 1.001 for o in event["E"])
    assert event["SC"]["FS"]["S1"] + event["SC"]["FS"]["S2"] >= 1


@pytest.mark.parametrize(
    "kind", ["sharp_drop", "steam", "out_of_line", "stale_line", "arbitrage", "suspension"]
)
def test_every_scenario_type_is_labeled(kind: str) -> None:
    m = market(n_events=30, scenarios_per_hour=600)
    m.advance(1800)
    rows = [s for s in m.ground_truth() if s["type"] == kind]
    assert rows, kind
    row = rows[0]
    assert row["start_at"] < row["end_at"] and set(row["event_ids"]) == {b.name for b in m.config.books}
    assert row["books"]


def test_out_of_line_and_arbitrage_are_visible_in_prices() -> None:
    m = market(n_events=10, live_share=0.0, scenarios_per_hour=0, moves_per_hour=0)
    m.advance(60)
    m._inject("out_of_line")
    m._inject("arbitrage")
    m.advance(1)
    ool, arb = m.ground_truth()[-2:]
    book = ool["books"][0]
    event = events_by_book(m, book)[ool["event_ids"][book]]
    others = [events_by_book(m, b.name)[ool["event_ids"][b.name]] for b in m.config.books if b.name != book]
    key = (ool["t"], ool["line"])
    mine = prices(event, ool["g"])[key]
    assert mine > 1.2 * max(prices(o, ool["g"])[key] for o in others)
    # the arbitrage: best prices across books over 1X2 imply less than 100 %
    best = {}
    for b in m.config.books:
        ev = events_by_book(m, b.name)[arb["event_ids"][b.name]]
        for t, price in prices(ev, 1).items():
            best[t] = max(best.get(t, 0), price)
    assert sum(1 / p for p in best.values()) < 1.0


def test_a_stale_book_stops_updating_while_the_sharp_book_moves() -> None:
    m = market(n_events=10, live_share=0.0, scenarios_per_hour=0, moves_per_hour=0)
    m.advance(120)
    m._inject("stale_line")
    stale = m.ground_truth()[-1]
    book = stale["books"][0]
    frozen = prices(events_by_book(m, book)[stale["event_ids"][book]], 1)
    sharp_before = prices(events_by_book(m, "pinnacle")[stale["event_ids"]["pinnacle"]], 1)
    m.advance(120)
    assert prices(events_by_book(m, book)[stale["event_ids"][book]], 1) == frozen
    assert prices(events_by_book(m, "pinnacle")[stale["event_ids"]["pinnacle"]], 1) != sharp_before


def test_scale_knobs() -> None:
    m = market(n_events=7, markets_per_event=20, live_share=0.0)
    doc = orjson.loads(m.linefeed_payload("22bet"))
    assert len(doc["Value"]) == 7
    assert m.price_count("22bet") == 7 * sum(len(s.types) for s in m.specs)
    assert len(m.specs) == 20


def test_goal_probabilities_stay_finite_for_any_rate() -> None:
    import numpy as np

    from oddly.simulator.markets import _poisson

    pmf = _poisson(np.array([0.0, 1.4, 50.0, 900.0]))
    assert np.isfinite(pmf).all() and np.allclose(pmf.sum(axis=1), 1.0)
