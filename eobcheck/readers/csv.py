"""CSV / TSV / delimited text exports -> canonical frame.

The file is read once into memory. The encoding is UTF-8 (BOM or not) or, failing that,
cp1252. The delimiter and the header row (title rows above it are common) are found together:
for each candidate delimiter the first lines are parsed and the row that names the most
canonical fields wins. The data itself is parsed by pyarrow.csv with every column as a string;
a file pyarrow cannot parse as a rectangle (ragged rows, quoted newlines, whitespace-only lines)
is parsed again with the standard csv module, so no row is lost.
"""

from __future__ import annotations

import csv as _csv
import io
import mmap
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from eobcheck.errors import InputError
from eobcheck.readers.base import ReadResult
from eobcheck.readers.build import RawTable, build
from eobcheck.readers.columns import ColumnMap, missing_columns_error

DELIMITERS = (",", ";", "\t", "|")
#: how many lines at the top may hold titles before the header
HEADER_SCAN_LINES = 30
_HEAD_BYTES = 256 * 1024
#: files at least this large are mapped into memory instead of read into a bytes object
_MAP_BYTES = 4 * 1024 * 1024
_BLOCK = 1 << 20

#: file contents: bytes, or a zero-copy view of a memory-mapped file
Data = bytes | memoryview


def _load(path: Path) -> Data:
    """Return the file's contents; a large file is mapped, not copied (page cache only)."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size < max(_MAP_BYTES, 1):  # an empty file cannot be mapped
            return fh.read()
        # the map outlives the file object; it is unmapped when its last view is dropped
        return memoryview(mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ))


def _ascii(data: Data) -> bool:
    if isinstance(data, bytes):
        return data.isascii()
    buf = np.frombuffer(data, dtype=np.uint8)
    return all(int(buf[i : i + _BLOCK].max()) < 128 for i in range(0, len(buf), _BLOCK))


def _blank(data: Data) -> bool:
    """Return True for an empty file or one holding only whitespace."""
    if not len(data):
        return True
    if isinstance(data, bytes):
        return data.isspace()
    return bytes(data[:_HEAD_BYTES]).isspace() and bytes(data).isspace()


def decode(data: Data) -> tuple[Data, str]:
    """Return (UTF-8 bytes without BOM, encoding name): UTF-8 if it decodes, else cp1252."""
    if data[:3] == b"\xef\xbb\xbf":
        data = data[3:]
        encoding = "utf-8-sig"
    else:
        encoding = "utf-8"
    if _ascii(data):  # the usual export: nothing to validate
        return data, encoding
    data = bytes(data)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        # cp1252 leaves 5 bytes undefined: they become U+FFFD instead of failing the file
        text = data.decode("cp1252", errors="replace")
        return text.encode("utf-8"), "cp1252"
    return data, encoding


def _head_rows(head: str, delimiter: str) -> list[tuple[int, int, list[str]]]:
    """Parse the head: (first physical line, last physical line, fields) per record."""
    rows = []
    reader = _csv.reader(io.StringIO(head), delimiter=delimiter)
    last = 0
    try:
        for fields in reader:
            rows.append((last + 1, reader.line_num, fields))
            last = reader.line_num
            if len(rows) >= HEADER_SCAN_LINES:
                break
    except _csv.Error:
        pass
    return rows


def find_header(
    data: Data, columns: Mapping[str, str | Sequence[str]] | None
) -> tuple[str, int, list[str], ColumnMap]:
    """Return (delimiter, header's physical line number, header fields, column map)."""
    delimiter, line, fields, cmap, _ = _find_header(data, columns)
    return delimiter, line, fields, cmap


def _find_header(
    data: Data, columns: Mapping[str, str | Sequence[str]] | None
) -> tuple[str, int, list[str], ColumnMap, int]:
    """find_header, plus the widest data row seen in the head (trailing delimiters)."""
    head_bytes = bytes(data[:_HEAD_BYTES])
    if len(data) > _HEAD_BYTES and b"\n" in head_bytes:
        head_bytes = head_bytes[: head_bytes.rindex(b"\n") + 1]
    head = head_bytes.decode("utf-8", errors="replace")
    best: tuple[int, int, int, str, int, list[str]] | None = None
    for order, delimiter in enumerate(DELIMITERS):
        for _first, line, fields in _head_rows(head, delimiter):
            if len(fields) < 2:
                continue
            cmap = ColumnMap.from_headers(fields, columns)
            score = cmap.score() + (10 * (4 - len(cmap.missing())) if columns else 0)
            key = (score, len(fields), -order, delimiter, line, fields)
            if best is None or key[:3] > best[:3]:
                best = key
    if best is None or best[0] == 0:
        first = next((f for _a, _b, f in _head_rows(head, ",") if any(x.strip() for x in f)), [])
        return ",", 0, first, ColumnMap.from_headers(first, columns), len(first)
    _, _, _, delimiter, line, fields = best
    widest = max(
        (len(f) for first, _last, f in _head_rows(head, delimiter) if first > line),
        default=len(fields),
    )
    return delimiter, line, fields, ColumnMap.from_headers(fields, columns), widest


def _newlines(data: Data, start: int) -> int:
    """Count the line feeds in ``data[start:]`` (numpy over blocks: 3x bytes.count)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    # blocks small enough that the comparison's temporary stays in cache
    return sum(
        int(np.count_nonzero(buf[i : i + _BLOCK] == 10)) for i in range(start, len(buf), _BLOCK)
    )


def _count_lines(data: Data, after: int) -> int | None:
    """Count the physical lines after line ``after``; None when the file has no more lines."""
    start = 0
    # the header is near the top: look for its end in the head first
    head = bytes(data[:_HEAD_BYTES])
    for _ in range(after):
        start = head.find(b"\n", start) + 1
        if start == 0 and len(head) < len(data):
            return _count_lines(bytes(data), after)
        if start == 0:
            return None
    ends_open = data[-1:] != b"\n"
    return 0 if start >= len(data) else _newlines(data, start) + ends_open


def _line_numbers(data: Data, after: int, rows: int, count: int | None) -> np.ndarray | None:
    """Return the 1-based physical line of each of ``rows`` records after line ``after``.

    ``count`` is :func:`_count_lines`. None when the non-empty lines after the header are
    not exactly the records (a quoted field holds a line break).
    """
    if count is None:
        return np.zeros(0, dtype=np.int64) if rows == 0 else None
    # as many physical lines as records (the usual case): line k holds record k; an empty
    # line or a quoted line break makes the records fewer than the lines
    if count == rows:
        return np.arange(after + 1, after + 1 + rows, dtype=np.int64)
    buf = np.frombuffer(data, dtype=np.uint8)
    nl = np.flatnonzero(buf == 10)
    starts = np.concatenate(([0], nl + 1))
    ends = np.concatenate((nl, [len(buf)]))
    length = ends - starts
    cr_only = np.zeros(len(starts), dtype=bool)
    one = length == 1
    cr_only[one] = buf[starts[one]] == 13
    nonempty = (length > 0) & ~cr_only
    nonempty[:after] = False
    lines = np.flatnonzero(nonempty) + 1
    return lines.astype(np.int64) if len(lines) == rows else None


def _read_arrow(data: Data, delimiter: str, header_line: int, width: int) -> RawTable | None:
    """Parse the data rows with pyarrow; None when the file is not a clean rectangle."""
    names = [f"f{i}" for i in range(width)]
    # the line feeds are counted (numpy, no GIL) while arrow parses on its own threads
    counter = ThreadPoolExecutor(max_workers=1)
    counting = counter.submit(_count_lines, data, header_line)
    try:
        table = pacsv.read_csv(
            pa.py_buffer(data),
            read_options=pacsv.ReadOptions(skip_rows=header_line, column_names=names),
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            # large_string is what pandas' arrow strings hold (no cast later); decode() has
            # made the bytes valid UTF-8, so arrow need not validate them again
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.large_string()), check_utf8=False
            ),
        )
    except pa.ArrowInvalid:
        return None  # ragged rows: the csv module reads them
    finally:
        counter.shutdown(wait=False)
    lines = _line_numbers(data, header_line, table.num_rows, counting.result())
    if lines is None:
        return None  # quoted line breaks: physical lines and records differ
    cols = [pd.Series(pd.arrays.ArrowStringArray(table.column(i))) for i in range(width)]
    return RawTable([], cols, lines.astype(np.int64))


def _read_python(data: Data, delimiter: str, header_line: int, width: int) -> RawTable:
    """Parse the data rows with the csv module: ragged rows padded, line numbers exact."""
    text = str(data, "utf-8")
    reader = _csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[list[str]] = []
    numbers: list[int] = []
    last = 0
    for fields in reader:
        first, last = last + 1, reader.line_num
        if first <= header_line or not fields:
            continue
        if len(fields) < width:
            fields = fields + [""] * (width - len(fields))
        elif len(fields) > width:
            extra = [x for x in fields[width:] if x.strip()]
            # extra cells past the last header are kept in the last column, not dropped
            fields = [*fields[: width - 1], delimiter.join([fields[width - 1], *extra])]
        rows.append(fields)
        numbers.append(first)
    cols = []
    for i in range(width):
        col = pd.Series([r[i] for r in rows], dtype="string")
        cols.append(col.mask(col == ""))
    return RawTable([], cols, np.asarray(numbers, dtype=np.int64))


def read_csv(
    path: Path,
    *,
    columns: Mapping[str, str | Sequence[str]] | None = None,
    line_id_start: int = 0,
    source_name: str | None = None,
) -> ReadResult:
    """Read a delimited text export into the canonical frame."""
    name = source_name if source_name is not None else str(path)
    try:
        raw_bytes = _load(Path(path))
    except OSError as exc:
        raise InputError(f"cannot read the file: {exc.strerror or exc}", path=name) from exc
    if _blank(raw_bytes):
        raise InputError("the file is empty", path=name)
    data, encoding = decode(raw_bytes)
    del raw_bytes
    delimiter, header_line, header, cmap, widest = _find_header(data, columns)
    if cmap.missing():
        raise missing_columns_error(cmap, path=name, sheet=None, columns=columns)
    width = len(header)
    notes = [f"encoding {encoding}, delimiter {delimiter!r}, header on line {header_line}"]
    raw = None
    if widest > width:
        # data rows wider than the header (often a trailing delimiter on every row)
        raw = _read_arrow(data, delimiter, header_line, widest)
        if raw is not None:
            extra = raw.columns[width:]
            del raw.columns[width:]
            if any(c.str.strip().fillna("").ne("").any() for c in extra):
                notes.append(f"cells beyond the {width} header columns were not read")
    if raw is None:
        raw = _read_arrow(data, delimiter, header_line, width)
    if raw is None:
        raw = _read_python(data, delimiter, header_line, width)
        notes.append("irregular rows: parsed row by row")
    del data  # parsed into arrow buffers of its own
    raw.headers = cmap.headers
    built = build(raw, source_file=name, source_sheet=None, cmap=cmap, line_id_start=line_id_start)
    if cmap.ignored:
        notes.append("columns not used (duplicates): " + ", ".join(cmap.ignored))
    return ReadResult(
        frame=built.frame,
        path=Path(path),
        format="csv",
        sheets=[],
        rows_read=built.rows_read,
        column_map=cmap.as_dict(),
        notes=notes,
    )
