"""Knobs of the market simulator: books, scale, live share, scenario rate, clock, seed."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class BookSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    margin: float = Field(0.05, ge=0.0, le=0.2, description="overround of a two/three-way market")
    lag_seconds: float = Field(20.0, ge=0.0, description="how long the book takes to follow the true price")
    sharp: bool = False


DEFAULT_BOOKS = (
    BookSpec(name="pinnacle", margin=0.025, lag_seconds=0.0, sharp=True),
    BookSpec(name="22bet", margin=0.06, lag_seconds=15.0),
    BookSpec(name="1xbet", margin=0.055, lag_seconds=20.0),
    BookSpec(name="melbet", margin=0.07, lag_seconds=30.0),
    BookSpec(name="betwinner", margin=0.08, lag_seconds=45.0),
)


class SimConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: int = 7
    books: tuple[BookSpec, ...] = DEFAULT_BOOKS
    n_events: int = Field(40, ge=1, le=100_000)
    markets_per_event: int = Field(12, ge=1, le=400, description="two/three-way markets per event")
    live_share: float = Field(0.25, ge=0.0, le=1.0)
    step_seconds: float = Field(1.0, gt=0.0)
    # Injected labeled scenarios per hour of simulated time, over all events.
    scenarios_per_hour: float = Field(120.0, ge=0.0)
    # Prices move in steps, as books re-price on news: each event moves this often per hour,
    # by a random amount of this size (log of its scoring rates). A handful an hour is a pre-match
    # line's pace; much more and every lagging book's catch-up reads as a fresh drop or steam.
    moves_per_hour: float = Field(8.0, ge=0.0)
    move_size: float = Field(0.03, ge=0.0)
    manual_clock: bool = False
    start: datetime | None = Field(None, description="simulated time zero (UTC); now when unset")
