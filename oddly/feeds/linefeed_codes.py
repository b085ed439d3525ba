"""The 1xBet-platform (LineFeed) market codes: group `G` and outcome type `T` → canonical market,
outcome and how the line `P` is read. Codes not listed here are kept as raw codes."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import orjson

from oddly.model import Market, Outcome

# How `P` becomes the canonical line: None = the market has no line; +1 = P as is; -1 = negated
# (the away side of a handicap quotes its own handicap; we store the home side's line).
LineSign = int | None


@dataclass(frozen=True)
class Code:
    market: Market
    outcome: Outcome
    line_sign: LineSign
    # A handicap quoted without P is the level line (0); a total without P is unreadable.
    default_line: float | None = None


def _pair(
    market: Market, first: int, second: int, a: Outcome, b: Outcome, sign_b: int, default: float | None
) -> dict[int, Code]:
    return {first: Code(market, a, 1, default), second: Code(market, b, sign_b, default)}


# G → {T → Code}
CODES: dict[int, dict[int, Code]] = {
    1: {
        1: Code(Market.ONE_X_TWO, Outcome.HOME, None),
        2: Code(Market.ONE_X_TWO, Outcome.DRAW, None),
        3: Code(Market.ONE_X_TWO, Outcome.AWAY, None),
    },
    8: {
        4: Code(Market.DOUBLE_CHANCE, Outcome.HOME_DRAW, None),
        5: Code(Market.DOUBLE_CHANCE, Outcome.HOME_AWAY, None),
        6: Code(Market.DOUBLE_CHANCE, Outcome.DRAW_AWAY, None),
    },
    2: _pair(Market.HANDICAP, 7, 8, Outcome.HOME, Outcome.AWAY, -1, 0.0),
    17: _pair(Market.TOTAL, 9, 10, Outcome.OVER, Outcome.UNDER, 1, None),
    15: _pair(Market.TEAM_TOTAL_HOME, 11, 12, Outcome.OVER, Outcome.UNDER, 1, None),
    62: _pair(Market.TEAM_TOTAL_AWAY, 13, 14, Outcome.OVER, Outcome.UNDER, 1, None),
    19: {180: Code(Market.BTTS, Outcome.YES, None), 181: Code(Market.BTTS, Outcome.NO, None)},
    99: _pair(Market.ASIAN_TOTAL, 3827, 3828, Outcome.OVER, Outcome.UNDER, 1, None),
    2854: _pair(Market.ASIAN_HANDICAP, 3829, 3830, Outcome.HOME, Outcome.AWAY, -1, 0.0),
}
# Flat (G, T) → Code for the parser's inner loop.
CODE_BY_GT: dict[tuple[int, int], Code] = {
    (g, t): code for g, by_t in CODES.items() for t, code in by_t.items()
}

SPORTS: dict[int, str] = {1: "football", 2: "ice_hockey", 3: "basketball", 4: "tennis"}


def raw_market(g: object) -> str:
    return f"raw:g{g}"


def raw_outcome(t: object) -> str:
    return f"raw:t{t}"


@dataclass
class CodeNames:
    """Readable names of the platform's codes, from the recorded dictionaries when available."""

    groups: dict[int, str]
    types: dict[int, str]

    def describe(self, g: int, t: int) -> str:
        group = self.groups.get(g, "?")
        kind = self.types.get(t, "?")
        return f"{group}: {kind}"


def load_code_names(directory: Path) -> CodeNames:
    """Read `1xbet_groups_names_en.json` (G → {N}) and `1xbet_bets_names_en.json` (T → {N})."""
    groups = orjson.loads((directory / "1xbet_groups_names_en.json").read_bytes())
    bets = orjson.loads((directory / "1xbet_bets_names_en.json").read_bytes())
    return CodeNames(
        groups={int(k): str(v.get("N", "")) for k, v in groups.items()},
        types={
            int(k): str(v.get("N", "")).replace("^1^", "Home").replace("^2^", "Away") for k, v in bets.items()
        },
    )


def describe_unmapped(unmapped: Counter[str], names: CodeNames | None, top: int = 10) -> list[str]:
    """Lines like "g136/t731 (Correct Score: 3-0) ×12" for the most frequent unknown codes."""
    lines = []
    for code, count in unmapped.most_common(top):
        label = ""
        if names is not None:
            g, t = (int(part[1:]) for part in code.split("/"))
            label = f" ({names.describe(g, t)})"
        lines.append(f"{code}{label} ×{count}")
    return lines
