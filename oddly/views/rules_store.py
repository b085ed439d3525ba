"""Saved versions of the rules file and the alert policy, edited in the app.

Every save is validated first (`oddly.detect.rules` / `oddly.alerts.policy`): an invalid text is an
error naming the field, and nothing is written. A valid one is appended to `rules_versions` in the
app database (never updated: the history is what each run used) and written atomically (temp file
+ rename) where the runs read it, so the next ingestion or alert run uses it. The shipped
`config/*.yaml` in the repo is never overwritten: the first save goes to `$ODDLY_HOME/<name>`,
which `Settings` prefers from then on; a file named by ODDLY_RULES_FILE / ODDLY_ALERT_POLICY_FILE is
written in place. A version already used is bumped automatically (`2026-11-1` → `2026-11-2`), so
a detection's or decision's version always names one text.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import sqlalchemy as sa
import yaml

from oddly.alerts.policy import PolicyError, parse_policy
from oddly.appdb import metadata
from oddly.config import ALERT_POLICY_FILE, RULES_FILE, SHIPPED_CONFIG, Settings
from oddly.detect.rules import RulesError, parse_rules
from oddly.model import now_utc, utc

Kind = Literal["rules", "policy"]
KINDS: tuple[Kind, ...] = ("rules", "policy")
_id = sa.BigInteger().with_variant(sa.Integer, "sqlite")

rules_versions = sa.Table(
    "rules_versions",
    metadata,
    sa.Column("id", _id, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(8), nullable=False),  # KINDS
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("yaml_text", sa.Text, nullable=False),
    sa.Column("path", sa.Text, nullable=False),  # where it was written
    sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("saved_by", sa.Text, nullable=False),
    sa.Column("note", sa.Text),
    sa.UniqueConstraint("kind", "version", name="uq_rules_versions_kind_version"),
)

_VERSION_LINE = re.compile(r"^version:.*$", re.MULTILINE)
_TRAILING_NUMBER = re.compile(r"^(.*?)(\d+)$")


class RulesStoreError(ValueError):
    """An edit that cannot be saved; the message says which field is wrong, and nothing was saved."""


@dataclass(frozen=True)
class Saved:
    kind: Kind
    version: str
    path: Path
    bumped_from: str | None  # the version as typed, when it had to be bumped
    created: bool  # False: the text was the active one already, nothing saved


def _validator(kind: Kind) -> tuple[Callable[..., Any], type[Exception]]:
    return (parse_rules, RulesError) if kind == "rules" else (parse_policy, PolicyError)


def active_path(settings: Settings, kind: Kind) -> Path:
    """The file the runs read now."""
    return settings.rules_file if kind == "rules" else settings.alert_policy_file


def target_path(settings: Settings, kind: Kind) -> Path:
    """Where a save goes: the active file, unless it is the repo's shipped one (then the home's)."""
    active = active_path(settings, kind)
    name = RULES_FILE if kind == "rules" else ALERT_POLICY_FILE
    return settings.home / name if active.resolve() == (SHIPPED_CONFIG / name).resolve() else active


def validate(kind: Kind, text: str) -> str:
    """The version of a valid text; RulesStoreError naming the field otherwise."""
    label = "rules" if kind == "rules" else "alert policy"
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesStoreError(f"the {label} are not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise RulesStoreError(f"the {label} must be a YAML mapping with at least `version:`")
    parse, error = _validator(kind)
    try:
        return str(parse(raw, source=f"(edited {label})").version)
    except error as exc:
        raise RulesStoreError(str(exc)) from exc


def next_version(version: str, taken: set[str]) -> str:
    """The first free version after `version`: its trailing number + 1, else `-2`, `-3`, ..."""
    match = _TRAILING_NUMBER.match(version)
    stem, n = (match.group(1), int(match.group(2))) if match else (f"{version}-", 1)
    candidate = f"{stem}{n + 1}"
    while candidate in taken:
        n += 1
        candidate = f"{stem}{n + 1}"
    return candidate


def with_version(text: str, version: str) -> str:
    """`text` with its top-level `version:` line replaced (comments elsewhere kept)."""
    return _VERSION_LINE.sub(f'version: "{version}"', text, count=1)


def save(
    engine: sa.Engine,
    settings: Settings,
    kind: Kind,
    text: str,
    *,
    saved_by: str,
    note: str | None = None,
    now: datetime | None = None,
) -> Saved:
    """Validate `text`, append it as a new version and make it the active file (see the module doc)."""
    if not saved_by.strip():
        raise RulesStoreError("say who saves this version (saved_by is blank); nothing was saved")
    typed = validate(kind, text)
    active = active_path(settings, kind)
    active_text = active.read_text() if active.exists() else None
    if active_text is not None and text.strip() == active_text.strip():
        return Saved(kind, typed, active, None, created=False)
    target = target_path(settings, kind)
    saved_at = utc(now or now_utc())
    ensure_table(engine)
    with engine.begin() as conn:
        taken = set(_versions(conn, kind))
        active_version = _version_of(kind, active_text)
        if active_text is not None and active_version is not None and active_version not in taken:
            # the file that was active before the first save from the app: kept as the baseline
            baseline = "the file active before the first save from the app"
            _insert(conn, kind, active_version, active_text, active, saved_at, "(file)", baseline)
            taken.add(active_version)
        version, bumped_from = typed, None
        if typed in taken:
            version, bumped_from = next_version(typed, taken), typed
            text = with_version(text, version)
            validate(kind, text)
        _insert(conn, kind, version, text, target, saved_at, saved_by, note)
        write_atomically(target, text)  # inside the transaction: a failed write records nothing
    return Saved(kind, version, target, bumped_from, created=True)


def history(engine: sa.Engine, kind: Kind) -> pd.DataFrame:
    """Every saved version of `kind`, newest first, with its text."""
    ensure_table(engine)
    c = rules_versions.c
    query = (
        sa.select(c.version, c.saved_at, c.saved_by, c.note, c.path, c.yaml_text)
        .where(c.kind == kind)
        .order_by(c.saved_at.desc(), c.id.desc())
    )
    with engine.connect() as conn:
        frame = pd.read_sql_query(query, conn)
    frame["saved_at"] = pd.to_datetime(frame["saved_at"], utc=True)
    return frame


def ensure_table(engine: sa.Engine) -> None:
    rules_versions.create(engine, checkfirst=True)


def write_atomically(path: Path, text: str) -> None:
    """Write a temp file beside `path` and rename it over: a reader sees the old or the new text."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temp.write_text(text)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def _versions(conn: sa.Connection, kind: Kind) -> list[str]:
    c = rules_versions.c
    return list(conn.execute(sa.select(c.version).where(c.kind == kind)).scalars())


def _version_of(kind: Kind, text: str | None) -> str | None:
    if text is None:
        return None
    try:
        return validate(kind, text)
    except RulesStoreError:
        return None


def _insert(
    conn: sa.Connection,
    kind: Kind,
    version: str,
    text: str,
    path: Path,
    saved_at: datetime,
    saved_by: str,
    note: str | None,
) -> None:
    conn.execute(
        rules_versions.insert().values(
            kind=kind,
            version=version,
            yaml_text=text,
            path=str(path),
            saved_at=saved_at,
            saved_by=saved_by,
            note=note,
        )
    )
