"""The simulated market catalogue and the true probabilities of every outcome, from a Poisson
goal model per event (vectorized over events)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# Final goals per team considered; the tail beyond is negligible for football rates.
MAX_GOALS = 11


@dataclass(frozen=True)
class MarketSpec:
    """One market as the LineFeed platform codes it: group G, outcome types T, line P."""

    g: int
    types: tuple[int, ...]
    kind: str  # "1x2" | "dc" | "total" | "team_home" | "team_away" | "btts" | "handicap" | "raw"
    line: float | None = None
    main: bool = False


@dataclass
class Grid:
    """Final scores of every event on a K×K grid with their joint probability."""

    home: np.ndarray  # (E, K, 1) final home goals
    away: np.ndarray  # (E, 1, K) final away goals
    joint: np.ndarray  # (E, K, K)

    def p(self, mask: np.ndarray) -> np.ndarray:
        return (self.joint * mask).sum(axis=(1, 2))


def _poisson(rate: np.ndarray) -> np.ndarray:
    """P(k goals) for k < MAX_GOALS per event, renormalized over the truncated range."""
    k = np.arange(MAX_GOALS)
    log_factorial = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, MAX_GOALS)))])
    log_pmf = -rate[:, None] + k[None, :] * np.log(np.maximum(rate[:, None], 1e-12)) - log_factorial[None, :]
    # scaled by each row's largest term first: a rate far above MAX_GOALS would otherwise underflow
    # every term to 0 and divide 0 by 0
    pmf = np.exp(log_pmf - log_pmf.max(axis=1, keepdims=True))
    return pmf / pmf.sum(axis=1, keepdims=True)


def grid(
    rate_home: np.ndarray, rate_away: np.ndarray, goals_home: np.ndarray, goals_away: np.ndarray
) -> Grid:
    """Score grid given the expected goals still to come and the goals already scored."""
    k = np.arange(MAX_GOALS)
    pmf_h, pmf_a = _poisson(rate_home), _poisson(rate_away)
    joint = pmf_h[:, :, None] * pmf_a[:, None, :]
    return Grid(
        home=(goals_home[:, None] + k[None, :])[:, :, None],
        away=(goals_away[:, None] + k[None, :])[:, None, :],
        joint=joint,
    )


def _two_way(g: Grid, win: np.ndarray, lose: np.ndarray) -> np.ndarray:
    """Two outcomes with a push refunded: probabilities renormalized without the push."""
    a, b = g.p(win), g.p(lose)
    total = np.maximum(a + b, 1e-12)
    return np.stack([a / total, b / total], axis=1)


def _quarter(fn: Callable[[Grid, float], np.ndarray], g: Grid, line: float) -> np.ndarray:
    """A quarter line (2.25, -0.75 …) splits the stake over the two neighbouring lines."""
    if abs(line * 4 - round(line * 4)) < 1e-9 and abs(line * 2 - round(line * 2)) > 1e-9:
        return (fn(g, line - 0.25) + fn(g, line + 0.25)) / 2
    return fn(g, line)


def _total(g: Grid, line: float) -> np.ndarray:
    total = g.home + g.away
    return _two_way(g, total > line, total < line)


def _handicap(g: Grid, line: float) -> np.ndarray:
    margin = g.home + line - g.away
    return _two_way(g, margin > 0, margin < 0)


def probabilities(spec: MarketSpec, g: Grid) -> np.ndarray:
    """True probability of each outcome of `spec` for every event: shape (E, len(spec.types))."""
    h, a = g.home, g.away
    line = spec.line if spec.line is not None else 0.0
    if spec.kind == "1x2":
        return np.stack([g.p(h > a), g.p(h == a), g.p(h < a)], axis=1)
    if spec.kind == "dc":
        p = probabilities(MarketSpec(1, (1, 2, 3), "1x2"), g)
        return np.stack([p[:, 0] + p[:, 1], p[:, 0] + p[:, 2], p[:, 1] + p[:, 2]], axis=1)
    if spec.kind == "total":
        return _quarter(_total, g, line)
    if spec.kind == "handicap":
        return _quarter(_handicap, g, line)
    if spec.kind == "team_home":
        return _two_way(g, h > line, h < line)
    if spec.kind == "team_away":
        return _two_way(g, a > line, a < line)
    if spec.kind == "btts":
        both = (h > 0) & (a > 0)
        return np.stack([g.p(both), 1 - g.p(both)], axis=1)
    # Markets the agent does not know (raw codes): "home scores at least N" style yes/no.
    at_least = (h >= line) if spec.g % 2 else (a >= line)
    yes = g.p(at_least)
    return np.stack([yes, 1 - yes], axis=1)


def catalogue(n: int) -> list[MarketSpec]:
    """The first `n` markets of an event, main markets first, then alternative lines, then
    markets with codes the canonical vocabulary does not know (as real feeds have)."""
    main = [
        MarketSpec(1, (1, 2, 3), "1x2", main=True),
        MarketSpec(17, (9, 10), "total", 2.5, main=True),
        MarketSpec(2, (7, 8), "handicap", -0.5, main=True),
        MarketSpec(19, (180, 181), "btts", main=True),
        MarketSpec(8, (4, 5, 6), "dc", main=True),
        MarketSpec(15, (11, 12), "team_home", 1.5, main=True),
        MarketSpec(62, (13, 14), "team_away", 0.5, main=True),
        MarketSpec(99, (3827, 3828), "total", 2.25, main=True),
        MarketSpec(2854, (3829, 3830), "handicap", -0.25, main=True),
    ]
    alternatives: list[MarketSpec] = []
    for step in range(1, 40):
        offset = 0.5 * ((step + 1) // 2) * (1 if step % 2 else -1)
        alternatives.append(MarketSpec(17, (9, 10), "total", 2.5 + offset))
        alternatives.append(MarketSpec(2, (7, 8), "handicap", -0.5 + offset))
        alternatives.append(MarketSpec(15, (11, 12), "team_home", 1.5 + offset))
        alternatives.append(MarketSpec(62, (13, 14), "team_away", 0.5 + offset))
    alternatives = [
        m
        for m in alternatives
        if m.line is not None
        and -6 <= m.line <= 9
        and not (m.kind in ("total", "team_home", "team_away") and m.line < 0.5)
    ]
    raw = [MarketSpec(136 + 2 * i, (731 + 2 * i, 732 + 2 * i), "raw", float(1 + i % 4)) for i in range(400)]
    return (main + alternatives + raw)[:n]
