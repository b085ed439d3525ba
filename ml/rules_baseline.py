"""The rule detectors (`oddly.detect`) scored on the same labelled rows as the models.

Each observation cycle of a labelled set is replayed through the rules: sharp drop on the ticks of
that cycle (the prices that changed, with the price before), out of line, arbitrage and stale
line on every book's current prices (what they read from `marts.fct_prices_current`). A rule's
score on a row is the strength of its detection on that row's selection in that cycle (1.0 at its
threshold), 0 where it did not fire; a detection naming no book or outcome covers the market.
Steam needs `marts.fct_steam_moves` and is not replayed here; value has no scenario of its own.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from oddly.detect.detection import Detection
from oddly.detect.pipeline import detect_marts
from oddly.detect.rules import Rules
from oddly.detect.sharp_drop import detect_sharp_drops

RULES_SCORED = ("sharp_drop", "out_of_line", "arbitrage", "stale_line")
SELECTION = ["seed", "bookmaker", "event_id", "market", "line_key", "outcome"]
_MARKET = ["event_id", "market", "line_key"]


def _with_history(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows with the selection's previous price and the time of its last change."""
    rows = frame[
        ["seed", "observed_at", "bookmaker", "event_id", "market", "line", "outcome", "price", "status"]
    ]
    rows = rows.assign(line_key=rows["line"].fillna(-999.0), row=np.arange(len(rows)))
    rows = rows.sort_values([*SELECTION, "observed_at"], kind="stable")
    same = rows[SELECTION].eq(rows[SELECTION].shift()).all(axis=1)
    previous_price = rows["price"].shift().where(same)
    changed = ~same | rows["price"].ne(previous_price) | rows["status"].ne(rows["status"].shift())
    last_changed_at = rows["observed_at"].where(changed).ffill()
    return rows.assign(
        previous_price=previous_price, changed=changed, last_changed_at=last_changed_at
    ).sort_values("row")


def rule_scores(frame: pd.DataFrame, rules: Rules) -> pd.DataFrame:
    """One column per rule in RULES_SCORED: its strength on each row of `frame` (same order).
    Give the whole frame, ignored rows included: a rule reads every price of a market."""
    rows = _with_history(frame)
    scores = np.zeros((len(rows), len(RULES_SCORED)))
    for _, cycle in rows.groupby(["seed", "observed_at"], sort=True):
        state = cycle.assign(
            canonical_event_id=cycle["event_id"], source_event_id=cycle["event_id"], period="ft"
        )
        ticks = state.loc[state["changed"] & state["previous_price"].notna()]
        detections = detect_sharp_drops(ticks, rules) + detect_marts(
            rules, prices=state.drop(columns="observed_at")
        )
        if detections:
            _score(scores, cycle, detections)
    return pd.DataFrame(scores, columns=list(RULES_SCORED), index=frame.index)


def _score(scores: np.ndarray, cycle: pd.DataFrame, detections: list[Detection]) -> None:
    found = pd.DataFrame(
        {
            "type": [d.type for d in detections],
            "event_id": [d.canonical_event_id for d in detections],
            "bookmaker": [d.bookmaker for d in detections],
            "market": [d.market for d in detections],
            "line_key": [-999.0 if d.line is None else d.line for d in detections],
            "outcome": [d.outcome for d in detections],
            "strength": [d.strength for d in detections],
        }
    )
    found = found[found["type"].isin(RULES_SCORED)]
    keys = cycle[["row", "bookmaker", "event_id", "market", "line_key", "outcome"]]
    named = found["bookmaker"].notna() & found["outcome"].notna()
    hits = pd.concat(
        [
            keys.merge(found[named], on=["bookmaker", "event_id", "market", "line_key", "outcome"]),
            keys.merge(found[~named].drop(columns=["bookmaker", "outcome"]), on=_MARKET),
        ]
    )
    if hits.empty:
        return
    column = hits["type"].map({t: i for i, t in enumerate(RULES_SCORED)}).to_numpy()
    np.maximum.at(scores, (hits["row"].to_numpy(), column), hits["strength"].to_numpy())
