"""JSON writer: the contract for programs (see docs/output-formats.md).

The document head (valid, stats, inputs, reference, rules) is serialized with orjson. The
denials and findings arrays are built column by column in Arrow, byte for byte as orjson
writes them: text columns are escaped whole (quotes and backslashes replaced in Arrow, the
rare rows with control characters encoded by orjson), runs of repeating fields are joined
once per distinct combination, and one ``take`` lays all pieces out row after row. No Python
object is made per row, so hundreds of thousands of findings take a fraction of a second.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final, TypeAlias

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from eobcheck.report import Report
from eobcheck.writers.tables import (
    codes_of,
    concat,
    factorize_suggestions,
    first_rows,
    joined_bytes,
    none_if_missing,
)

SCHEMA_VERSION: Final = 1

#: One piece of a row's JSON text: an Arrow string column (one value per row) or a literal.
Part: TypeAlias = str | pa.Array


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
#: rows laid out per task, and how many tasks run at once
_BLOCK_ROWS: Final = 20_000
_THREADS: Final = max(1, min(4, os.cpu_count() or 1))


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

    def array(self, body: Iterator[memoryview] | None) -> Iterator[bytes | memoryview]:
        """Yield the pieces of a top-level array around the members' text (None: empty)."""
        if body is None:
            yield b"[]"
            return
        yield b"[\n" if self.indent else b"["
        yield from body
        yield b"\n  ]" if self.indent else b"]"

    @property
    def member_end(self) -> str:
        """The separator after each array member (cut after the last)."""
        return ",\n" if self.indent else ","


@dataclass(frozen=True)
class _Spread:
    """A column given as distinct texts and, per row, the index of its text."""

    texts: pa.Array
    index: np.ndarray


def _text_array(values: pd.Series) -> pa.Array | None:
    """Return a text column as an Arrow large_string array, or None if it holds non-text."""
    try:
        if values.dtype == object:
            # NaN and None become nulls; a number or other non-text refuses to convert.
            return pa.array(values.to_numpy(), type=pa.large_string(), from_pandas=True)
        if pd.api.types.is_string_dtype(values.dtype):
            return pa.array(values.array, type=pa.large_string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    return None


def _json_strings(values: pd.Series | pa.Array) -> pa.Array:
    """Return each value JSON-encoded ("text" or null) as orjson writes it, column-wise."""
    return _join(_strings(values))


def _strings(values: pd.Series | pa.Array) -> list[Part]:
    """Return the pieces that spell each value as orjson does: ``"text"`` or ``null``.

    Quotes and backslashes are escaped for the whole column in Arrow; the rare rows holding a
    control character are encoded by orjson itself (it picks ``\\n`` or ``\\u0001``). Without
    nulls the quotes stay literals, so the caller's join writes them with the keys.
    """
    arr = values if isinstance(values, pa.Array) else _text_array(values)
    if arr is None:
        # An object column with numbers or other non-text: orjson per distinct value.
        return [_segment(values, _enc)]
    data = arr.buffers()[2]
    # A byte scan is far cheaper than a string kernel; UTF-8 continuation bytes are >= 0x80,
    # so a byte below 0x20 (or a quote or backslash) is that very character.
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    escaped = arr
    if (raw == _BACKSLASH).any():
        escaped = pc.replace_substring(escaped, "\\", "\\\\")
    if (raw == _QUOTE).any():
        escaped = pc.replace_substring(escaped, '"', '\\"')
    control = None
    if len(raw) and raw.min() < 0x20:
        control = pc.fill_null(pc.match_substring_regex(arr, _CONTROL), False)
        if not pc.any(control).as_py():
            control = None
    if control is None and arr.null_count == 0:
        return ['"', escaped, '"']
    quoted = _join(['"', escaped, '"'])
    if control is not None:
        texts = arr.filter(control).to_pylist()
        encoded = pa.array([_enc(text) for text in texts], type=pa.large_string())
        quoted = pc.replace_with_mask(quoted, control, encoded)
    return [pc.fill_null(quoted, "null")]


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
    """Return each list of texts as JSON after a key at ``level`` (orjson's layout).

    Arrow reads the lists in one pass; their items are escaped as one string column and
    joined per list, so no Python object is made per row.
    """
    cells = values.to_numpy(dtype=object)
    try:
        lists = pa.array(cells.tolist(), type=pa.large_list(pa.large_string()))
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # Items that are not text: orjson per row (rare; the engine hands over codes).
        return _segment(pd.Series(_enc_each(cells), dtype=object), _relaid(layout, level))
    items = _json_strings(pc.list_flatten(lists))
    encoded = pa.LargeListArray.from_arrays(lists.offsets, items)
    return _bracket(lists, encoded, layout, level)


def _enc_each(values: np.ndarray) -> list[str]:
    """Return every value as compact JSON text (plain strings: nothing for the collector)."""
    return [_enc(value) for value in values.tolist()]


def _relaid(layout: _Layout, level: int) -> Callable[[str], str]:
    """Return a function laying out compact JSON text as orjson indents it after a key."""

    def relay(text: str) -> str:
        return layout.nested(orjson.dumps(orjson.loads(text), option=layout.option).decode(), level)

    return relay


def _bracket(lists: pa.Array, encoded: pa.Array, layout: _Layout, level: int) -> pa.Array:
    """Return ``[item, ...]`` per row from a list array of items already in JSON."""
    inner = "\n" + "  " * (level + 1) if layout.indent else ""
    outer = "\n" + "  " * level if layout.indent else ""
    joined = pc.binary_join(encoded, pa.scalar("," + inner, pa.large_string()))
    text = concat("[" + inner, joined, outer + "]")
    empty = pc.equal(pc.list_value_length(lists), 0)
    text = pc.if_else(empty, pa.scalar("[]", pa.large_string()), text)
    return pc.fill_null(text, "null")


def _segment(values: pd.Series, render: Callable[[Any], str]) -> pa.Array:
    """Return ``render(value)`` per row (missing values as None), called once per distinct."""
    key, _ = _group_key([values])
    first = first_rows(key)
    texts = [render(value) for value in none_if_missing(values.iloc[first]).tolist()]
    return pc.take(pa.array(texts, type=pa.large_string()), pa.array(key, type=pa.int64()))


def _enc(value: object) -> str:
    """Return one value as JSON text."""
    return orjson.dumps(value).decode("utf-8")


def _join(parts: list[Part]) -> pa.Array:
    """Concatenate pieces element-wise: Arrow string columns and literals (merged first)."""
    merged: list[Part] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        else:
            merged.append(part)
    return concat(*merged)


def _members(parts: list[Part | _Spread], layout: _Layout, rows: int) -> Iterator[memoryview]:
    """Yield the rows (pieces and literals joined, row after row) as consecutive runs of bytes.

    All pieces go into one Arrow array and a single ``take`` lays them out row-major: its
    data buffer is the text of the array's members, written once with no per-row join.
    """
    merged: list[Part | _Spread] = []
    for part in [*parts, layout.member_end]:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        else:
            merged.append(part)
    values: list[pa.Array] = []
    index = np.empty((rows, len(merged)), dtype=np.int64)
    base = 0
    for k, part in enumerate(merged):
        if isinstance(part, str):
            values.append(pa.array([part], type=pa.large_string()))
            index[:, k] = base
        elif isinstance(part, _Spread):
            values.append(part.texts)
            index[:, k] = part.index + base
        else:
            values.append(part)
            index[:, k] = np.arange(base, base + rows)
        base += len(values[-1])
    pool = pa.concat_arrays(values)
    # Blocks of rows are laid out side by side (Arrow's take releases the GIL); each block's
    # text is a view, not a copy: the pieces are written (or joined) once, in order.
    # Blocks are yielded in order as they are done, so writing overlaps laying out.
    blocks = [index[a : a + _BLOCK_ROWS].ravel() for a in range(0, rows, _BLOCK_ROWS)]
    with ThreadPoolExecutor(max_workers=_THREADS) as workers:
        texts = workers.map(lambda block: joined_bytes(pool.take(pa.array(block))), blocks)
        for i, text in enumerate(texts):
            yield text if i < len(blocks) - 1 else text[: -len(layout.member_end)]


def _grouped(
    frame: pd.DataFrame, columns: list[str], render: Callable[[pd.DataFrame], list[Part]]
) -> list[Part | _Spread]:
    """Return the pieces ``render`` makes, joined once per distinct combination of
    ``columns`` and spread to every row by index.

    Most finding fields repeat (rule, problem code, file, suggestion set), so a run of them
    is escaped and joined once per distinct combination; when most rows are distinct the
    pieces are handed back unjoined.
    """
    key, count = _group_key([frame[name] for name in columns])
    if 2 * count > len(frame):
        return list(render(frame))
    distinct = frame.iloc[first_rows(key)]
    return [_Spread(_join(render(distinct)), key)]


def _group_key(columns: list[pd.Series]) -> tuple[np.ndarray, int]:
    """Return one code per distinct combination of the columns (first appearance order)."""
    key = np.zeros(len(columns[0]), dtype=np.int64)
    span = 1
    for column in columns:
        codes, count = codes_of(column)
        if span * (count + 1) >= 2**62:
            # Re-number before the mixed key could overflow.
            key, span = codes_of(key)
        key = key * (count + 1) + (codes + 1)
        span *= count + 1
    return codes_of(key)


def _findings_body(findings: pd.DataFrame, layout: _Layout) -> Iterator[memoryview]:
    """Return the members of the findings array as JSON text (orjson's layout).

    Every field is an Arrow column of JSON text (strings escaped column-wise, distinct
    suggestion lists encoded once each); the keys and braces between them are literals, and
    element-wise joins make the rows. No Python object is made per finding.
    """
    key = layout.key
    text = _strings
    sugg_index, sugg_uniques = factorize_suggestions(findings["suggestions"])
    sugg_texts = pa.array(
        [
            layout.nested(
                orjson.dumps(
                    [{"code": c, "title": t} for c, t in pairs], option=layout.option
                ).decode("utf-8"),
                3,
            )
            for pairs in sugg_uniques
        ],
        type=pa.large_string(),
    )
    # Suggestion sets are grouped by their index (the tuples themselves do not hash cheaply).
    f = findings.drop(columns=["suggestions"]).assign(suggestions=sugg_index)

    def rule(g: pd.DataFrame) -> list[Part]:
        return [
            layout.open(2) + key("code", 3, first=True),
            *text(g["code"]),
            key("name", 3),
            *text(g["name"]),
            key("severity", 3),
            *text(g["severity"]),
            key("message", 3),
        ]

    def diagnosis(g: pd.DataFrame) -> list[Part]:
        return [
            key("line", 3),
            _json_ints(g["line"]),
            key("dx_position", 3),
            _json_ints(g["dx_position"]),
            key("value", 3),
            *text(g["value"]),
            key("normalized", 3),
            *text(g["normalized"]),
            key("date_of_service", 3),
        ]

    def fix(g: pd.DataFrame) -> list[Part]:
        return [
            _json_dates(g["date_of_service"]),
            key("suggestions", 3),
            pc.take(sugg_texts, pa.array(g["suggestions"].to_numpy(), type=pa.int64())),
            key("fix", 3) + "{" + key("applicability", 4, first=True),
            *text(g["fix_applicability"]),
            key("replacement", 4),
            *text(g["fix_replacement"]),
            layout.close(3) + key("location", 3) + "{" + key("file", 4, first=True),
            *text(g["file"]),
            key("sheet", 4),
            *text(g["sheet"]),
            key("row", 4),
        ]

    def line(g: pd.DataFrame) -> list[Part]:
        return [
            key("column", 4),
            *text(g["column"]),
            layout.close(3) + key("procedure", 3),
            *text(g["procedure"]),
            key("carc", 3),
            *text(g["carc"]),
            key("rarc", 3),
            *text(g["rarc"]),
            layout.close(2),
        ]

    where = ["file", "sheet"]
    return _members(
        [
            *_grouped(f, ["code", "name", "severity"], rule),
            # Messages and claim ids are mostly distinct: escaped as they are, not grouped.
            *text(f["message"]),
            key("claim_id", 3),
            *text(f["claim_id"]),
            *_grouped(f, ["line", "dx_position", "value", "normalized"], diagnosis),
            *_grouped(
                f,
                ["date_of_service", "suggestions", "fix_applicability", "fix_replacement", *where],
                fix,
            ),
            _json_ints(f["row"]),
            *_grouped(f, ["column", "procedure", "carc", "rarc"], line),
        ],
        layout,
        len(findings),
    )


def _denials_body(denials: pd.DataFrame, layout: _Layout) -> Iterator[memoryview]:
    """Return the members of the denials array as JSON text, the same bytes as orjson writes
    for :func:`denial_records`, built column-wise like the findings."""
    key = layout.key
    return _members(
        [
            layout.open(2) + key("claim_id", 3, first=True),
            *_strings(denials["claim_id"]),
            key("line", 3),
            _segment(denials["line"], lambda line: _enc(_as_int(line))),
            key("codes", 3),
            _json_lists(denials["codes"], layout, 3),
            key("amount", 3),
            _segment(denials["amount"], lambda amount: _enc(_as_amount(amount))),
            key("explained", 3),
            _json_bools(denials["explained"]),
            key("explained_by", 3),
            _json_lists(denials["explained_by"], layout, 3),
            layout.close(2),
        ],
        layout,
        len(denials),
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
    return b"".join(_pieces(report, indent))


def _pieces(report: Report, indent: int | None) -> Iterator[bytes | memoryview]:
    """Yield the JSON document in consecutive pieces (see dumps)."""
    if indent not in (None, 2):
        # orjson indents by two only; other widths are rare enough for the standard module.
        yield json.dumps(report_dict(report), indent=indent, ensure_ascii=False).encode()
        return
    layout = _Layout(indent is not None)
    meta = orjson.dumps(_meta(report), option=orjson.OPT_SERIALIZE_NUMPY | layout.option)
    end = b"\n}" if layout.indent else b"}"
    yield meta[: -len(end)]
    denials, findings = report.denials, report.findings
    yield layout.key("denials", 1).encode()
    yield from layout.array(None if denials.empty else _denials_body(denials, layout))
    yield layout.key("findings", 1).encode()
    yield from layout.array(None if findings.empty else _findings_body(findings, layout))
    yield end


def write_json(report: Report, target: str | Path | IO[bytes], *, indent: int | None = 2) -> None:
    """Write the JSON document to a path or a binary file object (e.g. stdout's buffer).

    The pieces are written as they are made: the document is never joined in memory. A file
    path is written through a temporary file beside it, so it never holds half a report.
    """
    if not isinstance(target, str | Path):
        target.writelines(_pieces(report, indent))
        return
    path = Path(target)
    if path.exists() and not path.is_file():  # a device or pipe, e.g. /dev/stdout
        with path.open("wb") as fh:
            fh.writelines(_pieces(report, indent))
        return
    part = path.with_name(f".{path.name}.part")
    try:
        with part.open("wb") as fh:
            fh.writelines(_pieces(report, indent))
        # unlink, then rename: renaming over an existing file makes ext4 flush the new
        # file's data to disk first (auto_da_alloc), a tenth of a second or more
        path.unlink(missing_ok=True)
        os.rename(part, path)
    finally:
        part.unlink(missing_ok=True)
