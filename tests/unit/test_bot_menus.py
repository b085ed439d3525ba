"""The bot's menu state machine, without Telegram: steps, toggles, callback data, typed values."""

from __future__ import annotations

from dataclasses import replace
from datetime import time, timedelta

import pytest

from oddly.alerts.policy import ALERT_TYPES
from oddly.alerts.subscriptions import Filters, QuietHours
from oddly.telegram.bot_menus import (
    MAX_CALLBACK_BYTES,
    PAGE_SIZE,
    STEP_INDEX,
    STEPS,
    Action,
    Catalog,
    MenuInputError,
    MenuState,
    Screen,
    apply,
    apply_text,
    decode,
    encode,
    open_settings,
    open_subscribe,
    options,
    parse_duration,
    parse_quiet_hours,
    render,
)

CATALOG = Catalog(
    sports=("football", "tennis"),
    leagues=(("football", "Premier League"), ("football", "La Liga"), ("tennis", "ATP Rome")),
    bookmakers=("22bet", "bet365", "pinnacle"),
)


def press(state: MenuState, data: str) -> MenuState:
    """Press the button with callback `data`; the menu must stay open."""
    after = apply(state, decode(data)).state
    assert after is not None
    return after


def data_of(screen: Screen, label: str) -> str:
    for row in screen.rows:
        for button in row:
            if button.label.removeprefix("✅ ") == label:
                return button.data
    raise AssertionError(f"no button {label!r}: {[b.label for r in screen.rows for b in r]}")


def ticked(screen: Screen) -> set[str]:
    return {b.label.removeprefix("✅ ") for r in screen.rows for b in r if b.label.startswith("✅ ")}


def at(field: str, state: MenuState) -> MenuState:
    return replace(state, step=STEP_INDEX[field], page=0)


# --- callback data -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "action",
    [
        Action("pick", 0),
        Action("pick", 9999),
        Action("next"),
        Action("edit", 8),
        Action("page", 12),
        Action("cancel"),
    ],
)
def test_callback_data_round_trips_within_64_bytes(action: Action) -> None:
    data = encode(action)
    assert len(data.encode()) <= MAX_CALLBACK_BYTES
    assert decode(data) == action


def test_every_button_of_every_screen_fits_and_decodes() -> None:
    long_leagues = tuple(("football", f"Liga {'Ü' * 50} {i}") for i in range(40))
    state = open_subscribe(Filters(), replace(CATALOG, leagues=long_leagues))
    screens = [render(replace(state, step=i, page=p)) for i in range(len(STEPS)) for p in range(6)]
    screens += [render(replace(state, step=None)), render(open_settings(Filters(), CATALOG))]
    for screen in screens:
        for row in screen.rows:
            for button in row:
                assert len(button.data.encode()) <= MAX_CALLBACK_BYTES
                decode(button.data)
                assert len(button.label) <= 40


@pytest.mark.parametrize(
    "data", ["", "m", "m:zz", "m:p", "m:n:3", "m:p:-1", "m:p:abc", "x:n", "m:p:1:2", "m:p:99999"]
)
def test_malformed_callback_data_is_refused_with_a_message(data: str) -> None:
    with pytest.raises(MenuInputError, match="send /settings"):
        decode(data)


# --- moving through /subscribe -------------------------------------------------------------------


def test_done_and_back_walk_the_steps_in_order_and_end_on_the_summary() -> None:
    state = open_subscribe(Filters(), CATALOG)
    seen = []
    while state.step is not None:
        seen.append(STEPS[state.step].field)
        state = press(state, encode(Action("next")))
    assert seen == [s.field for s in STEPS]
    assert "Save these settings?" in render(state).text
    state = press(state, encode(Action("back")))
    assert state.step == len(STEPS) - 1
    state = press(state, encode(Action("back")))
    assert state.step == len(STEPS) - 2
    with pytest.raises(MenuInputError, match="first step"):
        apply(open_subscribe(Filters(), CATALOG), Action("back"))


def test_toggles_tick_and_untick_and_any_clears() -> None:
    state = at("bookmakers", open_subscribe(Filters(), CATALOG))
    screen = render(state)
    assert ticked(screen) == {"Any (clear)"}
    state = press(state, data_of(screen, "pinnacle"))
    state = press(state, data_of(render(state), "22bet"))
    assert state.draft.bookmakers == ["pinnacle", "22bet"]
    assert ticked(render(state)) == {"pinnacle", "22bet"}
    state = press(state, data_of(render(state), "pinnacle"))
    assert state.draft.bookmakers == ["22bet"]
    state = press(state, data_of(render(state), "Any (clear)"))
    assert state.draft.bookmakers == []


def test_alert_types_offer_every_type_by_its_title() -> None:
    state = at("alert_types", open_subscribe(Filters(), CATALOG))
    assert [value for _, value in options(state, STEPS[state.step or 0])] == list(ALERT_TYPES)
    state = press(state, data_of(render(state), "Value bet"))
    assert state.draft.alert_types == ["value"]


def test_leagues_follow_the_ticked_sports_and_unticking_a_sport_drops_its_leagues() -> None:
    state = open_subscribe(Filters(), CATALOG)
    state = press(state, data_of(render(state), "football"))
    state = press(state, encode(Action("next")))
    assert [label for label, _ in options(state, STEPS[state.step or 0])] == ["La Liga", "Premier League"]
    state = press(state, data_of(render(state), "Premier League"))
    state = replace(state, step=STEP_INDEX["sports"])
    state = press(state, data_of(render(state), "tennis"))
    assert state.draft.leagues == ["Premier League"]  # football still ticked
    state = press(state, data_of(render(state), "football"))
    assert state.draft.sports == ["tennis"] and state.draft.leagues == []


def test_ticked_values_unknown_to_the_catalog_stay_listed() -> None:
    state = at("bookmakers", open_subscribe(Filters(bookmakers=["oldbook"]), Catalog()))
    screen = render(state)
    assert ticked(screen) == {"oldbook"}
    state = press(state, data_of(screen, "oldbook"))
    assert state.draft.bookmakers == []
    assert "any will do" in render(state).text  # nothing left to list


def test_long_lists_are_paged() -> None:
    books = tuple(f"book{i:02d}" for i in range(PAGE_SIZE * 2 + 3))
    state = at("bookmakers", open_subscribe(Filters(), Catalog(bookmakers=books)))
    first = render(state)
    assert "book00" in data_labels(first) and f"book{PAGE_SIZE:02d}" not in data_labels(first)
    assert "1 / 3" in data_labels(first)
    state = press(state, data_of(first, "Next ▶"))
    second = render(state)
    assert f"book{PAGE_SIZE:02d}" in data_labels(second) and "2 / 3" in data_labels(second)
    state = press(state, data_of(second, f"book{PAGE_SIZE + 1:02d}"))
    assert state.draft.bookmakers == [f"book{PAGE_SIZE + 1:02d}"]
    state = press(state, encode(Action("page", 99)))
    assert state.page == 2
    with pytest.raises(MenuInputError, match="no longer offered"):
        apply(state, Action("pick", len(books)))


def data_labels(screen: Screen) -> list[str]:
    return [b.label.removeprefix("✅ ") for r in screen.rows for b in r]


def test_single_choices_replace_each_other() -> None:
    state = at("min_drop_pct", open_subscribe(Filters(), CATALOG))
    assert ticked(render(state)) == {"Any drop"}
    state = press(state, data_of(render(state), "8 %"))
    state = press(state, data_of(render(state), "15 %"))
    assert state.draft.min_drop_pct == 15.0 and ticked(render(state)) == {"15 %"}
    state = press(state, data_of(render(state), "Any drop"))
    assert state.draft.min_drop_pct is None
    with pytest.raises(MenuInputError, match="no longer offered"):
        apply(state, Action("pick", 99))


def test_quiet_hours_buttons_keep_the_chats_time_zone() -> None:
    current = Filters(quiet_hours=QuietHours(start=time(1), end=time(2), timezone="Europe/Berlin"))
    state = at("quiet_hours", open_subscribe(current, CATALOG))
    state = press(state, data_of(render(state), "22:00–07:00"))
    assert state.draft.quiet_hours == QuietHours(start=time(22), end=time(7), timezone="Europe/Berlin")
    assert ticked(render(state)) == {"22:00–07:00"}


def test_save_builds_the_filters_and_cancel_saves_nothing() -> None:
    state = open_subscribe(Filters(), CATALOG)
    state = press(state, data_of(render(state), "football"))
    for field, label in (
        ("alert_types", "Sharp drop"),
        ("min_severity", "🔴 Red only"),
        ("digest_interval_minutes", "4 h"),
    ):
        state = at(field, state)
        state = press(state, data_of(render(state), label))
    summary = replace(state, step=None)
    cancelled = apply(summary, Action("cancel"))
    assert cancelled.state is None and cancelled.save is None
    saved = apply(summary, decode(data_of(render(summary), "💾 Save")))
    assert saved.state is None
    assert saved.save == Filters(
        sports=["football"], alert_types=["sharp_drop"], min_severity="red", digest_interval_minutes=240
    )


def test_buttons_of_another_screen_are_refused() -> None:
    summary = replace(open_subscribe(Filters(), CATALOG), step=None)
    for action in (Action("pick", 0), Action("any"), Action("edit", 1), Action("close")):
        with pytest.raises(MenuInputError):
            apply(summary, action)
    with pytest.raises(MenuInputError):
        apply(at("min_severity", summary), Action("any"))  # "any" is for multi-select steps
    with pytest.raises(MenuInputError):
        apply(at("sports", summary), Action("save"))


# --- /settings -----------------------------------------------------------------------------------


def test_settings_done_saves_one_field_and_back_restores_it() -> None:
    stored = Filters(min_edge_pct=2.0, bookmakers=["pinnacle"])
    overview = open_settings(stored, CATALOG)
    assert "Minimum edge: 2 %" in render(overview).text
    editing = press(overview, data_of(render(overview), "✏️ Minimum edge"))
    editing = press(editing, data_of(render(editing), "5 %"))
    back = apply(editing, Action("back"))
    assert (
        back.save is None
        and back.state is not None
        and back.state.draft == stored
        and back.state.step is None
    )
    done = apply(editing, Action("next"))
    assert done.save == Filters(min_edge_pct=5.0, bookmakers=["pinnacle"])
    assert done.state is not None and done.state.step is None and done.state.saved == done.save
    assert "saved" in done.notice
    closed = apply(done.state, Action("close"))
    assert closed.state is None and closed.save is None
    with pytest.raises(MenuInputError):
        apply(overview, Action("edit", len(STEPS)))


# --- typed values --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "typed", "expected"),
    [
        ("min_drop_pct", "7.5", 7.5),
        ("min_drop_pct", "7,5 %", 7.5),
        ("min_drop_pct", "0", 0.0),
        ("min_edge_pct", "250", 250.0),
        ("digest_interval_minutes", "45", 45),
        ("digest_interval_minutes", "1440", 1440),
        ("max_alerts_per_hour", "45", 45),
    ],
)
def test_typed_numbers_are_taken_and_move_on(field: str, typed: str, expected: float) -> None:
    state = at(field, open_subscribe(Filters(), CATALOG))
    moved = apply_text(state, typed)
    assert moved.state is not None and getattr(moved.state.draft, field) == expected
    assert moved.state.step == (STEP_INDEX[field] + 1 if STEP_INDEX[field] + 1 < len(STEPS) else None)
    assert moved.save is None


@pytest.mark.parametrize(
    ("field", "typed", "message"),
    [
        ("min_drop_pct", "lots", "not a number"),
        ("min_drop_pct", "101", "between 0 and 100"),
        ("min_drop_pct", "-1", "between 0 and 100"),
        ("min_edge_pct", "1001", "between 0 and 1000"),
        ("digest_interval_minutes", "4", "between 5 and 1440"),
        ("digest_interval_minutes", "7.5", "whole minutes"),
        ("max_alerts_per_hour", "0", "between 1 and 3600"),
        ("max_alerts_per_hour", "2.5", "a whole number"),
        ("min_drop_pct", "nan", "between"),
    ],
)
def test_typed_numbers_out_of_bounds_are_refused_with_the_bounds(
    field: str, typed: str, message: str
) -> None:
    with pytest.raises(MenuInputError, match=message):
        apply_text(at(field, open_subscribe(Filters(), CATALOG)), typed)


def test_typing_where_only_buttons_work_says_so() -> None:
    with pytest.raises(MenuInputError, match="buttons"):
        apply_text(at("sports", open_subscribe(Filters(), CATALOG)), "football")
    with pytest.raises(MenuInputError, match="buttons"):
        apply_text(open_settings(Filters(), CATALOG), "5")


def test_typed_value_in_settings_is_saved_at_once() -> None:
    state = at("min_drop_pct", open_settings(Filters(), CATALOG))
    done = apply_text(state, "12")
    assert done.save == Filters(min_drop_pct=12.0) and done.state is not None and done.state.step is None


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("22-7", QuietHours(start=time(22), end=time(7))),
        ("22:30 - 06:45", QuietHours(start=time(22, 30), end=time(6, 45))),
        ("23:00–07:00 Europe/London", QuietHours(start=time(23), end=time(7), timezone="Europe/London")),
        ("off", None),
    ],
)
def test_quiet_hours_are_parsed(typed: str, expected: QuietHours | None) -> None:
    assert parse_quiet_hours(typed) == expected


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("tonight", "not a time window"),
        ("25-7", "impossible time"),
        ("7-7", "different times"),
        ("22-7 Mars/Base", "unknown time zone"),
    ],
)
def test_bad_quiet_hours_say_what_is_wrong(typed: str, message: str) -> None:
    with pytest.raises(MenuInputError, match=message):
        parse_quiet_hours(typed)


# --- /mute durations -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1h 30m", timedelta(minutes=90)),
    ],
)
def test_mute_durations(typed: str, expected: timedelta) -> None:
    assert parse_duration(typed) == expected


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("abc", "not a duration"),
        ("2", "not a duration"),
        ("2hx", "not a duration"),
        ("31d", "30 days"),
        ("0m", "1 minute"),
    ],
)
def test_bad_mute_durations_show_the_accepted_forms(typed: str, message: str) -> None:
    with pytest.raises(MenuInputError, match=message):
        parse_duration(typed)
