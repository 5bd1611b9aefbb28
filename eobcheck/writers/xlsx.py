"""XLSX writer: Summary, Findings and Crosswalks sheets, ready for a billing office.

Written with openpyxl in write-only mode (rows are streamed, memory stays flat). Every
table sheet has a frozen header row, an autofilter and column widths fitted to the content;
dates are real date cells and amounts carry a currency format. Text that a spreadsheet
would take for a formula is prefixed with a single quote. Findings beyond Excel's row limit
continue on "Findings (2)", "Findings (3)", ...
"""

from __future__ import annotations

import datetime as dt
import html
import io
import json
import re
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from eobcheck.report import Report
from eobcheck.writers.tables import (
    CROSSWALK_COLUMNS,
    FLAT_COLUMNS,
    as_arrow,
    concat,
    flat_findings,
    joined_bytes,
    neutralize,
    none_if_missing,
)

#: Excel's row limit per sheet (header included).
MAX_ROWS: Final = 1_048_576
CURRENCY: Final = '"$"#,##0.00;[Red]-"$"#,##0.00'
DATE: Final = "yyyy-mm-dd"
MAX_WIDTH: Final = 60
# XML 1.0 forbids these control characters; openpyxl refuses a cell that holds one.
_ILLEGAL_XML: Final = r"[\x00-\x08\x0b\x0c\x0e-\x1f]"

AMOUNTS: Final = ("billed", "denied")
DATES: Final = ("date_of_service",)

CROSSWALK_HEADERS: Final[dict[str, str]] = {
    "problem_code": "problem code",
    "code": "rule code",
    "rule": "rule",
    "severity": "severity",
    "suggested_codes": "suggested codes",
    "suggestions": "suggestions (code title)",
    "findings": "findings",
    "lines": "lines affected",
    "claims": "claims affected",
    "billed": "billed",
    "denied": "denied",
}


def _clean(values: pd.Series) -> pd.Series:
    """Return text neutralized against formulas and stripped of XML-illegal characters."""
    text = neutralize(values)
    return text.str.replace(_ILLEGAL_XML, "", regex=True)


def _column_values(frame: pd.DataFrame, name: str) -> list[Any]:
    """Return one column as Python cell values: dates as date, missing as None."""
    col = frame[name]
    if name in DATES:
        days = col.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")
        values: list[Any] = days.astype(object).tolist()  # NaT becomes None
        return values
    if name in AMOUNTS or pd.api.types.is_float_dtype(col.dtype):
        arr = col.to_numpy(dtype="float64", na_value=np.nan)
        return [None if v != v else v for v in arr.tolist()]  # NaN -> None
    out: list[Any] = none_if_missing(col).tolist()
    return out


def _widths(
    headers: Sequence[str], columns: Sequence[list[Any]], sample: int = 2000
) -> list[float]:
    """Return a width per column from the header and a sample of values, capped."""
    widths = []
    for header, values in zip(headers, columns, strict=True):
        longest = len(header)
        for value in values[:sample]:
            if value is not None:
                longest = max(longest, len(str(value)))
        widths.append(float(min(MAX_WIDTH, longest + 2)))
    return widths


def _table_sheet(
    wb: Workbook,
    title: str,
    headers: Sequence[str],
    columns: Sequence[list[Any]],
    formats: dict[int, str],
    widths: list[float],
    start: int = 0,
    stop: int | None = None,
    filter_rows: int | None = None,
) -> None:
    """Write rows [start, stop) of a column-wise table to a new sheet with header and filter."""
    ws = wb.create_sheet(title)
    for j, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(j)].width = width
    ws.freeze_panes = "A2"
    n = len(columns[0]) if columns else 0
    stop = n if stop is None else min(stop, n)
    last = get_column_letter(len(headers))
    rows = max(stop - start, 0) if filter_rows is None else filter_rows
    ws.auto_filter.ref = f"A1:{last}{rows + 1}"
    bold = Font(bold=True)
    head = []
    for header in headers:
        cell = WriteOnlyCell(ws, value=header)
        cell.font = bold
        head.append(cell)
    ws.append(head)
    sliced = [col[start:stop] for col in columns]
    styled = sorted(formats)
    for row in zip(*sliced, strict=True):
        if styled:
            values: list[Any] = list(row)
            for j in styled:
                if values[j] is not None:
                    cell = WriteOnlyCell(ws, value=values[j])
                    cell.number_format = formats[j]
                    values[j] = cell
            ws.append(values)
        else:
            ws.append(row)


def _findings_placeholders(wb: Workbook, report: Report) -> list[tuple[str, int, int]]:
    """Create the Findings sheet(s) with header, widths, filter and one styled sample row.

    openpyxl writes about twenty thousand cells a second; the rows themselves are generated
    column-wise afterwards (see :func:`_sheet_rows`) and replace the sample row, which only
    serves to register the date and currency styles. Returns (title, start, stop) per sheet.
    """
    flat = report.findings
    headers = list(FLAT_COLUMNS)
    sample = flat_findings(flat.head(2000), safe=True)
    widths = _widths(headers, [_column_values(sample, name) for name in headers])
    per_sheet = MAX_ROWS - 1
    n = len(flat)
    parts = max(1, -(-n // per_sheet))
    styled = {headers.index(name): CURRENCY for name in AMOUNTS}
    styled[headers.index("date_of_service")] = DATE
    placeholder: list[list[Any]] = [[None] * len(headers)]
    for j in styled:
        placeholder[0][j] = dt.date(2000, 1, 1) if styled[j] == DATE else 0.0
    sheets = []
    for part in range(parts):
        title = "Findings" if part == 0 else f"Findings ({part + 1})"
        start, stop = part * per_sheet, min(n, (part + 1) * per_sheet)
        columns = [[value] for value in placeholder[0]]
        _table_sheet(wb, title, headers, columns, styled, widths, filter_rows=stop - start)
        sheets.append((title, start, stop))
    return sheets


def _xml_text(values: pa.Array) -> pa.Array:
    """Escape text for XML element content."""
    for raw, escaped in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;")):
        values = pc.replace_substring(values, raw, escaped)
    return values


def _sheet_rows(flat: pd.DataFrame, styles: dict[str, str]) -> bytes:
    """Return ``<row>`` elements (from row 2) for a flat findings frame, built column-wise.

    ``styles`` maps a column letter to the style index openpyxl gave its sample cell.
    """
    n = len(flat)
    if n == 0:
        return b""
    rownum = pc.cast(pa.array(np.arange(2, n + 2, dtype=np.int64)), pa.large_string())
    parts: list[str | pa.Array] = ['<row r="', rownum, '">']
    epoch = np.datetime64("1899-12-30", "D")
    for j, name in enumerate(FLAT_COLUMNS, start=1):
        letter = get_column_letter(j)
        style = f' s="{styles[letter]}"' if letter in styles else ""
        col = flat[name]
        if name in DATES:
            days = col.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")
            serial = pa.array((days - epoch).astype(np.int64), mask=np.isnat(days))
            value = pc.cast(serial, pa.large_string())
            kind = ' t="n"><v>'
            close = "</v></c>"
        elif name in AMOUNTS or name in ("line", "dx_position", "row"):
            numbers = (
                pa.array(col.to_numpy(dtype="float64", na_value=np.nan), from_pandas=True)
                if name in AMOUNTS
                else pa.array(col.astype("Int64"), type=pa.int64())
            )
            value = pc.cast(numbers, pa.large_string())
            kind = ' t="n"><v>'
            close = "</v></c>"
        else:
            text = as_arrow(col)
            text = pc.replace_substring_regex(text, _ILLEGAL_XML, "")
            # An empty text is an empty cell, as a spreadsheet user expects.
            text = pc.if_else(pc.equal(text, ""), pa.nulls(n, pa.large_string()), text)
            value = _xml_text(text)
            kind = ' t="inlineStr"><is><t xml:space="preserve">'
            close = "</t></is></c>"
        cell = concat(f'<c r="{letter}', rownum, f'"{style}{kind}', value, close)
        parts.append(pc.fill_null(cell, ""))
    parts.append("</row>")
    merged: list[str | pa.Array] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] = merged[-1] + part
        else:
            merged.append(part)
    return bytes(joined_bytes(concat(*merged)))


_SAMPLE_ROW: Final = re.compile(rb'<row r="2"[^>]*>.*?</row>', re.DOTALL)
_SAMPLE_STYLE: Final = re.compile(rb'<c r="([A-Z]+)2"[^>]*?\bs="(\d+)"')


def _sheet_paths(archive: zipfile.ZipFile) -> dict[str, str]:
    """Return sheet title -> member path inside the workbook archive."""
    workbook = archive.read("xl/workbook.xml").decode("utf-8")
    rels = archive.read("xl/_rels/workbook.xml.rels").decode("utf-8")
    targets = {}
    for rel in re.finditer(r"<Relationship\b[^>]*>", rels):
        tag = rel.group(0)
        rid = re.search(r'Id="([^"]+)"', tag)
        target = re.search(r'Target="([^"]+)"', tag)
        if rid and target:
            path = target.group(1).lstrip("/")
            targets[rid.group(1)] = path if path.startswith("xl/") else f"xl/{path}"
    out = {}
    for sheet in re.finditer(r"<sheet\b[^>]*>", workbook):
        tag = sheet.group(0)
        name = re.search(r'name="([^"]+)"', tag)
        rid = re.search(r'r:id="([^"]+)"', tag)
        if name and rid and rid.group(1) in targets:
            out[html.unescape(name.group(1))] = targets[rid.group(1)]
    return out


def _fill_findings(
    skeleton: bytes, target: str | Path, report: Report, sheets: list[tuple[str, int, int]]
) -> None:
    """Copy the skeleton workbook to ``target``, filling each Findings sheet with its rows."""
    flat = flat_findings(report.findings, safe=True)
    with (
        zipfile.ZipFile(io.BytesIO(skeleton)) as source,
        zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as out,
    ):
        paths = _sheet_paths(source)
        fills = {paths[title]: (start, stop) for title, start, stop in sheets}
        for member in source.infolist():
            data = source.read(member.filename)
            if member.filename in fills:
                start, stop = fills[member.filename]
                styles = {
                    m.group(1).decode(): m.group(2).decode() for m in _SAMPLE_STYLE.finditer(data)
                }
                rows = _sheet_rows(flat.iloc[start:stop].reset_index(drop=True), styles)
                match = _SAMPLE_ROW.search(data)
                if match is None:  # pragma: no cover - openpyxl always writes the sample
                    raise RuntimeError(f"no sample row in {member.filename}")
                data = data[: match.start()] + rows + data[match.end() :]
            out.writestr(member, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=1)


def _crosswalk_sheet(wb: Workbook, report: Report) -> None:
    """Write the Crosswalks sheet: problem code -> suggestions, lines, claims, amounts."""
    table = report.crosswalk().copy()
    for name in ("problem_code", "code", "rule", "severity", "suggested_codes", "suggestions"):
        table[name] = _clean(table[name])
    names = list(CROSSWALK_COLUMNS)
    headers = [CROSSWALK_HEADERS[n] for n in names]
    columns = [_column_values(table, name) for name in names]
    formats = {names.index(n): CURRENCY for n in AMOUNTS}
    _table_sheet(wb, "Crosswalks", headers, columns, formats, _widths(headers, columns))


DENIAL_HEADERS = (
    "Claim",
    "Line",
    "Denial codes",
    "Amount",
    "Explained",
    "Explained by",
    "Has a suggested fix",
    "File",
    "Sheet",
    "Row",
)


def _denials_sheet(wb: Workbook, report: Report) -> None:
    """Write the Denials sheet: each diagnosis-related denied line and what explains it."""
    d = report.denials
    table = pd.DataFrame(
        {
            "claim_id": _clean(d["claim_id"].astype("object")),
            "line": d["line"],
            "codes": _clean(d["codes"].map(" ".join).astype("object")),
            "amount": d["amount"],
            "explained": d["explained"].map({True: "yes", False: "no"}),
            "explained_by": d["explained_by"].map(", ".join).astype("object"),
            "fixable": d["fixable"].map({True: "yes", False: "no"}),
            "file": _clean(d["file"].astype("object")),
            "sheet": _clean(d["sheet"].astype("object")),
            "row": d["row"],
        }
    )
    columns = [_column_values(table, name) for name in table.columns]
    headers = list(DENIAL_HEADERS)
    _table_sheet(wb, "Denials", headers, columns, {3: CURRENCY}, _widths(headers, columns))


def _text(value: Any) -> Any:
    """Return a Summary cell value: text neutralized, nested values as compact JSON."""
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, str):
        value = _clean(pd.Series([value], dtype="string")).iloc[0]
    return value


def _summary_sheet(wb: Workbook, report: Report, finding_sheets: int) -> None:
    """Write the Summary sheet: validity, stats, inputs, reference, findings by rule."""
    ws = wb.create_sheet("Summary")
    bold = Font(bold=True)
    rows: list[list[Any]] = []
    widths = [24.0, 16.0, 12.0, 12.0, 12.0, 12.0, 12.0, 40.0]

    def heading(text: str) -> None:
        cell = WriteOnlyCell(ws, value=text)
        cell.font = bold
        rows.append([cell])

    def header_row(names: Iterable[str]) -> None:
        row = []
        for name in names:
            cell = WriteOnlyCell(ws, value=name)
            cell.font = bold
            row.append(cell)
        rows.append(row)

    stats = report.stats
    heading("eobcheck report")
    rows.append(["valid", report.valid])
    for key, value in stats.model_dump().items():
        if isinstance(value, dict):
            continue
        rows.append([key.replace("_", " "), value])
    if finding_sheets > 1:
        rows.append(
            [
                "note",
                f"findings exceed Excel's {MAX_ROWS:,} rows per sheet; "
                f"they continue on Findings (2) .. Findings ({finding_sheets})",
            ]
        )
    if stats.rejected_reasons:
        rows.append([])
        heading("Rejected rows")
        header_row(["reason", "rows"])
        for reason, count in stats.rejected_reasons.items():
            rows.append([_text(reason), count])

    rows.append([])
    heading("Inputs")
    header_row(["path", "format", "rows read", "checked", "rejected", "sheets", "sha256", "error"])
    for info in report.inputs:
        rows.append(
            [
                _text(info.path),
                _text(info.format),
                info.rows_read,
                info.rows_checked,
                info.rows_rejected,
                _text(", ".join(info.sheets)),
                info.sha256,
                _text(info.error) if info.error else None,
            ]
        )

    rows.append([])
    heading("Reference")
    for key, value in report.reference.items():
        rows.append([_text(str(key)), _text(value)])

    rows.append([])
    heading("Findings by rule")
    header_row(["rule code", "rule", "severity", "findings"])
    findings = report.findings
    if not findings.empty:
        counts = (
            pd.DataFrame(
                {
                    "code": findings["code"].astype("string"),
                    "name": findings["name"].astype("string"),
                    "severity": findings["severity"].astype("string"),
                }
            )
            .value_counts(sort=True)
            .reset_index(name="findings")
        )
        for code, name, severity, count in counts.itertuples(index=False):
            rows.append([_text(code), _text(name), _text(severity), int(count)])

    rows.append([])
    heading("Findings by severity")
    header_row(["severity", "findings"])
    for severity, count in stats.by_severity.items():
        rows.append([_text(severity), count])

    for j, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(j)].width = width
    ws.freeze_panes = "A2"
    for row in rows:
        ws.append(row)


def write_xlsx(report: Report, target: str | Path) -> None:
    """Write the workbook (Summary, Findings, Crosswalks, Denials) to ``target``."""
    wb = Workbook(write_only=True)
    n = len(report.findings)
    parts = max(1, -(-n // (MAX_ROWS - 1)))
    _summary_sheet(wb, report, parts)
    sheets = _findings_placeholders(wb, report)
    _crosswalk_sheet(wb, report)
    _denials_sheet(wb, report)
    skeleton = io.BytesIO()
    wb.save(skeleton)
    _fill_findings(skeleton.getvalue(), target, report, sheets)
