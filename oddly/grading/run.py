"""One grading run as it is stored and logged: a backtest or a live grading pass."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd


@dataclass
class GradingRun:
    """One grading run: its graded bets (GRADED_COLUMNS), the summary per source and type
    (`stats.SUMMARY_COLUMNS`), what was skipped and why, and the parameters it ran with."""

    run_id: str
    source: str  # "backtest" or "live"
    started_at: datetime
    finished_at: datetime
    params: dict[str, Any]
    bets: pd.DataFrame
    summary: pd.DataFrame
    skipped: Counter[str] = field(default_factory=Counter)
    counts: dict[str, int] = field(default_factory=dict)
    stored: bool = True  # False: a live pass that graded nothing new, not written

    @property
    def seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    def describe(self) -> str:
        counts = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in self.counts.items())
        stored = "" if self.stored else ", nothing new to store"
        return f"{self.source} run {self.run_id}: {counts} ({self.seconds:.1f} s{stored})"


def new_run_id(source: str, at: datetime) -> str:
    return f"{source}-{at:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
