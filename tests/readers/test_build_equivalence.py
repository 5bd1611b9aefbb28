"""build() against a row-by-row oracle on varied small tables, and the CSV path against build().

The oracle parses each line field with the public per-Series parsers of eobcheck.readers.values
and lays out the diagnoses with plain Python loops, so the coded, spread and laid-out machinery
of build() is checked against a second, simple reading of the same input.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from eobcheck.model import COLUMNS, conform
from eobcheck.readers import read_file
from eobcheck.readers.build import RawTable, build
from eobcheck.readers.columns import ColumnMap
from eobcheck.readers.values import (
    blank_to_na,
    parse_amounts,
    parse_carc,
    parse_carc_pair,
    parse_code_list,
    parse_dates,
    parse_int,
    parse_modifiers,
    parse_procedure,
    parse_sex,
)

Cell = str | None


def _blank(cell: Cell) -> bool:
    return cell is None or not cell.strip()


def _oracle(
    headers: list[str], rows: list[list[Cell]], numbers: Sequence[int], source: str
) -> pd.DataFrame:
    """The canonical frame, field by field and row by row."""
    cmap = ColumnMap.from_headers(headers)
    kept = [i for i, r in enumerate(rows) if not all(_blank(c) for c in r)]
    width = len(headers)
    cols = [pd.Series([rows[i][j] for i in kept], dtype="string") for j in range(width)]
    f = cmap.fields

    def col(name: str) -> pd.Series | None:
        return cols[f[name]] if name in f else None

    fields: dict[str, pd.Series] = {}
    for name in ("claim_id", "patient_id", "payer", "provider", "dx_pointers"):
        c = col(name)
        if c is not None:
            fields[name] = blank_to_na(c)
    dos = col("date_of_service")
    if dos is not None:
        fields["date_raw"] = blank_to_na(dos)
        fields["date_of_service"] = parse_dates(dos)
    parsers = {
        "age": parse_int,
        "sex": parse_sex,
        "billed": parse_amounts,
        "allowed": parse_amounts,
        "paid": parse_amounts,
        "procedure": parse_procedure,
        "rarc": parse_code_list,
    }
    for name, parse in parsers.items():
        c = col(name)
        if c is not None:
            fields[name] = parse(c)
    c = col("birth_date")
    if c is not None:
        fields["birth_date"] = parse_dates(c, past_only=True)
    if cmap.modifiers:
        fields["modifiers"] = parse_modifiers([cols[i] for i in cmap.modifiers])
    carc, group, reason = col("carc"), col("carc_group"), col("carc_reason")
    if reason is not None:
        empty = pd.Series([None] * len(kept), dtype="string")
        pair = parse_carc_pair(group if group is not None else empty, reason)
        fields["carc"] = pair if carc is None else parse_carc(carc).fillna(pair)
    elif carc is not None:
        fields["carc"] = parse_carc(carc)
    claim_col = col("claim_id")
    claims = blank_to_na(claim_col).tolist() if claim_col is not None else [None] * len(kept)
    seen: dict[object, int] = {}
    counted = []
    for claim in claims:
        key = "<null>" if pd.isna(claim) else claim
        seen[key] = seen.get(key, 0) + 1
        counted.append(seen[key])
    given = col("line")
    line = pd.Series(counted, dtype="Int64")
    fields["line"] = line if given is None else parse_int(given).fillna(line)

    out: list[dict[str, object]] = []
    for k, i in enumerate(kept):
        row = rows[i]
        if cmap.dx:
            dx: list[tuple[str | None, int | None, Cell]] = [
                (cmap.headers[j], pos, row[j]) for j, pos in cmap.dx if not _blank(row[j])
            ]
        else:
            assert cmap.dx_list is not None
            cell = row[cmap.dx_list]
            codes = [] if cell is None else [c for c in _split(cell) if c]
            header = cmap.headers[cmap.dx_list]
            dx = [(header, pos, code) for pos, code in enumerate(codes, start=1)]
        base = {name: s.iloc[k] for name, s in fields.items()}
        base.update(source_file=source, source_row=numbers[i], line_id=k)
        for column, pos, value in dx or [(None, None, None)]:
            out.append({**base, "dx_column": column, "dx_position": pos, "dx_value": value})
    frame = pd.DataFrame(out, columns=[c for c in COLUMNS if c != "source_sheet"])
    return conform(frame)


def _split(cell: str) -> list[str]:
    import re

    return re.split(r"[\s,;|]+", cell)


def _list(values: pd.Series) -> list[object]:
    return [None if pd.isna(v) else v for v in values]


def _raw(headers: list[str], rows: list[list[Cell]], *, dtype: str = "string") -> RawTable:
    width = len(headers)
    cols = [pd.Series([r[j] for r in rows], dtype=dtype) for j in range(width)]
    return RawTable(headers, cols, np.arange(2, len(rows) + 2, dtype=np.int64))


def _check(headers: list[str], rows: list[list[Cell]], *, dtype: str = "string") -> pd.DataFrame:
    got = build(_raw(headers, rows, dtype=dtype), source_file="t.csv", source_sheet=None).frame
    want = _oracle(headers, rows, range(2, len(rows) + 2), "t.csv")
    pd.testing.assert_frame_equal(got, want, check_exact=True, check_categorical=False)
    assert got["source_file"].tolist() == ["t.csv"] * len(got)
    assert got["source_sheet"].isna().all()
    return got


WIDE: list[str] = ["Claim #", "DOS", "Line", "CPT", "Mod 1", "Mod 2", "Dx 1", "Dx 2", "Dx 3",
        "Billed", "Paid", "Adj Codes", "Group Code", "Reason Code", "Remarks", "Payer",
        "Sex", "DOB", "Age", "Patient ID", "Provider", "Dx Pointer"]  # fmt: skip


def _wide_row(
    claim: Cell, dos: Cell, line: Cell, dx: tuple[Cell, Cell, Cell], **more: Cell
) -> list[Cell]:
    values: dict[str, Cell] = {
        "Claim #": claim, "DOS": dos, "Line": line, "CPT": "97110", "Mod 1": "GP",
        "Mod 2": None, "Dx 1": dx[0], "Dx 2": dx[1], "Dx 3": dx[2], "Billed": "$120.00",
        "Paid": "(3.50)", "Adj Codes": "CO-45", "Group Code": None, "Reason Code": None,
        "Remarks": "M81, n130", "Payer": " Aetna ", "Sex": "female", "DOB": "3/14/61",
        "Age": "64", "Patient ID": "P1", "Provider": "Kim DPT", "Dx Pointer": "1,2",
    }  # fmt: skip
    values.update({k.replace("_", " "): v for k, v in more.items()})
    return [values[h] for h in WIDE]


def test_wide_positions_gaps_blanks_and_lines_without_diagnoses() -> None:
    rows: list[list[Cell]] = [
        _wide_row("C1", "01/05/2023", "1", ("M54.50", "M54.41", None)),
        _wide_row("C1", "01/05/2023", "2", ("M54.50", None, "S33.5XXA")),  # a gap
        _wide_row("C2", "2023-02-30", "1", (None, None, None)),  # no diagnosis
        [None] * len(WIDE),  # blank row
        ["  ", "", None, *([" "] * (len(WIDE) - 3))],  # whitespace only: blank too
        _wide_row(" C3 ", "44931", "1", ("  ", "m5450", "\t")),  # whitespace-only cells
        _wide_row("C3", "Jan 5, 2023", "", (" M54.5 ", "", "")),  # line missing: counted
        _wide_row("", "soon", "x", ("S39.012A", "S39.012A", "S39.012A")),
    ]
    got = _check(WIDE, rows)
    assert _list(got["dx_value"])[:5] == ["M54.50", "M54.41", "M54.50", "S33.5XXA", None]
    assert _list(got["dx_position"])[:5] == [1, 2, 1, 3, None]
    assert got["source_row"].tolist()[:5] == [2, 2, 3, 3, 4]
    assert " M54.5 " in _list(got["dx_value"])  # kept as written
    assert got["line_id"].max() == 5  # two blank rows dropped


def test_every_line_with_at_most_one_diagnosis() -> None:
    rows = [
        _wide_row("C1", "01/05/2023", "1", ("M54.50", None, None)),
        _wide_row("C2", "01/06/2023", "1", (None, None, None)),
        _wide_row("C2", "01/06/2023", "2", (None, "M51.26", None)),
    ]
    got = _check(WIDE, rows)
    assert len(got) == 3
    assert _list(got["dx_position"]) == [1, None, 2]


def test_separate_and_combined_adjustment_columns() -> None:
    rows = [
        _wide_row("C1", "01/05/2023", "1", ("M54.50", None, None), Group_Code="CO",
                  Reason_Code="45, 16", Adj_Codes=None),
        _wide_row("C1", "01/05/2023", "2", ("M54.50", None, None), Group_Code="PR",
                  Reason_Code="2", Adj_Codes="OA-23"),
    ]  # fmt: skip
    got = _check(WIDE, rows)
    assert got["carc"].tolist() == ["CO-45 CO-16", "OA-23"]


def test_object_columns_with_nulls_and_no_line_column() -> None:
    headers = ["Claim ID", "Service Date", "Dx 1", "Dx 2", "Modifier"]
    rows: list[list[Cell]] = [
        ["A", "20230105", "M54.50", None, "gp,59"],
        ["A", None, None, None, None],
        [None, "1/5/23", "M51.26", "M54.41", ""],
        ["B", "2023-01-05 08:15:00", None, "Z00.00", "KX"],
        [" A", "20230106", "M54.41", None, None],  # claim A again, not next to its lines
    ]
    got = _check(headers, rows, dtype="object")
    assert got["line"].tolist() == [1, 2, 1, 1, 1, 3]
    assert got["modifiers"].tolist()[:1] == ["GP 59"]


def test_list_in_a_cell() -> None:
    headers = ["Claim", "DOS", "Diagnosis Codes", "Billed"]
    rows: list[list[Cell]] = [
        ["A", "01/05/2023", "M54.50, M54.41", "10"],
        ["A", "01/05/2023", "M54.50;M51.26 | S33.5XXA", "12.00-"],
        ["B", "01/06/2023", None, "x"],
        ["C", "01/06/2023", " , ", "$1,000"],
    ]
    got = _check(headers, rows)
    assert _list(got["dx_position"]) == [1, 2, 1, 2, 3, None, None]


def test_no_rows() -> None:
    got = build(_raw(WIDE, []), source_file="t.csv", source_sheet=None).frame
    assert tuple(got.columns) == COLUMNS and len(got) == 0


def _csv_text(rows: list[list[Cell]]) -> str:
    def q(cell: Cell) -> str:
        return '"' + (cell or "").replace('"', '""') + '"'

    return "".join(",".join(q(c) for c in row) + "\r\n" for row in rows)


@pytest.mark.parametrize("title_rows", [0, 2])
def test_csv_crlf_and_title_rows_read_as_build_reads_the_rows(
    tmp_path: Path, title_rows: int
) -> None:
    rows = [
        _wide_row("C1", "01/05/2023", "1", ("M54.50", "M54.41", None)),
        _wide_row("C1", "01/05/2023", "2", ("M54.50", None, "S33.5XXA")),
        _wide_row("C2", "13/45/2023", "1", (None, None, None)),
        _wide_row("C3", "20230105", "1", ("  ", "m5450", None)),
    ]
    titles = "Remittance export\r\nPrinted 2023-02-01\r\n"[: 0 if not title_rows else None]
    path = tmp_path / "eob.csv"
    header: list[Cell] = list(WIDE)
    path.write_bytes((titles + _csv_text([header, *rows])).encode())
    got = read_file(path).frame
    header_line = 1 + title_rows
    want = _oracle(WIDE, rows, range(header_line + 1, header_line + 1 + len(rows)), str(path))
    pd.testing.assert_frame_equal(got, want, check_exact=True, check_categorical=False)


def test_one_thread_builds_the_same_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [
        _wide_row("C1", "01/05/2023", "1", ("M54.50", "M54.41", None)),
        _wide_row("C1", "01/05/2023", "2", ("M54.50", None, "S33.5XXA")),
        _wide_row("C2", "2023-02-30", "1", (None, None, None)),
    ]
    threaded = _check(WIDE, rows)
    monkeypatch.setattr(sys.modules["eobcheck.readers.build"], "_THREADS", 1)
    pd.testing.assert_frame_equal(_check(WIDE, rows), threaded, check_exact=True)
