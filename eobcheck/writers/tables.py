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


def crosswalk(findings: pd.DataFrame) -> pd.DataFrame:
    """Return one row per problem code x rule x suggestion set, sorted by lines affected.

    Amounts are summed over distinct service lines, so a line with two findings in the same
    group counts once; ``billed``/``denied`` are NaN when no line in the group has an amount.
    """
    codes, texts = suggestion_texts(findings["suggestions"])
    frame = pd.DataFrame(
        {
            "problem_code": problem_codes(findings),
            "code": findings["code"].astype("string"),
            "rule": findings["name"].astype("string"),
            "severity": findings["severity"].astype("string"),
            "suggested_codes": codes,
            "suggestions": texts,
            "line_id": findings["line_id"],
            "claim_id": findings["claim_id"],
            "billed": findings["billed"].astype("float64"),
            "denied": findings["denied"].astype("float64"),
        }
    )
    frame = frame[frame["problem_code"].notna()]
    if frame.empty:
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
    key = ["problem_code", "code", "rule", "suggested_codes"]
    counts = frame.groupby(key, sort=False, observed=True).agg(
        severity=("severity", "first"),
        suggestions=("suggestions", "first"),
        findings=("line_id", "size"),
        claims=("claim_id", "nunique"),
    )
    per_line = frame.drop_duplicates(subset=[*key, "line_id"])
    grouped = per_line.groupby(key, sort=False, observed=True)
    amounts = grouped[["billed", "denied"]].sum(min_count=1)
    amounts["lines"] = grouped.size()
    table = counts.join(amounts).reset_index()
    table = table.sort_values(
        ["lines", "findings", "problem_code", "code"],
        ascending=[False, False, True, True],
        kind="stable",
    )
    table = table[list(CROSSWALK_COLUMNS)].reset_index(drop=True)
    return table.astype({"findings": "int64", "lines": "int64", "claims": "int64"})


def none_if_missing(values: pd.Series) -> np.ndarray:
    """Return an object array of Python values with every missing value as None."""
    # pandas-stubs do not accept None as na_value, which pandas itself documents.
    out: np.ndarray = cast(Any, values).to_numpy(dtype=object, na_value=None)
    return out
