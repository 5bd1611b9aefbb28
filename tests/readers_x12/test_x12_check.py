"""The checker over real X12 837 samples: the invalid I109 is flagged; ICD-9 claims are not
judged as ICD-10."""

from __future__ import annotations

from pathlib import Path

import pytest

import eobcheck

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "samples"
needs_samples = pytest.mark.skipif(
    not SAMPLES.is_dir(), reason=f"shared samples not found at {SAMPLES}"
)

# The diagnosis-code rules that judge a code against the ICD-10-CM (or ICD-9-CM) code set.
CODE_RULES = ("DX001", "DX002", "DX003", "DX004", "DX005", "DX006", "DX007")


@needs_samples
@pytest.mark.parametrize("name", ["sample_837_11.txt", "sample_837_12.txt"])
def test_invalid_i109_is_flagged(name: str) -> None:
    path = SAMPLES / "hccinfhir" / name
    report = eobcheck.check(path)
    findings = report.findings
    hits = findings[findings["value"] == "I109"]
    assert hits[["code", "name", "severity"]].values.tolist() == [
        ["DX002", "unknown-code", "error"]
    ]
    hit = hits.iloc[0]
    assert hit["message"].startswith("I10.9 is not an ICD-10-CM code")
    assert hit["date_of_service"].year >= 2016  # an ICD-10 date: the code is judged as ICD-10
    assert hit["file"] == str(path)
    assert hit["column"].startswith("HI")  # provenance: the HI element it came from
    assert not report.valid
    # I109 is the only code of the file that is unknown to every release.
    assert findings.loc[findings["code"] == "DX002", "value"].tolist() == ["I109"]


def _icd9_837s() -> list[Path]:
    folders = ("837_004010X096A1", "837_004010X098A1", "837_005010X222A2", "837_005010X223A3")
    files = [
        p for f in folders for p in sorted((SAMPLES / "x12-linuxforhealth" / f).glob("*.837*"))
    ]
    return files + sorted((SAMPLES / "x12-pyx12").glob("simple_837*.txt"))


# Files on which the checker still reports a code finding today: each is a known gap of the
# code rules with ICD-9 claims, not of the reader (the codes and dates are read as written).
_KNOWN = {
    "automobile-accident.837": "DX001 malformed-code for the ICD-9 external cause E986.0",
    "demo.drug.example10.1.837": "DX001 malformed-code for the ICD-9 code 03591",
    "homeowners.837": "DX005 incomplete-code for the ICD-9 code 922.3",
    "coordination-of-benefits.837": "DX005 incomplete-code for the ICD-9 code 2780",
    "dependent-commercial-insurance-02.837": "DX005 incomplete-code for the ICD-9 code 354",
    "demo.ambulance.example5.837": "DX005 incomplete-code for the ICD-9 code 8540",
    "demo.autoaccident.837": "DX005 incomplete-code for the ICD-9 code 8540",
    "demo.cob.example3.A.837": "DX005 incomplete-code for the ICD-9 code 2780",
    "demo.cob.example3.B.837": "DX005 incomplete-code for the ICD-9 code 2780",
    "demo.cob.example3.C.837": "DX005 incomplete-code for the ICD-9 code 2780",
}


def _param(path: Path) -> object:
    reason = _KNOWN.get(path.name)
    marks = [pytest.mark.xfail(strict=True, reason=f"code rules: {reason}")] if reason else []
    return pytest.param(path, id=f"{path.parent.name}/{path.name}", marks=marks)


@needs_samples
def test_icd9_sample_list_is_complete() -> None:
    files = _icd9_837s()
    assert len(files) == 35
    assert set(_KNOWN) <= {p.name for p in files}


@needs_samples
@pytest.mark.parametrize("path", [_param(p) for p in _icd9_837s()] if SAMPLES.is_dir() else [])
def test_icd9_samples_raise_no_icd10_errors(path: Path) -> None:
    report = eobcheck.check(path)
    frame = eobcheck.read(path)
    assert frame["dx_value"].notna().any()
    assert frame["date_of_service"].dt.year.between(1994, 2006).all()
    findings = report.findings
    code_findings = findings[findings["code"].isin(CODE_RULES)]
    assert code_findings[["code", "value", "message"]].values.tolist() == []
