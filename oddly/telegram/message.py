"""Alerts as Telegram messages a bettor can act on: what moved, where, by how much, what it is worth
against the fair price, where else it can be had, why it was flagged, and a link to the event.

Telegram HTML (parse_mode "HTML"): every value from data goes through `html.escape`, because a team
or league name with `<` or `&` would otherwise make Telegram reject the whole message. Texts are
kept under Telegram's limits (4096 for a message, 1024 for a photo caption); the reasons are what
gets cut, since the numbers above them are what a reader acts on. Rendering is a pure function of
the alert (times relative to its decision), so the outbox stores the exact text that is sent.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import urlencode

from oddly.alerts.alert import Alert

TEXT_LIMIT = 4096  # Telegram: characters of a message
CAPTION_LIMIT = 1024  # Telegram: characters of a photo caption

SEVERITY_ICONS = {"red": "🔴", "yellow": "🟡", "green": "🟢"}
TYPE_TITLES = {
    "sharp_drop": "Sharp drop",
    "steam": "Steam move",
    "out_of_line": "One book out of line",
    "value": "Value bet",
    "arbitrage": "Arbitrage",
    "stale_line": "Stale line",
    "anomaly": "Anomaly",
}
MARKET_NAMES = {
    "1x2": "Match result",
    "double_chance": "Double chance",
    "handicap": "Handicap",
    "total": "Total",
    "team_total_home": "Home team total",
    "team_total_away": "Away team total",
    "btts": "Both teams to score",
    "asian_handicap": "Asian handicap",
    "asian_total": "Asian total",
    "moneyline": "Moneyline",
    "win": "Winner",
}
PERIOD_NAMES = {
    "ft": "full time",
    "1h": "1st half",
    "2h": "2nd half",
    "ot": "overtime",
    **{f"p{i}": f"period {i}" for i in range(1, 4)},
    **{f"q{i}": f"quarter {i}" for i in range(1, 5)},
    **{f"s{i}": f"set {i}" for i in range(1, 6)},
}
MAX_BEST_PRICES = 5
# Longest a single value from data may be, so the fixed part of a message stays well under 1024.
_CLIP = {"event": 120, "team": 60, "league": 80, "book": 40, "explanation": 300, "reason": 300}


def render_alert(alert: Alert, app_url: str, *, now: datetime | None = None) -> str:
    """The full message (≤ 4096 characters). `now` is the moment "in 2 h 5 min" is counted
    from; the alert's decision time by default."""
    return _render(alert, app_url, now or alert.decided_at, TEXT_LIMIT)


def render_caption(alert: Alert, app_url: str, *, now: datetime | None = None) -> str:
    """The same message for a chart's caption (≤ 1024 characters): fewer reasons fit."""
    return _render(alert, app_url, now or alert.decided_at, CAPTION_LIMIT)


def render_digest(alerts: Sequence[Alert], app_url: str) -> str:
    """One line per alert (a yellow digest), ≤ 4096 characters; what does not fit is counted."""
    head = f"🟡 <b>Digest</b> · {len(alerts)} alert{'s' if len(alerts) != 1 else ''}"
    lines = [head]
    for i, alert in enumerate(alerts):
        line = _digest_line(alert, app_url)
        rest = len(alerts) - i
        more = f"… and {rest} more"
        # Room must stay for the "more" line whenever this line is not the last.
        tail = 0 if rest == 1 else _units("\n" + f"… and {rest - 1} more")
        if _units("\n".join([*lines, line])) + tail > TEXT_LIMIT:
            lines.append(more)
            break
        lines.append(line)
    return "\n".join(lines)


def event_page_url(app_url: str, event_id: str, **query: str) -> str:
    """The Streamlit event page of `event_id` (dashboards/app_pages/event.py reads these params)."""
    return f"{app_url.rstrip('/')}/event?{urlencode({'event_id': event_id, **query})}"


def event_url(alert: Alert, app_url: str) -> str | None:
    """The Streamlit event page of the alert's outcome, or None when the event is not matched."""
    if not alert.canonical_event_id:
        return None
    query: dict[str, str] = {"market": alert.market}
    if alert.outcome:
        query["outcome"] = alert.outcome
    if alert.line is not None:
        query["line"] = f"{alert.line:g}"
    return event_page_url(app_url, alert.canonical_event_id, **query)


def selection_words(alert: Alert) -> str:
    """Market, period and outcome in words: "Total 2.5, full time: Over 2.5"."""
    market = MARKET_NAMES.get(alert.market, alert.market)
    if alert.line is not None and alert.market in ("total", "asian_total"):
        market = f"{market} {alert.line:g}"
    period = PERIOD_NAMES.get(alert.period, alert.period)
    outcome = outcome_words(alert)
    return f"{market}, {period}: {outcome}" if outcome else f"{market}, {period}"


def outcome_words(alert: Alert) -> str:
    """The outcome as a bettor says it: team names for home/away, the line where it belongs."""
    if alert.outcome is None:
        return ""
    home, away = _teams(alert.event_name)
    line = alert.line
    if alert.market in ("handicap", "asian_handicap") and line is not None:
        # Lines are stored from the home side's point of view; the away side has the opposite.
        if alert.outcome == "home":
            return f"{home} {line:+g}"
        if alert.outcome == "away":
            return f"{away} {-line:+g}"
    if alert.market in ("team_total_home", "team_total_away") and line is not None:
        team = home if alert.market == "team_total_home" else away
        return f"{team} {alert.outcome} {line:g}"
    if alert.outcome in ("over", "under") and line is not None:
        return f"{alert.outcome.capitalize()} {line:g}"
    words = {
        "home": home,
        "away": away,
        "draw": "Draw",
        "home_draw": f"{home} or draw",
        "home_away": f"{home} or {away}",
        "draw_away": f"Draw or {away}",
        "yes": "Yes",
        "no": "No",
        "over": "Over",
        "under": "Under",
    }
    return words.get(alert.outcome, alert.outcome)


def kickoff_words(starts_at: datetime | None, is_live: bool, now: datetime) -> str:
    """ "Sat 12 Apr 15:00 UTC, in 2 h 5 min", "live", or "started 20 min ago"."""
    if is_live:
        return "🔴 live"
    if starts_at is None:
        return "kick-off unknown"
    start = _utc(starts_at)
    when = start.strftime("%a %d %b %H:%M UTC")
    seconds = (start - _utc(now)).total_seconds()
    relative = f"in {duration_words(seconds)}" if seconds >= 0 else f"started {duration_words(-seconds)} ago"
    return f"{when}, {relative}"


def duration_words(seconds: float) -> str:
    """ "3 d 4 h", "2 h 5 min", "45 min", "< 1 min"."""
    minutes = int(seconds // 60)
    if minutes < 1:
        return "< 1 min"
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"


def price_words(alert: Alert) -> str | None:
    """ "2.10 → 1.85 (-11.9 %, +6.4 pp)": old → new, the price change and the implied-probability
    change in points; just the price when there is no old one."""
    if alert.new_price is None:
        return None
    if alert.old_price is None:
        return f"{alert.new_price:.2f}"
    change = []
    if alert.price_change_pct is not None:
        change.append(f"{alert.price_change_pct:+.1f} %")
    if alert.probability_points is not None:
        change.append(f"{alert.probability_points:+.1f} pp")
    suffix = f" ({', '.join(change)})" if change else ""
    return f"{alert.old_price:.2f} → {alert.new_price:.2f}{suffix}"


def _render(alert: Alert, app_url: str, now: datetime, limit: int) -> str:
    esc = _escape
    icon = SEVERITY_ICONS.get(alert.severity, "⚪")
    title = TYPE_TITLES.get(alert.type, alert.type.replace("_", " ").capitalize())
    where = " · ".join(esc(x, "league") for x in (alert.league, alert.sport) if x)
    book = f"<b>{esc(alert.bookmaker, 'book')}</b> · " if alert.bookmaker else ""
    lines: dict[str, str | None] = {
        "title": f"{icon} <b>{esc(title)}</b> · {alert.severity}",
        "event": f"<b>{esc(alert.event_name, 'event')}</b>" + (f"\n{where}" if where else ""),
        "kickoff": f"⏱ {esc(kickoff_words(alert.starts_at, alert.is_live, now))}",
        "selection": f"{book}{esc(selection_words(alert))}",
        "price": f"💰 {esc(p)}" if (p := price_words(alert)) else None,
        "fair": _fair_line(alert),
        "best": _best_line(alert),
        "explanation": f"<i>{esc(alert.explanation, 'explanation')}</i>" if alert.explanation else None,
        "reasons": None,
        "link": _link_line(alert, app_url),
    }
    # Optional parts join while they fit, most useful first; the reasons last, one at a time.
    optional = ("best", "explanation")
    kept: dict[str, str | None] = {k: v for k, v in lines.items() if v is not None and k not in optional}
    for key in optional:
        value = lines[key]
        if value is not None and _units(_join({**kept, key: value})) <= limit:
            kept[key] = value
    kept["reasons"] = _fit_reasons(alert.reasons, kept, limit)
    return _join({k: kept[k] for k in lines if kept.get(k)})


def _fit_reasons(reasons: Sequence[str], kept: dict[str, str | None], limit: int) -> str | None:
    """As many reasons as fit, in order, and a count of the ones cut."""
    bullets = [f"• {_escape(reason, 'reason')}" for reason in reasons]
    for shown in range(len(bullets), -1, -1):
        cut = len(bullets) - shown
        more = [f"… and {cut} more reason{'s' if cut != 1 else ''}"] if cut else []
        text = "\n".join(bullets[:shown] + more) or None
        if _units(_join({**kept, "reasons": text})) <= limit:
            return text
    return None


def _fair_line(alert: Alert) -> str | None:
    parts = []
    if alert.fair_price is not None:
        parts.append(f"fair {alert.fair_price:.2f}")
    if alert.edge is not None:
        parts.append(f"edge {100 * alert.edge:+.1f} %")
    return f"⚖️ {' · '.join(parts)}" if parts else None


def _best_line(alert: Alert) -> str | None:
    best = sorted(alert.best_prices, key=lambda b: -b.price)[:MAX_BEST_PRICES]
    if not best:
        return None
    return "📊 best elsewhere: " + " · ".join(f"{_escape(b.bookmaker, 'book')} {b.price:.2f}" for b in best)


def _link_line(alert: Alert, app_url: str) -> str | None:
    url = event_url(alert, app_url)
    return f'🔗 <a href="{html.escape(url, quote=True)}">Open the event in Oddly Odds</a>' if url else None


def _digest_line(alert: Alert, app_url: str) -> str:
    icon = SEVERITY_ICONS.get(alert.severity, "⚪")
    url = event_url(alert, app_url)
    event = _escape(alert.event_name, "event")
    event = f'<a href="{html.escape(url, quote=True)}">{event}</a>' if url else f"<b>{event}</b>"
    parts = [
        f"{icon} {event}",
        _escape(TYPE_TITLES.get(alert.type, alert.type)),
        *([_escape(alert.bookmaker, "book")] if alert.bookmaker else []),
        _escape(selection_words(alert)),
    ]
    if (price := price_words(alert)) is not None:
        parts.append(_escape(price))
    if alert.edge is not None:
        parts.append(f"edge {100 * alert.edge:+.1f} %")
    return " · ".join(parts)


def _join(parts: dict[str, str | None]) -> str:
    return "\n".join(v for v in parts.values() if v)


def _escape(value: str | None, clip: str | None = None) -> str:
    return html.escape(_clip(value or "", clip), quote=False)


def _clip(text: str, clip: str | None) -> str:
    limit = _CLIP.get(clip or "", 0)
    return text[: limit - 1] + "…" if limit and len(text) > limit else text


def _units(text: str) -> int:
    """Length as Telegram counts it at most: UTF-16 code units of the whole HTML (tags included,
    which Telegram does not count, so this errs on the safe side)."""
    return len(text.encode("utf-16-le")) // 2


def _teams(event_name: str) -> tuple[str, str]:
    for separator in (" v ", " vs ", " - "):
        if separator in event_name:
            home, away = event_name.split(separator, 1)
            return _clip(home.strip(), "team"), _clip(away.strip(), "team")
    return "Home", "Away"


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
