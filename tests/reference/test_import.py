"""Importing official CMS release files into a user data directory."""

from __future__ import annotations

import zipfile
from datetime import date
from pathlib import Path

import pytest

from eobcheck.errors import ReferenceDataError
from eobcheck.reference import Reference
from eobcheck.reference.importer import import_release

from .conftest import CMS, needs_cms


@pytest.mark.slow
@needs_cms
def test_import_infers_mid_year_date_from_content(tmp_path: Path, ref: Reference) -> None:
    # cms_2022_dx.zip is named for FY2022 but holds the 2022-04-01 set
    result = import_release(CMS / "cms_2022_dx.zip", user_dir=tmp_path)
    assert result.effective == date(2022, 4, 1)
    assert not result.new_release
    assert (result.billable, result.added, result.deleted) == (72750, 3, 1)
    user = Reference.load(user_dir=tmp_path)
    assert user.user_dir == tmp_path
    assert set(user.user_tables) == {"codes", "spans", "releases", "crosswalk"}
    assert user.info()["releases"] == ref.info()["releases"]
    assert user.lookup("M54.5", "2023-01-05").status == "retired"
    assert (tmp_path / "manifest.json").is_file()


@needs_cms
def test_import_explicit_date_and_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ReferenceDataError, match="no CMS order file"):
        import_release(CMS / "gems", user_dir=tmp_path)
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(broken, "w") as zf:
        zf.writestr("icd10cm_order_2030.txt", "not an order file\n")
    with pytest.raises(ReferenceDataError, match="order file line 1"):
        import_release(broken, user_dir=tmp_path / "user")


def test_missing_source_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ReferenceDataError, match="no such file or folder"):
        import_release(tmp_path / "nowhere", user_dir=tmp_path)
