"""Event matching: real name pairs, near misses that must stay apart, time tolerance, ambiguity
and swaps reported instead of guessed, stable ids, and the simulator's per-book spellings."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from oddly.matching.aliases import canonical_team, load_aliases
from oddly.matching.matcher import MatchSettings, match_events
from oddly.matching.names import normalize_team
from oddly.simulator.config import SimConfig
from oddly.simulator.market import Market

ALIASES = load_aliases()
KICK_OFF = pd.Timestamp("2026-11-22 15:00", tz="UTC")

# Real spellings of one club at different bookmakers and data providers.
SAME_CLUB = [
    ("Man Utd", "Manchester United FC"),
    ("Manchester United", "Man United"),
    ("Man City", "Manchester City FC"),
    ("Tottenham Hotspur", "Spurs"),
    ("Tottenham", "Tottenham Hotspur FC"),
    ("Wolverhampton Wanderers", "Wolves"),
    ("Newcastle Utd", "Newcastle United"),
    ("Nott'm Forest", "Nottingham Forest"),
    ("Brighton & Hove Albion", "Brighton"),
    ("West Ham Utd", "West Ham United"),
    ("Arsenal FC", "Arsenal"),
    ("Internazionale", "Inter"),
    ("Inter Milan", "FC Internazionale Milano"),
    ("AC Milan", "A.C. Milan"),
    ("Milan", "AC Milan"),
    ("SSC Napoli", "Napoli"),
    ("AS Roma", "Roma"),
    ("Juventus FC", "Juventus"),
    ("Hellas Verona", "Verona"),
    ("Bayern München", "FC Bayern Munich"),
    ("Bayern Munich", "Bayern"),
    ("Borussia Mönchengladbach", "Gladbach"),
    ("B. Monchengladbach", "Borussia Monchengladbach"),
    ("BV Borussia 09 Dortmund", "Dortmund"),
    ("Bayer 04 Leverkusen", "Leverkusen"),
    ("1. FC Köln", "FC Koln"),
    ("1. FC Cologne", "Köln"),
    ("Eintracht Frankfurt", "E. Frankfurt"),
    ("Atlético de Madrid", "Atletico Madrid"),
    ("Atl. Madrid", "Club Atlético de Madrid"),
    ("Athletic Club", "Athletic Bilbao"),
    ("Real Madrid CF", "R. Madrid"),
    ("FC Barcelona", "Barça"),
    ("Real Betis Balompié", "Betis"),
    ("Sevilla FC", "FC Sevilla"),
    ("Deportivo Alavés", "Alaves"),
    ("Paris Saint-Germain", "PSG"),
    ("Paris SG", "Paris Saint Germain"),
    ("Sporting CP", "Sporting Lisbon"),
    ("İmişli", "Imishli"),
    ("Qarabağ", "Karabakh Agdam"),
    ("Kəpəz", "Kapaz"),
    ("Neftçi", "Neftchi Baku"),
    ("Saint-Étienne", "St Etienne"),
]
# Different clubs whose names look alike.
DIFFERENT_CLUBS = [
    ("Manchester United", "Manchester City"),
    ("Real Madrid", "Real Betis"),
    ("Inter", "Inter Miami"),
    ("Sporting CP", "Sporting Gijón"),
    ("Bayern München", "Bayer Leverkusen"),
    ("AC Milan", "AS Roma"),
    ("Borussia Dortmund", "Borussia Mönchengladbach"),
    ("Athletic Bilbao", "Atletico Madrid"),
    ("Newcastle United", "West Ham United"),
    ("Real Sociedad", "Real Madrid"),
]


def events(*rows: tuple[str, str, str, str, pd.Timestamp]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"bookmaker": b, "source_event_id": i, "sport": "football", "home": h, "away": a, "starts_at": t}
            for b, i, h, a, t in rows
        ]
    )


def canonical_of(result, book: str, event_id: str) -> str:  # type: ignore[no-untyped-def]
    row = result.mapping[(result.mapping.bookmaker == book) & (result.mapping.source_event_id == event_id)]
    return str(row.canonical_event_id.iloc[0])


def test_normalization() -> None:
    assert normalize_team("1. FC Köln") == "koln"
    assert normalize_team("Man Utd") == "manchester united"
    assert normalize_team("İmişli") == "imisli"
    assert normalize_team("A.C. Milan") == normalize_team("AC Milan") == "milan"
    assert normalize_team("Bayer 04 Leverkusen") == "bayer leverkusen"


@pytest.mark.parametrize(("a", "b"), SAME_CLUB)
def test_real_spellings_of_one_match_are_matched(a: str, b: str) -> None:
    result = match_events(
        events(("pinnacle", "1", a, "Opponent FC", KICK_OFF), ("22bet", "9", b, "Opponent", KICK_OFF)),
        ALIASES,
    )
    assert canonical_of(result, "pinnacle", "1") == canonical_of(result, "22bet", "9"), (
        canonical_team(a, ALIASES),
        canonical_team(b, ALIASES),
    )
    assert not result.unmatched and not result.ambiguous


@pytest.mark.parametrize(("a", "b"), DIFFERENT_CLUBS)
def test_look_alike_clubs_are_kept_apart(a: str, b: str) -> None:
    result = match_events(
        events(("pinnacle", "1", a, "Opponent", KICK_OFF), ("22bet", "9", b, "Opponent", KICK_OFF)), ALIASES
    )
    assert canonical_of(result, "pinnacle", "1") != canonical_of(result, "22bet", "9")


def test_start_times_beyond_the_tolerance_are_different_matches() -> None:
    later = KICK_OFF + pd.Timedelta(minutes=16)
    result = match_events(
        events(
            ("pinnacle", "1", "Arsenal", "Spurs", KICK_OFF), ("22bet", "9", "Arsenal FC", "Tottenham", later)
        ),
        ALIASES,
        MatchSettings(tolerance_minutes=15),
    )
    assert canonical_of(result, "pinnacle", "1") != canonical_of(result, "22bet", "9")
    close = KICK_OFF + pd.Timedelta(minutes=10)
    result = match_events(
        events(
            ("pinnacle", "1", "Arsenal", "Spurs", KICK_OFF), ("22bet", "9", "Arsenal FC", "Tottenham", close)
        ),
        ALIASES,
    )
    assert canonical_of(result, "pinnacle", "1") == canonical_of(result, "22bet", "9")


def test_two_equally_good_candidates_are_reported_not_guessed() -> None:
    result = match_events(
        events(
            ("pinnacle", "1", "Arsenal", "Chelsea", KICK_OFF),
            ("pinnacle", "2", "Arsenal", "Chelsea", KICK_OFF + pd.Timedelta(minutes=5)),
            ("22bet", "9", "Arsenal FC", "Chelsea FC", KICK_OFF + pd.Timedelta(minutes=2)),
        ),
        ALIASES,
    )
    assert [a["source_event_id"] for a in result.ambiguous] == ["9"]
    assert (
        "about as good" in result.ambiguous[0]["reason"] and len(set(result.ambiguous[0]["candidates"])) == 2
    )
    assert "9" not in set(result.mapping.source_event_id)


def test_a_home_away_swap_is_reported_and_not_joined() -> None:
    result = match_events(
        events(
            ("pinnacle", "1", "Arsenal", "Chelsea", KICK_OFF), ("22bet", "9", "Chelsea", "Arsenal", KICK_OFF)
        ),
        ALIASES,
    )
    assert [u["reason"] for u in result.unmatched] == ["home and away swapped against another book"]
    assert canonical_of(result, "pinnacle", "1") != canonical_of(result, "22bet", "9")


def test_a_near_miss_is_reported_with_its_best_candidate() -> None:
    result = match_events(
        events(
            ("pinnacle", "1", "Arsenal", "Chelsea", KICK_OFF),
            ("22bet", "9", "Arsenal U21", "Chelsea U21", KICK_OFF),
        ),
        ALIASES,
    )
    [near] = result.unmatched
    assert near["source_event_id"] == "9" and near["reason"] == "best candidate below the threshold"
    assert near["candidate"] == canonical_of(result, "pinnacle", "1") and 60 <= near["score"] < 86


def test_canonical_ids_are_stable_across_runs() -> None:
    first = match_events(
        events(
            ("pinnacle", "1", "Arsenal", "Spurs", KICK_OFF),
            ("22bet", "9", "Arsenal FC", "Tottenham", KICK_OFF),
        ),
        ALIASES,
    )
    cid = canonical_of(first, "22bet", "9")
    # the reference book's event disappears; a new book arrives: the id stays
    second = match_events(
        events(
            ("22bet", "9", "Arsenal FC", "Tottenham", KICK_OFF), ("melbet", "5", "Arsenal", "Spurs", KICK_OFF)
        ),
        ALIASES,
        previous=first.mapping,
    )
    assert canonical_of(second, "22bet", "9") == cid == canonical_of(second, "melbet", "5")
    assert set(second.mapping.method) == {"kept", "exact"}


def test_the_simulators_per_book_spellings_are_matched_exactly() -> None:
    market = Market(
        SimConfig(
            seed=3,
            n_events=120,
            markets_per_event=1,
            manual_clock=True,
            start=datetime(2026, 11, 22, tzinfo=UTC),
        )
    )
    rows, truth = [], {}
    for b, book in enumerate(market.config.books):
        for event in market.by_index:
            source_id = str(market.event_id(b, event.index))
            truth[(book.name, source_id)] = event.index
            rows.append(
                (
                    book.name,
                    source_id,
                    event.home[b % len(event.home)],
                    event.away[b % len(event.away)],
                    pd.Timestamp(market.epoch + event.starts_at, unit="s", tz="UTC"),
                )
            )
    result = match_events(events(*rows), ALIASES)
    groups = result.mapping.groupby("canonical_event_id")
    # precision: no canonical event mixes two real matches; recall: each match is one canonical event
    assert all(
        len({truth[k] for k in zip(g.bookmaker, g.source_event_id, strict=True)}) == 1 for _, g in groups
    )
    assert groups.ngroups == 120 and not result.ambiguous and not result.unmatched
