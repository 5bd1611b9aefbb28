"""Shared fixtures: paths and one reference load per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def fixtures() -> Path:
    """The repository's fixtures folder."""
    return FIXTURES
