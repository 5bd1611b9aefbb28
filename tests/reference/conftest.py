"""Fixtures for the reference-data tests: one Reference per session, without user data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from eobcheck.reference import Reference

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
CMS = SHARED / "cms"
needs_cms = pytest.mark.skipif(
    not CMS.is_dir(),
    reason=f"official CMS files not found at {CMS} (the ../shared checkout); oracle tests skipped",
)


@pytest.fixture(scope="session")
def empty_user_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user data directory with nothing in it."""
    return tmp_path_factory.mktemp("no-user-data")


@pytest.fixture(scope="session")
def ref(empty_user_dir: Path) -> Iterator[Reference]:
    """The bundled reference only (user data of the machine running the tests is ignored)."""
    yield Reference.load(user_dir=empty_user_dir)
