"""The editable alias table: normalized spelling → the canonical normalized name."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from oddly.config import REPO_ROOT
from oddly.matching.names import normalize_team

DEFAULT_ALIASES_FILE = REPO_ROOT / "config" / "team_aliases.csv"


def aliases_file() -> Path:
    return Path(os.environ.get("ODDLY_ALIASES_FILE", DEFAULT_ALIASES_FILE))


def load_aliases(path: Path | None = None) -> dict[str, str]:
    """Aliases from a CSV with `alias,canonical` columns (lines starting with # are comments).
    Both sides are normalized, so the file can be written the way people write names."""
    path = path or aliases_file()
    if not path.exists():
        return {}
    lines = [
        line for line in path.read_text(encoding="utf-8").splitlines() if not line.lstrip().startswith("#")
    ]
    table: dict[str, str] = {}
    for row in csv.DictReader(lines):
        alias, canonical = (row.get("alias") or "").strip(), (row.get("canonical") or "").strip()
        if alias and canonical:
            table[normalize_team(alias)] = normalize_team(canonical)
    return table


def canonical_team(name: str, aliases: dict[str, str]) -> str:
    normalized = normalize_team(name)
    return aliases.get(normalized, normalized)
