"""Shared test fixtures: the recorded real data beside the repo, temporary homes, PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("ODDLY_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data` (recorded third-party data); tests that need it skip where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"recorded data folder {SHARED_DATA} is absent (set ODDLY_SHARED_DATA to use it)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def linefeed_data(shared_data: Path) -> Path:
    return shared_data / "linefeed"
