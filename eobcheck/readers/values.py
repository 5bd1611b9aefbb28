"""Vectorized value parsing: dates, amounts, adjustment and remark codes, modifiers, sex.

Every parser takes a pandas Series of strings (any string dtype, nulls allowed) and returns a
Series of the canonical dtype with the same index. Exports repeat the same few values over and
over (dates, amounts, codes), so each parser factorizes its input, parses the distinct values
once and maps them back: per-value Python is then bounded by the number of distinct values.

The frame builder uses the two halves separately: :func:`encode` (arrow codes per line) and
:func:`distinct` (the same parsing, applied to the distinct values only).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

STRING: Final = pd.StringDtype("pyarrow")

#: Excel's day zero for serial dates (the 1900 leap-year bug makes 1899-12-30 right for
#: every serial from 61 = 1900-03-01 on, which covers every date a claim can carry).
EXCEL_EPOCH: Final = pd.Timestamp("1899-12-30")
#: serials outside this range are not dates of service or birth (1900-03-01 .. 2099-12-31)
EXCEL_SERIAL_RANGE: Final = (61, 73415)

_TIME_SUFFIX = (
    r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d*)?)?(?:\s*[AaPp][Mm])?(?:Z|[+-]\d{2}:?\d{2})?)?"
)
#: (pattern of the whole text, strptime format), tried in order on values not yet parsed
DATE_FORMATS: Final[tuple[tuple[str, str], ...]] = (
    (r"\d{4}-\d{1,2}-\d{1,2}", "%Y-%m-%d"),
    (r"\d{1,2}/\d{1,2}/\d{4}", "%m/%d/%Y"),
    (r"\d{1,2}/\d{1,2}/\d{2}", "%m/%d/%y"),
    (r"\d{8}", "%Y%m%d"),
    (r"\d{4}/\d{1,2}/\d{1,2}", "%Y/%m/%d"),
    (r"\d{1,2}-\d{1,2}-\d{4}", "%m-%d-%Y"),
    (r"\d{1,2}-\d{1,2}-\d{2}", "%m-%d-%y"),
    (r"\d{1,2}-[A-Za-z]{3}-\d{4}", "%d-%b-%Y"),
    (r"\d{1,2}-[A-Za-z]{3}-\d{2}", "%d-%b-%y"),
    (r"[A-Za-z]{3} \d{1,2} \d{4}", "%b %d %Y"),
)


def arrow_array(values: pd.Series) -> pa.Array:
    """Return the values as one contiguous arrow string array (chunks combined)."""
    arr = pa.array(values.astype(STRING))
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def dictionary(values: pd.Series) -> tuple[np.ndarray, pa.Array]:
    """Return (code per value, -1 for null; the distinct values as an arrow array)."""
    # one dictionary for the whole column: encoding chunk by chunk and unifying is far slower
    encoded = pc.dictionary_encode(arrow_array(values))
    return np.asarray(pc.fill_null(encoded.indices, -1), dtype=np.int64), encoded.dictionary


def encode(values: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """Return (int32 code per value, nulls coded as the count of distinct values; distinct values).

    The null code indexes the trailing null that :func:`distinct` appends to parsed values, so
    a code array maps to parsed values with a plain take and no mask. Chunks are not combined:
    arrow encodes a chunked array against one shared dictionary.
    """
    encoded = pc.dictionary_encode(values)
    if isinstance(encoded, pa.ChunkedArray):
        chunks = encoded.chunks
        if not chunks:
            return np.zeros(0, dtype=np.int32), pa.array([], values.type)
        uniques = chunks[-1].dictionary
        if any(len(c.dictionary) != len(uniques) for c in chunks):
            # not seen with arrow's hash kernel; one contiguous array is always one dictionary
            return encode(values.combine_chunks())
        indices: Any = pa.chunked_array([c.indices for c in chunks], type=chunks[0].indices.type)
    else:
        uniques, indices = encoded.dictionary, encoded.indices
    if indices.null_count:
        indices = pc.fill_null(indices, len(uniques))
    return np.asarray(indices, dtype=np.int32), uniques


def _codes(values: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """Return (code per value, -1 for null; distinct values as an object Series)."""
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        # arrow's hash kernel is several times faster than pandas' factorize on strings
        codes, uniques = dictionary(values)
        return codes, pd.Series(uniques.to_pylist(), dtype=object)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return codes, pd.Series(np.asarray(uniques, dtype=object), dtype=object)


def _by_unique(
    values: pd.Series,
    parse: Callable[[pd.Series], Any],
    dtype: Any,
    *,
    categorical: bool = False,
) -> pd.Series:
    """Apply ``parse`` to the distinct non-null values and broadcast the result back.

    With ``categorical`` the result is a categorical whose categories are the parsed values.
    """
    codes, uniques = _codes(values)
    parsed = pd.Series(parse(uniques), dtype=dtype)
    if categorical:
        # two spellings may parse to one value: categories must be unique
        pcodes, categories = pd.factorize(parsed, use_na_sentinel=True)
        remap = np.append(pcodes, -1)  # the null code -1 picks the trailing -1
        index: Any = pd.Index(categories)
        cat = pd.Categorical.from_codes(remap[codes], categories=index)
        return pd.Series(cat, index=values.index)
    if len(parsed) == 0:
        return pd.Series(pd.array([None] * len(values), dtype=dtype), index=values.index)
    taken = parsed.array.take(codes, allow_fill=True)
    return pd.Series(taken, index=values.index)


def _strip(u: pd.Series) -> pd.Series:
    s = u.astype(STRING).str.strip()
    return s.mask(s == "")


def blank_to_na(values: pd.Series, *, categorical: bool = False) -> pd.Series:
    """Return the values stripped, as canonical strings, with empty text as null."""
    if categorical:
        return _by_unique(values, _strip, STRING, categorical=True)
    return _strip(values)


def _parse_date_texts(texts: pd.Series, past_only: bool) -> pd.Series:
    t = texts.astype(str).str.strip().str.replace(f"{_TIME_SUFFIX}$", "", regex=True)
    t = t.str.replace(r"^([A-Za-z]{3}) (\d{1,2}), ", r"\1 \2 ", regex=True)
    out = pd.Series(pd.NaT, index=t.index, dtype="datetime64[ns]")
    for pattern, fmt in DATE_FORMATS:
        todo = out.isna() & t.str.fullmatch(pattern)
        if todo.any():
            parsed = pd.to_datetime(t[todo], format=fmt, errors="coerce")
            out[todo] = parsed.astype("datetime64[ns]")
    serial = out.isna() & t.str.fullmatch(r"\d{1,6}(?:\.\d+)?")
    if serial.any():
        n = pd.to_numeric(t[serial], errors="coerce")
        lo, hi = EXCEL_SERIAL_RANGE
        n = n.where((n >= lo) & (n <= hi))
        out[serial] = EXCEL_EPOCH + pd.to_timedelta(np.floor(n), unit="D")
    if past_only:
        # a two-digit year read as 20xx for a birth date in the future means 19xx
        future = out > pd.Timestamp(date.today())
        out[future] = out[future] - pd.DateOffset(years=100)
    return out


def parse_dates(values: pd.Series, *, past_only: bool = False) -> pd.Series:
    """Parse ISO, M/D/YYYY, M/D/YY, YYYYMMDD and Excel serial dates; unreadable -> NaT."""
    return _by_unique(
        values, lambda u: _parse_date_texts(u, past_only).to_numpy(), "datetime64[ns]"
    )


def _parse_amount_texts(texts: pd.Series) -> pd.Series:
    t = texts.astype(str).str.strip().str.upper()
    negative = t.str.contains(r"\(.*\)") | t.str.endswith("-") | t.str.endswith("CR")
    t = t.str.replace(r"[\s$,()]|CR$|-$", "", regex=True)
    n = pd.to_numeric(t, errors="coerce")
    return n.where(~negative, -n.abs())


def parse_amounts(values: pd.Series) -> pd.Series:
    """Parse "$1,234.50", "(12.00)", "12.00-", "-5"; blank or unreadable -> NaN."""
    if not (isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow"):
        return _by_unique(values, lambda u: _parse_amount_texts(u).to_numpy(), "float64")
    # amounts have many distinct values: parse the arrow dictionary with arrow kernels
    codes, uniques = dictionary(values)
    out = _amounts_of(uniques)[codes]  # code -1 (null) picks the trailing NaN
    return pd.Series(out, index=values.index)


def _amounts_of(uniques: pa.Array) -> np.ndarray:
    """Parse distinct amount texts with arrow kernels; a trailing NaN is appended."""
    d = pc.utf8_upper(pc.utf8_trim_whitespace(uniques))
    negative = pc.or_(
        pc.match_substring_regex(d, r"\(.*\)"),
        pc.match_substring_regex(d, r"(-|CR)$"),
    )
    digits = pc.replace_substring_regex(d, r"[\s$,()]|CR$|-$", "")
    ok = pc.match_substring_regex(digits, r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
    number = pc.cast(pc.if_else(ok, digits, pa.scalar(None, digits.type)), pa.float64())
    number = pc.if_else(negative, pc.negate(pc.abs(number)), number)
    return np.append(np.asarray(pc.fill_null(number, np.nan), dtype=np.float64), np.nan)


_GROUPS: Final = ("CO", "PR", "OA", "PI", "CR")
_CARC_RE: Final = re.compile(
    r"(?<![A-Z0-9])(?:(CO|PR|OA|PI|CR)\s*[-:/]?\s*)?([A-Z]?\d{1,3}|[A-Z]\d?)(?![A-Z0-9])"
)
_GROUP_ONLY_RE: Final = re.compile(r"(?<![A-Z0-9])(CO|PR|OA|PI|CR)(?![A-Z0-9])")


def _carc_tokens(text: str) -> list[tuple[str | None, str]]:
    return [(g or None, r) for g, r in _CARC_RE.findall(text.upper()) if r not in _GROUPS]


def normalize_carc_text(text: object) -> str | None:
    """Return adjustment codes as "CO-45 PR-2" from "CO-45, PR-2", "CO45", "CO 45" or "45"."""
    if not isinstance(text, str):
        return None
    tokens = [f"{g}-{r}" if g else r for g, r in _carc_tokens(text)]
    return " ".join(tokens) or None


def normalize_carc_pair(group: object, reason: object) -> str | None:
    """Combine separate group ("CO") and reason ("45, 16") texts into "CO-45 CO-16"."""
    groups = _GROUP_ONLY_RE.findall(group.upper()) if isinstance(group, str) else []
    reasons = [r for g, r in _carc_tokens(reason)] if isinstance(reason, str) else []
    if not reasons:
        return None
    if len(groups) == len(reasons):
        pairs = zip(groups, reasons, strict=True)
        return " ".join(f"{g}-{r}" for g, r in pairs)
    if len(groups) >= 1:
        return " ".join(f"{groups[0]}-{r}" for r in reasons)
    return " ".join(reasons)


def parse_carc(values: pd.Series, *, categorical: bool = False) -> pd.Series:
    """Normalize a column of adjustment codes to "GROUP-REASON" joined by a space."""
    return _by_unique(
        values, lambda u: [normalize_carc_text(v) for v in u], STRING, categorical=categorical
    )


def parse_carc_pair(
    groups: pd.Series, reasons: pd.Series, *, categorical: bool = False
) -> pd.Series:
    """Normalize separate group and reason columns to "GROUP-REASON" joined by a space."""
    g = groups.astype(STRING).fillna("")
    r = reasons.astype(STRING).fillna("")
    both = g + "\x1f" + r
    return _by_unique(
        both,
        lambda u: [normalize_carc_pair(*str(v).split("\x1f", 1)) for v in u],
        STRING,
        categorical=categorical,
    )


_LIST_SPLIT: Final = re.compile(r"[\s,;|/]+")


def _split_join(text: object) -> str | None:
    if not isinstance(text, str):
        return None
    parts = [p for p in _LIST_SPLIT.split(text.upper()) if p]
    return " ".join(parts) or None


def parse_code_list(values: pd.Series, *, categorical: bool = False) -> pd.Series:
    """Normalize a list of codes ("M81, N130", "GP;59") to upper case joined by a space."""
    return _by_unique(
        values, lambda u: [_split_join(v) for v in u], STRING, categorical=categorical
    )


def parse_modifiers(columns: list[pd.Series], *, categorical: bool = False) -> pd.Series:
    """Join one or several modifier columns ("GP,59" / "GP" + "59") into "GP 59"."""
    joined = columns[0].astype(STRING).fillna("")
    for col in columns[1:]:
        joined = joined + " " + col.astype(STRING).fillna("")
    return parse_code_list(joined, categorical=categorical)


_SEX: Final[dict[str, str]] = {
    "M": "M",
    "MALE": "M",
    "MAN": "M",
    "F": "F",
    "FEMALE": "F",
    "WOMAN": "F",
    "W": "F",
}


def _sex(u: pd.Series) -> pd.Series:
    s = _strip(u).str.upper()
    return s.map(_SEX).fillna("U").where(s.notna()).astype(STRING)


def parse_sex(values: pd.Series, *, categorical: bool = False) -> pd.Series:
    """Map "M"/"Male"/"F"/"female" to M/F; any other non-blank text to U; blank -> null."""
    return _by_unique(values, _sex, STRING, categorical=categorical)


# a code has at least one digit (97110, G0283, 0001F), which tells it from a word
_PROC_RE: Final = re.compile(r"^\s*((?=[A-Za-z]*\d)[A-Za-z0-9]{4,7})(?:[\s:\-]|$)")


def _procedure(text: object) -> str | None:
    # only the code: exports sometimes append a description, which must never be carried
    if not isinstance(text, str):
        return None
    m = _PROC_RE.match(text)
    return m.group(1).upper() if m else None


def parse_procedure(values: pd.Series, *, categorical: bool = False) -> pd.Series:
    """Return the CPT/HCPCS code in upper case (a trailing description is dropped)."""
    return _by_unique(values, lambda u: [_procedure(v) for v in u], STRING, categorical=categorical)


def parse_int(values: pd.Series) -> pd.Series:
    """Parse whole numbers ("3", "3.0", "45 y"); unreadable -> null (Int64)."""

    return _by_unique(values, _parse_int_texts, "Int64")


def _parse_int_texts(u: pd.Series) -> pd.Series:
    n = pd.to_numeric(u.astype(str).str.extract(r"^\s*(\d+(?:\.0*)?)", expand=False))
    return n.where(n.isna() | (n < 2**31)).round().astype("Int64")


def _strings_of(values: Any) -> pa.Array:
    """Return parsed texts (a list or a string Series) as a large_string array."""
    arr = pa.array(pd.Series(values, dtype=STRING).array)
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    return arr.cast(pa.large_string())


def _with_null(arr: pa.Array) -> pa.Array:
    return pa.concat_arrays([arr, pa.nulls(1, arr.type)])


def _ints_of(uniques: pd.Series) -> pd.arrays.IntegerArray:
    parsed = pd.Series(_parse_int_texts(uniques), dtype="Int64")
    data = np.append(parsed.to_numpy(dtype=np.int64, na_value=0), 0)
    return pd.arrays.IntegerArray(data, np.append(parsed.isna().to_numpy(), True))


def _dates_of(uniques: pd.Series, past_only: bool) -> np.ndarray:
    parsed = pd.Series(_parse_date_texts(uniques, past_only).to_numpy(), dtype="datetime64[ns]")
    return np.append(parsed.to_numpy(), np.datetime64("NaT", "ns"))


#: kind -> parser of distinct texts, for :func:`distinct`
_DISTINCT: Final[dict[str, Callable[[pa.Array], Any]]] = {
    "text": lambda u: _with_null(stripped(u)),
    "amounts": _amounts_of,
    "dates": lambda u: _dates_of(_objects(u), False),
    "birth_dates": lambda u: _dates_of(_objects(u), True),
    "int": lambda u: _ints_of(_objects(u)),
    "sex": lambda u: _with_null(_strings_of(_sex(_objects(u)))),
    "procedure": lambda u: _with_null(_strings_of([_procedure(v) for v in u.to_pylist()])),
    "code_list": lambda u: _with_null(_strings_of([_split_join(v) for v in u.to_pylist()])),
    "carc": lambda u: _with_null(_strings_of([normalize_carc_text(v) for v in u.to_pylist()])),
}
DISTINCT_KINDS: Final = tuple(_DISTINCT)


def _objects(uniques: pa.Array) -> pd.Series:
    return pd.Series(uniques.to_pylist(), dtype=object)


def stripped(arr: Any) -> Any:
    """Return arrow texts stripped of whitespace, empty texts as null (as :func:`blank_to_na`)."""
    out = pc.utf8_trim_whitespace(arr)
    empty = pc.equal(pc.binary_length(out), 0)
    if not pc.any(empty).as_py():
        return out
    return pc.if_else(empty, pa.scalar(None, out.type), out)


def distinct(kind: str, uniques: pa.Array) -> Any:
    """Parse distinct texts (no nulls) as ``kind``; one null value is appended at the end.

    The result (large_string array, float64 or datetime64 array, IntegerArray) has the
    canonical values of the same-named Series parser, position for position.
    """
    return _DISTINCT[kind](uniques)
