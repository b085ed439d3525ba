"""Grading live alerts once their events have closed, and again when their result arrives.

The alerts are the app database's decisions that became alerts (queued, put in a digest or
recorded; a decision held as a repeat inside its cooldown is the same alert again, and a rejected
one has none). Each is the bet `oddly.grading.signals` describes, at the prices the alert carried
when it was decided: the detector's own price, or for a followed move the best of the alerted
book's price and the best prices elsewhere the alert listed.

An alert is graded on the first pass after its event's kick-off (the closing line is then known),
then on every pass until its result is in the warehouse (or `RESULT_WAIT` has passed since
kick-off); after that its grade is final and never read again. An alert decided after kick-off
(in-play) has no closing line to be judged against: it is settled on its result only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa

from oddly.alerts import audit
from oddly.detect.rules import Rules
from oddly.grading.closing import closing_lines
from oddly.grading.grade import GRADED_COLUMNS, bet_frame, empty_bets, grade
from oddly.grading.history import read_events, read_results, read_ticks, utc_stamp
from oddly.grading.run import GradingRun, new_run_id
from oddly.grading.signals import (
    DRIFTING,
    FOLLOW_TYPES,
    GRADED_TYPES,
    NO_LEGS,
    NO_PRICE,
    ONE_BOOK_TYPES,
    SHORT_BOOK,
    arbitrage_legs,
)
from oddly.grading.stats import DEFAULT_RESAMPLES, DEFAULT_SEED, net_price, summarize
from oddly.grading.store import live_grades, write_run
from oddly.model import now_utc
from oddly.warehouse.store import Warehouse

# Decisions that are alerts (oddly.alerts.decide.ACTIONS less held repeats and rejected input).
ALERT_ACTIONS = ("queued", "digest", "recorded")
# How long after kick-off an alert waits for its result before its grade is final without one.
RESULT_WAIT = timedelta(days=14)
IN_PLAY = "in-play: decided after kick-off, judged by its result only"
NO_EVENT = "no canonical event: the close cannot be found"
# Decision rows are fetched in batches of this many alert ids.
_BATCH = 500


def pending_alerts(engine: sa.Engine, now: datetime, result_wait: timedelta = RESULT_WAIT) -> list[str]:
    """Alert ids that still need a grade: never graded, or graded without a result while their
    event kicked off less than `result_wait` ago."""
    c = audit.decisions.c
    with engine.connect() as conn:
        ids = pd.read_sql_query(
            sa.select(c.alert_id).where(c.action.in_(ALERT_ACTIONS), c.type.in_(GRADED_TYPES)), conn
        )["alert_id"]
    graded = live_grades(engine)
    if graded.empty:
        return list(ids)
    per_signal = graded.groupby("signal_key").agg(
        settled=("profit", lambda p: bool(p.notna().all())), kick_off=("kick_off", "min")
    )
    final = per_signal.loc[
        per_signal["settled"] | (per_signal["kick_off"] < utc_stamp(now) - result_wait)
    ].index
    return [alert_id for alert_id in ids if alert_id not in set(final)]


def read_alerts(engine: sa.Engine, alert_ids: list[str]) -> list[dict[str, Any]]:
    c = audit.decisions.c
    columns = [
        c.alert_id,
        c.type,
        c.severity,
        c.action,
        c.strength,
        c.canonical_event_id,
        c.bookmaker,
        c.market,
        c.period,
        c.line,
        c.outcome,
        c.rules_version,
        c.inputs,
        c.alert,
        c.detected_at,
    ]
    rows: list[dict[str, Any]] = []
    with engine.connect() as conn:
        for start in range(0, len(alert_ids), _BATCH):
            query = sa.select(*columns).where(c.alert_id.in_(alert_ids[start : start + _BATCH]))
            rows += [dict(r._mapping) for r in conn.execute(query)]
    return rows


def bets_from_alerts(
    alerts: list[dict[str, Any]], kick_offs: Mapping[str, Any], commission: Mapping[str, float]
) -> tuple[pd.DataFrame, Counter[str]]:
    """The bets of decided alerts (source "live", signal key = alert id) and what was skipped."""
    rows: list[dict[str, Any]] = []
    skipped: Counter[str] = Counter()
    for a in alerts:
        alert = _mapping(a["alert"])
        reasons = _mapping(_mapping(a["inputs"]).get("reasons"))
        kind = a["type"]
        kick_off = kick_offs.get(a["canonical_event_id"] or "") or alert.get("starts_at")
        base = {
            "source": "live",
            "signal_key": a["alert_id"],
            "type": kind,
            "canonical_event_id": a["canonical_event_id"],
            "event_name": alert.get("event_name"),
            "kick_off": kick_off,
            "market": a["market"],
            "period": a["period"],
            "line": a["line"],
            "outcome": a["outcome"],
            "signal_bookmaker": a["bookmaker"],
            "taken_at": a["detected_at"],
            "strength": a["strength"],
            "severity": a["severity"],
            "action": a["action"],
            "rules_version": a["rules_version"],
        }
        if not a["canonical_event_id"]:
            skipped[f"{kind}: {NO_EVENT}"] += 1
            continue
        if alert.get("is_live"):
            base["note"] = IN_PLAY
        if kind == "arbitrage":
            legs = arbitrage_legs(reasons)
            if not legs:
                skipped[f"{kind}: {NO_LEGS}"] += 1
            for i, leg in enumerate(legs):
                rows.append(
                    {
                        **base,
                        "leg": i,
                        "outcome": leg.get("outcome"),
                        "bookmaker": leg.get("bookmaker"),
                        "price": leg.get("price"),
                        "commission": leg.get("commission") or 0.0,
                        "stake": leg.get("stake_share"),
                    }
                )
        elif kind in ONE_BOOK_TYPES:
            points = reasons.get("probability_points")
            if kind != "value" and points is not None and float(points) >= 0:
                skipped[f"{kind}: {SHORT_BOOK}"] += 1
                continue
            price = reasons.get("price") or alert.get("new_price")
            if price is None:
                skipped[f"{kind}: {NO_PRICE}"] += 1
                continue
            rate = commission.get(a["bookmaker"] or "", 0.0)
            rows.append({**base, "bookmaker": a["bookmaker"], "price": price, "commission": rate})
        elif kind in FOLLOW_TYPES:
            if reasons.get("direction") == "drifting":
                skipped[f"{kind}: {DRIFTING}"] += 1
                continue
            best = _best_offer(
                a["bookmaker"], reasons.get("price") or alert.get("new_price"), alert, commission
            )
            if best is None:
                skipped[f"{kind}: {NO_PRICE}"] += 1
                continue
            rows.append({**base, **best})
    return (bet_frame(rows) if rows else empty_bets()), skipped


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _best_offer(
    book: str | None, price: Any, alert: Mapping[str, Any], commission: Mapping[str, float]
) -> dict[str, Any] | None:
    """The best price the alert knew of for its outcome: the alerted book's own and the best
    prices elsewhere it listed, after an exchange's commission."""
    offers: list[tuple[Any, Any]] = [(book, price)] if book and price else []
    offers += [
        (p.get("bookmaker"), p.get("price")) for p in alert.get("best_prices") or [] if isinstance(p, Mapping)
    ]
    offers = [(b, float(p)) for b, p in offers if b and p and float(p) > 1.0]
    if not offers:
        return None
    frame = pd.DataFrame(offers, columns=["bookmaker", "price"])
    frame["commission"] = frame["bookmaker"].map(lambda b: commission.get(b, 0.0))
    frame["net"] = net_price(frame["price"], frame["commission"])
    top = frame.sort_values(["net", "bookmaker"], ascending=[False, True], kind="stable").iloc[0]
    return {
        "bookmaker": top["bookmaker"],
        "price": float(top["price"]),
        "commission": float(top["commission"]),
        "note": f"best of {len(frame)} prices the alert listed",
    }


def grade_live(
    warehouse: Warehouse,
    engine: sa.Engine,
    rules: Rules,
    *,
    now: datetime | None = None,
    policy_version: str | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    result_wait: timedelta = RESULT_WAIT,
) -> GradingRun:
    """One live grading pass: grade the alerts whose events have kicked off and that need it, store
    their grades (replacing earlier ones) with a summary of every live grade so far. A pass that
    graded nothing stores nothing (`stored` false): the standing is the last stored pass's."""
    started = now_utc()
    now = now or started
    pending = pending_alerts(engine, now, result_wait)
    alerts = read_alerts(engine, pending)
    ids = {a["canonical_event_id"] for a in alerts if a["canonical_event_id"]}
    events = read_events(warehouse, canonical_ids=ids)
    kick_offs = (
        events.drop_duplicates("canonical_event_id").set_index("canonical_event_id")["kick_off"].to_dict()
    )
    bets, skipped = bets_from_alerts(alerts, kick_offs, rules.exchange_commission)
    closed = bets.loc[bets["kick_off"].notna() & (bets["kick_off"] <= utc_stamp(now))]
    waiting = bets["signal_key"].nunique() - closed["signal_key"].nunique()
    closed_events = set(closed["canonical_event_id"])
    sharp = read_ticks(
        warehouse, events.loc[events["canonical_event_id"].isin(closed_events)], list(rules.sharp_books)
    )
    graded = grade(closed, closing_lines(sharp, rules.sharp_books), read_results(warehouse, closed_events))
    earlier = live_grades(engine)[GRADED_COLUMNS]
    kept = earlier.loc[~earlier["signal_key"].isin(graded["signal_key"])]
    parts = [frame for frame in (kept, graded) if not frame.empty]
    standing = pd.concat(parts, ignore_index=True) if parts else graded
    summary = summarize(standing, resamples=resamples, seed=seed)
    counts = {
        "alerts_pending": len(pending),
        "graded_now": int(graded["signal_key"].nunique()),
        "settled_now": int(graded.groupby("signal_key")["profit"].apply(lambda p: p.notna().all()).sum())
        if len(graded)
        else 0,
        "waiting_for_kick_off": int(waiting),
        "live_signals": int(standing["signal_key"].nunique()) if len(standing) else 0,
    }
    run = GradingRun(
        run_id=new_run_id("live", started),
        source="live",
        started_at=started,
        finished_at=now_utc(),
        params={
            "rules_version": rules.version,
            "policy_version": policy_version or "",
            "resamples": resamples,
            "seed": seed,
            "result_wait_days": result_wait.total_seconds() / 86400,
            "sharp_books": ",".join(rules.sharp_books),
        },
        bets=graded,
        summary=summary,
        skipped=skipped,
        counts=counts,
    )
    # A pass that graded nothing leaves the standing as the last stored pass has it.
    run.stored = not graded.empty
    if run.stored:
        write_run(engine, run, replace_live=True)
    return run
