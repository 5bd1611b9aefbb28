"""CSV reader: shapes, encodings, delimiters, title and blank rows, provenance, row accounting."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from eobcheck.errors import ConfigError, InputError
from eobcheck.model import COLUMNS, DTYPES
from eobcheck.readers import read, read_file

READERS = Path(__file__).resolve().parents[2] / "fixtures" / "readers"


def _lines(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per service line (the first diagnosis position of each)."""
    return frame.drop_duplicates("line_id").reset_index(drop=True)


def _canonical(frame: pd.DataFrame) -> None:
    assert tuple(frame.columns) == COLUMNS
    for name, dtype in DTYPES.items():
        assert str(frame[name].dtype) == dtype, name


def test_wide_dx12_every_position_and_field() -> None:
    res = read_file(READERS / "wide_dx12.csv")
    frame = res.frame
    _canonical(frame)
    assert res.format == "csv"
    assert res.rows_read == 4
    assert res.column_map["dx"] == [f"Dx {i}" for i in range(1, 13)]
    assert res.column_map["modifiers"] == ["Modifier 1", "Modifier 2"]
    # CLM-1002 carries all twelve codes, in order, as written
    full = frame[frame["claim_id"] == "CLM-1002"]
    assert full["dx_position"].tolist() == list(range(1, 13))
    assert full["dx_column"].tolist() == [f"Dx {i}" for i in range(1, 13)]
    assert full["dx_value"].tolist()[8:11] == ["724.2", "m5450", "S33.5A"]
    assert set(full["source_row"]) == {4}
    # a line with no diagnosis keeps exactly one row with null position and value
    empty = frame[frame["claim_id"] == "CLM-1003"]
    assert len(empty) == 1
    assert empty["dx_position"].isna().all() and empty["dx_value"].isna().all()
    assert empty["dx_column"].isna().all()
    lines = _lines(frame).set_index("source_row")
    assert lines.loc[2, "modifiers"] == "GP"
    assert lines.loc[3, "modifiers"] == "GP 59"
    assert lines.loc[4, "billed"] == -12.0
    assert lines.loc[5, "billed"] == 1234.5
    assert lines.loc[3, "carc"] == "CO-45 PR-2"
    assert lines.loc[4, "rarc"] == "M81 N130"
    assert lines.loc[4, "sex"] == "M" and lines.loc[5, "sex"] == "F"
    assert lines.loc[2, "birth_date"] == pd.Timestamp("1961-03-14")
    assert lines.loc[5, "date_of_service"] == pd.Timestamp("2023-02-10")
    assert lines.loc[2, "dx_pointers"] == "1,2"
    assert lines.loc[3, "line"] == 2
    assert lines.loc[4, "provider"] == "Kim DPT"


def test_list_in_a_cell_every_separator() -> None:
    res = read_file(READERS / "list_in_cell.csv")
    frame = res.frame
    _canonical(frame)
    assert res.rows_read == 6
    by_row = frame.groupby("source_row")["dx_value"].agg(lambda s: s.dropna().tolist())
    assert by_row[2] == ["M54.50", "M54.41"]  # comma
    assert by_row[3] == ["M54.50", "M51.26"]  # semicolon
    assert by_row[4] == ["S33.5XXA", "S39.012A"]  # pipe
    assert by_row[5] == ["M54.42", "M47.816"]  # whitespace
    assert by_row[6] == []  # no diagnosis: one row, null
    assert by_row[7] == ["m5450"]
    assert (frame.loc[frame["dx_value"].notna(), "dx_column"] == "Diagnosis Codes").all()
    two = frame[frame["source_row"] == 2]
    assert two["dx_position"].tolist() == [1, 2]
    lines = _lines(frame).set_index("source_row")
    assert lines.loc[2, "carc"] == "CO-45"  # CO45
    assert lines.loc[3, "carc"] == "CO-45"  # CO 45
    assert lines.loc[5, "carc"] == "45"  # a bare reason keeps no group
    assert lines.loc[4, "carc"] == "CO-146 PR-2"
    assert lines.loc[2, "modifiers"] == "GP 59"
    assert lines.loc[4, "date_of_service"] == pd.Timestamp("2023-01-06")  # 1/6/23
    # line numbers 1.. within each claim, in input order
    assert lines["line"].tolist() == [1, 2, 1, 1, 1, 1]


def test_cp1252_semicolon_title_rows_and_group_reason_columns() -> None:
    res = read_file(READERS / "semicolon_cp1252.csv")
    frame = res.frame
    assert res.rows_read == 2
    assert any("cp1252" in n for n in res.notes)
    lines = _lines(frame).set_index("source_row")
    # three title/blank lines above the header on line 4
    assert list(lines.index) == [5, 6]
    assert lines.loc[5, "payer"] == "Mutuelle Générale"
    assert lines.loc[5, "provider"] == "Dr Müller"
    assert lines.loc[5, "carc"] == "CO-146"
    assert lines.loc[6, "carc"] == "PR-1 PR-2"  # one group, two reasons
    assert lines.loc[5, "claim_id"] == "9001"
    assert frame["dx_column"].dropna().unique().tolist() == ["ICD-10 Dx 1", "ICD-10 Dx 2"]
    assert frame["dx_value"].dropna().tolist() == ["M5450", "M51.26", "S33.5A"]


def test_bom_tab_and_cms_style_headers_up_to_25() -> None:
    res = read_file(READERS / "bom_tab.tsv")
    assert res.column_map["claim_id"] == "claim_id"  # the BOM is not part of the header
    assert len(res.column_map["dx"]) == 25
    first = res.frame[res.frame["claim_id"] == "B-77"]
    assert first["dx_position"].tolist() == [1, 2, 25]
    assert first["dx_column"].tolist()[-1] == "diagnosis_code_25"
    assert first["date_of_service"].iloc[0] == pd.Timestamp("2021-10-01")


def test_pipe_title_rows_blank_rows_and_total_row() -> None:
    res = read_file(READERS / "pipe_title_blank.txt")
    frame = res.frame
    # P-1, P-2, P-3 and the Total row; the empty and whitespace-only lines are not rows
    assert res.rows_read == 4
    lines = _lines(frame)
    assert lines["source_row"].tolist() == [4, 6, 8, 9]
    assert lines["claim_id"].tolist() == ["P-1", "P-2", "P-3", "Total"]
    # an unreadable date is kept, NaT, with its text
    bad = lines[lines["claim_id"] == "P-3"].iloc[0]
    assert pd.isna(bad["date_of_service"]) and bad["date_raw"] == "13/45/2023"
    total = lines[lines["claim_id"] == "Total"].iloc[0]
    assert pd.isna(total["date_of_service"]) and pd.isna(total["dx_value"])
    assert total["billed"] == 250.0


def test_quoted_fields_line_breaks_and_short_footer_row() -> None:
    res = read_file(READERS / "quoted_irregular.csv")
    lines = _lines(res.frame)
    assert res.rows_read == 4
    assert lines["payer"].iloc[0] == "Blue Cross, Blue Shield"
    assert "line break" in lines["payer"].iloc[1]
    # the record after a quoted line break starts on physical line 5
    assert lines["source_row"].tolist() == [2, 3, 5, 6]
    assert lines["claim_id"].iloc[3] == "Generated by PM system"


def test_user_mapping_reads_unknown_headers() -> None:
    mapping = {
        "claim_id": "Enc Ref",
        "date_of_service": "Visit Day",
        "dx": ["Primary Dx", "Secondary Dx"],
        "procedure": "Svc",
    }
    res = read_file(READERS / "custom_headers.csv", columns=mapping)
    frame = res.frame
    assert res.column_map["dx"] == ["Primary Dx", "Secondary Dx"]
    assert frame["dx_value"].tolist() == ["M54.50", "M54.41", "S33.5XXD"]
    assert frame["dx_column"].tolist() == ["Primary Dx", "Secondary Dx", "Primary Dx"]
    assert frame["procedure"].tolist() == ["97110", "97110", "97140"]


def test_user_mapping_takes_precedence_over_aliases(tmp_path: Path) -> None:
    path = tmp_path / "two_dates.csv"
    path.write_text("Claim #,DOS,Paid Date,Dx 1\nX1,2023-01-05,2023-02-01,M54.50\n")
    frame = read(path, columns={"date_of_service": "Paid Date"})
    assert frame["date_of_service"].iloc[0] == pd.Timestamp("2023-02-01")


def test_unknown_field_in_mapping_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown field 'claim'"):
        read_file(READERS / "custom_headers.csv", columns={"claim": "Enc Ref"})


def test_missing_columns_error_names_file_headers_aliases_and_remedy() -> None:
    with pytest.raises(InputError) as info:
        read_file(READERS / "missing_columns.csv")
    text = str(info.value)
    assert "missing_columns.csv" in text
    assert "date_of_service" in text
    assert "'Claim #', 'CPT', 'Dx 1', 'Billed'" in text  # the headers found
    assert "'Date of Service'" in text and "'DOS'" in text  # aliases tried
    assert "--columns" in text and "eobcheck.toml" in text
    assert "claim_id" not in text.split("Headers found")[0]  # only the missing field


def test_unmapped_file_lists_every_missing_field() -> None:
    with pytest.raises(InputError) as info:
        read_file(READERS / "custom_headers.csv")
    text = str(info.value)
    for field in ("claim_id", "date_of_service", "dx"):
        assert field in text
    assert "'Enc Ref'" in text


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiters_are_sniffed(tmp_path: Path, delimiter: str) -> None:
    rows = [["Claim ID", "DOS", "Dx 1", "Dx 2"], ["D1", "2023-01-05", "M54.50", "M51.26"]]
    path = tmp_path / "d.csv"
    path.write_text("\n".join(delimiter.join(r) for r in rows) + "\n")
    frame = read(path)
    assert frame["dx_value"].tolist() == ["M54.50", "M51.26"]
    assert frame["claim_id"].tolist() == ["D1", "D1"]


@pytest.mark.parametrize(
    ("encoding", "bom"), [("utf-8", False), ("utf-8", True), ("cp1252", False)]
)
def test_encodings(tmp_path: Path, encoding: str, bom: bool) -> None:
    text = "Claim #,DOS,Dx 1,Payer\nE1,01/05/2023,M54.50,Caisse Médicale – Nord\n"
    data = text.encode(encoding)
    path = tmp_path / "e.csv"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    res = read_file(path)
    assert res.column_map["claim_id"] == "Claim #"
    assert res.frame["payer"].iloc[0] == "Caisse Médicale – Nord"


def test_dx_values_are_kept_as_written(tmp_path: Path) -> None:
    path = tmp_path / "w.csv"
    path.write_text('Claim #,DOS,Dx 1,Dx 2\nW1,2023-01-05," m5450 ",m54.41\n')
    frame = read(path)
    assert frame["dx_value"].tolist() == [" m5450 ", "m54.41"]


def test_whitespace_only_dx_cells_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "w.csv"
    path.write_text('Claim #,DOS,Dx 1,Dx 2,Dx 3\nW1,2023-01-05,"  ",M54.50,\n')
    frame = read(path)
    assert frame["dx_value"].tolist() == ["M54.50"]
    assert frame["dx_position"].tolist() == [2]


def test_line_column_wins_and_gaps_are_counted(tmp_path: Path) -> None:
    path = tmp_path / "l.csv"
    path.write_text(
        "Claim #,Line No,DOS,Dx 1\nL1,3,2023-01-05,M54.50\nL1,,2023-01-05,M54.50\n"
        "L2,1,2023-01-05,M54.50\n"
    )
    lines = _lines(read(path))
    assert lines["line"].tolist() == [3, 2, 1]


def test_line_ids_start_where_asked_and_are_unique() -> None:
    res = read_file(READERS / "wide_dx12.csv", line_id_start=100, source_name="eob.csv")
    assert sorted(res.frame["line_id"].unique()) == [100, 101, 102, 103]
    assert res.frame["source_file"].unique().tolist() == ["eob.csv"]
    assert res.frame["source_sheet"].isna().all()


# custom_headers.csv and missing_columns.csv need a mapping: tested above
NEEDS_MAPPING = ("custom_headers.csv", "missing_columns.csv")


@pytest.mark.parametrize(
    "name",
    sorted(
        p.name for p in READERS.glob("*") if p.suffix != ".xlsx" and p.name not in NEEDS_MAPPING
    ),
)
def test_row_accounting_every_csv_fixture(name: str) -> None:
    res = read_file(READERS / name)
    frame = res.frame
    # every input line is in the frame exactly once as a line id
    assert frame["line_id"].nunique() == res.rows_read
    assert frame.groupby("line_id")["source_row"].nunique().eq(1).all()
    # a line contributes one row per diagnosis, or one row when it has none
    per_line = frame.groupby("line_id")["dx_value"].agg(lambda s: max(s.notna().sum(), 1))
    assert per_line.sum() == len(frame)


def test_empty_file_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(InputError, match=r"empty\.csv: the file is empty"):
        read_file(path)


def test_header_only_file_reads_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("Claim #,DOS,Dx 1\n")
    res = read_file(path)
    assert res.rows_read == 0 and len(res.frame) == 0
    assert tuple(res.frame.columns) == COLUMNS


def test_unsupported_suffix(tmp_path: Path) -> None:
    path = tmp_path / "eob.pdf"
    path.write_bytes(b"%PDF-1.4")
    with pytest.raises(InputError, match="unsupported file type"):
        read_file(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        read_file(tmp_path / "absent.csv")


def test_trailing_delimiter_on_data_rows(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("Claim #,DOS,Dx 1\nA,2023-01-05,M54.50,\nB,2023-01-06,M54.41,\n")
    res = read_file(path)
    assert res.frame["dx_value"].tolist() == ["M54.50", "M54.41"]
    assert not any("irregular" in n or "beyond" in n for n in res.notes)
    path.write_text("Claim #,DOS,Dx 1\nA,2023-01-05,M54.50,stray\nB,2023-01-06,M54.41,\n")
    res = read_file(path)
    assert res.rows_read == 2
    assert any("beyond the 3 header columns" in n for n in res.notes)


CATEGORY_READY = (
    "claim_id", "date_raw", "procedure", "modifiers", "patient_id", "payer", "provider",
    "carc", "rarc", "dx_pointers", "dx_column", "sex",
)  # fmt: skip


def test_fields_typed_as_categories_give_the_same_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """If the model types repeated text fields as categories, the reader builds them so."""
    plain = read_file(READERS / "wide_dx12.csv").frame
    for name in CATEGORY_READY:
        monkeypatch.setitem(DTYPES, name, "category")
    frame = read_file(READERS / "wide_dx12.csv").frame
    for name in CATEGORY_READY:
        assert str(frame[name].dtype) == "category", name
        assert frame[name].astype("string").equals(plain[name]), name
