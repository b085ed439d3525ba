"""What a detector finds: one `Detection`, with its reasons as data and one line for people."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from oddly.detect.rules import Rules

# The types match the simulator's labelled scenarios (oddly.simulator.scenarios.SCENARIO_TYPES)
# so detections can be scored against ground truth; "value" has no scenario of its own.
DETECTION_TYPES = ("sharp_drop", "steam", "out_of_line", "value", "arbitrage", "stale_line")


class DetectionInputError(ValueError):
    """A detector was given a frame it cannot read (missing columns); the message names them."""


@dataclass(frozen=True)
class Detection:
    """One finding of one rule at one moment.

    `detected_at` is the observed time of the tick that made the rule fire (never the wall clock),
    so a replayed day detects as it did live. `strength` is the rule's measure over its threshold:
    1.0 exactly at it, 2.0 twice as far. `reasons` holds what moved, by how much and what is normal
    or the threshold, as JSON-ready values; `explanation` says it in one line.
    """

    type: str
    canonical_event_id: str | None
    source_event_id: str | None
    bookmaker: str | None
    market: str
    period: str
    line: float | None
    outcome: str | None
    detected_at: datetime
    strength: float
    reasons: Mapping[str, Any]
    explanation: str
    rules_version: str

    def as_dict(self) -> dict[str, Any]:
        row = asdict(self)
        row["reasons"] = dict(self.reasons)
        return row


def detections_frame(detections: Iterable[Detection]) -> pd.DataFrame:
    """Detections as a table (reasons as JSON text): for storage, reports and evaluation."""
    rows = [{**d.as_dict(), "reasons": json.dumps(d.reasons, sort_keys=True)} for d in detections]
    columns = list(Detection.__dataclass_fields__)
    return pd.DataFrame(rows, columns=columns)


def build(
    kind: str,
    hits: pd.DataFrame,
    rules: Rules,
    *,
    strength: pd.Series,
    reasons: Callable[[Mapping[str, Any]], dict[str, Any]],
    explain: Callable[[Mapping[str, Any]], str],
) -> list[Detection]:
    """Detections from the rows that fired. The rule itself is decided vectorized; only its hits
    (few by design) become objects here. `hits` needs the selection columns and `detected_at`."""
    if hits.empty:
        return []
    records = hits.assign(_strength=strength).to_dict("records")
    return [
        Detection(
            type=kind,
            canonical_event_id=_text(r.get("canonical_event_id")),
            source_event_id=_text(r.get("source_event_id")),
            bookmaker=_text(r.get("bookmaker")),
            market=str(r["market"]),
            period=str(r["period"]),
            line=number(r.get("line")),
            outcome=_text(r.get("outcome")),
            detected_at=pd.Timestamp(r["detected_at"]).to_pydatetime(),
            strength=round(float(r["_strength"]), 6),
            reasons=reasons(r),
            explanation=explain(r),
            rules_version=rules.version,
        )
        for r in records
    ]


def number(value: Any, digits: int = 6) -> float | None:
    """A JSON-ready float (None for missing or NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return round(float(value), digits)


def _text(value: Any) -> str | None:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


def selection_label(r: Mapping[str, Any]) -> str:
    """ "1x2 home", "total 2.5 over", "handicap -1 home 1h": how a person names a selection."""
    parts: list[str] = [str(r["market"])]
    line = number(r.get("line"))
    if line is not None:
        parts.append(f"{line:g}")
    if _text(r.get("outcome")) is not None:
        parts.append(str(r["outcome"]))
    if r.get("period") not in (None, "ft"):
        parts.append(str(r["period"]))
    return " ".join(parts)
