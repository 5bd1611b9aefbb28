"""Content sniffing: X12 and FHIR are recognized whatever the file is called."""

from __future__ import annotations

from pathlib import Path

import pytest

from eobcheck.readers.sniff import detect_format

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("ISA*00*" + " " * 90 + "~GS*HC~ST*837*1*005010X222A1~", "x12-837"),
        ("\r\n  ISA|00|x~\r\nGS|HP~\r\nST|835|1~", "x12-835"),
        ("ST*835*0001~BPR*I~", "x12-835"),
        ('{\n  "resourceType": "Bundle",\n  "entry": []\n}', "fhir-json"),
        ('{"resourceType": "ExplanationOfBenefit"}', "fhir-json"),
        (
            '{"resourceType":"ExplanationOfBenefit"}\n{"resourceType":"ExplanationOfBenefit"}\n',
            "fhir-ndjson",
        ),
        ("Claim #,DOS,Dx 1\n1,2023-01-01,M54.50\n", None),
        ('{"name": "not fhir"}', None),
        ("", None),
    ],
)
def test_detect_format(tmp_path: Path, content: str, expected: str | None) -> None:
    path = tmp_path / "input.txt"
    path.write_text(content, encoding="utf-8", newline="")
    assert detect_format(path) == expected


def test_missing_file_is_not_detected(tmp_path: Path) -> None:
    assert detect_format(tmp_path / "absent") is None


@pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"shared samples not found at {SAMPLES}")
def test_every_x12_sample_is_detected() -> None:
    for folder in ("x12-linuxforhealth", "x12-edi835parser", "x12-pyx12"):
        for path in (SAMPLES / folder).rglob("*"):
            if path.is_file():
                is_835 = "835" in path.name or folder == "x12-edi835parser"
                kind = "x12-835" if is_835 else "x12-837"
                assert detect_format(path) == kind, path
