"""Raw table (headers + string columns) -> canonical frame, shared by every reader.

A reader only has to deliver the header texts, one string Series per input column and the
spreadsheet row number of each data row. Everything else happens here, vectorized: blank rows
are dropped, values parsed once per distinct value, and the wide (Dx1..DxN) or list-in-a-cell
diagnosis columns are turned into one row per line x diagnosis position with numpy index
arithmetic.

Most fields repeat a few values (dates, codes, amounts, payers): such a column is encoded once
with arrow (a code per line), its distinct values parsed, and the result spread to the output
rows by taking codes, never by copying intermediate pandas objects. Mostly distinct texts
(claim and patient ids) are stripped and taken directly. Columns parse and spread on a few
threads: arrow and numpy release the GIL.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from eobcheck.model import COLUMNS, DTYPES, conform
from eobcheck.readers import values as V
from eobcheck.readers.columns import ColumnMap

_THREADS = max(1, min(4, os.cpu_count() or 1))

#: separators between codes in a list-in-a-cell diagnosis column
DX_LIST_SEPARATORS = r"[\s,;|]+"


@dataclass
class RawTable:
    """Input rows as text: headers, one string column per header, spreadsheet row numbers."""

    headers: list[str]
    columns: list[pd.Series]
    source_row: np.ndarray

    def __len__(self) -> int:
        return len(self.source_row)


@dataclass
class Built:
    """A canonical frame and what went into it."""

    frame: pd.DataFrame
    rows_read: int
    column_map: ColumnMap


def _nonblank(col: pd.Series) -> np.ndarray:
    """Return True where the cell holds something other than whitespace."""
    arr = pa.array(col.astype(V.STRING))
    filled = pc.and_kleene(pc.greater(pc.binary_length(arr), 0), pc.invert(pc.utf8_is_space(arr)))
    return np.asarray(pc.fill_null(filled, False), dtype=bool)


def drop_blank_rows(raw: RawTable) -> RawTable:
    """Return the table without rows whose every cell is empty or whitespace."""
    if not raw.columns or len(raw) == 0:
        return raw
    # most rows have something in the first columns: only still-blank rows are looked at
    first = _arrow(raw.columns[0])
    empty = pc.or_kleene(pc.equal(pc.binary_length(first), 0), pc.utf8_is_space(first))
    if first.null_count:
        empty = pc.fill_null(empty, True)
    if not pc.any(empty).as_py():
        return raw  # the usual export: every row has its first cell
    blank = np.flatnonzero(np.asarray(empty, dtype=bool))
    for col in raw.columns[1:]:
        if len(blank) == 0:
            break
        blank = blank[~_nonblank(col.iloc[blank])]
    if len(blank) == 0:
        return raw
    keep = np.ones(len(raw), dtype=bool)
    keep[blank] = False
    idx = np.flatnonzero(keep)
    cols = [c.iloc[idx].reset_index(drop=True) for c in raw.columns]
    return RawTable(raw.headers, cols, raw.source_row[idx])


def _strings(n: int) -> pd.Series:
    return pd.Series(pd.arrays.ArrowStringArray(pa.nulls(n, pa.large_string())), copy=False)


def _null_column(dtype: str, n: int) -> pd.Series:
    if dtype == "string":
        return _strings(n)
    if dtype == "float64":
        return pd.Series(np.full(n, np.nan), copy=False)
    if dtype == "Int64":
        return pd.Series(
            pd.arrays.IntegerArray(np.zeros(n, np.int64), np.ones(n, bool)), copy=False
        )
    return pd.Series(np.full(n, np.datetime64("NaT"), "datetime64[ns]"), copy=False)


@dataclass
class _Coded:
    """A line-level field as one code per line into its parsed distinct values.

    The last parsed value is the null that blank and missing cells map to, so spreading the
    field to the output rows is one integer gather and one take, with no mask.
    """

    codes: np.ndarray
    values: Any


#: a parsed line-level field: plain arrow texts, coded distinct values, or a finished Series
_Field: TypeAlias = pa.ChunkedArray | _Coded | pd.Series


def _arrow(col: pd.Series) -> pa.ChunkedArray:
    """Return the column as large_string arrow chunks (no copy for arrow-backed columns)."""
    arr = pa.array(col.astype(V.STRING))
    if isinstance(arr, pa.Array):
        arr = pa.chunked_array([arr])
    return arr if arr.type == pa.large_string() else arr.cast(pa.large_string())


def _coded(col: pd.Series, *kinds: str) -> tuple[_Coded, ...]:
    """Encode a column once and parse its distinct values as each of ``kinds``."""
    codes, uniques = V.encode(_arrow(col))
    return tuple(_Coded(codes, V.distinct(kind, uniques)) for kind in kinds)


def _carc(
    n: int, carc: pd.Series | None, group: pd.Series | None, reason: pd.Series | None
) -> _Field:
    """Adjustment codes from a combined column, separate group/reason columns, or both."""
    if reason is None:
        assert carc is not None
        return _coded(carc, "carc")[0]
    pair = V.parse_carc_pair(group if group is not None else _strings(n), reason)
    if carc is None:
        return pair
    combined = V.parse_carc(carc)
    # both shapes present: the combined column wins where it has codes
    return combined.fillna(pair)


def _line(n: int, given: pd.Series | None, claims: pd.Series | None) -> _Field:
    """Line numbers: given, else 1.. in input order within each claim."""
    within = None
    if given is not None:
        (coded,) = _coded(given, "int")
        missing = np.take(coded.values.isna(), coded.codes)
        if not missing.any():
            return coded
        within = np.take(coded.values.to_numpy(dtype=np.int64, na_value=0), coded.codes)
    counted = _count_within(None if claims is None else _arrow(claims), n)
    if within is not None:
        # a given number wins; a missing or unreadable one is counted
        within[missing] = counted[missing]
        counted = within
    return pd.Series(pd.arrays.IntegerArray(counted, np.zeros(n, bool)), copy=False)


def _modifiers(columns: list[pd.Series]) -> _Field:
    """Modifier columns joined and normalized ("GP,59" / "GP" + "59" -> "GP 59")."""
    if len(columns) == 1:
        # a blank cell and a missing one both normalize to null: no join needed
        return _coded(columns[0], "code_list")[0]
    return V.parse_modifiers(columns)


def _line_frame(
    raw: RawTable, cmap: ColumnMap, run: _Runner
) -> dict[tuple[str, ...], Future[tuple[_Field, ...]]]:
    """Start parsing every non-diagnosis field once per input line (columns in parallel).

    Returns the tasks: field names -> the future of those fields (a date column gives two).
    """
    n = len(raw)
    f = cmap.fields

    def col(name: str) -> pd.Series | None:
        i = f.get(name)
        return None if i is None else raw.columns[i]

    def text(c: pd.Series) -> pa.ChunkedArray:
        return V.stripped(_arrow(c))

    # each task returns a tuple of fields, named by the task's key
    tasks: dict[tuple[str, ...], tuple[Callable[..., Any], tuple[object, ...]]] = {}
    for name in ("claim_id", "patient_id", "payer", "provider", "dx_pointers"):
        c = col(name)
        if c is not None:
            # mostly distinct or cheap to copy: stripping beats hashing
            tasks[(name,)] = (lambda c: (text(c),), (c,))
    # source column -> (field, kind of its distinct values) for each field it feeds
    coded: dict[str, tuple[tuple[str, str], ...]] = {
        "date_of_service": (("date_raw", "text"), ("date_of_service", "dates")),
        "birth_date": (("birth_date", "birth_dates"),),
        "age": (("age", "int"),),
        "sex": (("sex", "sex"),),
        "billed": (("billed", "amounts"),),
        "allowed": (("allowed", "amounts"),),
        "paid": (("paid", "amounts"),),
        "procedure": (("procedure", "procedure"),),
        "rarc": (("rarc", "code_list"),),
    }
    for source, fields in coded.items():
        c = col(source)
        if c is not None:
            names, kinds = zip(*fields, strict=True)
            tasks[names] = (_coded, (c, *kinds))
    if cmap.modifiers:
        mods = [raw.columns[i] for i in cmap.modifiers]
        tasks[("modifiers",)] = (lambda m: (_modifiers(m),), (mods,))
    carc, group, reason = col("carc"), col("carc_group"), col("carc_reason")
    if carc is not None or reason is not None:
        tasks[("carc",)] = (lambda *a: (_carc(*a),), (n, carc, group, reason))
    tasks[("line",)] = (lambda *a: (_line(*a),), (n, col("line"), col("claim_id")))
    # arrow kernels release the GIL, so independent columns parse side by side
    return {names: run.submit(fn, *args) for names, (fn, args) in tasks.items()}


def _count_within(claims: pa.ChunkedArray | None, n: int) -> np.ndarray:
    """Return 1, 2, ... in input order within each claim id (stripped; blank ids form a group)."""
    if claims is None:
        return np.arange(1, n + 1, dtype=np.int64)
    codes, uniques = V.encode(V.stripped(claims))
    if len(codes) == 0:
        return np.zeros(0, dtype=np.int64)
    change = np.flatnonzero(codes[1:] != codes[:-1]) + 1
    starts = np.concatenate(([0], change))
    # blank ids share the null code, one past the distinct ids
    groups = len(uniques) + int(codes.max() == len(uniques))
    if len(starts) == groups:
        # each claim's lines are contiguous (the usual export order): count within runs
        run = np.repeat(starts, np.diff(np.concatenate((starts, [len(codes)]))))
        within: np.ndarray = np.arange(1, len(codes) + 1, dtype=np.int64) - run
        return within
    counted = pd.Series(codes, copy=False).groupby(codes, sort=False).cumcount()
    return counted.to_numpy(np.int64) + 1


def _expand(valid_lines: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Place items (sorted by line) and one empty row per line without items.

    Returns (line index per output row, output position of each item, counts).
    """
    counts = np.bincount(valid_lines, minlength=n)
    out_counts = np.maximum(counts, 1)
    starts = np.cumsum(out_counts) - out_counts
    first_item = np.cumsum(counts) - counts
    rank = np.arange(len(valid_lines)) - first_item[valid_lines]
    item_out = starts[valid_lines] + rank
    line_idx = np.repeat(np.arange(n), out_counts)
    return line_idx, item_out, rank


def _filled(col: pd.Series) -> np.ndarray:
    """Return True where a wide diagnosis cell holds a code (not blank or whitespace)."""
    arr = _arrow(col)
    filled = pc.and_(pc.greater(pc.binary_length(arr), 0), pc.invert(pc.utf8_is_space(arr)))
    if arr.null_count:
        filled = pc.fill_null(filled, False)
    return np.asarray(filled, dtype=bool)


@dataclass
class _Layout:
    """Where each output row comes from: its line and its wide column (k = none)."""

    line_idx: np.ndarray
    col: np.ndarray
    #: rows of lines without any diagnosis
    empty: np.ndarray


def _layout(filled: list[np.ndarray], n: int) -> _Layout:
    """Lay out wide diagnosis columns: one row per line x filled position, in order."""
    k = len(filled)
    # narrow integers where they stay internal: these arrays are as long as the output
    small = np.int8 if k < 127 else np.int64
    counts: np.ndarray = np.zeros(n, dtype=small)
    for f in filled:
        np.add(counts, f, out=counts)
    out_counts = np.maximum(counts, 1)
    starts = np.cumsum(out_counts, dtype=np.int64)
    total = int(starts[-1]) if n else 0
    starts -= out_counts
    # intp rows: np.take would convert narrower indices on every call
    line_idx = np.repeat(np.arange(n, dtype=np.intp), out_counts)
    # gaps (Dx1 and Dx3 filled, Dx2 blank) are rare: without any, a row's column is its rank
    # within its line, a running count that drops back to 0 where each line starts
    gaps = any(np.any(filled[j] & ~filled[j - 1]) for j in range(1, k))
    if not gaps:
        step = np.ones(total, dtype=small)
        if total:
            step[starts[1:]] = 1 - out_counts[:-1]
            step[0] = 0
        col = np.cumsum(step, dtype=small)
    else:
        col = np.empty(total, dtype=small)
        slot = starts.copy()
        for j, f in enumerate(filled):
            rows = np.flatnonzero(f)
            col[slot[rows]] = j
            slot[rows] += 1
    # a line without diagnoses keeps one row: column k stands for "none"
    empty = starts[counts == 0]
    col[empty] = k
    return _Layout(line_idx, col, empty)


def _wide_values(source: list[pa.ChunkedArray], layout: _Layout) -> pa.ChunkedArray:
    """Take every row's diagnosis cell from the wide columns' chunks in one take."""
    n, k = len(source[0]), len(source)
    # the columns' chunks one after another, then one null for the rows without any
    chunks = [c for arr in source for c in arr.chunks]
    chunks.append(pa.nulls(1, pa.large_string()))
    flat = layout.col.astype(layout.line_idx.dtype)
    flat *= n
    flat += layout.line_idx
    flat[layout.empty] = k * n
    return pa.chunked_array(chunks, type=pa.large_string()).take(pa.array(flat))


def _wide_columns(headers: list[str], col: np.ndarray) -> pa.Array:
    """Each row's wide column header (null for a line without diagnoses)."""
    return pa.array([*headers, None], pa.large_string()).take(pa.array(col))


def _dx_list(raw: RawTable, cmap: ColumnMap) -> tuple[np.ndarray, Any, np.ndarray, Any]:
    """Return (line index, dx_value, dx_position (0 = none), dx_column) per output row."""
    n = len(raw)
    assert cmap.dx_list is not None
    headers = [cmap.headers[cmap.dx_list]]
    cell = V.arrow_array(raw.columns[cmap.dx_list])
    lists = pc.split_pattern_regex(cell, DX_LIST_SEPARATORS)
    values = pc.list_flatten(lists)
    parents = np.asarray(pc.list_parent_indices(lists), dtype=np.int64)
    keep = np.asarray(pc.fill_null(pc.not_equal(values, ""), False), dtype=bool)
    item_line = parents[keep]
    item_src = np.flatnonzero(keep)
    line_idx, item_out, rank = _expand(item_line, n)
    total = len(line_idx)
    take = np.full(total, -1, dtype=np.int64)
    take[item_out] = item_src
    pos = np.zeros(total, dtype=np.int64)
    pos[item_out] = rank + 1
    colcode = np.full(total, -1, dtype=np.int64)
    colcode[item_out] = 0
    dx_value = values.take(pa.array(take, mask=take < 0))
    dx_column = pa.array(headers, pa.large_string()).take(pa.array(colcode, mask=colcode < 0))
    return line_idx, dx_value, pos, dx_column


def _spread(name: str, field: _Field, line_idx: np.ndarray | None) -> pd.Series:
    """Give every output row the value of its line (``line_idx`` None: one row per line)."""
    if isinstance(field, _Coded):
        values = field.values
        # np.take, not fancy indexing: about twice as fast on these long integer arrays
        if isinstance(values, pa.Array):
            codes = field.codes if line_idx is None else np.take(field.codes, line_idx)
            out = pd.Series(pd.arrays.ArrowStringArray(values.take(pa.array(codes))), copy=False)
        elif isinstance(values, np.ndarray):
            out = pd.Series(_take(np.take(values, field.codes), line_idx), copy=False)
        else:
            data = np.take(values.to_numpy(dtype=np.int64, na_value=0), field.codes)
            mask = np.take(values.isna(), field.codes)
            out = pd.Series(
                pd.arrays.IntegerArray(_take(data, line_idx), _take(mask, line_idx)), copy=False
            )
    elif isinstance(field, pa.ChunkedArray):
        # a take across many chunks is about three times slower than one over a copy
        taken = field if line_idx is None else field.combine_chunks().take(pa.array(line_idx))
        out = pd.Series(pd.arrays.ArrowStringArray(taken), copy=False)
    else:
        out = field if line_idx is None else pd.Series(field.array.take(line_idx), copy=False)
    if DTYPES[name] == "category":
        out = out.astype("category")
    return out


def _take(values: np.ndarray, line_idx: np.ndarray | None) -> np.ndarray:
    return values if line_idx is None else np.take(values, line_idx)


class _Runner:
    """Run tasks on a few threads (arrow kernels release the GIL), or inline with one."""

    def __init__(self, pool: ThreadPoolExecutor | None) -> None:
        self.pool = pool

    def submit(self, fn: Callable[..., Any], *args: object) -> Future[Any]:
        if self.pool is not None:
            return self.pool.submit(fn, *args)
        done: Future[Any] = Future()
        done.set_result(fn(*args))
        return done


def build(
    raw: RawTable,
    *,
    source_file: str,
    source_sheet: str | None,
    columns: Mapping[str, str | Sequence[str]] | None = None,
    cmap: ColumnMap | None = None,
    line_id_start: int = 0,
) -> Built:
    """Turn a raw table into the canonical frame; the caller checks ``cmap.missing()`` first."""
    if cmap is None:
        cmap = ColumnMap.from_headers(raw.headers, columns)
    raw = drop_blank_rows(raw)
    n = len(raw)
    pool = ThreadPoolExecutor(max_workers=_THREADS) if _THREADS > 1 else None
    try:
        run = _Runner(pool)
        # the wide diagnosis cells are tested first: the layout waits on them, not on the
        # line fields, and is computed here while the pool parses those
        dx_jobs = [run.submit(_filled, raw.columns[i]) for i, _ in cmap.dx]
        line_jobs = _line_frame(raw, cmap, run)
        if cmap.dx:
            layout = _layout([j.result() for j in dx_jobs], n)
            line_idx, col = layout.line_idx, layout.col
            source = [_arrow(raw.columns[i]) for i, _ in cmap.dx]
            value_job = run.submit(_wide_values, source, layout)
            headers = [cmap.headers[i] for i, _ in cmap.dx]
            column_job = run.submit(_wide_columns, headers, col)
            positions = np.array([pos for _, pos in cmap.dx] + [0], dtype=np.int64)
            pos = np.take(positions, col)
        else:
            line_idx, dx_value, pos, dx_column = _dx_list(raw, cmap)
            value_job, column_job = run.submit(lambda: dx_value), run.submit(lambda: dx_column)
        total = len(line_idx)
        # no line has more than one row: the line-level columns are the output columns
        rows = None if total == n else line_idx
        spreads = {}
        for names, job in line_jobs.items():
            for name, field in zip(names, job.result(), strict=True):
                spreads[name] = run.submit(_spread, name, field, rows)
        del line_jobs
        # the input columns are parsed: free them now (the caller may still hold the table)
        raw.columns.clear()
        data = _provenance(raw, line_idx, line_id_start, source_file, source_sheet)
        data["dx_position"] = pd.Series(pd.arrays.IntegerArray(pos, pos == 0), copy=False)
        data["dx_value"] = _arrow_strings(value_job.result())
        data["dx_column"] = _arrow_strings(column_job.result())
        if DTYPES["dx_column"] == "category":
            data["dx_column"] = data["dx_column"].astype("category")
        null_strings = _strings(total)
        for name in COLUMNS:
            if name in spreads:
                data[name] = spreads[name].result()
            elif name not in data and DTYPES[name] == "string":
                # arrow arrays are immutable: all-null string columns share one array
                data[name] = pd.Series(null_strings.array, copy=False)
            elif name not in data:
                data[name] = _null_column(DTYPES[name], total)
    finally:
        if pool is not None:
            pool.shutdown()
    frame = pd.DataFrame({name: data.pop(name) for name in COLUMNS}, copy=False)
    if any(str(frame[c].dtype) != DTYPES[c] for c in COLUMNS):
        frame = conform(frame)
    return Built(frame=frame, rows_read=n, column_map=cmap)


def _provenance(
    raw: RawTable,
    line_idx: np.ndarray,
    line_id_start: int,
    source_file: str,
    source_sheet: str | None,
) -> dict[str, pd.Series]:
    """Source file, sheet, row and line id of every output row."""
    total = len(line_idx)
    sheet_codes = np.full(total, 0 if source_sheet is not None else -1, dtype=np.int8)
    return {
        "source_file": pd.Series(
            pd.Categorical.from_codes(np.zeros(total, dtype=np.int8), pd.Index([source_file]))
        ),
        "source_sheet": pd.Series(
            pd.Categorical.from_codes(
                sheet_codes, pd.Index([source_sheet] if source_sheet is not None else [])
            )
        ),
        "source_row": pd.Series(
            np.take(np.asarray(raw.source_row, dtype=np.int64), line_idx), copy=False
        ),
        "line_id": pd.Series(np.add(line_idx, line_id_start, dtype=np.int64), copy=False),
    }


def _arrow_strings(arr: pa.Array) -> pd.Series:
    return pd.Series(pd.arrays.ArrowStringArray(arr.cast(pa.large_string())), copy=False)
