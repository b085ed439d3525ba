"""The bot's menus as a pure state machine: which step, which options, what a button press or a
typed value does, and the screen (text and buttons) to show. No Telegram in here, so every rule is
unit-tested; `oddly.telegram.bot` only stores the state per chat and moves it along.

A menu edits a draft `Filters`; nothing is stored until the user presses Save (/subscribe) or Done
on one field (/settings), so a user who walks away halfway keeps the subscription they had.
Buttons carry tiny callback data ("m:p:3": pick option 3 of the shown step) and the options live
in the state, so a long league name never meets Telegram's 64-byte callback limit.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, replace
from datetime import time, timedelta
from typing import Any, Literal, cast

from annotated_types import Ge, Le
from pydantic import ValidationError

from oddly.alerts.policy import ALERT_TYPES
from oddly.alerts.subscriptions import Filters, QuietHours
from oddly.telegram.message import TYPE_TITLES

CALLBACK_PREFIX = "m"
MAX_CALLBACK_BYTES = 64  # Telegram's limit on an inline button's callback data
PAGE_SIZE = 8  # options per page: a phone shows about this many rows without scrolling
MAX_LABEL = 40
MAX_MUTE = timedelta(days=30)

Mode = Literal["subscribe", "settings"]
Verb = Literal["pick", "any", "next", "back", "cancel", "save", "edit", "page", "close"]
_CODES: dict[Verb, str] = {
    "pick": "p",
    "any": "a",
    "next": "n",
    "back": "b",
    "cancel": "x",
    "save": "s",
    "edit": "e",
    "page": "g",
    "close": "c",
}
_VERBS: dict[str, Verb] = {code: verb for verb, code in _CODES.items()}
_WITH_ARG: set[Verb] = {"pick", "edit", "page"}


class MenuInputError(ValueError):
    """A button or typed value the menu cannot take; the message is shown to the user as is."""


@dataclass(frozen=True)
class Choice:
    label: str
    value: Any


@dataclass(frozen=True)
class Step:
    field: str  # the Filters field this step edits
    title: str
    question: str
    multi: bool  # several options ticked (lists), or exactly one choice
    choices: tuple[Choice, ...] = ()  # single-choice steps; multi steps take theirs from the catalog
    typed: str | None = None  # how to type a custom value; None: buttons only


STEPS: tuple[Step, ...] = (
    Step("sports", "Sports", "Which sports? Tick none for every sport.", multi=True),
    Step("leagues", "Leagues", "Which leagues? Tick none for every league.", multi=True),
    Step("bookmakers", "Bookmakers", "Alerts about which bookmakers? Tick none for all.", multi=True),
    Step("alert_types", "Alert types", "Which kinds of alert? Tick none for all.", multi=True),
    Step(
        "min_drop_pct",
        "Minimum drop",
        "Only price drops of at least this much (alerts without a drop, e.g. value bets, still come).",
        multi=False,
        choices=(Choice("Any drop", None), *(Choice(f"{v} %", float(v)) for v in (3, 5, 8, 10, 15, 20))),
        typed="or type a number of percent, e.g. 7.5",
    ),
    Step(
        "min_edge_pct",
        "Minimum edge",
        "Only prices at least this far above the fair price (alerts without an edge still come).",
        multi=False,
        choices=(Choice("Any edge", None), *(Choice(f"{v} %", float(v)) for v in (1, 2, 3, 5, 10))),
        typed="or type a number of percent, e.g. 2.5",
    ),
    Step(
        "min_severity",
        "Severity",
        "Red alerts come at once; yellow ones are collected into a digest.",
        multi=False,
        choices=(Choice("🟡 Yellow and 🔴 red", "yellow"), Choice("🔴 Red only", "red")),
    ),
    Step(
        "quiet_hours",
        "Quiet hours",
        "During quiet hours red alerts wait for the digest instead of waking you.",
        multi=False,
        choices=(
            Choice("Off", None),
            *(
                Choice(f"{start:02d}:00–{end:02d}:00", (time(start), time(end)))
                for start, end in ((22, 7), (23, 7), (0, 8), (1, 9))
            ),
        ),
        typed="or type e.g. 22:30-06:30 Europe/London (time zone optional)",
    ),
    Step(
        "digest_interval_minutes",
        "Digest",
        "How often the digest of yellow alerts comes.",
        multi=False,
        choices=tuple(
            Choice(label, minutes)
            for label, minutes in (
                ("15 min", 15),
                ("30 min", 30),
                ("1 h", 60),
                ("2 h", 120),
                ("4 h", 240),
                ("daily", 24 * 60),
            )
        ),
        typed="or type a number of minutes (5–1440)",
    ),
    Step(
        "max_alerts_per_hour",
        "Alert limit",
        "At most this many alerts an hour come at once; past it, red alerts wait for the digest.",
        multi=False,
        choices=(*(Choice(f"{n} an hour", n) for n in (5, 10, 30, 60, 120)), Choice("No limit", None)),
        typed="or type a number of alerts an hour (1–3600)",
    ),
)
WHOLE_NUMBERS = {"digest_interval_minutes": "whole minutes, e.g. 45", "max_alerts_per_hour": "a whole number"}
STEP_INDEX = {step.field: i for i, step in enumerate(STEPS)}


@dataclass(frozen=True)
class Catalog:
    """What can be picked, read from the marts when the menu opens (empty before the first build)."""

    sports: tuple[str, ...] = ()
    leagues: tuple[tuple[str, str], ...] = ()  # (sport, league)
    bookmakers: tuple[str, ...] = ()
    note: str | None = None  # why it is empty, shown on the steps that would list it


@dataclass(frozen=True)
class MenuState:
    """One open menu. `step` None is the summary (/subscribe) or the overview (/settings)."""

    mode: Mode
    draft: Filters
    saved: Filters  # what is stored: /settings' Back restores a field from it
    catalog: Catalog
    step: int | None = 0
    page: int = 0


@dataclass(frozen=True)
class Action:
    verb: Verb
    arg: int | None = None


@dataclass(frozen=True)
class Transition:
    """What a press did: the next state (None: the menu closed), filters to store, a short notice."""

    state: MenuState | None
    save: Filters | None = None
    notice: str = ""


@dataclass(frozen=True)
class Button:
    label: str
    data: str


@dataclass(frozen=True)
class Screen:
    text: str  # Telegram HTML
    rows: tuple[tuple[Button, ...], ...]


# --- opening -------------------------------------------------------------------------------------


def open_subscribe(current: Filters, catalog: Catalog) -> MenuState:
    """/subscribe: every step in turn from the first, starting from the stored filters."""
    return MenuState("subscribe", current, current, catalog, step=0)


def open_settings(current: Filters, catalog: Catalog) -> MenuState:
    """/settings: the overview, from which any one field is edited and stored on its own."""
    return MenuState("settings", current, current, catalog, step=None)


# --- callback data -------------------------------------------------------------------------------


def encode(action: Action) -> str:
    """The button's callback data, e.g. "m:p:3"; never more than Telegram's 64 bytes."""
    code = _CODES[action.verb]
    data = f"{CALLBACK_PREFIX}:{code}" if action.arg is None else f"{CALLBACK_PREFIX}:{code}:{action.arg}"
    if len(data.encode()) > MAX_CALLBACK_BYTES:
        raise ValueError(f"callback data {data!r} exceeds {MAX_CALLBACK_BYTES} bytes")
    return data


def is_menu_data(data: str | None) -> bool:
    return bool(data) and str(data).startswith(f"{CALLBACK_PREFIX}:")


def decode(data: str) -> Action:
    """The action behind a button's callback data; MenuInputError for anything else."""
    parts = data.split(":")
    verb = _VERBS.get(parts[1]) if len(parts) in (2, 3) and parts[0] == CALLBACK_PREFIX else None
    if verb is None or (len(parts) == 3) != (verb in _WITH_ARG):
        raise MenuInputError("That button is not one of mine; send /settings to open the menu again.")
    if len(parts) == 2:
        return Action(verb)
    if not re.fullmatch(r"\d{1,4}", parts[2]):
        raise MenuInputError("That button is damaged; send /settings to open the menu again.")
    return Action(verb, int(parts[2]))


# --- moving --------------------------------------------------------------------------------------


def apply(state: MenuState, action: Action) -> Transition:
    """The state after `action`; MenuInputError (its message for the user) when it does not fit."""
    step = None if state.step is None else STEPS[state.step]
    verb, arg = action.verb, action.arg
    if verb == "cancel":
        return Transition(None, notice="Cancelled: your subscription is unchanged.")
    if verb == "close" and step is None and state.mode == "settings":
        return Transition(None, notice="Settings closed.")
    if verb == "save" and step is None and state.mode == "subscribe":
        return Transition(None, save=state.draft, notice="Saved ✅")
    if verb == "edit" and step is None and state.mode == "settings" and arg is not None:
        if arg >= len(STEPS):
            raise MenuInputError("There is no such setting; send /settings to start again.")
        return Transition(replace(state, step=arg, page=0))
    if verb == "back" and step is None and state.mode == "subscribe":
        return Transition(replace(state, step=len(STEPS) - 1, page=0))
    if step is None:
        raise MenuInputError("That button belongs to an older screen; use the buttons shown now.")
    if verb == "pick" and arg is not None:
        return Transition(replace(state, draft=_picked(state, step, arg)))
    if verb == "any" and step.multi:
        return Transition(replace(state, draft=_with(state.draft, step.field, [])))
    if verb == "page" and arg is not None:
        pages = max(1, -(-len(options(state, step)) // PAGE_SIZE))
        return Transition(replace(state, page=min(arg, pages - 1)))
    if verb == "next":
        return _done(state)
    if verb == "back":
        return _back(state, step)
    raise MenuInputError("That button does not fit this screen; use the buttons shown now.")


def apply_text(state: MenuState, text: str) -> Transition:
    """A typed value on a step that takes one: set, then on as if Done was pressed."""
    step = None if state.step is None else STEPS[state.step]
    if step is None or step.typed is None:
        raise MenuInputError("Use the buttons of the menu above (or /help for the commands).")
    value = parse_typed(step, text, state.draft)
    return _done(replace(state, draft=_with(state.draft, step.field, value)))


def _done(state: MenuState) -> Transition:
    assert state.step is not None
    if state.mode == "settings":
        # One field edited: stored at once, back to the overview.
        saved = replace(state, step=None, page=0, saved=state.draft)
        return Transition(saved, save=state.draft, notice=f"{STEPS[state.step].title} saved ✅")
    following = state.step + 1 if state.step + 1 < len(STEPS) else None
    return Transition(replace(state, step=following, page=0))


def _back(state: MenuState, step: Step) -> Transition:
    assert state.step is not None
    if state.mode == "settings":
        restored = _with(state.draft, step.field, getattr(state.saved, step.field))
        return Transition(replace(state, draft=restored, step=None, page=0), notice="Not changed")
    if state.step == 0:
        raise MenuInputError("This is the first step; press Cancel to leave without changes.")
    return Transition(replace(state, step=state.step - 1, page=0))


def _picked(state: MenuState, step: Step, index: int) -> Filters:
    if step.multi:
        shown = options(state, step)
        if index >= len(shown):
            raise MenuInputError("That option is no longer offered; pick one of those shown.")
        value = shown[index][1]
        chosen: list[str] = list(getattr(state.draft, step.field))
        chosen = [v for v in chosen if v != value] if value in chosen else [*chosen, value]
        draft = _with(state.draft, step.field, chosen)
        return _prune_leagues(draft, state.catalog) if step.field == "sports" else draft
    if index >= len(step.choices):
        raise MenuInputError("That option is no longer offered; pick one of those shown.")
    return _with(state.draft, step.field, _choice_value(step.choices[index].value, state.draft))


def _choice_value(value: Any, draft: Filters) -> Any:
    if isinstance(value, tuple):  # quiet hours (start, end), in the zone the chat already uses
        zone = draft.quiet_hours.timezone if draft.quiet_hours else "UTC"
        return QuietHours(start=value[0], end=value[1], timezone=zone)
    return value


def _prune_leagues(draft: Filters, catalog: Catalog) -> Filters:
    """Leagues of a sport no longer ticked would match nothing: dropped (unknown ones are kept)."""
    if not draft.sports:
        return draft
    sports_of: dict[str, set[str]] = {}
    for sport, league in catalog.leagues:
        sports_of.setdefault(league, set()).add(sport)
    kept = [lg for lg in draft.leagues if lg not in sports_of or sports_of[lg] & set(draft.sports)]
    return _with(draft, "leagues", kept)


def _with(draft: Filters, field: str, value: Any) -> Filters:
    """`draft` with one field changed, validated (a model_copy would not be)."""
    try:
        return Filters.model_validate({**draft.model_dump(), field: value})
    except ValidationError as exc:
        reason = exc.errors()[0]["msg"]
        raise MenuInputError(f"{_title(field)}: {reason}.") from None


def options(state: MenuState, step: Step) -> list[tuple[str, str]]:
    """A multi step's options as (label, value), sorted; what is ticked always stays listed."""
    catalog, draft = state.catalog, state.draft
    values: list[str]
    if step.field == "sports":
        values = [*catalog.sports, *draft.sports]
    elif step.field == "leagues":
        wanted = set(draft.sports)
        values = [lg for sport, lg in catalog.leagues if not wanted or sport in wanted] + draft.leagues
    elif step.field == "bookmakers":
        values = [*catalog.bookmakers, *draft.bookmakers]
    else:
        return [(TYPE_TITLES.get(t, t), t) for t in ALERT_TYPES]
    return [(v, v) for v in sorted(set(values), key=str.casefold)]


# --- typed values --------------------------------------------------------------------------------


def parse_typed(step: Step, text: str, draft: Filters) -> Any:
    """The value typed for `step`, checked against the field's bounds; MenuInputError says why not."""
    text = text.strip()
    if step.field == "quiet_hours":
        return parse_quiet_hours(text, draft.quiet_hours.timezone if draft.quiet_hours else "UTC")
    low, high = _bounds(step.field)
    number_text = text.removesuffix("%").strip().replace(",", ".")
    try:
        number = float(number_text)
    except ValueError:
        raise MenuInputError(f"{text!r} is not a number; {step.typed}.") from None
    if not low <= number <= high:
        raise MenuInputError(f"{_title(step.field)} must be between {low:g} and {high:g}; got {number:g}.")
    if step.field in WHOLE_NUMBERS:
        if number != int(number):
            raise MenuInputError(f"{_title(step.field)} is {WHOLE_NUMBERS[step.field]}.")
        return int(number)
    return number


def parse_quiet_hours(text: str, zone: str = "UTC") -> QuietHours | None:
    """ "22-7", "22:30-06:30", "23:00–07:00 Europe/Berlin" or "off"."""
    if text.lower() in ("off", "none", "no"):
        return None
    match = re.fullmatch(r"(\d{1,2})(?::(\d{2}))?\s*[-–]\s*(\d{1,2})(?::(\d{2}))?(?:\s+(\S+))?", text)
    if match is None:
        raise MenuInputError(f"{text!r} is not a time window; type e.g. 22:30-06:30 Europe/London, or off.")
    h1, m1, h2, m2, typed_zone = match.groups()
    try:
        start, end = time(int(h1), int(m1 or 0)), time(int(h2), int(m2 or 0))
    except ValueError:
        raise MenuInputError(f"{text!r} has an impossible time; hours 0–23, minutes 0–59.") from None
    if start == end:
        raise MenuInputError("Quiet hours must start and end at different times.")
    try:
        return QuietHours(start=start, end=end, timezone=typed_zone or zone)
    except ValidationError as exc:
        raise MenuInputError(str(exc.errors()[0]["msg"]).removeprefix("Value error, ") + ".") from None


def parse_duration(text: str) -> timedelta:
    """ "30m", "2h", "1d", "1h30m" (for /mute); MenuInputError with the accepted forms otherwise."""
    compact = text.strip().lower().replace(" ", "")
    parts = re.findall(r"(\d+)(d|h|m)", compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise MenuInputError(f"{text!r} is not a duration; use e.g. /mute 30m, /mute 2h or /mute 1d.")
    unit = {"d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}
    duration = sum((int(n) * unit[u] for n, u in parts), timedelta())
    if not timedelta(minutes=1) <= duration <= MAX_MUTE:
        raise MenuInputError("A mute lasts from 1 minute to 30 days; /mute alone mutes until /unmute.")
    return duration


def _bounds(field: str) -> tuple[float, float]:
    """The field's ge/le bounds as Filters declares them, so menu and model cannot disagree."""
    metadata = Filters.model_fields[field].metadata
    low = next((float(cast(float, m.ge)) for m in metadata if isinstance(m, Ge)), float("-inf"))
    high = next((float(cast(float, m.le)) for m in metadata if isinstance(m, Le)), float("inf"))
    return low, high


# --- showing -------------------------------------------------------------------------------------


def render(state: MenuState) -> Screen:
    """The menu's message: a step, /subscribe's summary or /settings' overview."""
    if state.step is None:
        return _summary(state) if state.mode == "subscribe" else _overview(state)
    step = STEPS[state.step]
    head = (
        f"<b>Step {state.step + 1} of {len(STEPS)} · {step.title}</b>"
        if state.mode == "subscribe"
        else f"<b>Settings · {step.title}</b>"
    )
    lines = [head, html.escape(step.question)]
    rows = _multi_rows(state, step, lines) if step.multi else _single_rows(state, step)
    if step.typed:
        lines.append(f"<i>{html.escape(step.typed[:1].upper() + step.typed[1:])}.</i>")
    lines.append(f"Now: {html.escape(value_words(step.field, getattr(state.draft, step.field)))}")
    return Screen("\n".join(lines), (*rows, *_nav_rows(state)))


def _multi_rows(state: MenuState, step: Step, lines: list[str]) -> list[tuple[Button, ...]]:
    shown = options(state, step)
    if not shown:
        lines.append(f"<i>{html.escape(state.catalog.note or 'Nothing to pick from yet')}: any will do.</i>")
        return []
    chosen = set(getattr(state.draft, step.field))
    pages = -(-len(shown) // PAGE_SIZE)
    page = min(state.page, pages - 1)
    first = page * PAGE_SIZE
    buttons = [
        Button(_label(("✅ " if value in chosen else "") + label), encode(Action("pick", first + i)))
        for i, (label, value) in enumerate(shown[first : first + PAGE_SIZE])
    ]
    rows = [tuple(buttons[i : i + 2]) for i in range(0, len(buttons), 2)]
    if pages > 1:
        rows.append(
            (
                Button("◀ Prev", encode(Action("page", max(page - 1, 0)))),
                Button(f"{page + 1} / {pages}", encode(Action("page", page))),
                Button("Next ▶", encode(Action("page", min(page + 1, pages - 1)))),
            )
        )
    rows.append((Button(("✅ " if not chosen else "") + "Any (clear)", encode(Action("any"))),))
    return rows


def _single_rows(state: MenuState, step: Step) -> list[tuple[Button, ...]]:
    current = getattr(state.draft, step.field)
    buttons = [
        Button(
            ("✅ " if _choice_value(c.value, state.draft) == current else "") + c.label,
            encode(Action("pick", i)),
        )
        for i, c in enumerate(step.choices)
    ]
    return [tuple(buttons[i : i + 3]) for i in range(0, len(buttons), 3)]


def _nav_rows(state: MenuState) -> list[tuple[Button, ...]]:
    if state.mode == "settings":
        return [(Button("◀ Back", encode(Action("back"))), Button("Done ✔", encode(Action("next"))))]
    done = Button("Done ✔", encode(Action("next")))
    cancel = Button("✖ Cancel", encode(Action("cancel")))
    if state.step == 0:
        return [(cancel, done)]
    return [(Button("◀ Back", encode(Action("back"))), done), (cancel,)]


def _summary(state: MenuState) -> Screen:
    text = "<b>Your alerts</b>\n" + describe(state.draft) + "\n\nSave these settings?"
    rows = (
        (Button("💾 Save", encode(Action("save"))),),
        (Button("◀ Back", encode(Action("back"))), Button("✖ Cancel", encode(Action("cancel")))),
    )
    return Screen(text, rows)


def _overview(state: MenuState) -> Screen:
    text = "<b>Your settings</b>\n" + describe(state.draft) + "\n\nPick one to change it."
    edits = [Button(f"✏️ {s.title}", encode(Action("edit", i))) for i, s in enumerate(STEPS)]
    rows = [tuple(edits[i : i + 3]) for i in range(0, len(edits), 3)]
    return Screen(text, (*rows, (Button("Close", encode(Action("close"))),)))


def describe(filters: Filters) -> str:
    """Every filter in words, one per line (Telegram HTML)."""
    return "\n".join(
        f"• {_title(s.field)}: {html.escape(value_words(s.field, getattr(filters, s.field)))}" for s in STEPS
    )


def value_words(field: str, value: Any) -> str:
    if isinstance(value, list):
        names = [TYPE_TITLES.get(str(v), str(v)) if field == "alert_types" else str(v) for v in value]
        return ", ".join(names) if names else "any"
    if value is None:
        return {"quiet_hours": "off", "max_alerts_per_hour": "no limit"}.get(field, "any")
    if isinstance(value, QuietHours):
        return f"{value.start:%H:%M}–{value.end:%H:%M} {value.timezone}"
    if field == "min_severity":
        return "yellow and red" if value == "yellow" else "red only"
    if field == "digest_interval_minutes":
        return f"every {value} min" if value % 60 else f"every {value // 60} h"
    if field == "max_alerts_per_hour":
        return f"{value} an hour"
    return f"{value:g} %"


def _title(field: str) -> str:
    return STEPS[STEP_INDEX[field]].title if field in STEP_INDEX else field


def _label(text: str) -> str:
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"
