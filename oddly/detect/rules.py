"""The rules file: every detector's thresholds, validated, under one version.

The version is stored with every detection, so a detection can always be traced to the thresholds
that produced it (and the rule detectors scored per version). Change a threshold, bump the version.
Unknown keys are errors, so a misspelt threshold cannot silently fall back to its default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from oddly.versioned_file import problems, read_mapping, version_text


class RulesError(ValueError):
    """The rules file is missing or wrong; the message names the file, the field and the fix."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True


class SharpDropRules(_Section):
    """One tick shortening a price: both thresholds must be met."""

    # Implied-probability points gained in one tick: 100 x (1 / price - 1 / previous price).
    min_probability_points: float = Field(3.0, gt=0, le=100)
    # Relative fall of the price: 1 - price / previous price.
    min_price_drop: float = Field(0.05, gt=0, lt=1)
    # Only the sharp reference books' drops (sharp_books); false: every book's.
    sharp_books_only: bool = False


class SteamRules(_Section):
    """Rows of marts.fct_steam_moves (the mart already needs dbt var steam_min_books books)."""

    min_books: int = Field(3, ge=2)
    # Mean size of the books' moves, in implied-probability points (either direction).
    min_mean_probability_points: float = Field(1.0, gt=0, le=100)
    require_sharp_first: bool = False


class OutOfLineRules(_Section):
    """One book's no-vig probability against the mean of the other books' (leave-one-out)."""

    min_probability_points: float = Field(3.0, gt=0, le=100)
    min_other_books: int = Field(2, ge=1)
    # ... and this many of the others' standard deviations away, so the books agreeing with each
    # other are not flagged for differing from the outlier (others in perfect agreement: any gap).
    min_z_score: float = Field(2.0, ge=0)
    # The sharp reference moves first: the others lagging it is their staleness, not its being
    # out of line, so it is judged only when this is true (it still counts in the consensus).
    judge_sharp_books: bool = False


class ValueRules(_Section):
    """Rows of marts.fct_value_bets: a soft book's price against the sharp book's fair price."""

    # price x fair probability - 1
    min_edge: float = Field(0.02, gt=0, lt=10)
    # Longshots above this price are left out (their fair price is the least certain); null: none.
    max_price: float | None = Field(None, gt=1)


class ArbitrageRules(_Section):
    """Best net prices across books over a complete outcome set, implying under 100 %."""

    # 1 - sum(1 / best net price): the guaranteed return per unit staked.
    min_margin: float = Field(0.005, gt=0, lt=1)


class StaleLineRules(_Section):
    """A book that has not changed a market while the others moved, and now disagrees with them."""

    # Seconds between the book's last change on the market and the latest change of another book.
    min_stale_seconds: float = Field(120.0, gt=0)
    # ... and at least this many times the book's usual staleness (fct_bookmaker_quality), when known.
    normal_multiple: float = Field(3.0, ge=1)
    # How far its no-vig probability must be from the other books' mean, in points.
    min_probability_points: float = Field(2.0, gt=0, le=100)
    min_other_books: int = Field(1, ge=1)


class Rules(BaseModel):
    """All detector thresholds and the references they share."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1, max_length=64)
    # Books whose prices are the sharp reference (mirror dbt var sharp_books).
    sharp_books: tuple[str, ...] = ("pinnacle", "betfair_ex")
    # Commission an exchange takes from net winnings, by book (mirror dbt var exchange_commission).
    exchange_commission: dict[str, float] = Field(default_factory=lambda: {"betfair_ex": 0.05})
    sharp_drop: SharpDropRules = Field(default_factory=SharpDropRules)
    steam: SteamRules = Field(default_factory=SteamRules)
    out_of_line: OutOfLineRules = Field(default_factory=OutOfLineRules)
    value: ValueRules = Field(default_factory=ValueRules)
    arbitrage: ArbitrageRules = Field(default_factory=ArbitrageRules)
    stale_line: StaleLineRules = Field(default_factory=StaleLineRules)

    _version_text = field_validator("version", mode="before")(version_text)

    @field_validator("exchange_commission")
    @classmethod
    def _commission_range(cls, rates: dict[str, float]) -> dict[str, float]:
        bad = {book: rate for book, rate in rates.items() if not 0 <= rate < 1}
        if bad:
            raise ValueError(f"commission must be in [0, 1) (a share of net winnings); got {bad}")
        return rates

    @model_validator(mode="after")
    def _sharp_books_named(self) -> Rules:
        if not self.sharp_books and (self.sharp_drop.sharp_books_only or self.steam.require_sharp_first):
            raise ValueError("sharp_books is empty, but a rule needs the sharp reference")
        return self


def load_rules(path: Path) -> Rules:
    """The rules file at `path`, validated; RulesError says what is wrong and where."""
    raw = read_mapping(path, "rules file", "set ODDLY_RULES_FILE or copy config/rules.yaml", RulesError)
    return parse_rules(raw, source=str(path))


def rules_for_ingestion(path: Path) -> tuple[Rules | None, str | None]:
    """The rules an ingestion run detects with, or None and why not: a broken rules file turns
    the detectors off for the run (and says so in its report), it never stops the ingestion."""
    try:
        return load_rules(path), None
    except RulesError as exc:
        return None, f"detectors off: {exc}"


def parse_rules(raw: dict[str, Any], source: str = "rules") -> Rules:
    try:
        return Rules.model_validate(raw)
    except ValidationError as exc:
        raise RulesError(f"rules file {source} is invalid:\n{problems(exc)}") from exc
