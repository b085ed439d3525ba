"""Which bookmakers' events are the same match: same sport, kick-off within a tolerance, both
team names alike after normalization and aliases. Matches that are not clear are reported, never
guessed: an ambiguous event (two candidates about as good) and a home/away swap stay unmatched."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process

from oddly.matching.aliases import canonical_team

EVENT_COLUMNS = ("bookmaker", "source_event_id", "sport", "home", "away", "starts_at")


@dataclass(frozen=True)
class MatchSettings:
    tolerance_minutes: float = 15.0
    # Both teams must score at least this (rapidfuzz token_sort_ratio, 0–100) after aliases.
    threshold: float = 86.0
    # A runner-up within this many points of the best makes the match ambiguous.
    margin: float = 4.0
    # Books that anchor canonical events first (their names become the canonical ones).
    reference_books: tuple[str, ...] = ("pinnacle", "betfair_ex")


@dataclass
class MatchResult:
    mapping: pd.DataFrame  # bookmaker, source_event_id, canonical_event_id, method, score
    unmatched: list[dict[str, Any]] = field(default_factory=list)
    ambiguous: list[dict[str, Any]] = field(default_factory=list)


def canonical_event_id(sport: str, home: str, away: str, starts_at: pd.Timestamp) -> str:
    """Id from the anchor event: sport, canonical names and kick-off minute (kept from run to run
    through the previous mapping, even if the anchor's kick-off is corrected later)."""
    key = f"{sport}|{home}|{away}|{starts_at:%Y-%m-%dT%H:%M}"
    return "ev_" + hashlib.sha1(key.encode()).hexdigest()[:16]


def match_events(
    events: pd.DataFrame,
    aliases: dict[str, str],
    settings: MatchSettings | None = None,
    previous: pd.DataFrame | None = None,
) -> MatchResult:
    """Group events of different books into canonical events.

    `events` has EVENT_COLUMNS (starts_at as UTC timestamps). `previous` (a former mapping) keeps
    the canonical ids of events already matched, so ids are stable from run to run."""
    settings = settings or MatchSettings()
    frame = events.loc[:, list(EVENT_COLUMNS)].drop_duplicates(["bookmaker", "source_event_id"]).copy()
    frame["starts_at"] = pd.to_datetime(frame["starts_at"], utc=True)
    frame["home_c"] = [canonical_team(n, aliases) for n in frame["home"]]
    frame["away_c"] = [canonical_team(n, aliases) for n in frame["away"]]
    order = {b: i for i, b in enumerate(settings.reference_books)}
    frame["_rank"] = [order.get(b, len(order)) for b in frame["bookmaker"]]
    frame = frame.sort_values(["_rank", "bookmaker", "starts_at", "source_event_id"]).reset_index(drop=True)

    # canonical events: id → (sport, home_c, away_c, starts_at, books already in it)
    canon: dict[str, dict[str, Any]] = {}
    rows: list[dict[str, Any]] = []
    result = MatchResult(mapping=pd.DataFrame())
    known = _previous_ids(previous)
    for book, group in frame.groupby("bookmaker", sort=False):
        pending = []
        for event in group.itertuples(index=False):
            kept = known.get((book, event.source_event_id))
            if kept is not None:
                _join(canon, kept, event, book)
                rows.append(_row(event, kept, "kept", 100.0))
            else:
                pending.append(event)
        for event, decision in _decide(pending, canon, book, settings):
            kind, target, score, detail = decision
            if kind == "match":
                _join(canon, target, event, book)
                rows.append(_row(event, target, "exact" if score >= 100 else "fuzzy", score))
                continue
            if kind == "ambiguous":
                result.ambiguous.append({**_describe(event), **detail})
                continue
            if kind in ("swapped", "weak"):
                result.unmatched.append({**_describe(event), **detail})
            new_id = canonical_event_id(event.sport, event.home_c, event.away_c, event.starts_at)
            while new_id in canon:
                new_id += "_"  # another event with the same names and kick-off minute
            _join(canon, new_id, event, book)
            rows.append(_row(event, new_id, "new", 100.0 if kind == "new" else score))
    result.mapping = pd.DataFrame(
        rows,
        columns=[
            "bookmaker",
            "source_event_id",
            "canonical_event_id",
            "method",
            "score",
            "sport",
            "home_normalized",
            "away_normalized",
            "starts_at",
        ],
    )
    return result


def _previous_ids(previous: pd.DataFrame | None) -> dict[tuple[str, str], str]:
    if previous is None or previous.empty:
        return {}
    return {
        (b, str(e)): c
        for b, e, c in previous[["bookmaker", "source_event_id", "canonical_event_id"]].itertuples(
            index=False
        )
    }


def _join(canon: dict[str, dict[str, Any]], cid: str, event: Any, book: str) -> None:
    entry = canon.setdefault(
        cid,
        {
            "sport": event.sport,
            "home_c": event.home_c,
            "away_c": event.away_c,
            "starts_at": event.starts_at,
            "books": set(),
        },
    )
    entry["books"].add(book)


def _row(event: Any, cid: str, method: str, score: float) -> dict[str, Any]:
    return {
        "bookmaker": event.bookmaker,
        "source_event_id": event.source_event_id,
        "canonical_event_id": cid,
        "method": method,
        "score": round(float(score), 1),
        "sport": event.sport,
        "home_normalized": event.home_c,
        "away_normalized": event.away_c,
        "starts_at": event.starts_at,
    }


def _describe(event: Any) -> dict[str, Any]:
    return {
        "bookmaker": event.bookmaker,
        "source_event_id": event.source_event_id,
        "home": event.home,
        "away": event.away,
        "starts_at": event.starts_at,
    }


def _decide(
    pending: list[Any], canon: dict[str, dict[str, Any]], book: str, settings: MatchSettings
) -> list[tuple[Any, tuple[str, str, float, dict[str, Any]]]]:
    """For one book's unmatched events: match / ambiguous / swapped / weak / new, with one
    canonical event taken by at most one event of the book (the best-scoring one)."""
    if not pending:
        return []
    ids = [cid for cid, c in canon.items() if book not in c["books"]]
    if not ids:
        return [(e, ("new", "", 0.0, {})) for e in pending]
    home_c = [canon[c]["home_c"] for c in ids]
    away_c = [canon[c]["away_c"] for c in ids]
    ev_home = [e.home_c for e in pending]
    ev_away = [e.away_c for e in pending]
    score_h = process.cdist(ev_home, home_c, scorer=fuzz.token_sort_ratio, workers=1)
    score_a = process.cdist(ev_away, away_c, scorer=fuzz.token_sort_ratio, workers=1)
    swap_h = process.cdist(ev_home, away_c, scorer=fuzz.token_sort_ratio, workers=1)
    swap_a = process.cdist(ev_away, home_c, scorer=fuzz.token_sort_ratio, workers=1)
    starts = np.array([canon[c]["starts_at"].value for c in ids])
    sports = np.array([canon[c]["sport"] for c in ids])
    minutes = np.abs(np.array([e.starts_at.value for e in pending])[:, None] - starts[None, :]) / 6e10
    feasible = (minutes <= settings.tolerance_minutes) & (
        np.array([e.sport for e in pending])[:, None] == sports
    )
    score = np.where(feasible, np.minimum(score_h, score_a), -1.0)
    swapped = np.where(feasible, np.minimum(swap_h, swap_a), -1.0)

    decisions: dict[int, tuple[str, str, float, dict[str, Any]]] = {}
    claims: list[tuple[float, int, int]] = []
    for i in range(len(pending)):
        ranked = np.argsort(-score[i], kind="stable")
        best = int(ranked[0])
        s1 = float(score[i, best])
        second = int(ranked[1]) if len(ranked) > 1 else best
        runner_up = float(score[i, second]) if second != best else -1.0
        if s1 >= settings.threshold and runner_up >= s1 - settings.margin:
            decisions[i] = (
                "ambiguous",
                "",
                s1,
                {
                    "reason": "two candidates about as good",
                    "candidates": [ids[best], ids[second]],
                    "scores": [round(s1, 1), round(runner_up, 1)],
                },
            )
        elif s1 >= settings.threshold:
            claims.append((s1, i, best))
        elif float(swapped[i].max()) >= settings.threshold:
            j = int(np.argmax(swapped[i]))
            decisions[i] = (
                "swapped",
                "",
                float(swapped[i, j]),
                {"reason": "home and away swapped against another book", "candidate": ids[j]},
            )
        elif s1 >= 60:
            decisions[i] = (
                "weak",
                "",
                s1,
                {
                    "reason": "best candidate below the threshold",
                    "candidate": ids[best],
                    "score": round(s1, 1),
                },
            )
        else:
            decisions[i] = ("new", "", 0.0, {})
    taken: set[int] = set()
    for s1, i, j in sorted(claims, reverse=True):
        if j in taken:  # the book already has a better event for that canonical event
            decisions[i] = (
                "ambiguous",
                "",
                s1,
                {
                    "reason": "another event of this book matched the same event",
                    "candidates": [ids[j]],
                    "scores": [round(s1, 1)],
                },
            )
        else:
            taken.add(j)
            decisions[i] = ("match", ids[j], s1, {})
    return [(pending[i], decisions[i]) for i in range(len(pending))]
