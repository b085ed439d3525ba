"""The rules file: the shipped one loads, and every mistake is an error naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from oddly.detect.rules import Rules, RulesError, load_rules, parse_rules, rules_for_ingestion

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    return path


def test_shipped_rules_file_loads_with_its_version() -> None:
    rules = load_rules(REPO / "config" / "rules.yaml")
    assert rules.version
    assert "pinnacle" in rules.sharp_books
    assert rules.out_of_line.min_probability_points == 3.0
    assert rules.arbitrage.min_margin > 0


def test_defaults_fill_missing_sections_and_numeric_versions_stay_as_written(tmp_path: Path) -> None:
    rules = load_rules(write(tmp_path, "version: 3\nsharp_drop: {min_probability_points: 5}\n"))
    assert rules.version == "3"
    assert rules.sharp_drop.min_probability_points == 5.0
    assert rules.sharp_drop.min_price_drop == 0.05  # the default
    assert rules.steam == Rules(version="x").steam


def test_missing_version_is_an_error() -> None:
    with pytest.raises(RulesError, match=r"(?s)rules file r\.yaml is invalid.*version: Field required"):
        parse_rules({"sharp_drop": {"min_probability_points": 3}}, source="r.yaml")


def test_blank_version_is_an_error() -> None:
    with pytest.raises(RulesError, match="version: Value error, must not be blank"):
        parse_rules({"version": "  "})


def test_out_of_range_threshold_names_field_and_value(tmp_path: Path) -> None:
    path = write(tmp_path, "version: a\nsharp_drop:\n  min_probability_points: -1\n")
    with pytest.raises(RulesError) as err:
        load_rules(path)
    message = str(err.value)
    assert str(path) in message
    assert "sharp_drop.min_probability_points: Input should be greater than 0 (got -1)" in message


def test_misspelt_threshold_is_an_error_not_a_silent_default() -> None:
    with pytest.raises(RulesError, match=r"out_of_line\.min_points: Extra inputs are not permitted"):
        parse_rules({"version": "a", "out_of_line": {"min_points": 4}})


def test_wrong_type_is_an_error() -> None:
    with pytest.raises(RulesError, match=r"steam\.min_books: Input should be a valid integer"):
        parse_rules({"version": "a", "steam": {"min_books": "many"}})


def test_commission_must_be_a_share() -> None:
    with pytest.raises(RulesError, match=r"exchange_commission: .*commission must be in \[0, 1\)"):
        parse_rules({"version": "a", "exchange_commission": {"betfair_ex": 5}})


def test_a_sharp_only_rule_needs_sharp_books() -> None:
    with pytest.raises(RulesError, match="sharp_books is empty, but a rule needs the sharp reference"):
        parse_rules({"version": "a", "sharp_books": [], "sharp_drop": {"sharp_books_only": True}})


def test_missing_file_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match=r"not found; set ODDLY_RULES_FILE or copy config/rules\.yaml"):
        load_rules(tmp_path / "nope.yaml")


def test_broken_yaml_and_non_mapping_are_errors(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="is not valid YAML"):
        load_rules(write(tmp_path, "version: [1\n"))
    with pytest.raises(RulesError, match="must be a mapping with at least `version:`"):
        load_rules(write(tmp_path, "- 1\n- 2\n"))
    with pytest.raises(RulesError, match="must be a mapping"):
        load_rules(write(tmp_path, ""))


def test_a_broken_rules_file_turns_detection_off_for_ingestion_with_the_reason(tmp_path: Path) -> None:
    rules, problem = rules_for_ingestion(write(tmp_path, "version: a\nsteam: {min_books: 1}\n"))
    assert rules is None
    assert problem is not None and problem.startswith("detectors off: rules file")
    assert "steam.min_books: Input should be greater than or equal to 2" in problem
    rules, problem = rules_for_ingestion(REPO / "config" / "rules.yaml")
    assert rules is not None and problem is None
