"""Misbehaviour on demand, per book: HTTP errors, timeouts, broken JSON, schema drift, bad prices."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

FAULT_KINDS = (
    "http_500",
    "http_503",
    "http_429",
    "timeout",
    "truncated_json",
    "schema_drift",
    "zero_prices",
    "absurd_prices",
    "empty",
)


@dataclass
class Fault:
    book: str  # a book name or "*"
    kind: str
    remaining: int  # requests still affected; 0 = until cleared
    seconds: float  # Retry-After for 429, sleep for timeout


class Faults:
    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, book: str, kind: str, count: int = 1, seconds: float = 30.0) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}")
        if count < 0:
            raise ValueError("count must be 0 (until cleared) or more")
        self._faults.append(Fault(book, kind, count, seconds))

    def clear(self) -> None:
        self._faults.clear()

    def take(self, book: str) -> Fault | None:
        """The fault that applies to this request of `book`, counting it down."""
        for fault in self._faults:
            if fault.book in (book, "*"):
                if fault.remaining == 1:
                    self._faults.remove(fault)
                elif fault.remaining > 1:
                    fault.remaining -= 1
                return fault
        return None

    def describe(self) -> list[dict[str, Any]]:
        return [vars(f) for f in self._faults]


def break_document(doc: dict[str, Any], kind: str) -> dict[str, Any]:
    """The document as a misbehaving feed would send it (a copy; the market is untouched)."""
    if kind not in ("schema_drift", "zero_prices", "absurd_prices", "empty"):
        return doc
    doc = copy.deepcopy(doc)
    events = doc["Value"] if isinstance(doc["Value"], list) else [doc["Value"]] if doc["Value"] else []
    if kind == "empty":
        doc["Value"] = []
    elif kind == "schema_drift":
        for i, event in enumerate(events):
            if i % 3 == 0:
                event.pop("I", None)  # events without an id
            for j, outcome in enumerate(event.get("E", [])):
                if j % 2 == 0:
                    outcome["Coef"] = outcome.pop("C")  # a renamed price field
                else:
                    outcome["C"] = str(outcome["C"]).replace(".", ",")  # prices as strings
    else:
        bad = (0, 0.0) if kind == "zero_prices" else (0.5, -3, 1e7)
        for i, event in enumerate(events):
            for j, outcome in enumerate(event.get("E", [])):
                if (i + j) % 7 == 0:
                    outcome["C"] = bad[(i + j) % len(bad)]
    return doc
