"""CSV of findings: columns, BOM, read back, and formula injection neutralized."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd

from eobcheck.report import Report
from eobcheck.writers.csv import money_text, write_csv
from eobcheck.writers.tables import FLAT_COLUMNS

from .conftest import finding, make_report

MALICIOUS = '=HYPERLINK("http://evil.example/x","click")'


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def test_header_bom_and_rows(report: Report, tmp_path: Path) -> None:
    path = tmp_path / "findings.csv"
    report.to_csv(path)
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    rows = _read(path)
    assert list(rows[0]) == list(FLAT_COLUMNS)
    assert len(rows) == 4
    first = rows[0]
    assert first["code"] == "DX003" and first["claim_id"] == "C1001"
    assert first["date_of_service"] == "2023-01-05"
    assert first["suggested_codes"] == "M54.50 M54.51 M54.59"
    assert first["suggestions"] == (
        "M54.50 Low back pain, unspecified; M54.51 Vertebrogenic low back pain; "
        "M54.59 Other low back pain"
    )
    assert (first["billed"], first["denied"]) == ("125.00", "125.00")
    assert (first["carc"], first["rarc"], first["procedure"]) == ("CO-146", "M81", "97110")


def test_nulls_are_empty_cells_and_values_keep_spaces(report: Report, tmp_path: Path) -> None:
    path = tmp_path / "findings.csv"
    report.to_csv(path)
    rows = _read(path)
    assert rows[2]["value"] == " s335a "
    assert rows[2]["billed"] == "" and rows[2]["procedure"] == ""
    assert rows[3]["date_of_service"] == "" and rows[3]["line"] == ""


def test_pandas_reads_it_back(report: Report, tmp_path: Path) -> None:
    path = tmp_path / "findings.csv"
    report.to_csv(path)
    back = pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert back["row"].tolist() == ["2", "3", "4", "5"]
    assert back["fix_replacement"].tolist()[2] == "S33.5XXA"


def test_formula_injection_is_neutralized_in_every_text_column(tmp_path: Path) -> None:
    report = make_report(
        [
            finding(
                claim_id=MALICIOUS,
                value="+SUM(A1:A9)",
                message="-2+3",
                file="@evil.csv",
                column="\tDx 1",
                carc="=1+1",
            )
        ]
    )
    path = tmp_path / "findings.csv"
    report.to_csv(path)
    row = _read(path)[0]
    assert row["claim_id"] == "'" + MALICIOUS
    assert row["value"] == "'+SUM(A1:A9)"
    assert row["message"] == "'-2+3"
    assert row["file"] == "'@evil.csv"
    assert row["column"] == "'\tDx 1"
    assert row["carc"] == "'=1+1"
    assert row["code"] == "DX003"  # harmless text untouched


def test_empty_findings_write_a_header_only(empty_report: Report, tmp_path: Path) -> None:
    path = tmp_path / "findings.csv"
    empty_report.to_csv(path)
    text = path.read_text(encoding="utf-8-sig")
    assert text.strip().replace('"', "").split(",") == list(FLAT_COLUMNS)


def test_stream_target_without_bom(report: Report) -> None:
    buffer = io.BytesIO()
    write_csv(report, buffer, bom=False)
    assert buffer.getvalue().startswith(b'"code"')


def test_money_text_has_two_decimals() -> None:
    values = pd.Series([125.0, -0.5, 0.0, float("nan"), 1234.567, 0.04])
    assert money_text(values).to_pylist() == ["125.00", "-0.50", "0.00", None, "1234.57", "0.04"]
