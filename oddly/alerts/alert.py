"""An alert: one decision about one detection or model score, with everything a person needs to act
on it. The decision engine (`oddly.alerts.decide`) makes them; the audit trail and the outbox store
them; `oddly.telegram.message` renders them. JSON-ready throughout (`as_dict` / `from_dict`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

SEVERITIES = ("green", "yellow", "red")  # recorded only · digest · sent at once


@dataclass(frozen=True)
class BookPrice:
    bookmaker: str
    price: float


@dataclass(frozen=True)
class Alert:
    alert_id: str  # unique per decision
    dedup_key: str  # event × market × line × outcome × type (× bookmaker where the type names one)
    type: str  # a detection type (oddly.detect.DETECTION_TYPES) or "anomaly" for a model score
    severity: str  # one of SEVERITIES
    strength: float  # the rule's measure over its threshold, or the model's score
    canonical_event_id: str | None
    event_name: str  # "Home v Away"
    sport: str | None
    league: str | None
    starts_at: datetime | None
    is_live: bool
    bookmaker: str | None
    market: str
    period: str
    line: float | None
    outcome: str | None
    old_price: float | None
    new_price: float | None
    fair_price: float | None  # no-vig consensus or sharp fair price
    edge: float | None  # new_price / fair_price - 1
    detected_at: datetime
    decided_at: datetime
    rules_version: str | None
    model_version: str | None
    explanation: str  # one line
    reasons: list[str] = field(default_factory=list)  # the detector's or model's reasons, one per line
    best_prices: list[BookPrice] = field(default_factory=list)  # best current prices at other books
    decision_reason: str = ""  # why this severity, why (re-)sent or held

    @property
    def price_change_pct(self) -> float | None:
        if self.old_price is None or self.new_price is None or self.old_price <= 0:
            return None
        return 100.0 * (self.new_price / self.old_price - 1.0)

    @property
    def probability_points(self) -> float | None:
        """Implied-probability change in points (positive when the price shortened)."""
        if not self.old_price or not self.new_price or self.old_price <= 0 or self.new_price <= 0:
            return None
        return 100.0 * (1.0 / self.new_price - 1.0 / self.old_price)

    def as_dict(self) -> dict[str, Any]:
        row = asdict(self)
        for key in ("starts_at", "detected_at", "decided_at"):
            value = row[key]
            row[key] = value.isoformat() if value is not None else None
        return row

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Alert:
        data = dict(row)
        for key in ("starts_at", "detected_at", "decided_at"):
            if data.get(key) is not None and not isinstance(data[key], datetime):
                data[key] = datetime.fromisoformat(data[key])
        data["best_prices"] = [
            p if isinstance(p, BookPrice) else BookPrice(**p) for p in data.get("best_prices", [])
        ]
        data["reasons"] = list(data.get("reasons", []))
        return cls(**data)
