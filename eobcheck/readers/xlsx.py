"""XLSX / XLSM workbooks -> canonical frame, every sheet or a chosen one.

python-calamine reads the workbook when it is installed (about 15x faster than openpyxl on
100,000 lines); otherwise openpyxl in read-only mode, cell values only. In each sheet the
header is the row among the first rows that names the most canonical fields (title and blank
rows above it are skipped). Cell values become text once per distinct value (a date cell ->
"2023-01-05", a whole number -> "1001"), so every column then goes through the same
vectorized parsers as CSV. Sheets without a usable header are skipped and reported, unless
no sheet is usable.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from importlib.util import find_spec
from itertools import islice, zip_longest
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from eobcheck.errors import InputError
from eobcheck.model import conform
from eobcheck.readers.base import ReadResult
from eobcheck.readers.build import RawTable, build
from eobcheck.readers.columns import ColumnMap, missing_columns_error

#: how many rows at the top of a sheet may hold titles before the header
HEADER_SCAN_ROWS = 30


def cell_text(value: object) -> str | None:
    """Return a cell value as text: dates ISO, whole numbers without ".0", blanks None."""
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def column_text(values: Sequence[object] | np.ndarray) -> pd.Series:
    """Convert one column of cell values to canonical text, once per distinct value."""
    codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)
    texts = pd.Series([cell_text(u) for u in uniques], dtype="string")
    if len(texts) == 0:
        return pd.Series(pd.array([None] * len(values), dtype="string"))
    return pd.Series(texts.array.take(codes, allow_fill=True))


def _find_header(
    head: list[tuple[Any, ...]], columns: Mapping[str, str | Sequence[str]] | None
) -> tuple[int, ColumnMap]:
    """Return (0-based index of the header row in ``head``, its column map)."""
    best: tuple[int, int, ColumnMap] | None = None
    for i, row in enumerate(head):
        texts = [cell_text(v) or "" for v in row]
        if sum(1 for t in texts if t) < 2:
            continue
        cmap = ColumnMap.from_headers(texts, columns)
        score = cmap.score() + (10 * (4 - len(cmap.missing())) if columns else 0)
        if best is None or score > best[0]:
            best = (score, i, cmap)
    if best is None:
        first = next((r for r in head if any(v is not None for v in r)), ())
        return -1, ColumnMap.from_headers([cell_text(v) or "" for v in first], columns)
    return best[1], best[2]


class _Workbook:
    """Sheet names and row iteration over one of the two engines."""

    def __init__(self, path: Path, name: str, engine: str) -> None:
        self.engine = engine
        try:
            if engine == "calamine":
                import python_calamine

                self._book: Any = python_calamine.CalamineWorkbook.from_path(str(path))
                self.names: list[str] = list(self._book.sheet_names)
            else:
                import openpyxl  # imported here: CSV-only runs never pay for it

                self._book = openpyxl.load_workbook(path, read_only=True, data_only=True)
                self.names = [ws.title for ws in self._book.worksheets]
        except FileNotFoundError as exc:
            raise InputError("file not found", path=name) from exc
        except Exception as exc:  # each engine raises its own errors for a bad workbook
            raise InputError(f"not a readable XLSX workbook ({exc})", path=name) from exc

    def rows(self, title: str) -> Iterator[Sequence[Any]]:
        """Yield the sheet's rows from row 1 (empty rows included, so numbers hold)."""
        if self.engine == "calamine":
            sheet = self._book.get_sheet_by_name(title)
            return iter(sheet.to_python(skip_empty_area=False))
        return iter(self._book[title].iter_rows(values_only=True))

    def close(self) -> None:
        """Release the file."""
        if self.engine != "calamine":
            self._book.close()


def engine() -> str:
    """Return the XLSX engine: python-calamine when installed (much faster), else openpyxl."""
    return "calamine" if find_spec("python_calamine") is not None else "openpyxl"


def _sheet_table(
    rows: Iterator[Sequence[Any]], columns: Mapping[str, str | Sequence[str]] | None
) -> tuple[RawTable | None, ColumnMap]:
    """Read one sheet: (raw table or None when the header is unusable, column map)."""
    head = [tuple(r) for r in islice(rows, HEADER_SCAN_ROWS)]
    index, cmap = _find_header(head, columns)
    if index < 0 or cmap.missing():
        return None, cmap
    width = len(cmap.headers)
    body: list[Sequence[Any]] = list(head[index + 1 :])
    body.extend(rows)
    # spreadsheet row numbers: the header is row index + 1
    numbers = np.arange(index + 2, index + 2 + len(body), dtype=np.int64)
    n = len(body)
    cols_t = list(zip_longest(*body, fillvalue=None)) if body else []
    empty = (None,) * n
    # cells past the last header cell have no header to map them, so they are not read
    cols = [column_text(cols_t[i] if i < len(cols_t) else empty) for i in range(width)]
    return RawTable(cmap.headers, cols, numbers), cmap


def read_xlsx(
    path: Path,
    *,
    sheet: str | None = None,
    columns: Mapping[str, str | Sequence[str]] | None = None,
    line_id_start: int = 0,
    source_name: str | None = None,
    xlsx_engine: str | None = None,
) -> ReadResult:
    """Read every sheet (or the chosen one) of a workbook into the canonical frame."""
    name = source_name if source_name is not None else str(path)
    wb = _Workbook(Path(path), name, xlsx_engine or engine())
    try:
        names = wb.names
        if sheet is not None:
            chosen = [n for n in names if n == sheet] or [
                n for n in names if n.strip().lower() == sheet.strip().lower()
            ]
            if not chosen:
                raise InputError(
                    f"no sheet named {sheet!r}; sheets: {', '.join(repr(n) for n in names)}",
                    path=name,
                )
            targets = chosen[:1]
        else:
            targets = names
        frames: list[pd.DataFrame] = []
        read_sheets: list[str] = []
        skipped: list[tuple[str, str]] = []
        column_map: dict[str, str | list[str]] = {}
        failures: list[tuple[str, ColumnMap]] = []
        rows_read = 0
        next_id = line_id_start
        notes: list[str] = [f"read with {wb.engine}"]
        for title in targets:
            raw, cmap = _sheet_table(wb.rows(title), columns)
            if raw is None:
                failures.append((title, cmap))
                found = [h for h in cmap.headers if h]
                reason = (
                    "no recognizable header row"
                    if cmap.score() == 0 or not found
                    else "missing required column(s): " + ", ".join(cmap.missing())
                )
                skipped.append((title, reason))
                continue
            built = build(
                raw, source_file=name, source_sheet=title, cmap=cmap, line_id_start=next_id
            )
            frames.append(built.frame)
            read_sheets.append(title)
            rows_read += built.rows_read
            next_id += built.rows_read
            column_map = column_map or cmap.as_dict()
            if cmap.ignored:
                notes.append(f"sheet {title!r}: columns not used: " + ", ".join(cmap.ignored))
    finally:
        wb.close()
    if not frames:
        if len(failures) == 1:
            title, cmap = failures[0]
            raise missing_columns_error(cmap, path=name, sheet=title, columns=columns)
        detail = "; ".join(f"{t}: {r}" for t, r in skipped) or "the workbook has no sheets"
        raise InputError(
            f"no sheet has the required columns (claim id, date of service, diagnosis): "
            f"{detail}. Map the headers with --columns FILE or eobcheck.toml "
            "(see docs/column-mapping.md).",
            path=name,
        )
    frame = frames[0] if len(frames) == 1 else conform(pd.concat(frames, ignore_index=True))
    return ReadResult(
        frame=frame,
        path=Path(path),
        format="xlsx",
        sheets=read_sheets,
        rows_read=rows_read,
        column_map=column_map,
        skipped_sheets=skipped,
        notes=notes,
    )
