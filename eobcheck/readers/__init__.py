"""Readers: EOB and claim exports (CSV, XLSX) or a DataFrame -> the canonical frame.

``read`` returns the canonical frame (see eobcheck.model); ``read_file`` also says what was read
(sheets, rows, the columns found). Headers are matched by alias (eobcheck.readers.columns) or
by the user's column mapping, which takes precedence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from eobcheck.errors import InputError
from eobcheck.readers.base import ReadResult
from eobcheck.readers.build import RawTable, build
from eobcheck.readers.columns import (
    ALIASES,
    NUMBERED,
    ColumnMap,
    missing_columns_error,
    validate_user_columns,
)
from eobcheck.readers.csv import read_csv
from eobcheck.readers.sniff import detect_format
from eobcheck.readers.xlsx import column_text, read_xlsx

__all__ = [
    "ALIASES",
    "NUMBERED",
    "SUPPORTED_SUFFIXES",
    "ColumnMap",
    "ColumnsOption",
    "ReadResult",
    "read",
    "read_dataframe",
    "read_file",
    "validate_user_columns",
]

SUPPORTED_SUFFIXES: Final = (
    ".csv",
    ".tsv",
    ".txt",
    ".xlsx",
    ".xlsm",
    # X12 and FHIR inputs (eobcheck.readers.x12 / .fhir); recognized by content, not name
    ".edi",
    ".x12",
    ".835",
    ".837",
    ".json",
    ".ndjson",
)
_CSV_SUFFIXES: Final = (".csv", ".tsv", ".txt")

#: the user column mapping: canonical field -> header text (or, for dx, several headers)
ColumnsOption = Mapping[str, str | Sequence[str]] | None


def read_file(
    path: Path,
    *,
    sheet: str | None = None,
    columns: ColumnsOption = None,
    line_id_start: int = 0,
    source_name: str | None = None,
) -> ReadResult:
    """Read one CSV/TSV/TXT or XLSX/XLSM file into the canonical frame, with what was read."""
    validate_user_columns(columns)
    path = Path(path)
    name = source_name if source_name is not None else str(path)
    suffix = path.suffix.lower()
    if not path.exists():
        raise InputError("file not found", path=name)
    if path.is_dir():
        raise InputError("is a directory, not a file", path=name)
    if suffix not in (".xlsx", ".xlsm"):
        # X12 and FHIR files are recognized by their content, whatever they are called
        kind = detect_format(path)
        # imported when needed: tabular runs do not load the X12 and FHIR readers
        if kind is not None and kind.startswith("x12"):
            from eobcheck.readers.x12 import read_x12

            return read_x12(path, line_id_start=line_id_start, source_name=name)
        if kind is not None and kind.startswith("fhir"):
            from eobcheck.readers.fhir import read_fhir

            return read_fhir(path, line_id_start=line_id_start, source_name=name)
    if suffix in (".xlsx", ".xlsm"):
        return read_xlsx(
            path, sheet=sheet, columns=columns, line_id_start=line_id_start, source_name=name
        )
    if suffix in _CSV_SUFFIXES:
        return read_csv(path, columns=columns, line_id_start=line_id_start, source_name=name)
    if suffix == ".xls":
        raise InputError(
            "the old binary .xls format is not supported; save the workbook as .xlsx",
            path=name,
        )
    if suffix in (".edi", ".x12", ".835", ".837", ".json", ".ndjson"):
        raise InputError(
            "not recognized as X12 (no ISA/ST header) or FHIR (no resourceType)", path=name
        )
    raise InputError(
        f"unsupported file type {suffix or '(none)'!r}; supported: "
        + ", ".join(SUPPORTED_SUFFIXES),
        path=name,
    )


def read_dataframe(
    df: pd.DataFrame,
    *,
    columns: ColumnsOption = None,
    line_id_start: int = 0,
    source_name: str = "<dataframe>",
) -> ReadResult:
    """Read a DataFrame whose columns are export headers; row 1 is taken as the header."""
    cmap = ColumnMap.from_headers([str(c) for c in df.columns], columns)
    if cmap.missing():
        raise missing_columns_error(cmap, path=source_name, sheet=None, columns=columns)
    cols = []
    for i in range(df.shape[1]):
        col = df.iloc[:, i]
        if pd.api.types.is_datetime64_any_dtype(col.dtype):
            cols.append(pd.Series(col.dt.strftime("%Y-%m-%d").to_numpy()).astype("string"))
        else:
            cols.append(column_text(col.to_numpy(dtype=object)))
    raw = RawTable(cmap.headers, cols, np.arange(2, len(df) + 2, dtype=np.int64))
    built = build(
        raw, source_file=source_name, source_sheet=None, cmap=cmap, line_id_start=line_id_start
    )
    return ReadResult(
        frame=built.frame,
        path=Path(source_name),
        format="dataframe",
        rows_read=built.rows_read,
        column_map=cmap.as_dict(),
    )


def read(
    source: str | Path | pd.DataFrame,
    *,
    sheet: str | None = None,
    columns: ColumnsOption = None,
) -> pd.DataFrame:
    """Read a file path or a DataFrame into the canonical frame (see eobcheck.model)."""
    if isinstance(source, pd.DataFrame):
        return read_dataframe(source, columns=columns).frame
    return read_file(Path(source), sheet=sheet, columns=columns).frame
