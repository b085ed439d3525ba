"""The decision engine: detections and model scores become alerts with a severity, and each is
queued for delivery, put in the digest, recorded only, held as a repeat, or rejected as bad input.

Pure: the caller reads the recent decisions (`oddly.alerts.audit.recent_decisions`) and the
context (`oddly.alerts.context.enrich`) and writes the result (`oddly.alerts.outbox`), so the same
inputs always give the same decisions (up to their random ids) and it is tested without a database.
Detections are few by design, so this is plain Python over objects, not vectorized.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd

from oddly.alerts.alert import SEVERITIES, Alert, BookPrice
from oddly.alerts.context import SelectionContext, SelectionRef, event_ref
from oddly.alerts.policy import ANOMALY, AlertPolicy, TypePolicy
from oddly.detect.detection import DETECTION_TYPES, Detection
from oddly.model import price_problem, utc

# What happens to a decision: red is queued for delivery now, yellow goes to the digest, green is
# recorded only; a repeat inside its cooldown is held; a candidate that cannot be read is rejected.
ACTIONS = ("queued", "digest", "recorded", "held", "rejected")
SENT_ACTIONS = ("queued", "digest")
_ACTION_OF = {"red": "queued", "yellow": "digest", "green": "recorded"}
# Types judged on one bookmaker's price: their dedup key names the book (steam and arbitrage span books).
ONE_BOOK_TYPES = frozenset({"sharp_drop", "out_of_line", "stale_line", "value", ANOMALY})
# Reason keys that hold decimal prices: a 0 or a NaN there means the input is broken.
_PRICE_REASONS = ("price", "previous_price", "fair_price", "consensus_fair_price")
_SCORE_FIELDS = ("market", "period", "score", "model_version", "observed_at")
BEST_PRICES = 3  # best prices at other books carried by an alert


class CandidateError(ValueError):
    """A detection or score row that cannot become an alert; the message says which field and why."""


@dataclass(frozen=True)
class Candidate:
    """A detection or a model score, normalized: what the decision reads."""

    type: str
    canonical_event_id: str | None
    source_event_id: str | None
    bookmaker: str | None
    market: str
    period: str
    line: float | None
    outcome: str | None
    strength: float  # the rule's strength, or the model's score for type "anomaly"
    detected_at: datetime
    explanation: str
    reasons: tuple[str, ...]
    rules_version: str | None
    model_version: str | None
    inputs: dict[str, Any]  # the detection or score row as given, JSON-ready (for the audit)
    price: float | None = None  # the prices the detector saw, when it says
    previous_price: float | None = None
    fair_price: float | None = None
    edge: float | None = None

    @property
    def dedup_key(self) -> str:
        """event × market × period × line × outcome × type (× bookmaker for one-book types)."""
        line = "" if self.line is None else f"{self.line:g}"
        parts = [event_ref(self), self.market, self.period, line, self.outcome or "", self.type]
        if self.type in ONE_BOOK_TYPES:
            parts.append(self.bookmaker or "")
        return "|".join(parts)

    def cooldown_key(self, per: str) -> str:
        """What counts as the same alert inside the cooldown (the policy's `cooldown.per`)."""
        return cooldown_key(self.dedup_key, self.type, per)

    @property
    def selection(self) -> SelectionRef:
        return (event_ref(self), self.market, self.period, self.line, self.outcome)


def cooldown_key(dedup_key: str, alert_type: str | None, per: str) -> str:
    """The dedup key itself (per selection), or its event × type (per event)."""
    if per == "selection":
        return dedup_key
    return f"{dedup_key.split('|', 1)[0]}|{alert_type or ''}"


@dataclass(frozen=True)
class Rejected:
    """Input that could not be read: recorded in the audit with the reason, never sent."""

    inputs: dict[str, Any]
    reason: str
    type: str | None = None


@dataclass(frozen=True)
class PriorDecision:
    """What the audit trail says was decided earlier for a dedup key (for the cooldown)."""

    alert_id: str
    dedup_key: str
    severity: str | None
    action: str
    strength: float | None
    decided_at: datetime


@dataclass(frozen=True)
class Decision:
    alert_id: str
    action: str  # one of ACTIONS
    reason: str  # why this severity, why (re-)sent or held or rejected
    policy_version: str
    decided_at: datetime
    inputs: dict[str, Any]
    alert: Alert | None = None  # None only when rejected
    type: str | None = None
    dedup_key: str | None = None

    @property
    def severity(self) -> str | None:
        return self.alert.severity if self.alert is not None else None


# --- reading candidates ------------------------------------------------------------------------


def to_candidates(
    items: Iterable[Detection | Mapping[str, Any]] | pd.DataFrame,
) -> list[Candidate | Rejected]:
    """Detections and score rows (dicts or a DataFrame of them) as candidates; bad ones rejected."""
    rows: Iterable[Any] = items.to_dict("records") if isinstance(items, pd.DataFrame) else items
    out: list[Candidate | Rejected] = []
    for item in rows:
        if isinstance(item, Candidate | Rejected):
            out.append(item)
            continue
        inputs = json_ready(item.as_dict() if isinstance(item, Detection) else dict(item))
        try:
            out.append(from_detection(item) if isinstance(item, Detection) else from_score(item))
        except CandidateError as exc:
            kind = inputs.get("type") if isinstance(item, Detection) else ANOMALY
            out.append(Rejected(inputs, f"rejected: {exc}", kind))
    return out


def from_detection(d: Detection) -> Candidate:
    if d.type not in DETECTION_TYPES:
        raise CandidateError(f"unknown detection type {d.type!r}; known: {', '.join(DETECTION_TYPES)}")
    reasons = dict(d.reasons)
    prices = _reason_prices(reasons)
    edge = _number(reasons.get("edge" if d.type == "value" else "margin"), "reasons.edge")
    return Candidate(
        type=d.type,
        canonical_event_id=d.canonical_event_id,
        source_event_id=d.source_event_id,
        bookmaker=d.bookmaker,
        market=_text(d.market, "market"),
        period=_text(d.period, "period"),
        line=_number(d.line, "line"),
        outcome=d.outcome,
        strength=_strength(d.strength, "strength"),
        detected_at=_time(d.detected_at, "detected_at"),
        explanation=d.explanation,
        reasons=tuple(f"{key}: {_show(value)}" for key, value in reasons.items()),
        rules_version=d.rules_version,
        model_version=None,
        inputs=json_ready(d.as_dict()),
        price=prices.get("price"),
        previous_price=prices.get("previous_price"),
        fair_price=prices.get("fair_price") or prices.get("consensus_fair_price"),
        edge=edge if d.type in ("value", "arbitrage") else None,
    )


def from_score(row: Mapping[str, Any]) -> Candidate:
    """A model score row: canonical_event_id, bookmaker, market, period, line, outcome, score,
    model_version, reasons (list), observed_at; optionally price and previous_price."""
    missing = [name for name in _SCORE_FIELDS if _is_missing(row.get(name))]
    if missing:
        raise CandidateError(f"score row lacks {', '.join(missing)}")
    reasons = row.get("reasons")
    if reasons is None or isinstance(reasons, str):
        reasons = [reasons] if reasons else []
    prices = _reason_prices(row)
    lines = tuple(r if isinstance(r, str) else json.dumps(json_ready(r), sort_keys=True) for r in reasons)
    score = _strength(row["score"], "score", positive=False)
    return Candidate(
        type=ANOMALY,
        canonical_event_id=_optional_text(row.get("canonical_event_id")),
        source_event_id=_optional_text(row.get("source_event_id")),
        bookmaker=_optional_text(row.get("bookmaker")),
        market=_text(row["market"], "market"),
        period=_text(row["period"], "period"),
        line=_number(row.get("line"), "line"),
        outcome=_optional_text(row.get("outcome")),
        strength=score,
        detected_at=_time(row["observed_at"], "observed_at"),
        explanation=str(row.get("explanation") or f"model score {score:.3g}"),
        reasons=lines,
        rules_version=None,
        model_version=_text(row["model_version"], "model_version"),
        inputs=json_ready(dict(row)),
        price=prices.get("price"),
        previous_price=prices.get("previous_price"),
    )


# --- deciding ----------------------------------------------------------------------------------


def decide(
    candidates: Sequence[Candidate | Rejected],
    recent: Mapping[str, Sequence[PriorDecision]],
    policy: AlertPolicy,
    now: datetime,
    context: Mapping[SelectionRef, SelectionContext] | None = None,
    *,
    new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
) -> list[Decision]:
    """One decision per candidate — but for a repeat of an alert already held (`is_repeat`) — in
    detection order and, among those detected together, the strongest first. `recent`: earlier
    decisions by cooldown key (`Candidate.cooldown_key`, at least the policy's longest cooldown
    back); decisions earlier in this batch count too."""
    now = utc(now)
    per = policy.cooldown.per
    history: dict[str, list[PriorDecision]] = {key: list(rows) for key, rows in recent.items()}
    earliest = datetime.min.replace(tzinfo=now.tzinfo)
    ordered = sorted(
        candidates,
        key=lambda c: (c.detected_at, -c.strength) if isinstance(c, Candidate) else (earliest, 0.0),
    )
    decisions: list[Decision] = []
    for candidate in ordered:
        if isinstance(candidate, Rejected):
            decisions.append(
                Decision(
                    new_id(),
                    "rejected",
                    candidate.reason,
                    policy.version,
                    now,
                    candidate.inputs,
                    type=candidate.type,
                )
            )
            continue
        key = candidate.cooldown_key(per)
        decision = _decide_one(candidate, history.get(key, []), policy, now, context or {}, new_id())
        if decision.action == "held" and is_repeat(candidate, decision, history.get(key, []), policy, now):
            continue  # the very alert already decided within its cooldown: nothing new to decide
        history.setdefault(key, []).append(
            PriorDecision(
                decision.alert_id,
                candidate.dedup_key,
                decision.severity,
                decision.action,
                candidate.strength,
                now,
            )
        )
        decisions.append(decision)
    return decisions


def is_repeat(
    c: Candidate, decision: Decision, prior: Sequence[PriorDecision], policy: AlertPolicy, now: datetime
) -> bool:
    """The same selection (dedup key) was already held within its cooldown, at this severity or
    above and not weaker by the re-send ratio: a detector seeing the same condition again on its
    next poll. The audit records the first hold (it says why the alert was not sent again); the
    polls after it change nothing and are not recorded, or every lasting arbitrage or value bet
    would add a row per poll."""
    since = now - timedelta(minutes=policy.cooldown_minutes(c.type))
    ratio = policy.cooldown.resend_strength_ratio
    return any(
        p.dedup_key == c.dedup_key
        and p.action == "held"
        and utc(p.decided_at) >= since
        and _rank(p.severity) >= _rank(decision.severity)
        and (p.strength is None or c.strength < ratio * p.strength)
        for p in prior
    )


def _decide_one(
    c: Candidate,
    prior: Sequence[PriorDecision],
    policy: AlertPolicy,
    now: datetime,
    context: Mapping[SelectionRef, SelectionContext],
    alert_id: str,
) -> Decision:
    alert = _alert(c, context.get(c.selection), alert_id, now, policy)
    severity, why = grade(c, alert, policy, now)
    action = _ACTION_OF[severity]
    if action in SENT_ACTIONS:
        action, why = _cooldown(c, severity, why, prior, policy, now)
    alert = replace(alert, severity=severity, decision_reason=why)
    return Decision(alert_id, action, why, policy.version, now, c.inputs, alert, c.type, c.dedup_key)


def grade(c: Candidate, alert: Alert, policy: AlertPolicy, now: datetime) -> tuple[str, str]:
    """The severity of a candidate and why, by its thresholds then the timing caps."""
    rules = policy.for_type(c.type)
    if rules is None:
        return "green", f"green: {c.type} is not in alert policy {policy.version} (recorded only)"
    if not rules.enabled:
        return "green", f"green: {c.type} is disabled in alert policy {policy.version}"
    severity, why = _by_thresholds(c, alert.edge, rules)
    return _timing_caps(severity, why, alert, c.detected_at, policy, now)


def _by_thresholds(c: Candidate, edge: float | None, rules: TypePolicy) -> tuple[str, str]:
    """The highest level whose every threshold is met: anomalies by score, the rest by strength
    (and edge where the type sets one)."""
    name = "score" if c.type == ANOMALY else "strength"
    measures: list[_Measure] = [
        _Measure(name, c.strength, getattr(rules, f"yellow_{name}"), getattr(rules, f"red_{name}"))
    ]
    if c.type != ANOMALY and (rules.yellow_edge is not None or rules.red_edge is not None):
        measures.append(_Measure("edge", edge, rules.yellow_edge, rules.red_edge))
    for level in ("red", "yellow"):
        needed = [(m.name, m.value, m.limit(level)) for m in measures if m.limit(level) is not None]
        if needed and all(v is not None and t is not None and v >= t for _, v, t in needed):
            met = ", ".join(f"{n} {_fmt(v)} ≥ {_fmt(t)}" for n, v, t in needed)
            return level, f"{level}: {c.type} {met}"
    missed = ", ".join(
        f"{m.name} {_fmt(m.value)} < {_fmt(m.yellow)}"
        for m in measures
        if m.yellow is not None and (m.value is None or m.value < m.yellow)
    )
    return "green", f"green: {c.type} {missed or 'has no yellow threshold'}"


@dataclass(frozen=True)
class _Measure:
    name: str
    value: float | None
    yellow: float | None
    red: float | None

    def limit(self, level: str) -> float | None:
        return self.red if level == "red" else self.yellow


def _timing_caps(
    severity: str, why: str, alert: Alert, detected_at: datetime, policy: AlertPolicy, now: datetime
) -> tuple[str, str]:
    """Red only near kick-off, in play when allowed, and while the detection is fresh."""
    caps: list[tuple[str, str]] = []  # (highest severity allowed, because)
    if alert.is_live:
        if not policy.live.red:
            caps.append(("yellow", "in play, where the policy allows yellow at most"))
        if not policy.live.yellow:
            caps.append(("green", "in play, where the policy sends nothing"))
    elif alert.starts_at is not None:
        hours = (utc(alert.starts_at) - detected_at).total_seconds() / 3600
        red_within, yellow_within = policy.kickoff.red_within_hours, policy.kickoff.yellow_within_hours
        if yellow_within is not None and hours > yellow_within:
            caps.append(("green", f"kick-off in {hours:.1f} h > {yellow_within:g} h"))
        elif red_within is not None and hours > red_within:
            caps.append(("yellow", f"kick-off in {hours:.1f} h > {red_within:g} h"))
    age = (now - detected_at).total_seconds() / 60
    if policy.red_max_age_minutes is not None and age > policy.red_max_age_minutes:
        caps.append(("yellow", f"detected {age:.0f} min ago > {policy.red_max_age_minutes:g} min"))
    for cap, because in caps:
        if SEVERITIES.index(severity) > SEVERITIES.index(cap):
            why = f"{cap}: {why} but {because}"
            severity = cap
    return severity, why


def _cooldown(
    c: Candidate, severity: str, why: str, prior: Sequence[PriorDecision], policy: AlertPolicy, now: datetime
) -> tuple[str, str]:
    """Queue or digest it, unless the same alert went out within the cooldown and this one is
    neither a severity up nor enough stronger."""
    action = _ACTION_OF[severity]
    minutes = policy.cooldown_minutes(c.type)
    since = now - timedelta(minutes=minutes)
    sent = [p for p in prior if p.action in SENT_ACTIONS and utc(p.decided_at) >= since]
    if not sent:
        return action, why
    last = max(sent, key=lambda p: p.decided_at)
    ago = (now - utc(last.decided_at)).total_seconds() / 60
    ratio = policy.cooldown.resend_strength_ratio
    if policy.cooldown.resend_on_severity_upgrade and _rank(severity) > _rank(last.severity):
        return action, f"{why}; re-sent: up from {last.severity} {ago:.0f} min ago"
    if last.strength is not None and last.strength > 0 and c.strength >= ratio * last.strength:
        return action, f"{why}; re-sent: {c.strength / last.strength:.2g}× as strong as {ago:.0f} min ago"
    before = "" if last.strength is None else f" ({_fmt(c.strength)} vs {_fmt(last.strength)})"
    same = "same alert" if last.dedup_key == c.dedup_key else f"a {c.type} alert about this event"
    return "held", (
        f"held: {same} {ago:.0f} min ago, cooldown {minutes:g} min, not {ratio:g}× stronger{before}"
        f" — would be {why}"
    )


def _alert(
    c: Candidate, ctx: SelectionContext | None, alert_id: str, now: datetime, policy: AlertPolicy
) -> Alert:
    """The alert with its context: the detector's own prices first, the warehouse's otherwise."""
    own = ctx.prices.get(c.bookmaker) if ctx is not None and c.bookmaker else None
    new_price = c.price if c.price is not None else (own.price if own else None)
    old_price = c.previous_price if c.previous_price is not None else (own.previous_price if own else None)
    fair_price = c.fair_price
    if fair_price is None and ctx is not None and ctx.fair_probability:
        fair_price = 1.0 / ctx.fair_probability
    edge = c.edge
    if edge is None and new_price is not None and fair_price:
        edge = new_price / fair_price - 1.0
    others = [] if ctx is None else [q for book, q in ctx.prices.items() if book != c.bookmaker and q.is_open]
    best = sorted(others, key=lambda q: -q.price)[:BEST_PRICES]
    return Alert(
        alert_id=alert_id,
        dedup_key=c.dedup_key,
        type=c.type,
        severity="green",
        strength=c.strength,
        canonical_event_id=c.canonical_event_id,
        event_name=(ctx.event_name if ctx is not None else None) or event_ref(c),
        sport=ctx.sport if ctx is not None else None,
        league=ctx.league if ctx is not None else None,
        starts_at=ctx.starts_at if ctx is not None else None,
        is_live=bool(ctx.is_live) if ctx is not None else False,
        bookmaker=c.bookmaker,
        market=c.market,
        period=c.period,
        line=c.line,
        outcome=c.outcome,
        old_price=old_price,
        new_price=new_price,
        fair_price=None if fair_price is None else round(fair_price, 6),
        edge=None if edge is None else round(edge, 6),
        detected_at=c.detected_at,
        decided_at=now,
        rules_version=c.rules_version,
        model_version=c.model_version,
        explanation=c.explanation,
        reasons=list(c.reasons),
        best_prices=[BookPrice(q.bookmaker, q.price) for q in best],
    )


# --- small helpers -----------------------------------------------------------------------------


def json_ready(value: Any) -> Any:
    """Datetimes as ISO text, NaN and NA as None, numpy scalars as Python: storable as JSON."""
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [json_ready(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "tolist") and not isinstance(value, str):  # numpy scalars and arrays
        return json_ready(value.tolist())
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _reason_prices(reasons: Mapping[str, Any]) -> dict[str, float]:
    prices: dict[str, float] = {}
    for key in _PRICE_REASONS:
        value = reasons.get(key)
        if value is None:
            continue
        problem = price_problem(value)
        if problem is not None:
            raise CandidateError(f"{key}: {problem}")
        prices[key] = float(value)
    return prices


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _text(value: Any, name: str) -> str:
    if _is_missing(value) or not str(value).strip():
        raise CandidateError(f"{name} is missing")
    return str(value)


def _optional_text(value: Any) -> str | None:
    return None if _is_missing(value) else str(value)


def _number(value: Any, name: str) -> float | None:
    if _is_missing(value):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise CandidateError(f"{name} {value!r} is not a number") from exc
    if not math.isfinite(number):
        raise CandidateError(f"{name} {value!r} is not finite")
    return number


def _strength(value: Any, name: str, *, positive: bool = True) -> float:
    number = _number(value, name)
    if number is None:
        raise CandidateError(f"{name} is missing")
    if positive and number <= 0:
        raise CandidateError(f"{name} {number:g} must be positive (1.0 is the rule's threshold)")
    return number


def _time(value: Any, name: str) -> datetime:
    if _is_missing(value):
        raise CandidateError(f"{name} is missing")
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise CandidateError(f"{name} {value!r} is not a time") from exc
    return utc(stamp.to_pydatetime())


def _rank(severity: str | None) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else -1


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(json_ready(value), sort_keys=True)
