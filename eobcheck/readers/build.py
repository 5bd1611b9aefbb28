"""Raw table (headers + string columns) -> canonical frame, shared by every reader.

A reader only has to deliver the header texts, one string Series per input column and the
spreadsheet row number of each data row. Everything else happens here, vectorized: blank rows
are dropped, values parsed once per line, and the wide (Dx1..DxN) or list-in-a-cell diagnosis
columns are turned into one row per line x diagnosis position with numpy index arithmetic.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

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
    blank = np.flatnonzero(~_nonblank(raw.columns[0]))
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


def _carc(
    n: int, carc: pd.Series | None, group: pd.Series | None, reason: pd.Series | None
) -> pd.Series:
    """Adjustment codes from a combined column, separate group/reason columns, or both."""
    pair = None
    if reason is not None:
        pair = V.parse_carc_pair(group if group is not None else _strings(n), reason)
    if carc is None:
        assert pair is not None
        return pair
    combined = V.parse_carc(carc)
    # both shapes present: the combined column wins where it has codes
    return combined if pair is None else combined.fillna(pair)


def _line(n: int, given: pd.Series | None, claims: pd.Series | None) -> pd.Series:
    """Line numbers: given, else 1.. in input order within each claim."""
    parsed = None if given is None else V.parse_int(given)
    if parsed is not None and not parsed.isna().any():
        return parsed
    within = _count_within(None if claims is None else V.blank_to_na(claims), n)
    counted = pd.Series(pd.arrays.IntegerArray(within, np.zeros(n, bool)), copy=False)
    return counted if parsed is None else parsed.fillna(counted)


def _line_frame(raw: RawTable, cmap: ColumnMap) -> dict[str, pd.Series]:
    """Parse every non-diagnosis field once per input line (columns in parallel)."""
    n = len(raw)
    f = cmap.fields

    def col(name: str) -> pd.Series | None:
        i = f.get(name)
        return None if i is None else raw.columns[i]

    def cat(name: str) -> bool:
        # parsers build categoricals directly for fields the model types as categories
        return DTYPES[name] == "category"

    tasks: dict[str, tuple[Callable[..., pd.Series], tuple[object, ...]]] = {}
    for name in ("claim_id", "patient_id", "payer", "provider", "dx_pointers"):
        c = col(name)
        if c is not None:
            tasks[name] = (partial(V.blank_to_na, categorical=cat(name)), (c,))
    dos = col("date_of_service")
    if dos is not None:
        tasks["date_raw"] = (partial(V.blank_to_na, categorical=cat("date_raw")), (dos,))
        tasks["date_of_service"] = (V.parse_dates, (dos,))
    c = col("birth_date")
    if c is not None:
        tasks["birth_date"] = (partial(V.parse_dates, past_only=True), (c,))
    simple: dict[str, Callable[..., pd.Series]] = {
        "age": V.parse_int,
        "sex": partial(V.parse_sex, categorical=cat("sex")),
        "billed": V.parse_amounts,
        "allowed": V.parse_amounts,
        "paid": V.parse_amounts,
        "procedure": partial(V.parse_procedure, categorical=cat("procedure")),
        "rarc": partial(V.parse_code_list, categorical=cat("rarc")),
    }
    for name, parse in simple.items():
        c = col(name)
        if c is not None:
            tasks[name] = (parse, (c,))
    if cmap.modifiers:
        mods = [raw.columns[i] for i in cmap.modifiers]
        tasks["modifiers"] = (partial(V.parse_modifiers, categorical=cat("modifiers")), (mods,))
    carc, group, reason = col("carc"), col("carc_group"), col("carc_reason")
    if carc is not None or reason is not None:
        tasks["carc"] = (_carc, (n, carc, group, reason))
    tasks["line"] = (_line, (n, col("line"), col("claim_id")))
    # arrow kernels release the GIL, so independent columns parse side by side
    if _THREADS == 1:
        return {name: fn(*args) for name, (fn, args) in tasks.items()}
    with ThreadPoolExecutor(max_workers=_THREADS) as pool:
        futures = {name: pool.submit(fn, *args) for name, (fn, args) in tasks.items()}
        return {name: fut.result() for name, fut in futures.items()}


def _count_within(claims: pd.Series | None, n: int) -> np.ndarray:
    """Return 1, 2, ... in input order within each claim id (null ids form one group)."""
    if claims is None:
        return np.arange(1, n + 1, dtype=np.int64)
    codes, uniques = V.dictionary(claims)
    if len(codes) == 0:
        return codes
    change = np.flatnonzero(codes[1:] != codes[:-1]) + 1
    starts = np.concatenate(([0], change))
    groups = len(uniques) + int(codes.min() < 0)
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


def _as_arrow(col: pd.Series) -> pa.Array:
    return V.arrow_array(col)


def _diagnoses(raw: RawTable, cmap: ColumnMap) -> tuple[np.ndarray, Any, np.ndarray, Any]:
    """Return (line index, dx_value, dx_position (0 = none), dx_column) per output row."""
    n = len(raw)
    if cmap.dx:
        k = len(cmap.dx)
        arrays = [_as_arrow(raw.columns[i]) for i, _ in cmap.dx]
        # column 0 marks lines without any diagnosis, so that the row-major nonzero() of
        # the matrix lists every output row in order: one row per line x position present,
        # or the single empty row of a line with none
        valid = np.empty((n, k + 1), dtype=bool)
        for j, (i, _) in enumerate(cmap.dx, start=1):
            valid[:, j] = _nonblank(raw.columns[i])
        valid[:, 0] = ~valid[:, 1:].any(axis=1)
        line_idx, col = np.nonzero(valid)
        values = pa.concat_arrays(arrays) if k > 1 else arrays[0]
        # index into the position-major concatenation; -1 (null) for the empty rows
        take = np.where(col > 0, (col - 1) * n + line_idx, -1)
        positions = np.array([0] + [pos for _, pos in cmap.dx], dtype=np.int64)
        pos = positions[col]
        headers = [cmap.headers[i] for i, _ in cmap.dx]
        dx_value = values.take(pa.array(take, mask=col == 0))
        dx_column = pa.array(headers, pa.large_string()).take(pa.array(col - 1, mask=col == 0))
        return line_idx, dx_value, pos, dx_column
    assert cmap.dx_list is not None
    headers = [cmap.headers[cmap.dx_list]]
    cell = _as_arrow(raw.columns[cmap.dx_list])
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
    lines = _line_frame(raw, cmap)
    line_idx, dx_value, pos, dx_column = _diagnoses(raw, cmap)
    total = len(line_idx)
    same = total == n  # no line has more than one diagnosis: no take needed

    def spread(name: str, series: pd.Series) -> pd.Series:
        if DTYPES[name] == "category" and not isinstance(series.dtype, pd.CategoricalDtype):
            codes, uniques = V.dictionary(series)
            index = pd.Index(pd.arrays.ArrowStringArray(uniques.cast(pa.large_string())))
            series = pd.Series(pd.Categorical.from_codes(codes, index), copy=False)
        if isinstance(series.dtype, pd.CategoricalDtype):
            # a categorical spreads by its integer codes: no string is copied
            codes = series.cat.codes.to_numpy()
            return pd.Series(
                pd.Categorical.from_codes(
                    codes if same else codes[line_idx], series.cat.categories
                ),
                copy=False,
            )
        return series if same else pd.Series(series.array.take(line_idx), copy=False)

    sheet_codes = np.full(total, 0 if source_sheet is not None else -1, dtype=np.int8)
    data: dict[str, pd.Series] = {
        "source_file": pd.Series(
            pd.Categorical.from_codes(np.zeros(total, dtype=np.int8), pd.Index([source_file]))
        ),
        "source_sheet": pd.Series(
            pd.Categorical.from_codes(
                sheet_codes, pd.Index([source_sheet] if source_sheet is not None else [])
            )
        ),
        "source_row": pd.Series(np.asarray(raw.source_row, dtype=np.int64)[line_idx], copy=False),
        "dx_column": _arrow_strings(dx_column)
        if DTYPES["dx_column"] != "category"
        else pd.Series(pd.Categorical(dx_column.to_pandas())),
        "line_id": pd.Series(line_id_start + line_idx.astype(np.int64), copy=False),
        "dx_position": pd.Series(pd.arrays.IntegerArray(pos, pos == 0), copy=False),
        "dx_value": _arrow_strings(dx_value),
    }
    # the input columns are parsed: free them now (the caller may still hold the table)
    raw.columns.clear()
    null_strings = _strings(total)
    # each take copies one column; arrow releases the GIL, so columns spread in parallel
    with ThreadPoolExecutor(max_workers=_THREADS) as pool:
        futures = {
            name: (pool.submit if _THREADS > 1 else _now)(spread, name, lines.pop(name))
            for name in COLUMNS
            if name not in data and name in lines
        }
        for name in COLUMNS:
            if name in futures:
                data[name] = futures[name].result()
            elif name not in data and DTYPES[name] == "string":
                # arrow arrays are immutable: all-null string columns share one array
                data[name] = pd.Series(null_strings.array, copy=False)
            elif name not in data:
                data[name] = _null_column(DTYPES[name], total)
    frame = pd.DataFrame({name: data.pop(name) for name in COLUMNS}, copy=False)
    if any(str(frame[c].dtype) != DTYPES[c] for c in COLUMNS):
        frame = conform(frame)
    return Built(frame=frame, rows_read=n, column_map=cmap)


def _now(fn: Callable[..., pd.Series], *args: object) -> Future[pd.Series]:
    """Run ``fn`` at once and wrap its result like a submitted task."""
    done: Future[pd.Series] = Future()
    done.set_result(fn(*args))
    return done


def _arrow_strings(arr: pa.Array) -> pd.Series:
    return pd.Series(pd.arrays.ArrowStringArray(arr.cast(pa.large_string())))
