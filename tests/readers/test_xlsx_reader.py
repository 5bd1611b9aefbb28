"""XLSX reader: sheets, title rows, Excel dates, blank and Total rows, provenance."""

from __future__ import annotations

import datetime as dt
import importlib
from importlib.util import find_spec
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import Workbook

from eobcheck.errors import InputError
from eobcheck.model import COLUMNS, DTYPES
from eobcheck.readers import read, read_file

xlsx_module = importlib.import_module("eobcheck.readers.xlsx")

WORKBOOK = Path(__file__).resolve().parents[2] / "fixtures" / "readers" / "workbook.xlsx"
HAS_CALAMINE = find_spec("python_calamine") is not None


@pytest.fixture(
    autouse=True,
    params=[
        "openpyxl",
        pytest.param(
            "calamine",
            marks=pytest.mark.skipif(not HAS_CALAMINE, reason="python-calamine not installed"),
        ),
    ],
)
def xlsx_engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run every test with each XLSX engine: both must give the same frame."""
    engine = str(request.param)
    monkeypatch.setattr(xlsx_module, "engine", lambda: engine)
    return engine


def _lines(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop_duplicates("line_id").reset_index(drop=True)


def test_every_sheet_read_and_unusable_sheets_reported(xlsx_engine: str) -> None:
    res = read_file(WORKBOOK)
    assert res.format == "xlsx"
    assert f"read with {xlsx_engine}" in res.notes
    assert res.sheets == ["January", "February"]
    skipped = dict(res.skipped_sheets)
    assert set(skipped) == {"Summary", "Notes"}
    assert "header" in skipped["Summary"]
    assert "claim_id" in skipped["Notes"]
    frame = res.frame
    assert tuple(frame.columns) == COLUMNS
    for name, dtype in DTYPES.items():
        assert str(frame[name].dtype) == dtype, name
    # January: 3 lines + Total (the blank row inside is not a row); February: 4 lines
    assert res.rows_read == 8
    assert frame["line_id"].nunique() == 8
    assert frame["source_sheet"].value_counts().to_dict() == {"January": 5, "February": 5}


def test_title_rows_above_header_and_row_numbers_as_excel_shows_them() -> None:
    frame = read(WORKBOOK)
    jan = _lines(frame[frame["source_sheet"] == "January"])
    # header on row 4 under two title rows and a blank row; blank row 7 skipped
    assert jan["source_row"].tolist() == [5, 6, 8, 9]
    assert jan["claim_id"].tolist() == ["1001", "1001", "1002", "Total"]
    assert jan["procedure"].tolist()[:3] == ["97110", "97140", "97112"]
    assert jan["line"].tolist()[:3] == [1, 2, 1]


def test_real_date_cells_serials_and_text_dates() -> None:
    frame = _lines(read(WORKBOOK))
    by_claim = frame.set_index("claim_id")
    assert by_claim.loc["1002", "date_of_service"] == pd.Timestamp("2023-01-09")  # date cell
    assert by_claim.loc["F-1", "date_of_service"] == pd.Timestamp("2023-02-06")  # serial number
    assert by_claim.loc["F-2", "date_of_service"] == pd.Timestamp("2023-02-07")  # serial text
    assert by_claim.loc["F-3", "date_of_service"] == pd.Timestamp("2023-02-08")  # M/D/YYYY
    assert pd.isna(by_claim.loc["F-4", "date_of_service"])  # unreadable: kept, NaT
    assert by_claim.loc["F-4", "date_raw"] == "not a date"
    assert pd.isna(by_claim.loc["Total", "date_of_service"])
    assert by_claim.loc["1002", "sex"] == "M"
    assert frame.loc[frame["claim_id"] == "1001", "birth_date"].iloc[0] == pd.Timestamp(
        "1961-03-14"
    )


def test_wide_and_list_sheets_in_one_workbook() -> None:
    frame = read(WORKBOOK)
    f1 = frame[frame["claim_id"] == "F-1"]
    assert f1["dx_value"].tolist() == ["M54.50", "M54.41"]
    assert f1["dx_column"].tolist() == ["Diagnosis Codes", "Diagnosis Codes"]
    c1001 = frame[(frame["claim_id"] == "1001") & (frame["source_row"] == 5)]
    assert c1001["dx_column"].tolist() == ["Dx 1", "Dx 2"]
    no_dx = frame[frame["claim_id"] == "1002"]
    assert len(no_dx) == 1 and no_dx["dx_value"].isna().all()


def test_sheet_selection_exact_and_case_insensitive() -> None:
    res = read_file(WORKBOOK, sheet="february")
    assert res.sheets == ["February"]
    assert res.skipped_sheets == []
    assert res.rows_read == 4
    assert set(res.frame["source_sheet"]) == {"February"}


def test_unknown_sheet_lists_the_sheets() -> None:
    with pytest.raises(InputError) as info:
        read_file(WORKBOOK, sheet="March")
    text = str(info.value)
    assert "'March'" in text
    for name in ("Summary", "January", "February", "Notes"):
        assert name in text


def test_chosen_sheet_without_columns_explains_the_headers() -> None:
    with pytest.raises(InputError) as info:
        read_file(WORKBOOK, sheet="Notes")
    text = str(info.value)
    assert "sheet 'Notes'" in text
    assert "'Payer', 'Contact'" in text
    assert "--columns" in text


def test_no_usable_sheet_is_an_error(tmp_path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "One"
    ws.append(["Payer", "Paid"])
    two = wb.create_sheet("Two")
    two.append(["Just a title"])
    path = tmp_path / "none.xlsx"
    wb.save(path)
    with pytest.raises(InputError) as info:
        read_file(path)
    text = str(info.value)
    assert "One" in text and "Two" in text and "none.xlsx" in text


def test_numbers_as_text_and_amounts(tmp_path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["Claim Number", "Service Date", "Proc Code", "ICD10 Code", "Charge", "Paid"])
    ws.append([20230105001, 44931.0, 97110.0, "M54.50", "$1,234.50", "(12.00)"])
    ws.append([None, None, None, None, None, None])
    ws.append(["X-2", dt.datetime(2023, 1, 6, 14, 30), "G0283", "S33.5XXD", 50, -5])
    path = tmp_path / "n.xlsm"
    wb.save(path)
    res = read_file(path)
    lines = _lines(res.frame)
    assert lines["claim_id"].tolist() == ["20230105001", "X-2"]
    # a date of service is a day: the time of a date-time cell is dropped
    assert lines["date_of_service"].tolist() == [
        pd.Timestamp("2023-01-05"),
        pd.Timestamp("2023-01-06"),
    ]
    assert lines["procedure"].tolist() == ["97110", "G0283"]
    assert lines["billed"].tolist() == [1234.5, 50.0]
    assert lines["paid"].tolist() == [-12.0, -5.0]
    assert lines["source_row"].tolist() == [2, 4]
    assert res.rows_read == 2


def test_not_a_workbook(tmp_path: Path) -> None:
    path = tmp_path / "fake.xlsx"
    path.write_text("Claim #,DOS\n")
    with pytest.raises(InputError, match=r"fake\.xlsx"):
        read_file(path)
