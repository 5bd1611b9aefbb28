"""Tables shared by the writers: flat findings, the crosswalk, and formula neutralizing."""

from __future__ import annotations

from typing import Any, Final, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from eobcheck.report import suggestion_pairs

#: Columns of the flat findings table (CSV and the XLSX Findings sheet), in order.
FLAT_COLUMNS: Final = (
    "code",
    "name",
    "severity",
    "message",
    "claim_id",
    "line",
    "dx_position",
    "value",
    "normalized",
    "date_of_service",
    "suggestions",
    "suggested_codes",
    "fix_applicability",
    "fix_replacement",
    "file",
    "sheet",
    "row",
    "column",
    "procedure",
    "billed",
    "denied",
    "carc",
    "rarc",
)

#: Text columns of the flat table that pass through :func:`neutralize`.
TEXT_COLUMNS: Final = (
    "code",
    "name",
    "severity",
    "message",
    "claim_id",
    "value",
    "normalized",
    "suggestions",
    "suggested_codes",
    "fix_applicability",
    "fix_replacement",
    "file",
    "sheet",
    "column",
    "procedure",
    "carc",
    "rarc",
)

#: Columns of the crosswalk table, in order.
CROSSWALK_COLUMNS: Final = (
    "problem_code",
    "code",
    "rule",
    "severity",
    "suggested_codes",
    "suggestions",
    "findings",
    "lines",
    "claims",
    "billed",
    "denied",
)

# A spreadsheet treats a cell starting with one of these as a formula (tab, carriage return
# and line feed too, in some importers).
_FORMULA_FIRST: Final = pa.array([c.encode() for c in "=+-@\t\r\n"], type=pa.large_binary())


def concat(*parts: str | pa.Array) -> pa.Array:
    """Concatenate Arrow string arrays and literal strings element-wise (null if any is)."""
    args = [pa.scalar(p, pa.large_string()) if isinstance(p, str) else p for p in parts]
    return pc.binary_join_element_wise(*args, pa.scalar("", pa.large_string()))


def joined_bytes(rows: pa.Array) -> memoryview:
    """Return the bytes of all strings of an Arrow string array, back to back, uncopied."""
    data = rows.buffers()[2]
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int64)
    start = int(offsets[rows.offset])
    end = int(offsets[rows.offset + len(rows)])
    return memoryview(data)[start:end] if data is not None else memoryview(b"")


def as_arrow(values: pd.Series) -> pa.Array:
    """Return a text column as an Arrow large_string array (nulls kept)."""
    return pa.array(values.astype("string"), type=pa.large_string())


def as_pandas(values: pa.Array) -> pd.Series:
    """Return an Arrow string array as a pandas string Series without copying."""
    return pd.Series(pd.arrays.ArrowStringArray(values))


def neutralize_arrow(values: pa.Array) -> pa.Array:
    """Prefix a single quote to every text that a spreadsheet would read as a formula."""
    first = pc.binary_slice(values.cast(pa.large_binary()), 0, 1)
    risky = pc.fill_null(pc.is_in(first, value_set=_FORMULA_FIRST), False)
    if not pc.any(risky).as_py():
        return values
    quoted = pc.binary_join_element_wise(
        pa.scalar("'", pa.large_string()), values, pa.scalar("", pa.large_string())
    )
    return pc.if_else(risky, quoted, values)


def neutralize(values: pd.Series) -> pd.Series:
    """Prefix a single quote to every text that a spreadsheet would read as a formula."""
    out = as_pandas(neutralize_arrow(as_arrow(values)))
    out.index = values.index
    return out


def factorize_suggestions(suggestions: pd.Series) -> tuple[np.ndarray, list[list[tuple[str, str]]]]:
    """Return ``(indices, uniques)``: per row an index into ``uniques``, each a list of pairs.

    Suggestion tuples repeat heavily (the engine shares one tuple per distinct problem and
    date range), so rows are grouped by object identity and each distinct tuple is converted
    once. Equal tuples held by different objects convert to equal lists.
    """
    cells = suggestions.to_numpy(dtype=object)
    ids = np.fromiter(map(id, cells), dtype=np.uint64, count=len(cells))
    indices, _ = pd.factorize(ids)
    # factorize numbers codes in order of first appearance, so these rows are in code order.
    first = pd.Series(indices).drop_duplicates().index.to_numpy()
    uniques = [suggestion_pairs(cells[i]) for i in first]
    return indices.astype(np.int64), uniques


def suggestion_texts(suggestions: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Return per row the suggested codes ("M54.50 M54.51") and "code title; ..." text."""
    indices, uniques = factorize_suggestions(suggestions)
    codes = [" ".join(code for code, _ in pairs) for pairs in uniques]
    texts = ["; ".join(f"{code} {title}".rstrip() for code, title in pairs) for pairs in uniques]
    take = pa.array(indices, type=pa.int64())
    out = []
    for distinct in (codes, texts):
        column = as_pandas(pc.take(pa.array(distinct, type=pa.large_string()), take))
        column.index = suggestions.index
        out.append(column)
    return out[0], out[1]


def flat_findings(findings: pd.DataFrame, *, safe: bool = True) -> pd.DataFrame:
    """Return the findings as one flat row each (FLAT_COLUMNS); ``safe`` neutralizes formulas."""
    codes, texts = suggestion_texts(findings["suggestions"])
    out: dict[str, pd.Series] = {}
    for name in FLAT_COLUMNS:
        if name == "suggestions":
            col = texts
        elif name == "suggested_codes":
            col = codes
        else:
            col = findings[name]
        if safe and name in TEXT_COLUMNS:
            col = neutralize(col)
        out[name] = col
    return pd.DataFrame(out, index=findings.index)


def problem_codes(findings: pd.DataFrame) -> pd.Series:
    """Return the problem code of each finding: normalized, else the stripped upper value."""
    written = findings["value"].astype("string").str.strip().str.upper()
    written = written.mask(written == "", pd.NA)
    return findings["normalized"].astype("string").fillna(written)


def codes_of(values: pd.Series | np.ndarray) -> tuple[np.ndarray, int]:
    """Return integer codes in order of first appearance (missing -> -1) and their count."""
    codes, uniques = pd.factorize(values)
    return codes.astype(np.int64), len(uniques)


def combine_codes(*codes: tuple[np.ndarray, int]) -> tuple[np.ndarray, int]:
    """Return one code per distinct combination of several code arrays (see codes_of)."""
    key = np.zeros(len(codes[0][0]), dtype=np.int64)
    count = 1
    for column, n in codes:
        # Re-factorizing after each step keeps the key below the row count: no overflow.
        key, count = codes_of(key * (n + 1) + (column + 1))
    return key, count


def first_rows(codes: np.ndarray) -> np.ndarray:
    """Return, for codes numbered in order of first appearance, the first row of each."""
    first: np.ndarray = np.flatnonzero(~pd.Series(codes).duplicated().to_numpy())
    return first


def count_distinct(key: np.ndarray, other: np.ndarray, size: int) -> np.ndarray:
    """Per key, the number of distinct non-missing ``other`` codes."""
    use = other >= 0
    pair, _ = combine_codes((key[use], size), (other[use], int(other.max(initial=-1)) + 1))
    once = first_rows(pair)
    return np.bincount(key[use][once], minlength=size)


def crosswalk(findings: pd.DataFrame) -> pd.DataFrame:
    """Return one row per problem code x rule x suggestion set, sorted by lines affected.

    Amounts are summed over distinct service lines, so a line with two findings in the same
    group counts once; ``billed``/``denied`` are NaN when no line in the group has an amount.
    Grouping runs on integer codes, not strings, so it stays fast on large reports.
    """
    problem = problem_codes(findings)
    keep = problem.notna().to_numpy()
    if not keep.any():
        return pd.DataFrame(
            {
                name: pd.Series(
                    dtype="int64"
                    if name in ("findings", "lines", "claims")
                    else "float64"
                    if name in ("billed", "denied")
                    else "string"
                )
                for name in CROSSWALK_COLUMNS
            }
        )
    f = findings[keep]
    problem = problem[keep]
    sugg_index, sugg_uniques = factorize_suggestions(f["suggestions"])
    key, size = combine_codes(
        codes_of(problem),
        codes_of(f["code"]),
        codes_of(f["name"]),
        (sugg_index, len(sugg_uniques)),
    )
    first = first_rows(key)
    line_key, _ = codes_of(f["line_id"])
    per_line, _ = combine_codes((key, size), (line_key, int(line_key.max()) + 1))
    line_rows = first_rows(per_line)
    line_groups = key[line_rows]
    sums = {}
    for name in ("billed", "denied"):
        amounts = f[name].to_numpy(dtype="float64", na_value=np.nan)[line_rows]
        known = ~np.isnan(amounts)
        total = np.bincount(line_groups, weights=np.where(known, amounts, 0.0), minlength=size)
        any_known = np.bincount(line_groups, weights=known, minlength=size) > 0
        sums[name] = np.where(any_known, total, np.nan)
    claim_key, _ = codes_of(f["claim_id"])
    pairs = sugg_uniques
    table = pd.DataFrame(
        {
            "problem_code": problem.iloc[first].to_numpy(),
            "code": f["code"].iloc[first].to_numpy(),
            "rule": f["name"].iloc[first].to_numpy(),
            "severity": f["severity"].iloc[first].to_numpy(),
            "suggested_codes": [
                " ".join(c for c, _ in pairs[i]) for i in sugg_index[first].tolist()
            ],
            "suggestions": [
                "; ".join(f"{c} {t}".rstrip() for c, t in pairs[i])
                for i in sugg_index[first].tolist()
            ],
            "findings": np.bincount(key, minlength=size),
            "lines": np.bincount(line_groups, minlength=size),
            "claims": count_distinct(key, claim_key, size),
            "billed": sums["billed"],
            "denied": sums["denied"],
        }
    )
    table = table.astype(
        {name: "string" for name in ("problem_code", "code", "rule", "severity")}
        | {"suggested_codes": "string", "suggestions": "string"}
    )
    table = table.sort_values(
        ["lines", "findings", "problem_code", "code"],
        ascending=[False, False, True, True],
        kind="stable",
    )
    return table[list(CROSSWALK_COLUMNS)].reset_index(drop=True)


def none_if_missing(values: pd.Series) -> np.ndarray:
    """Return an object array of Python values with every missing value as None."""
    # pandas-stubs do not accept None as na_value, which pandas itself documents.
    out: np.ndarray = cast(Any, values).to_numpy(dtype=object, na_value=None)
    return out
