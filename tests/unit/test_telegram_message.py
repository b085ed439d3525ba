"""Alert messages: the numbers a bettor acts on, escaping, links, Telegram's length limits."""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest

from oddly.alerts.alert import BookPrice
from oddly.telegram.message import (
    CAPTION_LIMIT,
    TEXT_LIMIT,
    duration_words,
    render_alert,
    render_caption,
    render_digest,
)
from tests.telegram_fakes import DECIDED_AT, make_alert

APP = "http://127.0.0.1:8501"
TELEGRAM_TAGS = {"b", "i", "u", "s", "a", "code", "pre"}


class _TagCheck(HTMLParser):
    """Fails on a tag Telegram does not know or on unbalanced tags (Telegram rejects both)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.hrefs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        assert tag in TELEGRAM_TAGS, f"tag <{tag}> is not Telegram HTML"
        self.open.append(tag)
        self.hrefs += [v or "" for k, v in attrs if k == "href"]

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open.pop() == tag, f"unbalanced </{tag}>"

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(text: str) -> _TagCheck:
    check = _TagCheck()
    check.feed(text)
    check.close()
    assert not check.open, f"unclosed tags {check.open}"
    return check


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def test_message_shows_the_numbers_a_bettor_acts_on() -> None:
    text = render_alert(make_alert(), APP)
    plain = "".join(parse(text).text)
    assert "🔴" in plain and "Sharp drop" in plain
    assert "Arsenal v Chelsea" in plain and "Premier League" in plain
    assert "Sat 12 Apr 15:00 UTC, in 2 h 5 min" in plain
    assert "pinnacle" in plain and "Match result, full time: Arsenal" in plain
    # 2.10 → 1.85 is -11.9 %; implied probability 47.6 % → 54.1 % is +6.4 points.
    assert "2.10 → 1.85 (-11.9 %, +6.4 pp)" in plain
    assert "fair 1.80 · edge +2.8 %" in plain
    assert "bet365 1.95 · 22bet 1.92" in plain
    assert "• drop 11.9 % ≥ threshold 8 %" in plain and "• sharp book moved first" in plain


def test_live_and_started_events_say_so() -> None:
    assert "live" in render_alert(make_alert(is_live=True), APP)
    started = make_alert(starts_at=DECIDED_AT - timedelta(minutes=20))
    assert "started 20 min ago" in render_alert(started, APP)


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"market": "total", "line": 2.5, "outcome": "over"}, "Total 2.5, full time: Over 2.5"),
        ({"market": "handicap", "line": -1.5, "outcome": "away"}, "Handicap, full time: Chelsea +1.5"),
        ({"market": "double_chance", "outcome": "draw_away", "period": "1h"}, "1st half: Draw or Chelsea"),
        ({"market": "btts", "outcome": "yes"}, "Both teams to score, full time: Yes"),
    ],
)
def test_market_and_outcome_in_words(changes: dict[str, object], words: str) -> None:
    assert words in render_alert(make_alert(**changes), APP)


def test_everything_from_data_is_escaped() -> None:
    alert = make_alert(
        event_name="Brighton & Hove <Albion> v Chelsea",
        league="<script>alert(1)</script>",
        bookmaker="Book<b>",
        reasons=["edge > 5 % & rising"],
        explanation="a <i>sly</i> explanation",
    )
    text = render_alert(alert, APP)
    check = parse(text)  # only Telegram tags, balanced: the data added none
    assert "Brighton &amp; Hove &lt;Albion&gt; v Chelsea" in text
    assert "&lt;script&gt;" in text and "<script>" not in text
    assert "Book&lt;b&gt;" in text
    assert "edge &gt; 5 % &amp; rising" in text
    assert "Brighton & Hove <Albion>: Chelsea" not in "".join(check.text)


def test_link_to_the_event_page_is_url_encoded() -> None:
    alert = make_alert(canonical_event_id="ev 1&2", market="total", line=2.5, outcome="over")
    [href] = parse(render_alert(alert, APP)).hrefs
    url = urlsplit(href)
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{APP}/event"
    assert parse_qs(url.query) == {
        "event_id": ["ev 1&2"],
        "market": ["total"],
        "outcome": ["over"],
        "line": ["2.5"],
    }


def test_no_link_without_a_matched_event() -> None:
    assert "<a " not in render_alert(make_alert(canonical_event_id=None), APP)


def test_long_reasons_are_cut_to_telegrams_limits() -> None:
    reasons = [f"reason {i}: " + "x" * 80 for i in range(400)]
    alert = make_alert(reasons=reasons, event_name="Ü" * 500 + " v " + "😀" * 500)
    text, caption = render_alert(alert, APP), render_caption(alert, APP)
    assert utf16(text) <= TEXT_LIMIT and utf16(caption) <= CAPTION_LIMIT
    for rendered in (text, caption):
        parse(rendered)
        shown = len(re.findall(r"^• reason \d+", rendered, flags=re.MULTILINE))
        more = re.search(r"… and (\d+) more reasons", rendered)
        assert more is not None and shown + int(more.group(1)) == len(reasons)
        assert "2.10 → 1.85" in rendered and "edge +2.8 %" in rendered  # the numbers survive
    assert 0 < len(re.findall("^• ", caption, flags=re.MULTILINE)) < len(re.findall("^• ", text, flags=re.M))


def test_a_short_alert_is_not_cut() -> None:
    text = render_caption(make_alert(), APP)
    assert "more reason" not in text and text.count("• ") == 2


def test_missing_numbers_are_left_out_not_invented() -> None:
    alert = make_alert(old_price=None, fair_price=None, edge=None, best_prices=[], reasons=[])
    text = render_alert(alert, APP)
    assert "→" not in text and "fair" not in text and "edge" not in text and "best elsewhere" not in text
    assert "1.85" in text


def test_best_prices_highest_first_and_capped() -> None:
    prices = [BookPrice(f"book{i}", 1.5 + i / 100) for i in range(9)]
    text = render_alert(make_alert(best_prices=prices), APP)
    assert "book8 1.58 · book7 1.57 · book6 1.56 · book5 1.55 · book4 1.54" in text
    assert "book3" not in text


def test_digest_has_one_line_per_alert() -> None:
    alerts = [
        make_alert(alert_id=f"a{i}", severity="yellow", event_name=f"Team{i} v Other") for i in range(3)
    ]
    lines = render_digest(alerts, APP).splitlines()
    assert lines[0] == "🟡 <b>Digest</b> · 3 alerts"
    assert [f"Team{i} v Other" in line for i, line in enumerate(lines[1:])] == [True, True, True]
    assert all("2.10 → 1.85 (-11.9 %, +6.4 pp)" in line and "edge +2.8 %" in line for line in lines[1:])
    parse("\n".join(lines))


def test_a_huge_digest_is_cut_and_counts_the_rest() -> None:
    alerts = [make_alert(alert_id=f"a{i}", severity="yellow") for i in range(500)]
    text = render_digest(alerts, APP)
    assert utf16(text) <= TEXT_LIMIT
    parse(text)
    shown = text.count("🟡 <a href")
    more = re.search(r"… and (\d+) more$", text)
    assert more is not None and shown + int(more.group(1)) == 500 and shown > 5


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (30, "< 1 min"),
        (45 * 60, "45 min"),
        (2 * 3600, "2 h"),
        (7500, "2 h 5 min"),
        (3 * 86400 + 4 * 3600, "3 d 4 h"),
    ],
)
def test_duration_words(seconds: float, words: str) -> None:
    assert duration_words(seconds) == words
