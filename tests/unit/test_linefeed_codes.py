"""The LineFeed code table and the readable names from the recorded dictionaries."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from oddly.feeds.linefeed_codes import CODE_BY_GT, describe_unmapped, load_code_names


def test_code_table_matches_the_platform_codes() -> None:
    table = {gt: (c.market.value, c.outcome.value, c.line_sign) for gt, c in CODE_BY_GT.items()}
    assert table == {
        (1, 1): ("1x2", "home", None),
        (1, 2): ("1x2", "draw", None),
        (1, 3): ("1x2", "away", None),
        (8, 4): ("double_chance", "home_draw", None),
        (8, 5): ("double_chance", "home_away", None),
        (8, 6): ("double_chance", "draw_away", None),
        (2, 7): ("handicap", "home", 1),
        (2, 8): ("handicap", "away", -1),
        (17, 9): ("total", "over", 1),
        (17, 10): ("total", "under", 1),
        (15, 11): ("team_total_home", "over", 1),
        (15, 12): ("team_total_home", "under", 1),
        (62, 13): ("team_total_away", "over", 1),
        (62, 14): ("team_total_away", "under", 1),
        (19, 180): ("btts", "yes", None),
        (19, 181): ("btts", "no", None),
        (99, 3827): ("asian_total", "over", 1),
        (99, 3828): ("asian_total", "under", 1),
        (2854, 3829): ("asian_handicap", "home", 1),
        (2854, 3830): ("asian_handicap", "away", -1),
    }


def test_recorded_dictionaries_name_the_codes(linefeed_data: Path) -> None:
    names = load_code_names(linefeed_data)
    assert names.groups[1] == "1x2" and names.groups[2] == "Handicap"
    assert names.types[2] == "Draw" and names.types[1] == "Home"
    lines = describe_unmapped(Counter({"g2/t7": 3, "g1/t2": 1}), names)
    assert lines[0].startswith("g2/t7 (Handicap: ") and lines[0].endswith("×3")
    assert lines[1] == "g1/t2 (1x2: Draw) ×1"
    assert describe_unmapped(Counter({"g136/t731": 20}), None) == ["g136/t731 ×20"]
