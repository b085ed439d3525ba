"""Leagues and teams of the simulated world, each team spelled the ways different books spell it."""

from __future__ import annotations

# (country, league, league id, [canonical name, variant, variant, …])
LEAGUES: tuple[tuple[str, str, int, tuple[tuple[str, ...], ...]], ...] = (
    (
        "England",
        "England. Premier League",
        88637,
        (
            ("Manchester United", "Man Utd", "Manchester United FC", "Man United"),
            ("Manchester City", "Man City", "Manchester City FC"),
            ("Tottenham Hotspur", "Tottenham", "Spurs", "Tottenham Hotspur FC"),
            ("Wolverhampton Wanderers", "Wolves", "Wolverhampton"),
            ("Newcastle United", "Newcastle", "Newcastle Utd"),
            ("Nottingham Forest", "Nott'm Forest", "Nottingham"),
            ("Brighton & Hove Albion", "Brighton", "Brighton and Hove Albion"),
            ("West Ham United", "West Ham", "West Ham Utd"),
            ("Arsenal", "Arsenal FC", "Arsenal London"),
            ("Liverpool", "Liverpool FC", "FC Liverpool"),
        ),
    ),
    (
        "Spain",
        "Spain. La Liga",
        127733,
        (
            ("Atlético Madrid", "Atletico Madrid", "Atl. Madrid", "Club Atlético de Madrid"),
            ("Real Madrid", "Real Madrid CF", "R. Madrid"),
            ("Barcelona", "FC Barcelona", "Barça"),
            ("Athletic Bilbao", "Athletic Club", "Ath Bilbao"),
            ("Real Sociedad", "R. Sociedad", "Real Sociedad San Sebastian"),
            ("Sevilla", "Sevilla FC", "FC Sevilla"),
            ("Real Betis", "Betis", "Real Betis Balompié"),
            ("Deportivo Alavés", "Alaves", "Deportivo Alaves"),
        ),
    ),
    (
        "Germany",
        "Germany. Bundesliga",
        96463,
        (
            ("Bayern München", "Bayern Munich", "FC Bayern München", "Bayern"),
            ("Borussia Dortmund", "Dortmund", "BV Borussia 09 Dortmund"),
            ("Borussia Mönchengladbach", "Mönchengladbach", "B. Monchengladbach", "Gladbach"),
            ("Bayer Leverkusen", "Leverkusen", "Bayer 04 Leverkusen"),
            ("1. FC Köln", "FC Koln", "Köln", "1. FC Cologne"),
            ("Eintracht Frankfurt", "E. Frankfurt", "Eintracht Frankfurt am Main"),
        ),
    ),
    (
        "Italy",
        "Italy. Serie A",
        110163,
        (
            ("Internazionale", "Inter", "Inter Milan", "FC Internazionale Milano"),
            ("AC Milan", "Milan", "A.C. Milan"),
            ("Juventus", "Juventus Turin", "Juventus FC"),
            ("AS Roma", "Roma", "A.S. Roma"),
            ("SSC Napoli", "Napoli", "Naples"),
            ("Hellas Verona", "Verona", "Hellas Verona FC"),
        ),
    ),
    (
        "Azerbaijan",
        "Azerbaijan. Premier League",
        104553,
        (
            ("İmişli", "Imishli", "Imisli FK"),
            ("Kapaz", "Kapaz PFK", "Kəpəz"),
            ("Qarabağ", "Qarabag", "Karabakh Agdam", "FK Qarabag"),
            ("Neftçi", "Neftchi Baku", "Neftci PFK"),
        ),
    ),
)


def spelling(variants: tuple[str, ...], book_index: int) -> str:
    """The name book number `book_index` uses; the sharp book (0) uses the canonical one."""
    return variants[book_index % len(variants)]
