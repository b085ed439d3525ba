"""What the rules file and the alert policy share: a YAML mapping with a `version`, read with errors
that name the file and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError


def version_text(value: Any) -> Any:
    """A pydantic before-validator for `version`: `version: 3` or `2026.1` in YAML is a number;
    keep it as written; a blank version is an error."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and not value.strip():
        raise ValueError("must not be blank")
    return value


def read_mapping(path: Path, what: str, hint: str, error: type[Exception]) -> dict[str, Any]:
    """The YAML mapping in `path`; `error` naming `what` the file is, and `hint` when it is missing."""
    if not path.exists():
        raise error(f"{what} {path} not found; {hint}")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise error(f"{what} {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise error(f"{what} {path} must be a mapping with at least `version:`")
    return raw


def problems(exc: ValidationError) -> str:
    """One line per invalid field: its dotted path, what is wrong and the value given."""
    return "\n".join(
        f"  {'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
        + ("" if err["type"] == "missing" else f" (got {err['input']!r})")
        for err in exc.errors()
    )
