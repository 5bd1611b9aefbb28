"""The canonical frame: the one shape every reader produces and every rule reads.

One row per service line x diagnosis position. A service line with no diagnosis at all keeps
exactly one row whose ``dx_position`` and ``dx_value`` are null, so nothing is lost and the
``missing-diagnosis`` rule can see it.

Columns (name -> dtype, meaning):

Provenance
    source_file     category   path of the input as given by the user
    source_sheet    category   XLSX sheet name; null for CSV and other formats
    source_row      int64      1-based row number as a spreadsheet shows it (CSV: physical line)
    dx_column       string     header of the column the diagnosis came from, as written
    line_id         int64      0-based id of the service line, unique across the frame;
                               all positions of one input row share it
Claim and line
    claim_id        string     claim number as written (stripped); null when missing
    line            Int64      line number within the claim (given, or 1.. in input order)
    date_of_service datetime64[ns]  parsed date of service; NaT when unreadable or missing
    date_raw        string     the date of service as written (for messages)
    dx_position     Int64      1-based diagnosis position on the claim line; null if no diagnosis
    dx_value        string     the diagnosis code as written (not stripped); null if none
Optional (present always; null when the export has no such column)
    procedure       string     CPT/HCPCS code, upper case (never a description)
    modifiers       string     modifiers joined by a single space, e.g. "GP 59"
    dx_pointers     string     diagnosis pointers as written, e.g. "1,2"
    patient_id      string
    birth_date      datetime64[ns]
    age             Int64      age in years when the export gives an age and no birth date
    sex             string     "M", "F" or "U"
    billed          float64
    allowed         float64
    paid            float64
    carc            string     adjustment codes, normalized "GROUP-REASON" joined by a space,
                               e.g. "CO-45 PR-2"; a reason with no group keeps the bare reason
    rarc            string     remark codes joined by a space, e.g. "M81 N130"
    payer           string
    provider        string
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

PROVENANCE: Final = ("source_file", "source_sheet", "source_row", "dx_column", "line_id")
REQUIRED: Final = ("claim_id", "date_of_service")
CORE: Final = ("claim_id", "line", "date_of_service", "date_raw", "dx_position", "dx_value")
OPTIONAL: Final = (
    "procedure",
    "modifiers",
    "dx_pointers",
    "patient_id",
    "birth_date",
    "age",
    "sex",
    "billed",
    "allowed",
    "paid",
    "carc",
    "rarc",
    "payer",
    "provider",
)
COLUMNS: Final = PROVENANCE + CORE + OPTIONAL

DTYPES: Final[dict[str, str]] = {
    "source_file": "category",
    "source_sheet": "category",
    "source_row": "int64",
    "dx_column": "string",
    "line_id": "int64",
    "claim_id": "string",
    "line": "Int64",
    "date_of_service": "datetime64[ns]",
    "date_raw": "string",
    "dx_position": "Int64",
    "dx_value": "string",
    "procedure": "string",
    "modifiers": "string",
    "dx_pointers": "string",
    "patient_id": "string",
    "birth_date": "datetime64[ns]",
    "age": "Int64",
    "sex": "string",
    "billed": "float64",
    "allowed": "float64",
    "paid": "float64",
    "carc": "string",
    "rarc": "string",
    "payer": "string",
    "provider": "string",
}


def empty_frame() -> pd.DataFrame:
    """Return a canonical frame with no rows and every column typed."""
    return conform(pd.DataFrame({name: [] for name in COLUMNS}))


def conform(df: pd.DataFrame) -> pd.DataFrame:
    """Return ``df`` with every canonical column present, in order, with canonical dtypes.

    Missing optional columns are added as nulls; unknown columns are dropped. Vectorized.
    """
    n = len(df)
    out: dict[str, pd.Series] = {}
    for name in COLUMNS:
        dtype = DTYPES[name]
        if name in df.columns:
            col = df[name]
        elif name == "line_id":
            col = pd.Series(np.arange(n, dtype="int64"), index=df.index)
        elif name == "source_row":  # as if row 1 held the header
            col = pd.Series(np.arange(2, n + 2, dtype="int64"), index=df.index)
        elif dtype.startswith("datetime"):
            col = pd.Series(pd.NaT, index=df.index, dtype="datetime64[ns]")
        elif dtype == "float64":
            col = pd.Series(np.nan, index=df.index, dtype="float64")
        else:
            col = pd.Series(pd.NA, index=df.index, dtype="object")
        if dtype.startswith("datetime"):
            col = pd.to_datetime(col, errors="coerce").astype("datetime64[ns]")
        elif str(col.dtype) != dtype:
            col = col.astype(dtype)  # type: ignore[call-overload]
        out[name] = col
    return pd.DataFrame(out, index=df.index).reset_index(drop=True)
