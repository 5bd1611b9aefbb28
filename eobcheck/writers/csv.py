"""CSV writer: one row per finding, flat columns, safe to open in a spreadsheet.

Files are UTF-8 with a byte-order mark, because Excel reads a BOM-less CSV in the local ANSI
code page and garbles every non-ASCII title; other CSV readers skip the BOM. Any text cell a
spreadsheet would take for a formula is prefixed with a single quote. Text cells are quoted,
numbers and empty (unknown) cells are not; rows end with CRLF (RFC 4180).
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from eobcheck.report import Report
from eobcheck.writers.tables import flat_findings

BOM: Final = b"\xef\xbb\xbf"
AMOUNT_COLUMNS: Final = ("billed", "denied")


def money_text(values: pd.Series) -> pa.Array:
    """Return amounts as text with exactly two decimals ("125.00", "-0.50"); NaN -> null."""
    amounts = values.to_numpy(dtype="float64", na_value=np.nan)
    known = ~np.isnan(amounts)
    cents = np.rint(np.where(known, amounts, 0.0) * 100).astype(np.int64)
    digits = pc.utf8_lpad(pc.cast(pa.array(np.abs(cents)), pa.large_string()), 3, "0")
    text = pc.binary_join_element_wise(
        pa.array(np.where(cents < 0, "-", ""), type=pa.large_string()),
        pc.utf8_slice_codeunits(digits, 0, -2),
        pa.scalar(".", pa.large_string()),
        pc.utf8_slice_codeunits(digits, -2),
        pa.scalar("", pa.large_string()),
    )
    return pc.if_else(pa.array(known), text, pa.nulls(len(amounts), pa.large_string()))


def findings_table(report: Report) -> pa.Table:
    """Return the flat findings (formulas neutralized) as an Arrow table ready for CSV."""
    table = flat_findings(report.findings, safe=True)
    columns: dict[str, pa.Array] = {}
    for name in table.columns:
        col = table[name]
        if name in AMOUNT_COLUMNS:
            columns[name] = money_text(col)
        elif name == "date_of_service":
            stamps = pa.array(col.to_numpy(dtype="datetime64[ns]"), type=pa.timestamp("ns"))
            columns[name] = pc.cast(stamps, pa.date32())
        elif name in ("line", "dx_position", "row"):
            columns[name] = pa.array(col.astype("Int64"), type=pa.int64())
        else:
            columns[name] = pa.array(col.astype("string"), type=pa.large_string())
    return pa.table(columns)


def write_csv(report: Report, target: str | Path | IO[bytes], *, bom: bool = True) -> None:
    """Write the findings as CSV to a path or a binary stream (UTF-8, BOM unless bom=False)."""
    table = findings_table(report)
    options = pacsv.WriteOptions(quoting_style="needed", eol="\r\n")
    if isinstance(target, str | Path):
        with open(target, "wb") as handle:
            if bom:
                handle.write(BOM)
            pacsv.write_csv(table, handle, options)
    else:
        if bom:
            target.write(BOM)
        pacsv.write_csv(table, target, options)
