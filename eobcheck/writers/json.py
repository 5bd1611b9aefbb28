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
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from eobcheck.report import Report
from eobcheck.writers.tables import (
    codes_of,
    combine_codes,
    concat,
    factorize_suggestions,
    first_rows,
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
# orjson escapes exactly these: the quote, the backslash and the C0 control characters
# (U+0000-U+001F); everything else, non-ASCII included, is written as it is.
_QUOTE: Final = ord('"')
_BACKSLASH: Final = ord("\\")
_CONTROL: Final = r"[\x00-\x1f]"


@dataclass(frozen=True)
class _Layout:
    """Where orjson puts line breaks and spaces: OPT_INDENT_2 (``indent``) or compact."""

    indent: bool

    @property
    def option(self) -> int:
        """The orjson option for this layout."""
        return orjson.OPT_INDENT_2 if self.indent else 0

    def key(self, name: str, level: int, first: bool = False) -> str:
        """Return the text before a value: separator, line break, indentation and key."""
        sep = "" if first else ","
        return f'{sep}\n{"  " * level}"{name}": ' if self.indent else f'{sep}"{name}":'

    def open(self, level: int) -> str:
        """Return the opening brace of an object that is an array member at ``level``."""
        return f"{'  ' * level}{{" if self.indent else "{"

    def close(self, level: int) -> str:
        """Return the closing brace of an object whose keys sit at ``level + 1``."""
        return f"\n{'  ' * level}}}" if self.indent else "}"

    def nested(self, text: str, level: int) -> str:
        """Re-indent a value orjson wrote on its own so it sits after a key at ``level``."""
        return text.replace("\n", "\n" + "  " * level) if self.indent else text

    def array(self, body: memoryview | None) -> list[bytes | memoryview]:
        """Return the pieces of a top-level array around the members' text (None: empty)."""
        if body is None:
            return [b"[]"]
        return [b"[\n", body, b"\n  ]"] if self.indent else [b"[", body, b"]"]

    @property
    def member_end(self) -> str:
        """The separator after each array member (cut after the last)."""
        return ",\n" if self.indent else ","


def _text_array(values: pd.Series) -> pa.Array | None:
    """Return a text column as an Arrow large_string array, or None if it holds non-text."""
    if values.dtype == object:
        kind = pd.api.types.infer_dtype(values, skipna=True)
        if kind not in ("string", "empty"):
            return None
    return pa.array(values.astype("string"), type=pa.large_string())


def _json_strings(values: pd.Series) -> pa.Array:
    """Return each value JSON-encoded ("text" or null) as orjson writes it, column-wise.

    Quotes and backslashes are escaped for the whole column in Arrow; the rare rows holding a
    control character are encoded by orjson itself (it picks ``\\n`` or ``\\u0001``).
    """
    arr = _text_array(values)
    if arr is None:
        # An object column with numbers or other non-text: orjson per distinct value.
        return _segment([values], _enc)
    data = arr.buffers()[2]
    # A byte scan is far cheaper than a string kernel; UTF-8 continuation bytes are >= 0x80,
    # so a byte below 0x20 (or a quote or backslash) is that very character.
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    escaped = arr
    if (raw == _BACKSLASH).any():
        escaped = pc.replace_substring(escaped, "\\", "\\\\")
    if (raw == _QUOTE).any():
        escaped = pc.replace_substring(escaped, '"', '\\"')
    quoted = concat('"', escaped, '"')
    if (raw < 0x20).any():
        control = pc.fill_null(pc.match_substring_regex(arr, _CONTROL), False)
        if pc.any(control).as_py():
            texts = arr.filter(control).to_pylist()
            encoded = pa.array([_enc(text) for text in texts], type=pa.large_string())
            quoted = pc.replace_with_mask(quoted, control, encoded)
    return pc.fill_null(quoted, "null")


def _json_ints(values: pd.Series) -> pa.Array:
    """Return each integer as JSON text, null as ``null``."""
    arr = pa.array(values.astype("Int64"), type=pa.int64())
    return pc.fill_null(pc.cast(arr, pa.large_string()), "null")


def _json_dates(values: pd.Series) -> pa.Array:
    """Return each date of service as ``"YYYY-MM-DD"`` (the time of day dropped), NaT as null."""
    days = values.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")
    arr = pc.cast(pa.array(days, from_pandas=True), pa.large_string())
    return pc.fill_null(concat('"', arr, '"'), "null")


def _json_bools(values: pd.Series) -> pa.Array:
    """Return each flag as ``true`` or ``false``."""
    flags = pa.array(values.to_numpy(dtype=bool))
    return pc.if_else(flags, pa.scalar("true", pa.large_string()), "false")


def _json_lists(values: pd.Series, layout: _Layout, level: int) -> pa.Array:
    """Return each list of texts as JSON after a key at ``level``, encoded once per distinct list.

    Each row is encoded compactly first (bytes, which the garbage collector does not track);
    the few distinct encodings are then laid out with the document's indentation.
    """
    compact = pd.Series(
        [orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY) for value in values.tolist()],
        dtype=object,
    )
    codes, uniques = pd.factorize(compact)
    texts = [
        layout.nested(orjson.dumps(orjson.loads(u), option=layout.option).decode("utf-8"), level)
        for u in uniques
    ]
    return pc.take(pa.array(texts, type=pa.large_string()), pa.array(codes, type=pa.int64()))


def _segment(columns: list[pd.Series | np.ndarray], render: Callable[..., str]) -> pa.Array:
    """Render ``render(*values)`` once per distinct combination of ``columns``; spread it."""
    key, _ = combine_codes(*(codes_of(column) for column in columns))
    first = first_rows(key)
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


def _members(parts: list[str | pa.Array], layout: _Layout) -> memoryview:
    """Join per-row JSON pieces and literals into the members of an array, back to back."""
    rows = concat(*parts, layout.member_end)
    # A view, not a copy: the document is assembled by one bytes.join in dumps().
    return joined_bytes(rows)[: -len(layout.member_end)]


def _findings_body(findings: pd.DataFrame, layout: _Layout) -> memoryview:
    """Return the members of the findings array as JSON text (orjson's layout).

    Every field is one Arrow column of JSON text (strings escaped column-wise, distinct
    suggestion lists encoded once each); the keys and braces between them are literals, and
    one element-wise join makes the rows. No Python object is made per finding.
    """
    key = layout.key
    sugg_index, sugg_uniques = factorize_suggestions(findings["suggestions"])
    sugg_texts = [
        layout.nested(
            orjson.dumps([{"code": c, "title": t} for c, t in pairs], option=layout.option).decode(
                "utf-8"
            ),
            3,
        )
        for pairs in sugg_uniques
    ]
    suggestions = pc.take(
        pa.array(sugg_texts, type=pa.large_string()), pa.array(sugg_index, type=pa.int64())
    )
    f = findings
    text = _json_strings
    return _members(
        [
            layout.open(2) + key("code", 3, first=True),
            text(f["code"]),
            key("name", 3),
            text(f["name"]),
            key("severity", 3),
            text(f["severity"]),
            key("message", 3),
            text(f["message"]),
            key("claim_id", 3),
            text(f["claim_id"]),
            key("line", 3),
            _json_ints(f["line"]),
            key("dx_position", 3),
            _json_ints(f["dx_position"]),
            key("value", 3),
            text(f["value"]),
            key("normalized", 3),
            text(f["normalized"]),
            key("date_of_service", 3),
            _json_dates(f["date_of_service"]),
            key("suggestions", 3),
            suggestions,
            key("fix", 3) + "{" + key("applicability", 4, first=True),
            text(f["fix_applicability"]),
            key("replacement", 4),
            text(f["fix_replacement"]),
            layout.close(3) + key("location", 3) + "{" + key("file", 4, first=True),
            text(f["file"]),
            key("sheet", 4),
            text(f["sheet"]),
            key("row", 4),
            _json_ints(f["row"]),
            key("column", 4),
            text(f["column"]),
            layout.close(3) + key("procedure", 3),
            text(f["procedure"]),
            key("carc", 3),
            text(f["carc"]),
            key("rarc", 3),
            text(f["rarc"]),
            layout.close(2),
        ],
        layout,
    )


def _denials_body(denials: pd.DataFrame, layout: _Layout) -> memoryview:
    """Return the members of the denials array as JSON text, the same bytes as orjson writes
    for :func:`denial_records`, built column-wise like the findings."""
    key = layout.key
    return _members(
        [
            layout.open(2) + key("claim_id", 3, first=True),
            _json_strings(denials["claim_id"]),
            key("line", 3),
            _segment([denials["line"]], lambda line: _enc(_as_int(line))),
            key("codes", 3),
            _json_lists(denials["codes"], layout, 3),
            key("amount", 3),
            _segment([denials["amount"]], lambda amount: _enc(_as_amount(amount))),
            key("explained", 3),
            _json_bools(denials["explained"]),
            key("explained_by", 3),
            _json_lists(denials["explained_by"], layout, 3),
            layout.close(2),
        ],
        layout,
    )


def report_dict(report: Report) -> dict[str, Any]:
    """Return the whole JSON document as plain Python objects."""
    data = _meta(report)
    data["denials"] = denial_records(report.denials)
    data["findings"] = finding_records(report.findings)
    return data


def denial_records(denials: pd.DataFrame) -> list[dict[str, Any]]:
    """The JSON denials list: claim_id, line, codes, amount, explained, explained_by."""
    if denials.empty:
        return []
    claims = none_if_missing(denials["claim_id"]).tolist()
    lines = _per_distinct(denials["line"], _as_int)
    amounts = _per_distinct(denials["amount"], _as_amount)
    explained = denials["explained"].to_numpy(dtype=bool).tolist()
    return [
        {
            "claim_id": claim,
            "line": line,
            "codes": list(codes),
            "amount": amount,
            "explained": flag,
            "explained_by": list(by),
        }
        for claim, line, codes, amount, flag, by in zip(
            claims,
            lines,
            denials["codes"].tolist(),
            amounts,
            explained,
            denials["explained_by"].tolist(),
            strict=True,
        )
    ]


def _as_int(value: object) -> int | None:
    """Return a line number as an int (None stays None)."""
    return None if value is None else int(value)  # type: ignore[call-overload]


def _as_amount(value: object) -> float | None:
    """Return an amount rounded to cents (None stays None)."""
    return None if value is None else round(float(value), 2)  # type: ignore[arg-type]


def _per_distinct(values: pd.Series, convert: Callable[[Any], object]) -> list[object]:
    """Return ``convert(value)`` per row, computed once per distinct value; missing -> None."""
    codes, uniques = pd.factorize(values)
    # Code -1 (missing) picks the None appended last.
    converted = np.array([*(convert(value) for value in uniques), None], dtype=object)
    out: list[object] = converted[codes].tolist()
    return out


def _meta(report: Report) -> dict[str, Any]:
    """Return the document up to the denials and findings (which come last, in that order)."""
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
    }


def dumps(report: Report, *, indent: int | None = 2) -> bytes:
    """Return the JSON document as UTF-8 bytes; ``indent`` is None (compact) or a width.

    With indent None or 2 the denials and findings are encoded column-wise; the bytes equal
    ``orjson.dumps(report_dict(report))`` with the same indentation.
    """
    if indent not in (None, 2):
        # orjson indents by two only; other widths are rare enough for the standard module.
        return json.dumps(report_dict(report), indent=indent, ensure_ascii=False).encode()
    layout = _Layout(indent is not None)
    meta = orjson.dumps(_meta(report), option=orjson.OPT_SERIALIZE_NUMPY | layout.option)
    end = b"\n}" if layout.indent else b"}"
    pieces: list[bytes | memoryview] = [meta[: -len(end)]]
    denials, findings = report.denials, report.findings
    pieces.append(layout.key("denials", 1).encode())
    pieces += layout.array(None if denials.empty else _denials_body(denials, layout))
    pieces.append(layout.key("findings", 1).encode())
    pieces += layout.array(None if findings.empty else _findings_body(findings, layout))
    pieces.append(end)
    return b"".join(pieces)


def write_json(report: Report, target: str | Path | IO[bytes], *, indent: int | None = 2) -> None:
    """Write the JSON document to a path or a binary file object (e.g. stdout's buffer)."""
    data = dumps(report, indent=indent)
    if isinstance(target, str | Path):
        Path(target).write_bytes(data)
    else:
        target.write(data)
