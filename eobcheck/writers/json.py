"""JSON writer: the contract for programs (see docs/output-formats.md).

The document head (valid, stats, inputs, reference) is serialized with orjson. The findings
array is built column by column in Arrow: each column is JSON-encoded once (distinct
suggestion lists once each), the pieces are joined element-wise, and the rows' bytes are
taken as one buffer. No Python object is made per finding, so hundreds of thousands of
findings take well under the time one dict per finding would.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Final

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from eobcheck.report import Report
from eobcheck.writers.tables import (
    concat,
    factorize_suggestions,
    joined_bytes,
    none_if_missing,
)

SCHEMA_VERSION: Final = 1


def finding_records(findings: pd.DataFrame) -> list[dict[str, Any]]:
    """Return the findings as JSON-ready dicts (the ``findings`` array of the contract).

    This is the readable reference for the layout; :func:`dumps` writes the same bytes
    without building the dicts.
    """
    if findings.empty:
        return []
    indices, uniques = factorize_suggestions(findings["suggestions"])
    lists = [[{"code": code, "title": title} for code, title in pairs] for pairs in uniques]
    suggestions = [lists[i] for i in indices.tolist()]
    days = findings["date_of_service"].to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")
    dates = np.datetime_as_string(days).astype(object)
    dates[np.isnat(days)] = None

    def col(name: str) -> list[Any]:
        values: list[Any] = none_if_missing(findings[name]).tolist()
        return values

    records: list[dict[str, Any]] = []
    for i, (
        code,
        name,
        severity,
        message,
        claim_id,
        line,
        dx_position,
        value,
        normalized,
        applicability,
        replacement,
        file,
        sheet,
        row,
        column,
        procedure,
        carc,
        rarc,
    ) in enumerate(zip(*(col(c) for c in _RECORD_COLUMNS), strict=True)):
        records.append(
            {
                "code": code,
                "name": name,
                "severity": severity,
                "message": message,
                "claim_id": claim_id,
                "line": line,
                "dx_position": dx_position,
                "value": value,
                "normalized": normalized,
                "date_of_service": dates[i],
                "suggestions": suggestions[i],
                "fix": {"applicability": applicability, "replacement": replacement},
                "location": {"file": file, "sheet": sheet, "row": row, "column": column},
                "procedure": procedure,
                "carc": carc,
                "rarc": rarc,
            }
        )
    return records


_RECORD_COLUMNS: Final = (
    "code",
    "name",
    "severity",
    "message",
    "claim_id",
    "line",
    "dx_position",
    "value",
    "normalized",
    "fix_applicability",
    "fix_replacement",
    "file",
    "sheet",
    "row",
    "column",
    "procedure",
    "carc",
    "rarc",
)

# A JSON string needs escaping when it holds a quote, a backslash or a control character.
_NEEDS_ESCAPE: Final = r'[\x00-\x1f"\\]'


def _json_strings(values: pd.Series) -> pa.Array:
    """Return each value JSON-encoded ("text" or null) as an Arrow string array."""
    arr = pa.array(values.astype("string"), type=pa.large_string())
    escape = pc.fill_null(pc.match_substring_regex(arr, _NEEDS_ESCAPE), False)
    if pc.any(escape).as_py():
        # Rare (quotes or control characters in a cell): let orjson escape those few.
        rows = np.flatnonzero(escape.to_numpy(zero_copy_only=False))
        raw = arr.take(pa.array(rows)).to_pylist()
        encoded = [orjson.dumps(text).decode("utf-8")[1:-1] for text in raw]
        text = np.array(arr.to_pylist(), dtype=object)
        text[rows] = encoded
        arr = pa.array(text, type=pa.large_string())
    quoted = concat('"', arr, '"')
    return pc.fill_null(quoted, "null")


def _json_ints(values: pd.Series) -> pa.Array:
    """Return each integer as JSON text, null as ``null``."""
    arr = pa.array(values.astype("Int64"), type=pa.int64())
    return pc.fill_null(pc.cast(arr, pa.large_string()), "null")


def _codes(values: pd.Series | np.ndarray) -> tuple[np.ndarray, int]:
    """Return integer codes (missing -> -1) and the number of distinct values."""
    codes, uniques = pd.factorize(values)
    return codes, len(uniques)


def _first_rows(codes: np.ndarray) -> np.ndarray:
    """Return, for codes numbered in order of first appearance, the row of each first one."""
    first: np.ndarray = pd.Series(codes).drop_duplicates().index.to_numpy()
    return first


def _segment(columns: list[pd.Series | np.ndarray], render: Callable[..., str]) -> pa.Array:
    """Render ``render(*values)`` once per distinct combination of ``columns``; spread it.

    Most finding fields repeat (rule, message, problem code, file, suggestion set), so the
    text of a run of fields is made once per distinct combination and taken by index.
    """
    n = len(columns[0])
    key = np.zeros(n, dtype=np.int64)
    for column in columns:
        codes, count = _codes(column)
        key, _ = _codes(key * (count + 1) + (codes + 1))
    first = _first_rows(key)
    values = []
    for column in columns:
        picked = column[first] if isinstance(column, np.ndarray) else column.iloc[first]
        values.append(
            picked.tolist() if isinstance(picked, np.ndarray) else none_if_missing(picked).tolist()
        )
    texts = [render(*row) for row in zip(*values, strict=True)]
    return pc.take(pa.array(texts, type=pa.large_string()), pa.array(key, type=pa.int64()))


def _enc(value: object) -> str:
    """Return one value as JSON text."""
    return orjson.dumps(value).decode("utf-8")


def _findings_body(findings: pd.DataFrame, *, indent: bool) -> memoryview:
    """Return the members of the findings array as JSON text (orjson's layout), no copies
    of Python objects per finding: a few column segments joined element-wise in Arrow."""

    def key(name: str, level: int, first: bool = False) -> str:
        sep = "" if first else ","
        return f'{sep}\n{"  " * level}"{name}": ' if indent else f'{sep}"{name}":'

    def close(level: int) -> str:
        return f"\n{'  ' * level}}}" if indent else "}"

    option = orjson.OPT_INDENT_2 if indent else 0
    pad = "\n      " if indent else "\n"
    sugg_index, sugg_uniques = factorize_suggestions(findings["suggestions"])
    sugg_texts = [
        orjson.dumps([{"code": c, "title": t} for c, t in pairs], option=option)
        .decode("utf-8")
        .replace("\n", pad)
        for pairs in sugg_uniques
    ]
    days = findings["date_of_service"].to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")

    def head(code: object, name: object, severity: object, message: object) -> str:
        return (
            ("    {" if indent else "{")
            + key("code", 3, first=True)
            + _enc(code)
            + key("name", 3)
            + _enc(name)
            + key("severity", 3)
            + _enc(severity)
            + key("message", 3)
            + _enc(message)
            + key("claim_id", 3)
        )

    def dx(line: object, position: object, value: object, normalized: object) -> str:
        return (
            key("line", 3)
            + _enc(line)
            + key("dx_position", 3)
            + _enc(position)
            + key("value", 3)
            + _enc(value)
            + key("normalized", 3)
            + _enc(normalized)
            + key("date_of_service", 3)
        )

    def fix(
        day: object,
        sugg: int,
        applicability: object,
        replacement: object,
        file: object,
        sheet: object,
    ) -> str:
        return (
            ("null" if day is None else f'"{day.isoformat()}"')  # type: ignore[attr-defined]
            + key("suggestions", 3)
            + sugg_texts[sugg]
            + key("fix", 3)
            + "{"
            + key("applicability", 4, first=True)
            + _enc(applicability)
            + key("replacement", 4)
            + _enc(replacement)
            + close(3)
            + key("location", 3)
            + "{"
            + key("file", 4, first=True)
            + _enc(file)
            + key("sheet", 4)
            + _enc(sheet)
            + key("row", 4)
        )

    def tail(column: object, procedure: object, carc: object, rarc: object) -> str:
        return (
            key("column", 4)
            + _enc(column)
            + close(3)
            + key("procedure", 3)
            + _enc(procedure)
            + key("carc", 3)
            + _enc(carc)
            + key("rarc", 3)
            + _enc(rarc)
            + close(2)
            + (",\n" if indent else ",")
        )

    f = findings
    rows = concat(
        _segment([f["code"], f["name"], f["severity"], f["message"]], head),
        _json_strings(f["claim_id"]),
        _segment([f["line"], f["dx_position"], f["value"], f["normalized"]], dx),
        _segment(
            [
                days,
                sugg_index,
                f["fix_applicability"],
                f["fix_replacement"],
                f["file"],
                f["sheet"],
            ],
            fix,
        ),
        _json_ints(f["row"]),
        _segment([f["column"], f["procedure"], f["carc"], f["rarc"]], tail),
    )
    trailing = len(",\n" if indent else ",")
    # A view, not a copy: the document is assembled by one bytes.join in dumps().
    return joined_bytes(rows)[:-trailing]


def report_dict(report: Report) -> dict[str, Any]:
    """Return the whole JSON document as plain Python objects."""
    data = _head(report)
    data["findings"] = finding_records(report.findings)
    return data


def denial_records(denials: pd.DataFrame) -> list[dict[str, Any]]:
    """The JSON denials list: claim_id, line, codes, amount, explained, explained_by."""
    keys = ("claim_id", "line", "codes", "amount", "explained", "explained_by")
    out = []
    for claim, line, codes, amount, explained, by in zip(
        *(denials[k].tolist() for k in keys), strict=True
    ):
        out.append(
            {
                "claim_id": claim,
                "line": None if line is None or pd.isna(line) else int(line),
                "codes": list(codes),
                "amount": None if amount is None or pd.isna(amount) else round(float(amount), 2),
                "explained": bool(explained),
                "explained_by": list(by),
            }
        )
    return out


def _head(report: Report) -> dict[str, Any]:
    """Return the document without findings (an empty findings list, last key)."""
    from eobcheck import __version__

    head = report.model_dump(mode="json")
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "eobcheck", "version": __version__},
        "valid": head["valid"],
        "stats": head["stats"],
        "inputs": head["inputs"],
        "reference": head["reference"],
        "rules": head["rules"],
        "denials": denial_records(report.denials),
        "findings": [],
    }


def dumps(report: Report, *, indent: int | None = 2) -> bytes:
    """Return the JSON document as UTF-8 bytes; ``indent`` is None (compact) or a width.

    With indent None or 2 the findings are encoded column-wise; the bytes equal
    ``orjson.dumps(report_dict(report))`` with the same indentation.
    """
    if indent not in (None, 2):
        # orjson indents by two only; other widths are rare enough for the standard module.
        return json.dumps(report_dict(report), indent=indent, ensure_ascii=False).encode()
    option = orjson.OPT_SERIALIZE_NUMPY | (orjson.OPT_INDENT_2 if indent else 0)
    head = orjson.dumps(_head(report), option=option)
    if report.findings.empty:
        return head
    # "findings" is the last key, so its empty list is the last "[]" in the document.
    cut = head.rindex(b"[]")
    body = _findings_body(report.findings, indent=indent is not None)
    if indent is None:
        return b"".join((head[:cut], b"[", body, b"]", head[cut + 2 :]))
    return b"".join((head[:cut], b"[\n", body, b"\n  ]", head[cut + 2 :]))


def write_json(report: Report, target: str | Path | IO[bytes], *, indent: int | None = 2) -> None:
    """Write the JSON document to a path or a binary file object (e.g. stdout's buffer)."""
    data = dumps(report, indent=indent)
    if isinstance(target, str | Path):
        Path(target).write_bytes(data)
    else:
        target.write(data)
