"""FHIR ExplanationOfBenefit reader: R4 and STU3, resource, Bundle, NDJSON, malformed input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from eobcheck.errors import InputError
from eobcheck.model import COLUMNS, DTYPES
from eobcheck.readers.fhir import read_fhir
from eobcheck.readers.sniff import detect_format

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples"
needs_samples = pytest.mark.skipif(
    not SAMPLES.is_dir(), reason=f"shared samples not found at {SAMPLES}"
)
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
ICD9 = "http://hl7.org/fhir/sid/icd-9-cm"


def _dx(seq: int, code: str, system: str = ICD10, principal: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "sequence": seq,
        "diagnosisCodeableConcept": {"coding": [{"system": system, "code": code}]},
    }
    if principal:
        out["type"] = [{"coding": [{"code": "principal"}]}]
    return out


def _r4_eob(eob_id: str = "eob-1") -> dict[str, Any]:
    return {
        "resourceType": "ExplanationOfBenefit",
        "id": eob_id,
        "identifier": [{"type": {"coding": [{"code": "uc"}]}, "value": f"CLM-{eob_id}"}],
        "patient": {"reference": "Patient/p1"},
        "insurer": {"display": "ACME HEALTH"},
        "provider": {"reference": "Organization/o1"},
        "billablePeriod": {"start": "2023-01-02", "end": "2023-01-09"},
        "diagnosis": [
            _dx(2, "M51.26"),
            _dx(1, "M54.50", principal=True),
            {"sequence": 3, "diagnosisReference": {"reference": "Condition/c1"}},
        ],
        "item": [
            {
                "sequence": 1,
                "diagnosisSequence": [1, 2],
                "productOrService": {
                    "coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "97110"}]
                },
                "modifier": [{"coding": [{"code": "GP"}]}],
                "servicedDate": "2023-01-04",
                "adjudication": [
                    {"category": {"coding": [{"code": "submitted"}]}, "amount": {"value": 100}},
                    {"category": {"coding": [{"code": "eligible"}]}, "amount": {"value": 80}},
                    {"category": {"coding": [{"code": "benefit"}]}, "amount": {"value": 64}},
                    {
                        "category": {"coding": [{"code": "denialreason"}]},
                        "reason": {
                            "coding": [
                                {
                                    "system": "https://x12.org/codes/claim-adjustment-reason-codes",
                                    "code": "CO45",
                                }
                            ]
                        },
                    },
                ],
            },
            {
                "sequence": 2,
                "productOrService": {"coding": [{"code": "97140"}]},
            },
        ],
    }


def _write(tmp_path: Path, obj: Any, name: str = "eob.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(obj, indent=2), encoding="utf-8")
    return path


def test_r4_resource(tmp_path: Path) -> None:
    result = read_fhir(_write(tmp_path, _r4_eob()))
    frame = result.frame
    assert result.format == "fhir-eob-r4"
    assert list(frame.columns) == list(COLUMNS)
    assert {k: str(v) for k, v in frame.dtypes.items()} == DTYPES
    # Principal first; item 1 points at sequences 1 and 2; item 2 has no pointers -> all.
    assert frame[["line", "dx_position", "dx_value", "dx_column"]].values.tolist() == [
        [1, 1, "M54.50", "diagnosis[1].diagnosisCodeableConcept"],
        [1, 2, "M51.26", "diagnosis[0].diagnosisCodeableConcept"],
        [2, 1, "M54.50", "diagnosis[1].diagnosisCodeableConcept"],
        [2, 2, "M51.26", "diagnosis[0].diagnosisCodeableConcept"],
    ]
    first = frame.iloc[0]
    assert first["claim_id"] == "CLM-eob-1"
    assert first["procedure"] == "97110"
    assert first["modifiers"] == "GP"
    assert first["dx_pointers"] == "1,2"
    assert (first["billed"], first["allowed"], first["paid"]) == (100.0, 80.0, 64.0)
    assert first["carc"] == "CO-45"
    assert first["payer"] == "ACME HEALTH"
    assert first["patient_id"] == "p1"
    assert first["source_row"] == 1
    # servicedDate on item 1; item 2 falls back to billablePeriod.start.
    assert frame["date_of_service"].tolist() == [
        pd.Timestamp("2023-01-04"),
        pd.Timestamp("2023-01-04"),
        pd.Timestamp("2023-01-02"),
        pd.Timestamp("2023-01-02"),
    ]
    assert frame["line_id"].tolist() == [0, 0, 1, 1]
    assert "skipped 1 diagnosis with diagnosisReference" in result.notes


def test_stu3_link_ids_and_icd9(tmp_path: Path) -> None:
    eob = {
        "resourceType": "ExplanationOfBenefit",
        "id": "s1",
        "organization": {"identifier": {"value": "PAYER9"}},
        "patient": {"reference": "Patient/p9"},
        "billablePeriod": {"start": "2010-05-01"},
        "diagnosis": [
            {
                "sequence": 1,
                "diagnosisCodeableConcept": {
                    "coding": [
                        {"system": "urn:other", "code": "X"},
                        {"system": ICD9, "code": "724.2"},
                    ]
                },
            },
            _dx(2, "7213", ICD9),
        ],
        "item": [
            {
                "sequence": 1,
                "diagnosisLinkId": [2],
                "service": {
                    "coding": [
                        {
                            "system": "https://bluebutton.cms.gov/resources/codesystem/hcpcs",
                            "code": "97110",
                        }
                    ]
                },
                "servicedPeriod": {"start": "2010-05-03"},
            }
        ],
    }
    result = read_fhir(_write(tmp_path, eob))
    frame = result.frame
    assert result.format == "fhir-eob-stu3"
    assert frame[["dx_position", "dx_value"]].values.tolist() == [[2, "7213"]]
    assert frame["claim_id"].tolist() == ["s1"]
    assert frame["payer"].tolist() == ["PAYER9"]
    assert frame["date_of_service"].tolist() == [pd.Timestamp("2010-05-03")]
    # The ICD-9-CM coding is preferred over an unknown system.
    eob["item"][0]["diagnosisLinkId"] = [1]
    assert read_fhir(_write(tmp_path, eob)).frame["dx_value"].tolist() == ["724.2"]


def test_bundle_with_include_only_eobs_become_rows(tmp_path: Path) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {
                "resource": {
                    "resourceType": "Patient",
                    "id": "p1",
                    "birthDate": "1970-03-04",
                    "gender": "female",
                }
            },
            {"resource": _r4_eob("a")},
            {"resource": {"resourceType": "Organization", "id": "o1", "name": "BACK CLINIC"}},
            {"resource": _r4_eob("b")},
        ],
    }
    result = read_fhir(_write(tmp_path, bundle))
    frame = result.frame
    assert frame["claim_id"].unique().tolist() == ["CLM-a", "CLM-b"]
    assert frame["source_row"].unique().tolist() == [2, 4]
    assert set(frame["birth_date"]) == {pd.Timestamp("1970-03-04")}
    assert set(frame["sex"]) == {"F"}
    assert set(frame["provider"]) == {"BACK CLINIC"}
    assert any("Organization x1, Patient x1" in n for n in result.notes)


def test_ndjson_skips_a_bad_line_and_says_so(tmp_path: Path) -> None:
    lines = [json.dumps(_r4_eob("a")), "{not json", json.dumps(_r4_eob("b"))]
    path = tmp_path / "eob.ndjson"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = read_fhir(path, line_id_start=5, source_name="bulk.ndjson")
    frame = result.frame
    assert frame["source_row"].unique().tolist() == [1, 3]
    assert frame["line_id"].min() == 5
    assert set(frame["source_file"]) == {"bulk.ndjson"}
    assert any(n.startswith("NDJSON line 2 is not valid JSON") for n in result.notes)
    assert detect_format(path) == "fhir-ndjson"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"resourceType": "ExplanationOfBenefit",', "not valid JSON: .* at line 1, column"),
        ("[1, 2]", "not a FHIR resource"),
        ('{"resourceType": "Coverage"}', r"no ExplanationOfBenefit resource .*Coverage x1"),
        ('{"resourceType": "Bundle", "entry": {}}', "Bundle.entry is not a list"),
        ("{bad\n{worse\n", "no NDJSON line holds a readable resource"),
    ],
)
def test_malformed_json_raises_input_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message) as info:
        read_fhir(path)
    assert str(path) in str(info.value)


# --------------------------------------------------------------------------- real samples

FHIR_FILES = sorted(
    p
    for p in SAMPLES.rglob("*")
    if p.suffix in (".json", ".ndjson") and p.name != "c4bb_eob_coverage_example.json"
)


@needs_samples
@pytest.mark.parametrize("path", FHIR_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_fhir_sample_parses(path: Path) -> None:
    result = read_fhir(path)
    assert len(result.frame) > 0
    assert result.frame["date_of_service"].notna().all()
    assert result.format == (
        "fhir-eob-stu3" if "/v1/" in str(path) or path.suffix == ".ndjson" else "fhir-eob-r4"
    )
    assert detect_format(path) == ("fhir-ndjson" if path.suffix == ".ndjson" else "fhir-json")


# (EOBs with a claim id, service lines, diagnosis rows) counted from the files
COUNTS = {
    "hccinfhir/sample_eob_200.ndjson": (200, 200, 678),
    "hccinfhir/sample_eob_1.json": (1, 2, 2),
    "fhir-carin-inferno/c4bb_eob_include_bundle.json": (3, 6, 5),
    "fhir-carin-inferno/c4bb_eob_inpatient_example.json": (1, 13, 52),
    "cms-bfd-fhir/endpoint-responses/v1/eobByPatientIdAll.json": (8, 8, 28),
    "cms-bfd-fhir/endpoint-responses/v2/eobReadCarrierWithMultipleLines.json": (1, 7, 7),
}


@needs_samples
@pytest.mark.parametrize("name", sorted(COUNTS))
def test_sample_counts(name: str) -> None:
    claims, lines, dx = COUNTS[name]
    frame = read_fhir(SAMPLES / name).frame
    assert frame["claim_id"].nunique() == claims
    assert frame["line_id"].nunique() == lines
    assert frame["dx_value"].notna().sum() == dx


@needs_samples
def test_sample_bfd_r4_denial_reason_is_a_carc() -> None:
    frame = read_fhir(SAMPLES / "cms-bfd-fhir/endpoint-responses/v2/eobReadOutpatient.json").frame
    assert set(frame["carc"].dropna()) == {"CO-120 CR-121"}


@needs_samples
def test_sample_coverage_only_file_fails_clearly() -> None:
    path = SAMPLES / "fhir-carin-inferno" / "c4bb_eob_coverage_example.json"
    with pytest.raises(InputError, match=r"no ExplanationOfBenefit resource in this resource"):
        read_fhir(path)


@needs_samples
def test_sample_without_identifier_notes_empty_claim_id() -> None:
    result = read_fhir(SAMPLES / "hccinfhir" / "sample_eob_2.json")
    assert result.frame["claim_id"].isna().all()
    assert any("neither identifier nor id" in n for n in result.notes)


@needs_samples
@pytest.mark.parametrize("name", ["README.md", "fhir-carin-inferno/eob_metadata_v200.yml"])
def test_non_json_sample_fails_clearly(name: str) -> None:
    with pytest.raises(InputError, match="not valid JSON"):
        read_fhir(SAMPLES / name)
