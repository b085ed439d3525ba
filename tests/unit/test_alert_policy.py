"""The alert policy file: the shipped one loads, and every mistake is an error naming its field."""

from __future__ import annotations

from pathlib import Path

import pytest

from oddly.alerts.policy import ALERT_TYPES, PolicyError, load_policy, parse_policy
from oddly.config import REPO_ROOT, Settings

SHIPPED = REPO_ROOT / "config" / "alert_policy.yaml"


def test_the_shipped_policy_loads_and_grades_every_alert_type() -> None:
    policy = load_policy(SHIPPED)
    assert policy.version
    assert set(policy.types) == set(ALERT_TYPES)
    assert policy.cooldown_minutes("sharp_drop") == policy.cooldown.minutes


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        (
            {"version": "1", "types": {"sharp_drop": {"red_strenght": 2}}},
            "types.sharp_drop.red_strenght",
            "Extra inputs",
        ),
        (
            {"version": "1", "types": {"sharp_drop": {"yellow_strength": 2, "red_strength": 1}}},
            "types.sharp_drop",
            "at least",
        ),
        ({"version": "1", "types": {"sharp_dorp": {}}}, "types", "unknown alert type(s) sharp_dorp"),
        ({"version": "1", "types": {"anomaly": {}}}, "types", "anomaly needs yellow_score"),
        (
            {"version": "1", "cooldown": {"resend_strength_ratio": 0.5}},
            "cooldown.resend_strength_ratio",
            "greater than or equal to 1",
        ),
        (
            {"version": "1", "kickoff": {"red_within_hours": 48, "yellow_within_hours": 24}},
            "kickoff",
            "at least",
        ),
        ({"version": " "}, "version", "blank"),
        ({"types": {}}, "version", "Field required"),
        ({"version": "1", "colldown": {}}, "colldown", "Extra inputs"),
    ],
)
def test_mistakes_name_their_field(raw: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(raw, source="p.yaml")
    message = str(caught.value)
    assert "p.yaml" in message and f"  {field}:" in message and words in message


def test_a_numeric_version_is_kept_as_written() -> None:
    assert parse_policy({"version": 3}).version == "3"


def test_per_type_cooldown_overrides_and_the_longest_is_what_to_read(tmp_path: Path) -> None:
    policy = parse_policy(
        {"version": "1", "types": {"steam": {"cooldown_minutes": 45}}, "cooldown": {"minutes": 10}}
    )
    assert policy.cooldown_minutes("steam") == 45
    assert policy.cooldown_minutes("sharp_drop") == 10
    assert policy.longest_cooldown_minutes == 45


def test_missing_or_malformed_files_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="ODDLY_ALERT_POLICY_FILE"):
        load_policy(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(PolicyError, match="must be a mapping"):
        load_policy(bad)
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: [unclosed\n")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(broken)


def test_settings_locate_the_policy_and_the_app_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ODDLY_HOME", str(tmp_path))
    monkeypatch.delenv("ODDLY_APP_DATABASE_URL", raising=False)
    monkeypatch.setenv("ODDLY_ALERT_POLICY_FILE", str(tmp_path / "policy.yaml"))
    settings = Settings()
    assert settings.alert_policy_file == tmp_path / "policy.yaml"
    assert settings.resolved_app_database_url == f"sqlite:///{tmp_path.resolve()}/app.db"
    monkeypatch.setenv("ODDLY_APP_DATABASE_URL", "postgresql://u@db:5432/oddly")
    assert Settings().resolved_app_database_url == "postgresql+psycopg://u@db:5432/oddly"
