"""The alert policy: how a detection or a model score becomes green, yellow or red, and when the same
alert may be sent again. Configuration as data (config/alert_policy.yaml), validated so that a
misspelt key or an impossible threshold is an error naming the field, never a silent default.
Its version is written with every decision, so each one can be traced to the policy that made it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from oddly.detect.detection import DETECTION_TYPES
from oddly.versioned_file import problems, read_mapping, version_text

ANOMALY = "anomaly"  # the alert type of a model score
ALERT_TYPES = (*DETECTION_TYPES, ANOMALY)


class PolicyError(ValueError):
    """The alert policy file is missing or wrong; the message names the file, the field and the fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TypePolicy(_Strict):
    """Thresholds of one alert type. A level needs every threshold set for it; None: not checked."""

    enabled: bool = True
    yellow_strength: float | None = Field(1.0, gt=0)
    red_strength: float | None = Field(None, gt=0)  # None: never red
    yellow_score: float | None = None  # model score (type "anomaly"); unbounded, higher = stranger
    red_score: float | None = None
    yellow_edge: float | None = Field(None, gt=-1)  # value edge or arbitrage margin, a fraction
    red_edge: float | None = Field(None, gt=-1)
    cooldown_minutes: float | None = Field(None, ge=0)  # None: the policy's cooldown

    @model_validator(mode="after")
    def _red_above_yellow(self) -> TypePolicy:
        for measure in ("strength", "score", "edge"):
            yellow, red = getattr(self, f"yellow_{measure}"), getattr(self, f"red_{measure}")
            if yellow is not None and red is not None and red < yellow:
                raise ValueError(f"red_{measure} ({red}) must be at least yellow_{measure} ({yellow})")
        return self


class KickoffPolicy(_Strict):
    red_within_hours: float | None = Field(24.0, gt=0)  # None: red at any distance
    yellow_within_hours: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _yellow_wider(self) -> KickoffPolicy:
        red, yellow = self.red_within_hours, self.yellow_within_hours
        if red is not None and yellow is not None and yellow < red:
            raise ValueError(f"yellow_within_hours ({yellow}) must be at least red_within_hours ({red})")
        return self


class LivePolicy(_Strict):
    red: bool = True
    yellow: bool = True


class CooldownPolicy(_Strict):
    minutes: float = Field(15.0, ge=0)
    # What counts as the same alert inside the cooldown. "event": one event × alert type — news
    # moves every market of a match at every book within seconds, and a bettor wants one message
    # about it (the strongest; the rest are held and recorded). "selection": each market × line ×
    # outcome (× book for one-book types) on its own.
    per: Literal["event", "selection"] = "event"
    # A repeat inside the cooldown is re-sent when its strength (score for anomalies) is at least
    # this many times the last sent one's.
    resend_strength_ratio: float = Field(1.5, ge=1)
    resend_on_severity_upgrade: bool = True


class AlertPolicy(_Strict):
    version: str = Field(min_length=1, max_length=64)
    types: dict[str, TypePolicy] = Field(default_factory=dict)
    kickoff: KickoffPolicy = Field(default_factory=KickoffPolicy)
    live: LivePolicy = Field(default_factory=LivePolicy)
    red_max_age_minutes: float | None = Field(10.0, gt=0)
    cooldown: CooldownPolicy = Field(default_factory=CooldownPolicy)

    _version_text = field_validator("version", mode="before")(version_text)

    @field_validator("types")
    @classmethod
    def _known_types(cls, types: dict[str, TypePolicy]) -> dict[str, TypePolicy]:
        unknown = sorted(set(types) - set(ALERT_TYPES))
        if unknown:
            raise ValueError(f"unknown alert type(s) {', '.join(unknown)}; known: {', '.join(ALERT_TYPES)}")
        anomaly = types.get(ANOMALY)
        if anomaly is not None and anomaly.yellow_score is None and anomaly.red_score is None:
            raise ValueError("anomaly needs yellow_score and/or red_score (model scores are not strengths)")
        return types

    def for_type(self, alert_type: str) -> TypePolicy | None:
        """The thresholds of `alert_type`; None when the policy does not list it (recorded only)."""
        return self.types.get(alert_type)

    def cooldown_minutes(self, alert_type: str) -> float:
        own = self.types.get(alert_type)
        if own is not None and own.cooldown_minutes is not None:
            return own.cooldown_minutes
        return self.cooldown.minutes

    @property
    def longest_cooldown_minutes(self) -> float:
        """How far back a decision can still hold a repeat: what to read from the audit trail."""
        own = [t.cooldown_minutes for t in self.types.values() if t.cooldown_minutes is not None]
        return max([self.cooldown.minutes, *own])


def load_policy(path: Path) -> AlertPolicy:
    """The alert policy at `path`, validated; PolicyError says what is wrong and where."""
    hint = "set ODDLY_ALERT_POLICY_FILE or copy config/alert_policy.yaml"
    return parse_policy(read_mapping(path, "alert policy file", hint, PolicyError), source=str(path))


def parse_policy(raw: dict[str, Any], source: str = "alert policy") -> AlertPolicy:
    try:
        return AlertPolicy.model_validate(raw)
    except ValidationError as exc:
        raise PolicyError(f"alert policy file {source} is invalid:\n{problems(exc)}") from exc
