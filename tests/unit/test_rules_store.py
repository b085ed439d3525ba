"""Rules and alert-policy versions saved from the app: validated first (nothing saved when wrong),
appended to the app database, written atomically where the next run reads them, and the shipped
files in the repo never touched."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from oddly.alerts.policy import load_policy
from oddly.appdb import open_app_db
from oddly.config import SHIPPED_CONFIG, Settings
from oddly.detect.rules import load_rules, rules_for_ingestion
from oddly.views.rules_store import RulesStoreError, history, next_version, save, target_path


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("ODDLY_HOME", str(tmp_path))
    monkeypatch.delenv("ODDLY_RULES_FILE", raising=False)
    monkeypatch.delenv("ODDLY_ALERT_POLICY_FILE", raising=False)
    monkeypatch.delenv("ODDLY_APP_DATABASE_URL", raising=False)
    return Settings()


@pytest.fixture
def engine(settings: Settings) -> sa.Engine:
    return open_app_db(settings)


SHIPPED_RULES = (SHIPPED_CONFIG / "rules.yaml").read_text()


def test_settings_read_the_shipped_files_until_the_app_saved_one(settings: Settings, tmp_path: Path) -> None:
    assert settings.rules_file == SHIPPED_CONFIG / "rules.yaml"
    assert settings.alert_policy_file == SHIPPED_CONFIG / "alert_policy.yaml"
    (tmp_path / "rules.yaml").write_text("version: mine\n")
    assert Settings().rules_file == tmp_path / "rules.yaml"
    assert Settings().alert_policy_file == SHIPPED_CONFIG / "alert_policy.yaml"


def test_an_explicit_file_wins_and_is_written_in_place(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "rules.yaml").write_text("version: home\n")
    own = tmp_path / "elsewhere" / "r.yaml"
    monkeypatch.setenv("ODDLY_RULES_FILE", str(own))
    assert Settings().rules_file == own
    assert target_path(Settings(), "rules") == own
    assert target_path(settings, "policy") == tmp_path / "alert_policy.yaml"


def test_a_changed_threshold_with_the_same_version_becomes_the_next_version(
    settings: Settings, engine: sa.Engine, tmp_path: Path
) -> None:
    edited = SHIPPED_RULES.replace("min_margin: 0.005", "min_margin: 0.007")
    shipped_version = load_rules(SHIPPED_CONFIG / "rules.yaml").version
    saved = save(engine, settings, "rules", edited, saved_by="ana", note="tighter arbs")
    assert saved.created and saved.bumped_from == shipped_version
    assert saved.version == next_version(shipped_version, {shipped_version})
    assert saved.path == tmp_path / "rules.yaml"
    # what the next ingestion run reads: fresh settings, the new file, the new version
    rules, problem = rules_for_ingestion(Settings().rules_file)
    assert problem is None and rules is not None
    assert rules.version == saved.version and rules.arbitrage.min_margin == 0.007
    assert "# Rule detector thresholds" in saved.path.read_text(), "comments are kept"
    assert (SHIPPED_CONFIG / "rules.yaml").read_text() == SHIPPED_RULES, "the repo file was written"
    past = history(engine, "rules")
    assert past["version"].tolist() == [saved.version, shipped_version]
    assert past["saved_by"].tolist() == ["ana", "(file)"]
    assert not list(tmp_path.glob(".rules.yaml*")), "the temp file was left behind"


def test_versions_are_never_reused_and_a_new_one_is_kept_as_typed(
    settings: Settings, engine: sa.Engine
) -> None:
    first = save(engine, settings, "rules", "version: v7\nsteam: {min_books: 4}\n", saved_by="a")
    assert (first.version, first.bumped_from) == ("v7", None)
    again = save(engine, Settings(), "rules", "version: v7\nsteam: {min_books: 5}\n", saved_by="b")
    assert (again.version, again.bumped_from) == ("v8", "v7")
    assert load_rules(Settings().rules_file).steam.min_books == 5
    unchanged = save(engine, Settings(), "rules", Settings().rules_file.read_text(), saved_by="c")
    assert not unchanged.created and unchanged.version == "v8"
    assert len(history(engine, "rules")) == 3  # baseline, v7, v8


@pytest.mark.parametrize(
    ("kind", "text", "message"),
    [
        ("rules", "version: x\nsteam: {min_books: 1}\n", r"steam\.min_books: Input should be greater"),
        ("rules", "version: x\nsharp_drop: {min_prob: 3}\n", r"sharp_drop\.min_prob: Extra inputs"),
        ("rules", "version: [unclosed\n", "not valid YAML"),
        ("policy", "version: p\ntypes: {steam: {yellow_strength: 2, red_strength: 1}}\n", "red_strength"),
        ("policy", "cooldown: {minutes: 5}\n", "version: Field required"),
        ("policy", "- a list\n", "must be a YAML mapping"),
    ],
)
def test_an_invalid_edit_names_the_field_and_saves_nothing(
    settings: Settings, engine: sa.Engine, tmp_path: Path, kind: str, text: str, message: str
) -> None:
    with pytest.raises(RulesStoreError, match=message):
        save(engine, settings, kind, text, saved_by="ana")  # type: ignore[arg-type]
    assert history(engine, kind).empty  # type: ignore[arg-type]
    assert not list(tmp_path.glob("*.yaml"))


def test_a_saved_policy_is_what_the_alert_run_loads(settings: Settings, engine: sa.Engine) -> None:
    text = (SHIPPED_CONFIG / "alert_policy.yaml").read_text().replace("minutes: 15", "minutes: 30")
    saved = save(engine, settings, "policy", text, saved_by="ana")
    policy = load_policy(Settings().alert_policy_file)
    assert policy.version == saved.version and policy.cooldown.minutes == 30


def test_blank_saver_is_refused(settings: Settings, engine: sa.Engine) -> None:
    with pytest.raises(RulesStoreError, match="saved_by is blank"):
        save(engine, settings, "rules", "version: z\n", saved_by=" ")


def test_next_version_counts_on_from_the_trailing_number() -> None:
    assert next_version("2026-11-1", {"2026-11-1"}) == "2026-11-2"
    assert next_version("v3", {"v3", "v4"}) == "v5"
    assert next_version("beta", {"beta"}) == "beta-2"
