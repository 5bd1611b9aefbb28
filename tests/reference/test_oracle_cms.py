"""The reference data against the official CMS/NCHS files in ../shared/cms (the oracle).

Which file holds which set (README.md of ../shared/cms, confirmed by the billable counts):
the FY2014..FY2016 order files all hold the set effective 2015-10-01; cms_<FY> is the set of
October 1 of FY-1, except cms_2021 (2021-01-01), cms_2022 (2022-04-01) and cms_2023
(2023-04-01); the CDC files are the Jan-2021, Oct-2021 (FY2022), April-2024 and April-2025 sets.
"""

from __future__ import annotations

import csv
import zipfile
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from eobcheck.reference import Reference
from eobcheck.reference.importer import parse_conversion, parse_order

from .conftest import CMS, needs_cms

pytestmark = needs_cms

ROOT = Path(__file__).resolve().parents[2]
EXCEPTIONS = ROOT / "docs" / "reference-exceptions.csv"

ORDER_FILES = [
    ("cms_2014_dx.zip", date(2015, 10, 1)),
    ("cms_2015_dx.zip", date(2015, 10, 1)),
    ("cms_2016_dx.zip", date(2015, 10, 1)),
    ("cms_2017_dx.zip", date(2016, 10, 1)),
    ("cms_2018_dx.zip", date(2017, 10, 1)),
    ("cms_2019_dx.zip", date(2018, 10, 1)),
    ("cms_2020_dx.zip", date(2019, 10, 1)),
    ("cms_2021_dx.zip", date(2021, 1, 1)),
    ("cms_2022_dx.zip", date(2022, 4, 1)),
    ("cms_2023_dx.zip", date(2023, 4, 1)),
    ("cms_2024_dx.zip", date(2023, 10, 1)),
    ("cms_2025_dx.zip", date(2024, 10, 1)),
    ("cms_2026_dx.zip", date(2025, 10, 1)),
    ("cdc-midyear-updates/icd10cm-codes-order-Jan-2021.zip", date(2021, 1, 1)),
    ("cdc-midyear-updates/FY2022-Code-Descriptions-CDC-Oct2021.zip", date(2021, 10, 1)),
    ("cdc-midyear-updates/icd10cm-Codes-Descriptions-April-2024.zip", date(2024, 4, 1)),
    ("cdc-midyear-updates/Code-desciptions-April-2025.zip", date(2025, 4, 1)),
]

#: Measured: FY2026 titles that differ from the CMS long titles (see docs/reference-data.md).
MAX_TITLE_DIFFERENCES = 379  # measured: mostly tabular XML wording (e.g. "T/NK-cell")


def order_file(name: str) -> tuple[frozenset[str], dict[str, str]]:
    with zipfile.ZipFile(CMS / name) as zf:
        [member] = [
            n
            for n in zf.namelist()
            if "order" in n.lower().rsplit("/", 1)[-1]
            and n.endswith(".txt")
            and "addenda" not in n.lower()
        ]
        return parse_order(zf.read(member).decode("latin-1"))


@pytest.mark.parametrize(("name", "effective"), ORDER_FILES, ids=[n for n, _ in ORDER_FILES])
def test_valid_set_equals_order_file(ref: Reference, name: str, effective: date) -> None:
    billable, titles = order_file(name)
    # the release in force on the date (no release starts on 2024-04-01 or 2025-04-01)
    starts = [date.fromisoformat(r["effective"]) for r in ref.info()["releases"]]
    release = sum(s <= effective for s in starts) - 1
    candidates = sorted(set(titles) | ref.billable_codes(release))
    out = ref.check(pd.Series(candidates), pd.Series(pd.to_datetime([effective] * len(candidates))))
    valid = {c for c, s in zip(candidates, out["status"], strict=True) if s == "valid"}
    assert len(valid) == len(billable)
    assert valid == billable


def read_exceptions() -> set[tuple[str, str, str]]:
    with EXCEPTIONS.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert all(r["reason"].strip() for r in rows), "every exception needs a reason"
    return {(r["previous"], r["current"], r["effective"]) for r in rows}


def test_conversion_tables_agree_with_crosswalk(ref: Reference) -> None:
    crosswalk = {
        (r["previous"], r["current"], r["effective"].isoformat())
        for r in ref.tables["crosswalk"].to_pylist()
        if r["source"] == "cms-conversion-table"
    }
    rows: set[tuple[str, str, str]] = set()
    files = sorted((CMS / "conversion-tables").iterdir())
    assert len(files) == 10  # FY2017..FY2026
    for path in files:
        rows |= {
            (p, c, e.isoformat()) for p, c, e in parse_conversion(path.read_bytes(), path.name)
        }
    disagreements = rows - crosswalk
    exceptions = read_exceptions()
    assert sorted(disagreements - exceptions) == []
    # the exceptions file lists nothing that agrees (it stays honest when data improves)
    assert sorted(exceptions - disagreements) == []
    assert len(rows & crosswalk) > 6000


def test_fy2026_titles_match_cms_long_titles(ref: Reference) -> None:
    _, titles = order_file("cms_2026_dx.zip")
    codes = sorted(titles)
    ours = ref.title(pd.Series(codes)).to_numpy(dtype=object, na_value=None)
    differ = [c for c, t in zip(codes, ours, strict=True) if t != titles[c]]
    print(f"FY2026 titles differing from the CMS long titles: {len(differ)} of {len(codes)}")
    assert len(differ) <= MAX_TITLE_DIFFERENCES, differ[:20]


def test_gems_map_lumbago(ref: Reference) -> None:
    gems = ref.gems
    assert gems.loc[gems["icd9"] == "7242", "icd10"].tolist() == ["M545"]
