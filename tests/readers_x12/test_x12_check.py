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


# ICD-9-CM problems the TR3 examples really have, judged against ICD-9-CM (the final v32
# list): categories billed without their 4th/5th digit and codes no ICD-9-CM list has.
_ICD9_PROBLEMS: dict[str, set[tuple[str, str]]] = {
    "automobile-accident.837": {("unknown-code", "E986.0")},
    "demo.drug.example10.1.837": {("malformed-code", "03591")},
    "homeowners.837": {("incomplete-code", "922.3")},
    "coordination-of-benefits.837": {("incomplete-code", "2780")},
    "dependent-commercial-insurance-02.837": {("incomplete-code", "354")},
    "demo.ambulance.example5.837": {("incomplete-code", "8540")},
    "demo.autoaccident.837": {("incomplete-code", "8540")},
    "demo.cob.example3.A.837": {("incomplete-code", "2780")},
    "demo.cob.example3.B.837": {("incomplete-code", "2780")},
    "demo.cob.example3.C.837": {("incomplete-code", "2780")},
}


def _param(path: Path) -> object:
    return pytest.param(path, id=f"{path.parent.name}/{path.name}")


@needs_samples
def test_icd9_sample_list_is_complete() -> None:
    files = _icd9_837s()
    assert len(files) == 35
    assert set(_ICD9_PROBLEMS) <= {p.name for p in files}


@needs_samples
@pytest.mark.parametrize("path", [_param(p) for p in _icd9_837s()] if SAMPLES.is_dir() else [])
def test_icd9_samples_raise_no_icd10_errors(path: Path) -> None:
    report = eobcheck.check(path)
    frame = eobcheck.read(path)
    assert frame["dx_value"].notna().any()
    assert frame["date_of_service"].dt.year.between(1994, 2006).all()
    findings = report.findings
    code_findings = findings[findings["code"].isin(CODE_RULES)]
    # no ICD-10-CM error: every finding judges the code against ICD-9-CM
    assert all("ICD-9-CM" in m for m in code_findings["message"]), code_findings["message"].tolist()
    assert not set(code_findings["name"]) & {"premature-code", "retired-code", "icd9-code"}
    got = set(zip(code_findings["name"], code_findings["value"], strict=True))
    assert got == _ICD9_PROBLEMS.get(path.name, set())
