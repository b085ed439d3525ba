"""Injected, labeled scenarios (the ground truth detectors are scored against) and the price
overlays some of them put on one book."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

SCENARIO_TYPES = ("sharp_drop", "steam", "out_of_line", "stale_line", "arbitrage", "suspension")


@dataclass(frozen=True)
class Overlay:
    """One book's deviation on one outcome until `until` (simulated seconds): "factor" multiplies
    the price; "implied" sets the implied probability to value × the true probability."""

    book: int
    event: int
    market: int
    outcome: int
    kind: str
    value: float
    until: float


@dataclass
class Scenario:
    id: int
    type: str
    start_seconds: float
    start_at: datetime
    end_at: datetime
    event_key: str
    home: str
    away: str
    event_ids: dict[str, int] = field(default_factory=dict)
    g: int | None = None
    line: float | None = None
    t: int | None = None
    books: list[str] = field(default_factory=list)
    direction: str = "none"
    magnitude: float = 0.0
    cause: str = ""

    def as_dict(self) -> dict[str, Any]:
        row = asdict(self)
        row["start_at"] = self.start_at.isoformat()
        row["end_at"] = self.end_at.isoformat()
        return row
