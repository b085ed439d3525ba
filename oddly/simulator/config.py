"""Knobs of the market simulator: books, scale, live share, scenario rate, clock, seed."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator


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


class AggregatorBook(BookSpec):
    """A book only the simulated Odds API lists (a `/v4/sports/{sport}/odds` bookmaker key), priced
    from the same latent market as the LineFeed books but never served through LineFeed, so no
    book reaches the demo through two feeds."""

    title: str
    regions: tuple[str, ...] = ("eu",)
    exchange: bool = Field(False, description="an exchange: also quotes lay prices (market h2h_lay)")
    # A lag beyond the slowest LineFeed book's is priced at that one (the history the market keeps).


# Real Odds API keys; the agent maps betfair_ex_eu to the project's sharp reference betfair_ex.
DEFAULT_AGGREGATOR_BOOKS = (
    AggregatorBook(
        name="betfair_ex_eu",
        title="Betfair",
        margin=0.012,
        lag_seconds=0.0,
        sharp=True,
        regions=("eu",),
        exchange=True,
    ),
    AggregatorBook(
        name="williamhill", title="William Hill", margin=0.055, lag_seconds=25.0, regions=("uk", "eu")
    ),
    AggregatorBook(name="unibet_eu", title="Unibet", margin=0.045, lag_seconds=10.0, regions=("eu",)),
    AggregatorBook(name="marathonbet", title="Marathon Bet", margin=0.035, lag_seconds=5.0, regions=("eu",)),
    AggregatorBook(name="paddypower", title="Paddy Power", margin=0.065, lag_seconds=35.0, regions=("uk",)),
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
    # The simulated Odds API (`/oddsapi/v4/…`): its own books, its request quota, and the key it
    # takes (any non-empty `apiKey` when unset).
    aggregator_books: tuple[AggregatorBook, ...] = DEFAULT_AGGREGATOR_BOOKS
    odds_api_quota: int = Field(10_000_000, ge=0, description="usage credits the simulated key starts with")
    odds_api_key: str | None = None

    @model_validator(mode="after")
    def _book_names_unique(self) -> SimConfig:
        names = [b.name for b in (*self.books, *self.aggregator_books)]
        if len(set(names)) < len(names):
            raise ValueError(f"book names must be unique across books and aggregator_books: {names}")
        return self
