"""A backtest: the rule detectors replayed over the warehouse's history (`oddly.grading.replay`),
one bet per signal (`oddly.grading.signals`), the reference strategy beside them
(`oddly.grading.kaunitz`), every bet graded against the close and the result, and the run summed
up per type.

The history is read in batches of events by kick-off (each batch one query for its ticks), sized
by the snapshot rows their replay will hold (counted in SQL first), so a long or busy history never
has to fit in memory at once; events never span batches, so nothing a detector or the strategy
sees is cut. Only pre-match ticks are read: a signal after kick-off has no closing
line to be judged against.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from oddly.detect.rules import Rules
from oddly.grading.closing import closing_lines
from oddly.grading.grade import GRADED_COLUMNS, grade
from oddly.grading.history import (
    read_aggregate_ticks,
    read_events,
    read_results,
    read_ticks,
    snapshot_sizes,
)
from oddly.grading.kaunitz import KaunitzParams, kaunitz_bets, state_before
from oddly.grading.replay import REPLAYED_TYPES, best_prices, detect_history
from oddly.grading.run import GradingRun, new_run_id
from oddly.grading.signals import bets_from_detections, first_signals
from oddly.grading.stats import DEFAULT_RESAMPLES, DEFAULT_SEED, summarize
from oddly.model import now_utc
from oddly.warehouse.store import Warehouse


@dataclass(frozen=True)
class BacktestConfig:
    since: datetime | None = None  # kick-off window [since, until); open ends: all
    until: datetime | None = None
    types: tuple[str, ...] = REPLAYED_TYPES
    strategy: KaunitzParams | None = field(default_factory=KaunitzParams)
    resamples: int = DEFAULT_RESAMPLES
    seed: int = DEFAULT_SEED
    events_per_batch: int = 400
    # Snapshot rows one batch may hold (about 0.8 KB each in memory): a batch closes at either bound.
    snapshot_rows_per_batch: int = 1_000_000

    def __post_init__(self) -> None:
        unknown = [t for t in self.types if t not in REPLAYED_TYPES]
        if unknown:
            raise ValueError(
                f"unknown signal type(s) {', '.join(unknown)}; known: {', '.join(REPLAYED_TYPES)}"
            )
        if self.resamples < 100:
            raise ValueError(
                f"at least 100 bootstrap resamples are needed for a 95 % interval; got {self.resamples}"
            )
        if self.since and self.until and pd.Timestamp(self.since) >= pd.Timestamp(self.until):
            raise ValueError(f"the window is empty: since {self.since} is not before until {self.until}")


def event_names(ticks: pd.DataFrame) -> dict[str, str]:
    """ "Home v Away" per canonical event, as its first book names it."""
    if ticks.empty:
        return {}
    first = ticks.drop_duplicates("canonical_event_id")
    return dict(zip(first["canonical_event_id"], first["home"] + " v " + first["away"], strict=True))


def event_batches(ids: list[str], sizes: pd.Series, config: BacktestConfig) -> list[set[str]]:
    """The events in kick-off order, cut into batches of at most `events_per_batch` events and
    `snapshot_rows_per_batch` snapshot rows (an event larger than that is a batch of its own)."""
    batches: list[set[str]] = []
    current: set[str] = set()
    rows = 0
    for event in ids:
        size = int(sizes.get(event, 0))
        if current and (
            len(current) >= config.events_per_batch or rows + size > config.snapshot_rows_per_batch
        ):
            batches.append(current)
            current, rows = set(), 0
        current.add(event)
        rows += size
    if current:
        batches.append(current)
    return batches


def run_backtest(
    warehouse: Warehouse,
    rules: Rules,
    config: BacktestConfig,
    *,
    policy_version: str | None = None,
    progress: Any = None,
) -> GradingRun:
    """Replay, bet, grade and sum up the history of the configured window. `progress`, when given,
    is called with a line of words after each batch."""
    started = now_utc()
    events = read_events(warehouse, config.since, config.until)
    ids = list(dict.fromkeys(events["canonical_event_id"]))
    graded: list[pd.DataFrame] = []
    skipped: Counter[str] = Counter()
    counts: Counter[str] = Counter(events=len(ids))
    batches = event_batches(ids, snapshot_sizes(warehouse, events), config)
    done = 0
    for batch in batches:
        batch_events = events.loc[events["canonical_event_id"].isin(batch)]
        ticks = read_ticks(warehouse, batch_events)
        kick_offs = dict(zip(batch_events["canonical_event_id"], batch_events["kick_off"], strict=False))
        found, shots = detect_history(ticks, rules, config.types)
        counts.update(f"detections_{d.type}" for d in found)
        bets, why = bets_from_detections(
            found,
            best_prices(shots, rules.exchange_commission),
            kick_offs=kick_offs,
            commission=rules.exchange_commission,
        )
        skipped.update(why)
        bets, repeats = first_signals(bets)
        if repeats:
            skipped["repeat of an earlier signal on the same selection"] += repeats
        parts = [bets]
        if config.strategy is not None:
            priced = pd.concat([ticks, read_aggregate_ticks(warehouse, batch_events)], ignore_index=True)
            state = state_before(priced, config.strategy.lead_minutes)
            parts.append(kaunitz_bets(state, config.strategy, rules.exchange_commission))
        filled = [p for p in parts if not p.empty]
        batch_bets = pd.concat(filled, ignore_index=True) if filled else bets
        names = event_names(ticks)
        batch_bets["event_name"] = batch_bets["canonical_event_id"].map(names)
        closes = closing_lines(ticks, rules.sharp_books)
        results = read_results(warehouse, batch)
        graded.append(grade(batch_bets, closes, results))
        counts["events_with_close"] += closes["canonical_event_id"].nunique()
        counts["events_with_result"] += len(results)
        done += len(batch)
        if progress is not None:
            progress(f"{done:,}/{len(ids):,} events: {sum(len(g) for g in graded):,} bets graded")
    bets = pd.concat(graded, ignore_index=True) if graded else pd.DataFrame(columns=GRADED_COLUMNS)
    counts["bets"] = len(bets)
    counts["signals"] = bets["signal_key"].nunique() if len(bets) else 0
    summary = summarize(bets, resamples=config.resamples, seed=config.seed)
    params: dict[str, Any] = {
        "rules_version": rules.version,
        "policy_version": policy_version or "",
        "since": "" if config.since is None else pd.Timestamp(config.since).isoformat(),
        "until": "" if config.until is None else pd.Timestamp(config.until).isoformat(),
        "types": ",".join(config.types),
        "sharp_books": ",".join(rules.sharp_books),
        "resamples": config.resamples,
        "seed": config.seed,
        "strategy": "kaunitz" if config.strategy else "none",
    }
    if config.strategy is not None:
        params |= {
            "kaunitz_alpha": config.strategy.alpha,
            "kaunitz_min_books": config.strategy.min_books,
            "kaunitz_lead_minutes": config.strategy.lead_minutes,
        }
    return GradingRun(
        run_id=new_run_id("backtest", started),
        source="backtest",
        started_at=started,
        finished_at=now_utc(),
        params=params,
        bets=bets,
        summary=summary,
        skipped=skipped,
        counts=dict(counts),
    )
