"""Rules: the detector thresholds and the alert policy, shown and edited. A save is validated
(an error names the field; nothing is saved), kept as a new version in the app database and
written where the next ingestion and alert runs read it (`oddly.views.rules_store`)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st
import yaml

from dashboards.common import app_db, explained
from oddly.config import get_settings
from oddly.views import rules_store
from oddly.views.rules_store import Kind, RulesStoreError

TITLES: dict[Kind, str] = {"rules": "Detector thresholds", "policy": "Alert policy"}


def flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Every setting as (dotted name, value as YAML would write it)."""
    if isinstance(value, dict) and value:
        return [row for key, item in value.items() for row in flatten(item, f"{prefix}{key}.")]
    return [
        (prefix.rstrip("."), yaml.safe_dump(value, default_flow_style=True).removesuffix("...\n").strip())
    ]


def current_settings(text: str) -> pd.DataFrame:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError:
        raw = None
    rows = flatten(raw) if isinstance(raw, dict) else []
    return pd.DataFrame(rows, columns=["setting", "value"])


def editor(kind: Kind) -> None:
    # Fresh settings each run: after a save they point at the new file.
    settings = get_settings()
    active = rules_store.active_path(settings, kind)
    text = active.read_text() if active.exists() else ""
    done = st.session_state.pop(f"{kind}_saved", None)
    if done:
        st.success(done)
    try:
        version = rules_store.validate(kind, text)
        st.caption(f"Active: version **{version}**, read by the runs from `{active}`.")
    except RulesStoreError as exc:
        st.error(f"The active file `{active}` is invalid, so the runs cannot use it:\n\n{exc}")
    target = rules_store.target_path(settings, kind)
    if target != active:
        st.caption(f"Saving writes `{target}` (the shipped file in the repository stays as it is).")

    view, edit, past = st.tabs(["Current settings", "Edit", "Versions"])
    with view:
        st.dataframe(current_settings(text), hide_index=True)
    with edit, st.form(f"{kind}_form"):
        edited = st.text_area("YAML", value=text, height=480, key=f"{kind}_yaml")
        left, right = st.columns(2)
        saved_by = left.text_input("Your name", key=f"{kind}_saved_by")
        note = right.text_input("What changed and why", key=f"{kind}_note")
        st.caption("A version already used is bumped automatically (2026-11-1 → 2026-11-2).")
        if st.form_submit_button("Validate and save a new version"):
            save(kind, edited, saved_by, note)
    with past, explained():
        versions = rules_store.history(app_db(), kind)
        if versions.empty:
            st.info("No version saved from the app yet; the runs read the file above.")
        else:
            st.dataframe(versions.drop(columns="yaml_text"), hide_index=True)
            picked = st.selectbox("Show version", versions["version"], key=f"{kind}_show")
            st.code(versions.loc[versions["version"] == picked, "yaml_text"].iloc[0], language="yaml")


def save(kind: Kind, text: str, saved_by: str, note: str) -> None:
    try:
        saved = rules_store.save(app_db(), get_settings(), kind, text, saved_by=saved_by, note=note or None)
    except RulesStoreError as exc:
        st.error(f"Nothing was saved.\n\n{exc}")
        return
    if not saved.created:
        st.info(f"Nothing changed: version {saved.version} is already the active one.")
        return
    bumped = (
        f" (version {saved.bumped_from} was taken, so it became {saved.version})" if saved.bumped_from else ""
    )
    st.session_state[f"{kind}_saved"] = (
        f"Saved version {saved.version}{bumped} to `{saved.path}`. The next run uses it."
    )
    st.session_state.pop(f"{kind}_yaml", None)  # show the file as saved (its version line may differ)
    st.rerun()


st.title("Rules")
for kind, tab in zip(TITLES, st.tabs(list(TITLES.values())), strict=True):
    with tab:
        editor(kind)
