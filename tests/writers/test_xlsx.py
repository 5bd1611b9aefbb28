"""XLSX workbook opened back with openpyxl: sheets, panes, filters, values, safety."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl
import pytest

from eobcheck.report import Report
from eobcheck.writers import xlsx
from eobcheck.writers.tables import FLAT_COLUMNS

from .conftest import finding, make_report

MALICIOUS = '=HYPERLINK("http://evil.example/x","click")'


def _open(report: Report, tmp_path: Path) -> openpyxl.Workbook:
    path = tmp_path / "report.xlsx"
    report.to_excel(path)
    return openpyxl.load_workbook(path)


def test_sheets_panes_filters(report: Report, tmp_path: Path) -> None:
    wb = _open(report, tmp_path)
    assert wb.sheetnames == ["Summary", "Findings", "Crosswalks", "Denials"]
    for name in ("Findings", "Crosswalks"):
        assert wb[name].freeze_panes == "A2"
    assert wb["Findings"].auto_filter.ref == "A1:W5"
    # M54.5 and S33.5A; the unreadable date carries no code, so no crosswalk row
    assert wb["Crosswalks"].auto_filter.ref == "A1:K3"
    assert wb["Findings"].column_dimensions["D"].width > 20


def test_findings_values_dates_and_amounts(report: Report, tmp_path: Path) -> None:
    ws = _open(report, tmp_path)["Findings"]
    rows = list(ws.iter_rows(values_only=True))
    assert list(rows[0]) == list(FLAT_COLUMNS)
    first = dict(zip(FLAT_COLUMNS, rows[1], strict=True))
    assert first["claim_id"] == "C1001" and first["line"] == 1
    assert first["date_of_service"] == dt.datetime(2023, 1, 5)
    assert first["billed"] == 125 and first["suggested_codes"] == "M54.50 M54.51 M54.59"
    assert ws["J2"].number_format == xlsx.DATE
    assert ws["T2"].number_format == xlsx.CURRENCY
    third = dict(zip(FLAT_COLUMNS, rows[3], strict=True))
    assert third["value"] == " s335a "
    assert third["billed"] is None
    fourth = dict(zip(FLAT_COLUMNS, rows[4], strict=True))
    assert fourth["date_of_service"] is None and fourth["suggestions"] is None


def test_crosswalk_counts_lines_claims_and_amounts(tmp_path: Path) -> None:
    rows = [
        finding(),
        finding(dx_position=2, column="Dx 2"),  # same line again: counted once
        finding(claim_id="C2", line_id=1, row=3, billed=80.0, denied=0.0),
    ]
    ws = _open(make_report(rows), tmp_path)["Crosswalks"]
    values = list(ws.iter_rows(values_only=True))
    header = values[0]
    record = dict(zip(header, values[1], strict=True))
    assert record["problem code"] == "M54.5"
    assert record["rule"] == "retired-code"
    assert record["suggested codes"] == "M54.50 M54.51 M54.59"
    assert record["findings"] == 3 and record["lines affected"] == 2
    assert record["claims affected"] == 2
    assert record["billed"] == 205 and record["denied"] == 125
    assert ws["J2"].number_format == xlsx.CURRENCY


def test_summary_sheet(report: Report, tmp_path: Path) -> None:
    ws = _open(report, tmp_path)["Summary"]
    cells = {row[0]: row[1:] for row in ws.iter_rows(values_only=True) if row and row[0]}
    assert cells["valid"][0] is False
    assert cells["rows read"][0] == 10 and cells["rows rejected"][0] == 1
    assert cells["invalid-date"][0] == 1
    assert cells["fixtures/eob_sample.csv"][:4] == ("csv", 10, 9, 1)
    assert cells["release"][0] == "FY2027"
    assert cells["DX003"][:3] == ("retired-code", "error", 2)


def test_formulas_neutralized_everywhere(tmp_path: Path) -> None:
    report = make_report(
        [finding(claim_id=MALICIOUS, value=MALICIOUS, normalized=MALICIOUS, file="@x.csv")]
    )
    wb = _open(report, tmp_path)
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate)
                if isinstance(cell.value, str) and "HYPERLINK" in cell.value:
                    assert cell.value.startswith("'=")
    findings = wb["Findings"]
    assert findings["E2"].value == "'" + MALICIOUS
    assert findings["O2"].value == "'@x.csv"
    assert wb["Crosswalks"]["A2"].value == "'" + MALICIOUS


def test_xml_special_and_illegal_characters(tmp_path: Path) -> None:
    report = make_report([finding(message="a < b & c > d \x01\x0b end")])
    ws = _open(report, tmp_path)["Findings"]
    assert ws["D2"].value == "a < b & c > d  end"


def test_empty_findings(empty_report: Report, tmp_path: Path) -> None:
    wb = _open(empty_report, tmp_path)
    assert wb.sheetnames == ["Summary", "Findings", "Crosswalks", "Denials"]
    assert wb["Findings"].max_row == 1
    assert [c.value for c in wb["Findings"][1]] == list(FLAT_COLUMNS)


def test_findings_beyond_the_row_limit_continue_on_more_sheets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(xlsx, "MAX_ROWS", 3)  # two data rows per sheet
    rows = [finding(line_id=i, row=i + 2, claim_id=f"C{i}") for i in range(5)]
    wb = _open(make_report(rows), tmp_path)
    assert wb.sheetnames == [
        "Summary",
        "Findings",
        "Findings (2)",
        "Findings (3)",
        "Crosswalks",
        "Denials",
    ]
    claims = [
        row[4]
        for name in ("Findings", "Findings (2)", "Findings (3)")
        for row in wb[name].iter_rows(min_row=2, values_only=True)
    ]
    assert claims == ["C0", "C1", "C2", "C3", "C4"]
    assert wb["Findings (3)"].auto_filter.ref == "A1:W2"
    notes = [row[1] for row in wb["Summary"].iter_rows(values_only=True) if row[0] == "note"]
    assert notes and "Findings (3)" in notes[0]
