"""X12 837P/837I (4010 and 5010) claims and X12 835 remittances into the canonical frame.

A focused reader (numpy and pyarrow only): it tokenizes the interchange with the separators
the ISA header declares (tolerating CRLF or no newline, indented segments, a component
separator used in the body that differs from ISA16, files that start at ST without an
envelope, and several ISA/GS/ST envelopes in one file). It reads what the checker needs, not
the whole implementation guide.

The reader works column-wise, not segment by segment: the file is cut into segments at the
terminator positions found with numpy, the segments live in one Arrow string array, and the
loops of the implementation guide (transaction, claim, service line) become forward-filled
"current loop" indices. Each segment kind is split into elements once, as a batch, and values
are attached to their claim or line by index ("the last DTP*472 of the line wins"), so the cost
per segment is a few vectorized operations rather than Python work.

Provenance: ``source_row`` is the 1-based segment number in the file (the ISA segment is 1),
``dx_column`` names the HI element and component, e.g. ``HI01-2`` (the code of the first
composite of that HI segment).

An 835 carries no diagnoses: its frame has one row per service payment (SVC) with null
diagnosis columns. :func:`join_remittance` copies its money and adjustment codes onto the
matching 837 lines (CLP01 = CLM01, and REF*6R line control numbers where both files carry
them); :func:`join_results` does that for all inputs of one check.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from eobcheck.errors import InputError
from eobcheck.model import DTYPES, conform, empty_frame
from eobcheck.readers.base import ReadResult

__all__ = ["join_remittance", "join_results", "line_controls", "read_x12"]

#: frame.attrs key holding the REF*6R line control numbers of the frame's rows, joined by
#: _CTRL_SEP ("" where a line has none). One string, because pandas deep-copies attrs on
#: every operation and a string copies for free where a list of 600,000 items does not.
LINE_CONTROL_ATTR: Final = "x12_line_control"
_CTRL_SEP: Final = "\x1f"

# HI qualifiers that carry a diagnosis code, with the rank that orders them on the claim:
# principal first, then other diagnoses, then admitting / reason-for-visit / external cause.
_DX_QUALIFIERS: Final[dict[str, int]] = {
    "ABK": 0,  # ICD-10-CM principal
    "BK": 0,  # ICD-9-CM principal
    "ABF": 1,  # ICD-10-CM other
    "BF": 1,  # ICD-9-CM other
    "ABJ": 2,  # ICD-10-CM admitting
    "BJ": 2,  # ICD-9-CM admitting
    "APR": 2,  # ICD-10-CM patient reason for visit
    "PR": 2,  # ICD-9-CM patient reason for visit
    "ABN": 3,  # ICD-10-CM external cause of injury
    "BN": 3,  # ICD-9-CM external cause of injury
}
_SEPARATOR_CANDIDATES: Final = ":>^|\\!"
_COMPOSITE_RE: Final = re.compile(r"^[A-Z]{1,3}([^A-Za-z0-9 .\-])")
_AMOUNT_RE: Final = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
_STR: Final = pa.large_string()

IntArray = np.ndarray[Any, np.dtype[np.int64]]
BoolArray = np.ndarray[Any, np.dtype[np.bool_]]


def _fail(path: Path, name: str, message: str, segment: int | None = None) -> InputError:
    where = f"segment {segment}: " if segment is not None else ""
    return InputError(f"{where}{message}", path=name)


def _decode(path: Path, name: str) -> bytes:
    """Return the file as UTF-8 bytes (X12 is ASCII in practice; other bytes read as latin-1)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the file ({exc.strerror})", path=name) from exc
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if raw.isascii():
        return raw
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        # latin-1 never fails and keeps every character; Arrow strings must be UTF-8.
        raw = raw.decode("latin-1").encode("utf-8")
    return raw


# --------------------------------------------------------------------------- arrow helpers


def _s(text: str | None) -> pa.Scalar:
    return pa.scalar(text, _STR)


def _null(n: int) -> pa.Array:
    return pa.nulls(n, _STR)


def _take(values: pa.Array, idx: IntArray) -> pa.Array:
    """values[idx], with null where idx < 0."""
    if not len(idx) or not len(values):
        return pa.nulls(len(idx), values.type)
    return values.take(pa.array(idx, mask=idx < 0))


def _nz(values: pa.Array) -> pa.Array:
    """Empty strings as null (the reader's "x or None")."""
    return pc.if_else(pc.equal(values, ""), pa.scalar(None, _STR), values)


def _bool(values: pa.Array) -> BoolArray:
    return np.asarray(pc.fill_null(values, False).to_numpy(zero_copy_only=False), dtype=bool)


def _eq(values: pa.Array, text: str) -> BoolArray:
    return _bool(pc.equal(values, text))


def _isin(values: pa.Array, texts: Sequence[str]) -> BoolArray:
    return _bool(pc.is_in(values, value_set=pa.array(list(texts), _STR)))


def _join2(a: pa.Array, b: pa.Array, sep: str) -> pa.Array:
    """a + sep + b, or whichever of the two is not null."""
    both = pc.binary_join_element_wise(a, b, _s(sep))
    return pc.coalesce(both, a, b)


def _date(values: pa.Array) -> pa.Array:
    """The first CCYYMMDD of D8/RD8 values, or null."""
    ok = pc.match_substring_regex(values, r"^[0-9]{8}")
    return pc.if_else(ok, pc.utf8_slice_codeunits(values, 0, 8), pa.scalar(None, _STR))


def _amount(values: pa.Array) -> pa.Array:
    """Decimal amounts as float64; null where the value is not a number."""
    ok = pc.match_substring_regex(values, _AMOUNT_RE)
    return pc.cast(pc.if_else(ok, values, pa.scalar(None, _STR)), pa.float64())


def _floats(values: pa.Array) -> np.ndarray[Any, np.dtype[np.float64]]:
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)


def _pointer(value: str) -> int:
    """Return a diagnosis pointer as an int; some senders write "1.00"; 0 when unreadable."""
    if value.isdigit():
        return int(value)
    m = re.fullmatch(r"(\d{1,2})(?:\.0*)?", value.strip())
    return int(m.group(1)) if m else 0


def _last(groups: IntArray, n: int) -> IntArray:
    """Per group 0..n-1, the index of its last event in ``groups`` (file order), or -1."""
    out = np.full(n, -1, dtype=np.int64)
    if len(groups):
        uniq, first_rev = np.unique(groups[::-1], return_index=True)
        out[uniq] = len(groups) - 1 - first_rev
    return out


def _first(groups: IntArray, n: int) -> IntArray:
    """Per group 0..n-1, the index of its first event in ``groups``, or -1."""
    out = np.full(n, -1, dtype=np.int64)
    if len(groups):
        uniq, first = np.unique(groups, return_index=True)
        out[uniq] = first
    return out


def _pick(values: pa.Array, groups: IntArray, n: int, *, last: bool = True) -> pa.Array:
    """Per group, the value of its last (or first) event; null for groups without one."""
    idx = _last(groups, n) if last else _first(groups, n)
    return _take(values, idx)


def _concat_by(values: pa.Array, groups: IntArray, n: int) -> pa.Array:
    """Per group, its non-empty values in file order joined by a space; null if none."""
    keep = _bool(pc.invert(pc.or_kleene(pc.is_null(values), pc.equal(values, ""))))
    values = values.filter(pa.array(keep))
    groups = groups[keep]
    counts = np.bincount(groups, minlength=n) if len(groups) else np.zeros(n, np.int64)
    first = _first(groups, n)
    multi = np.flatnonzero(counts > 1)
    if not len(multi):
        return _take(values, first)
    # Several CAS/remark segments on one claim or line are rare: join those few in Python.
    py = values.to_pylist()
    order = np.argsort(groups, kind="stable")
    starts = np.concatenate(([0], np.cumsum(counts)))
    joined = [" ".join(py[i] for i in order[starts[g] : starts[g + 1]]) for g in multi]
    idx = first.copy()
    idx[multi] = len(values) + np.arange(len(multi))
    return _take(pa.concat_arrays([values.cast(_STR), pa.array(joined, _STR)]), idx)


def _context(starts: BoolArray, resets: BoolArray) -> tuple[BoolArray, IntArray]:
    """Per segment: inside a loop opened by ``starts`` and not closed by ``resets``, and which."""
    n = len(starts)
    last = np.maximum.accumulate(np.where(starts | resets, np.arange(n), -1))
    at = np.maximum(last, 0)
    inside = (last >= 0) & starts[at] if n else np.zeros(0, dtype=bool)
    rank = np.cumsum(starts) - 1
    return inside, np.where(inside, rank[at], -1)


def _state(query: IntArray, set_pos: IntArray, set_val: pa.Array, reset_pos: IntArray) -> pa.Array:
    """Value of a state variable at each query position: the last set before it, null after a
    reset."""
    pos = np.concatenate([set_pos, reset_pos])
    vals = pa.concat_arrays([set_val.cast(_STR), _null(len(reset_pos))])
    order = np.argsort(pos, kind="stable")
    k = np.searchsorted(pos[order], query, side="right") - 1
    src = np.where(k >= 0, order[np.maximum(k, 0)] if len(order) else -1, -1)
    return _take(vals, src) if len(vals) else _null(len(query))


# --------------------------------------------------------------------------- tokens


@dataclass
class _Tokens:
    """The non-empty segments of one file, trimmed, with their tags; segment number = index + 1.

    Every segment is split into elements once: element ``i`` of segment ``s`` is
    ``elements[offsets[s] + i]`` (element 0 is the tag).
    """

    segments: pa.Array
    elements: pa.Array
    offsets: IntArray
    tag_ids: IntArray
    tag_names: list[str]
    element: str
    component: str
    notes: list[str]
    trim: bool = True

    def __len__(self) -> int:
        return len(self.segments)

    def mask(self, *tags: str) -> BoolArray:
        """Segments whose tag is one of ``tags``."""
        ids = [i for i, t in enumerate(self.tag_names) if t in tags]
        if len(ids) == 1:
            return np.asarray(self.tag_ids == ids[0], dtype=bool)
        return np.isin(self.tag_ids, ids)

    def fields(self, pos: IntArray, idx: Sequence[int]) -> list[pa.Array]:
        """Elements ``idx`` (trimmed; "" when absent) of the segments at ``pos``."""
        return _parts_at(self.elements, self.offsets, pos, idx, trim=self.trim)

    def pylist(self, pos: IntArray) -> list[list[str]]:
        """The segments at ``pos`` split into elements, as Python lists (for a few segments)."""
        sub = self.segments.take(pa.array(pos, pa.int64())).to_pylist()
        return [s.split(self.element) for s in sub]


def _parts_at(
    flat: pa.Array, offsets: IntArray, pos: IntArray | None, idx: Sequence[int], *, trim: bool
) -> list[pa.Array]:
    """Parts ``idx`` of the split values at ``pos`` (all when None); "" where absent."""
    start = offsets[:-1] if pos is None else offsets[pos]
    length = (offsets[1:] if pos is None else offsets[pos + 1]) - start
    out = []
    for i in idx:
        values = _take(flat, np.where(i < length, start + i, -1))
        if trim:
            values = pc.utf8_trim_whitespace(values)
        out.append(pc.fill_null(values, _s("")))
    return out


def _split_values(values: pa.Array, sep: str) -> tuple[pa.Array, IntArray]:
    """Split string values at ``sep``: the parts in one array and each value's offsets."""
    lists = pc.split_pattern(values.cast(_STR), sep)
    offsets = np.asarray(lists.offsets.to_numpy(), dtype=np.int64)
    flat = lists.values
    return flat, offsets


def _split(data: bytes, terminator: str) -> pa.Array:
    """Cut ``data`` at every terminator into one Arrow string array (terminators kept)."""
    term = terminator.encode("utf-8")
    if len(term) != 1:
        return pc.split_pattern(pa.array([data.decode("utf-8")], _STR), terminator).flatten()
    buf = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(buf == term[0]).astype(np.int64) + 1
    if not len(ends) or ends[-1] != len(data):
        ends = np.append(ends, len(data))
    offsets = np.concatenate(([0], ends)).astype(np.int64)
    # The offsets point into the file's own bytes: no copy, no Python string per segment.
    return pa.Array.from_buffers(_STR, len(ends), [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _tokenize(data: bytes, path: Path, name: str) -> _Tokens:
    """Split an X12 file into segments using the separators of its first header."""
    data = data.lstrip()
    head = data[:4096].decode("utf-8", errors="replace")
    notes: list[str] = []
    if head.startswith("ISA"):
        if len(head) < 4:
            raise _fail(path, name, "ISA header is truncated", 1)
        element = head[3]
        parts = head.split(element, 16)
        if len(parts) < 17 or len(parts[16]) < 2:
            raise _fail(
                path, name, "ISA header is truncated: fewer than 16 elements before ISA16", 1
            )
        component = parts[16][0]
        terminator = parts[16][1]
        if terminator in "\r\n":
            terminator = "\n"
    elif head.startswith("ST") and len(head) > 2 and not head[2].isalnum():
        # A bare transaction set (no ISA/GS envelope), as some payer portals export it.
        element = head[2]
        match = re.search(rb"[~'\n]", data)
        terminator = match.group(0).decode() if match else "~"
        component = ":"
        notes.append(
            "the file has no ISA interchange header; separators were inferred from the ST "
            f"segment (element {element!r}, segment terminator {terminator!r})"
        )
    else:
        snippet = head[:20].replace("\n", " ")
        raise _fail(
            path,
            name,
            f"not an X12 file: it should start with an ISA (or ST) segment, found {snippet!r}",
        )

    raw = _split(data, terminator)
    if data.isascii():
        segs = pc.ascii_trim_whitespace(pc.ascii_rtrim(raw, characters=terminator))
    else:
        segs = pc.utf8_trim_whitespace(pc.utf8_rtrim(raw, characters=terminator))
    segs = segs.filter(pc.greater(pc.binary_length(segs), 0))
    elements, offsets = _split_values(segs, element)
    heads = pc.dictionary_encode(elements.take(pa.array(offsets[:-1])))
    names = [str(h) for h in heads.dictionary.to_pylist()]
    tag_ids = np.asarray(heads.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    tokens = _Tokens(segs, elements, offsets, tag_ids, names, element, component, notes)
    tokens.trim = _needs_trim(data, element, terminator)
    tokens.component = _body_component(tokens, component, notes)
    return tokens


def _needs_trim(data: bytes, element: str, terminator: str) -> bool:
    """Whether any element may carry surrounding whitespace (padded names, indented values)."""
    if not data.isascii() or not element.isascii() or not terminator.isascii():
        return True  # Unicode whitespace: trim everything
    # The ISA header pads its fields with spaces by definition; look past it.
    body = data[data.find(terminator.encode()) + 1 :] if data.startswith(b"ISA") else data
    buf = np.frombuffer(body, dtype=np.uint8)
    sep = ord(element)
    for ws in b" \t\r\n\x0b\x0c\x1c\x1d\x1e\x1f":
        if ws == sep or bytes((ws,)) not in body:
            continue
        at = np.flatnonzero(buf == ws)
        before, after = buf[np.maximum(at - 1, 0)], buf[np.minimum(at + 1, len(buf) - 1)]
        if np.any(before == sep) or np.any(after == sep):
            return True
    return False


def _body_component(tokens: _Tokens, declared: str, notes: list[str]) -> str:
    """Return the component separator the body really uses (some files contradict ISA16)."""
    seen: dict[str, int] = {}
    for seg in tokens.pylist(np.arange(min(len(tokens), 400), dtype=np.int64)):
        tag = seg[0]
        if tag in ("SV1", "SVC", "HI") and len(seg) > 1:
            values = seg[1:] if tag == "HI" else seg[1:2]
        elif tag == "SV2" and len(seg) > 2:
            values = seg[2:3]
        else:
            continue
        for value in values:
            m = _COMPOSITE_RE.match(value.strip())
            if m and m.group(1) in _SEPARATOR_CANDIDATES:
                seen[m.group(1)] = seen.get(m.group(1), 0) + 1
    if not seen or declared in seen:
        return declared
    used = max(seen, key=lambda k: seen[k])
    notes.append(
        f"ISA16 declares {declared!r} as the component separator but the body uses {used!r}; "
        f"read with {used!r}"
    )
    return used


def _el(seg: list[str], i: int) -> str:
    return seg[i].strip() if len(seg) > i else ""


def _transaction_kinds(tokens: _Tokens) -> Iterator[tuple[str, str]]:
    """Yield (ST01, implementation version) for each transaction set."""
    gs_version = ""
    for seg in tokens.pylist(np.flatnonzero(tokens.mask("GS", "ST"))):
        if seg[0] == "GS":
            gs_version = _el(seg, 8)
        else:
            yield _el(seg, 1), _el(seg, 3) or gs_version


def _composite(values: pa.Array, comp: str, count: int) -> list[pa.Array]:
    """Components 0..count-1 of composite values ("" when absent; not trimmed)."""
    flat, offsets = _split_values(values, comp)
    return _parts_at(flat, offsets, None, range(count), trim=False)


def _procedure(values: pa.Array, comp: str) -> tuple[BoolArray, pa.Array, pa.Array]:
    """From HC:CODE:M1:M2:M3:M4 composites: has a code, the code (upper), the modifiers."""
    parts = _composite(values, comp, 7)
    has = ~_eq(parts[1], "")
    mods = _nz(parts[2])
    for p in parts[3:6]:
        mods = _join2(mods, _nz(p), " ")
    return has, pc.utf8_upper(parts[1]), mods


# --------------------------------------------------------------------------- 837


def _frame_837(tok: _Tokens, name: str, start: int, notes: list[str]) -> tuple[pd.DataFrame, int]:
    """The canonical frame of an 837 and its number of claims."""
    n = len(tok)
    comp = tok.component
    seg_notes: list[tuple[int, str]] = []
    st, hl, se, clm = tok.mask("ST"), tok.mask("HL"), tok.mask("SE"), tok.mask("CLM")
    hl_pos = np.flatnonzero(hl)
    (level,) = tok.fields(hl_pos, [3])
    hl20, hl22, hl23 = (hl_pos[_eq(level, v)] for v in ("20", "22", "23"))
    st_pos = np.flatnonzero(st)

    in_claim, claim_at = _context(clm, st | hl | se)
    line_reset = st | hl | se | clm
    lx = tok.mask("LX") & in_claim
    sv = tok.mask("SV1", "SV2") & in_claim
    in_line0, _ = _context(lx, line_reset)
    # A service line without LX opens a line, but only the first one after the claim starts
    # (the ones after it add to that line).
    cand = np.flatnonzero(sv & ~in_line0)
    last0 = np.maximum.accumulate(np.where(lx | line_reset, np.arange(n), -1))
    _, first_cand = np.unique(last0[cand], return_index=True)
    implicit = cand[first_cand]
    starts = lx.copy()
    starts[implicit] = True
    in_line, line_at = _context(starts, line_reset)

    # Claims.
    clm_pos = np.flatnonzero(clm)
    nclaims = len(clm_pos)
    claim_id, claim_billed_s = tok.fields(clm_pos, [1, 2])
    for p in clm_pos[_eq(claim_id, "")]:
        seg_notes.append((int(p), f"segment {p + 1}: CLM without a claim number (CLM01); kept"))
    claim_billed = _amount(claim_billed_s)

    # Subscriber, patient, payer and billing provider in force when each claim starts.
    nm1_pos = np.flatnonzero(tok.mask("NM1"))
    e1, e3, e9 = tok.fields(nm1_pos, [1, 3, 9])
    out = ~in_claim[nm1_pos]

    def nm1_state(entity: str, value: pa.Array, resets: list[IntArray]) -> pa.Array:
        sel = out & _eq(e1, entity)
        return _state(
            clm_pos, nm1_pos[sel], value.filter(pa.array(sel)), np.concatenate([st_pos, *resets])
        )

    sub_id = nm1_state("IL", _nz(e9), [hl22])
    pat_id = nm1_state("QC", _nz(e9), [hl22, hl23])
    payer = nm1_state("PR", pc.coalesce(_nz(e3), _nz(e9)), [hl22])
    billing = nm1_state("85", pc.coalesce(_nz(e9), _nz(e3)), [hl20])

    dmg_pos = np.flatnonzero(tok.mask("DMG") & ~in_claim)
    d1, d2, d3 = tok.fields(dmg_pos, [1, 2, 3])
    entity = _state(dmg_pos, nm1_pos, e1, np.zeros(0, np.int64))
    qc = _eq(entity, "QC")
    birth = pc.if_else(pc.equal(d1, "D8"), _date(d2), pa.scalar(None, _STR))
    sex = _nz(d3)

    def dmg_state(values: pa.Array, sel: BoolArray, resets: list[IntArray]) -> pa.Array:
        return _state(
            clm_pos, dmg_pos[sel], values.filter(pa.array(sel)), np.concatenate([st_pos, *resets])
        )

    patient_id = pc.coalesce(pat_id, sub_id)
    birth_c = pc.coalesce(dmg_state(birth, qc, [hl22, hl23]), dmg_state(birth, ~qc, [hl22]))
    sex_c = pc.coalesce(dmg_state(sex, qc, [hl22, hl23]), dmg_state(sex, ~qc, [hl22]))

    # Rendering provider at claim level overrides the billing provider.
    sel = in_claim[nm1_pos] & ~in_line[nm1_pos] & _eq(e1, "82")
    rendering = pc.coalesce(_nz(e9), _nz(e3)).filter(pa.array(sel))
    has = _bool(pc.is_valid(rendering))
    provider = pc.coalesce(
        _pick(rendering.filter(pa.array(has)), claim_at[nm1_pos[sel][has]], nclaims), billing
    )

    # Dates: DTP*472 on the line, else on the claim, else the statement period (434).
    dtp_pos = np.flatnonzero(tok.mask("DTP") & in_claim)
    q1, q3 = tok.fields(dtp_pos, [1, 3])
    dval = _date(q3)
    at_line = in_line[dtp_pos]
    s472 = _eq(q1, "472")
    sel = at_line & s472
    line_date_ev = (dval.filter(pa.array(sel)), line_at[dtp_pos[sel]])
    sel = ~at_line & s472
    date_472 = _pick(dval.filter(pa.array(sel)), claim_at[dtp_pos[sel]], nclaims)
    sel = ~at_line & _eq(q1, "434")
    date_stmt = _pick(dval.filter(pa.array(sel)), claim_at[dtp_pos[sel]], nclaims)
    claim_date = pc.coalesce(date_472, date_stmt)

    # Service lines.
    line_pos = np.flatnonzero(starts)
    nreal = len(line_pos)
    line_claim = claim_at[line_pos]
    lx_pos = np.flatnonzero(lx)
    (num,) = tok.fields(lx_pos, [1])
    digits = pc.match_substring_regex(num, r"^[0-9]{1,18}$")
    number = np.ones(nreal, dtype=np.int64)
    number_ok = np.ones(nreal, dtype=bool)
    is_lx = np.isin(line_pos, lx_pos)
    number[is_lx] = np.asarray(
        pc.cast(pc.if_else(digits, num, "0"), pa.int64()).to_numpy(), dtype=np.int64
    )
    number_ok[is_lx] = _bool(digits)
    tag_names = tok.tag_names
    for p in implicit:
        tag = tag_names[tok.tag_ids[p]]
        seg_notes.append((int(p), f"segment {p + 1}: {tag} without LX; numbered it 1"))

    sv1_pos = np.flatnonzero(sv & tok.mask("SV1"))
    sv2_pos = np.flatnonzero(sv & tok.mask("SV2"))
    p1, b1, ptr1 = tok.fields(sv1_pos, [1, 2, 7])
    p2, b2 = tok.fields(sv2_pos, [2, 3])
    sv_pos = np.concatenate([sv1_pos, sv2_pos])
    order = np.argsort(sv_pos, kind="stable")
    sv_pos = sv_pos[order]
    idx = pa.array(order)
    proc_el = pa.concat_arrays([p1, p2]).take(idx)
    billed_s = pa.concat_arrays([b1, b2]).take(idx)
    ptr_el = pa.concat_arrays([ptr1, pa.array([""] * len(sv2_pos), _STR)]).take(idx)
    sv_line = line_at[sv_pos]
    has_proc, procedure, modifiers = _procedure(proc_el, comp)
    ok = pa.array(has_proc)
    line_proc = _pick(procedure.filter(ok), sv_line[has_proc], nreal)
    line_mods = _pick(modifiers.filter(ok), sv_line[has_proc], nreal)
    line_billed = _pick(_amount(billed_s), sv_line, nreal)
    has_ptr = ~_eq(ptr_el, "")
    line_ptr = _pick(ptr_el.filter(pa.array(has_ptr)), sv_line[has_ptr], nreal)
    line_date = _pick(line_date_ev[0], line_date_ev[1], nreal)

    ref_pos = np.flatnonzero(tok.mask("REF") & in_line)
    r1, r2 = tok.fields(ref_pos, [1, 2])
    sel = _eq(r1, "6R")
    line_ctrl = _pick(_nz(r2).filter(pa.array(sel)), line_at[ref_pos[sel]], nreal)

    # Claims without any service line keep one row (line number null, the claim's charge).
    per_claim = np.bincount(line_claim, minlength=nclaims) if nreal else np.zeros(nclaims, int)
    bare = np.flatnonzero(per_claim == 0)
    nlines = nreal + len(bare)
    lorder = np.argsort(np.concatenate([line_pos, clm_pos[bare]]), kind="stable")
    lidx = pa.array(lorder)
    L_claim = np.concatenate([line_claim, bare])[lorder]
    L_seg = np.concatenate([line_pos, clm_pos[bare]])[lorder] + 1
    L_number = np.concatenate([number, np.zeros(len(bare), np.int64)])[lorder]
    L_number_ok = np.concatenate([number_ok, np.zeros(len(bare), bool)])[lorder]
    nulls = _null(len(bare))
    L_proc = pa.concat_arrays([line_proc, nulls]).take(lidx)
    L_mods = pa.concat_arrays([line_mods, nulls]).take(lidx)
    L_date = pc.coalesce(
        pa.concat_arrays([line_date, nulls]).take(lidx), _take(claim_date, L_claim)
    )
    L_ctrl = pa.concat_arrays([line_ctrl, nulls]).take(lidx)
    L_ptr = pa.concat_arrays([line_ptr, nulls]).take(lidx)
    L_billed = pa.concat_arrays([line_billed, _take(claim_billed, bare)]).take(lidx)

    # Diagnoses: every qualifying HI composite of the claim, principal first.
    hi_pos = np.flatnonzero(tok.mask("HI") & in_claim)
    hi_start = tok.offsets[hi_pos] + 1
    hi_len = tok.offsets[hi_pos + 1] - hi_start
    parent = np.repeat(np.arange(len(hi_pos)), hi_len)
    elem = np.arange(int(hi_len.sum())) - np.repeat(np.cumsum(hi_len) - hi_len, hi_len) + 1
    flat = _take(tok.elements, np.repeat(hi_start, hi_len) + elem - 1)
    if tok.trim:
        flat = pc.utf8_trim_whitespace(flat)
    qual, code = _composite(flat, comp, 2)
    rank_idx = pc.index_in(qual, value_set=pa.array(list(_DX_QUALIFIERS), _STR))
    ranks = np.array(list(_DX_QUALIFIERS.values()), dtype=np.int64)
    valid = (elem >= 1) & _bool(pc.is_valid(rank_idx)) & ~_eq(code, "")
    dx_claim = claim_at[hi_pos[parent[valid]]]
    dx_rank = ranks[np.asarray(pc.fill_null(rank_idx, 0).to_numpy(), dtype=np.int64)[valid]]
    dx_order = np.lexsort((np.arange(len(dx_claim)), dx_rank, dx_claim))
    dx_code = code.filter(pa.array(valid)).take(pa.array(dx_order))
    dx_seg = hi_pos[parent[valid]][dx_order] + 1
    dx_elem = elem[valid][dx_order]
    dx_col_names = pa.array([f"HI{i:02d}-2" for i in range(int(dx_elem.max(initial=0)) + 1)])
    dx_col = dx_col_names.take(pa.array(dx_elem))
    ndx = np.bincount(dx_claim, minlength=nclaims) if len(dx_claim) else np.zeros(nclaims, int)
    dx_start = np.concatenate(([0], np.cumsum(ndx)))[:-1]

    # Diagnosis pointers (SV107) select the claim's codes that apply to a line.
    plists = pc.split_pattern(L_ptr, comp)
    pflat = plists.flatten()
    pparent = np.asarray(pc.list_parent_indices(plists).to_numpy(), dtype=np.int64)
    keep = ~_eq(pflat, "")
    pflat = pflat.filter(pa.array(keep))
    pparent = pparent[keep]
    nptr = np.bincount(pparent, minlength=nlines) if len(pparent) else np.zeros(nlines, int)
    poffsets = np.concatenate(([0], np.cumsum(nptr))).astype(np.int32)
    L_ptr_raw = pc.binary_join(
        pa.ListArray.from_arrays(pa.array(poffsets), pflat.cast(pa.string())), ","
    )
    L_ptr_raw = pc.if_else(pc.greater(pa.array(nptr), 0), L_ptr_raw, pa.scalar(None, pa.string()))
    enc = pc.dictionary_encode(pflat)
    pvalues = np.array([_pointer(str(v)) for v in enc.dictionary.to_pylist()], dtype=np.int64)
    pidx = (
        pvalues[np.asarray(enc.indices.to_numpy(zero_copy_only=False), dtype=np.int64)]
        if len(pflat)
        else np.zeros(0, np.int64)
    )
    L_ndx = ndx[L_claim] if nlines else np.zeros(0, np.int64)
    pvalid = (pidx >= 1) & (pidx <= L_ndx[pparent])
    bad_pointers = int((~pvalid).sum())
    nvalid = (
        np.bincount(pparent[pvalid], minlength=nlines) if pvalid.any() else np.zeros(nlines, int)
    )
    ptr_lines = nptr > 0
    all_lines = np.flatnonzero(~ptr_lines & (L_ndx > 0))
    empty_lines = np.flatnonzero((ptr_lines & (nvalid == 0)) | (~ptr_lines & (L_ndx == 0)))
    reps = L_ndx[all_lines]
    all_pos = np.arange(int(reps.sum())) - np.repeat(np.cumsum(reps) - reps, reps) + 1
    row_line = np.concatenate([pparent[pvalid], np.repeat(all_lines, reps), empty_lines])
    row_pos = np.concatenate([pidx[pvalid], all_pos, np.zeros(len(empty_lines), np.int64)])
    rorder = np.argsort(row_line, kind="stable")
    row_line = row_line[rorder]
    row_pos = row_pos[rorder]
    row_claim = L_claim[row_line]
    has_dx = row_pos > 0
    row_dx = np.where(has_dx, dx_start[row_claim] + row_pos - 1, -1)

    if bad_pointers:
        notes_bad = [
            f"{bad_pointers} diagnosis pointer(s) (SV107) point past the claim's HI codes; "
            "those pointers were skipped"
        ]
    else:
        notes_bad = []
    notes.extend(text for _, text in sorted(seg_notes))
    notes.extend(notes_bad)

    rl = pa.array(row_line)
    cols: dict[str, Any] = {
        "source_row": np.where(
            has_dx, dx_seg[np.maximum(row_dx, 0)] if len(dx_seg) else 0, L_seg[row_line]
        ),
        "dx_column": _take(dx_col, row_dx),
        "line_id": start + row_line,
        "claim_id": _take(_nz(claim_id), row_claim),
        "line": pd.arrays.IntegerArray(L_number[row_line], ~L_number_ok[row_line]),
        "date_raw": L_date.take(rl),
        "dx_position": pd.arrays.IntegerArray(row_pos, ~has_dx),
        "dx_value": _take(dx_code, row_dx),
        "procedure": L_proc.take(rl),
        "modifiers": L_mods.take(rl),
        "dx_pointers": L_ptr_raw.take(rl),
        "patient_id": _take(patient_id, row_claim),
        "birth_date": _take(birth_c, row_claim),
        "sex": _take(sex_c, row_claim),
        "billed": L_billed.take(rl),
        "payer": _take(payer, row_claim),
        "provider": _take(provider, row_claim),
    }
    return _finish(cols, name, L_ctrl.take(rl)), nclaims


def _dates(values: pa.Array) -> np.ndarray[Any, np.dtype[np.datetime64]]:
    """CCYYMMDD strings as datetime64[ns] (NaT when absent or not a date); parsed once each."""
    enc = pc.dictionary_encode(values.cast(_STR))
    parsed = pc.strptime(enc.dictionary, format="%Y%m%d", unit="ns", error_is_null=True)
    days = np.asarray(parsed.to_numpy(zero_copy_only=False), dtype="datetime64[ns]")
    idx = enc.indices.to_numpy(zero_copy_only=False)
    mask = np.isnan(idx) if idx.dtype.kind == "f" else np.zeros(len(idx), bool)
    out = np.full(len(values), np.datetime64("NaT"), dtype="datetime64[ns]")
    keep = ~mask
    if len(days):
        out[keep] = days[idx[keep].astype(np.int64)]
    return out


def _finish(cols: dict[str, Any], name: str, control: pa.Array) -> pd.DataFrame:
    """Build the canonical frame from column arrays (Arrow strings, numpy numbers)."""
    n = len(cols["line_id"])
    if not n:
        frame = empty_frame()
    else:
        data: dict[str, Any] = {}
        for key, values in cols.items():
            if isinstance(values, pa.Array | pa.ChunkedArray):
                if pa.types.is_floating(values.type):
                    data[key] = _floats(values)
                else:
                    data[key] = pd.arrays.ArrowStringArray(values.cast(_STR))
            else:
                data[key] = values
        for key in ("date_raw", "birth_date"):
            target = "date_of_service" if key == "date_raw" else key
            data[target] = _dates(cols[key])
        data["source_file"] = pd.Categorical.from_codes(np.zeros(n, np.int8), pd.Index([name]))
        data["source_sheet"] = pd.Categorical.from_codes(
            np.full(n, -1, np.int8), pd.Index([], dtype=object)
        )
        # Typed empty columns: conform would cast an all-NA object column value by value.
        for key, dtype in DTYPES.items():
            if key in data:
                continue
            if dtype == "float64":
                data[key] = np.full(n, np.nan)
            elif dtype == "string":
                data[key] = pd.arrays.ArrowStringArray(_null(n))
            elif dtype == "Int64":
                data[key] = pd.arrays.IntegerArray(np.zeros(n, np.int64), np.ones(n, bool))
        frame = conform(pd.DataFrame(data))
    frame.attrs[LINE_CONTROL_ATTR] = _CTRL_SEP.join(
        pc.fill_null(control, "").to_pylist() if len(control) else []
    )
    return frame


# --------------------------------------------------------------------------- 835


def _frame_835(tok: _Tokens, name: str, start: int) -> pd.DataFrame:
    """The canonical frame of an 835: one row per SVC (or per CLP without SVC)."""
    comp = tok.component
    st = tok.mask("ST")
    clp = tok.mask("CLP")
    n1 = tok.mask("N1")
    in_claim, claim_at = _context(clp, st | tok.mask("SE", "LX", "PLB") | n1)
    svc = tok.mask("SVC") & in_claim
    in_svc, svc_at = _context(svc, ~in_claim | clp)

    clp_pos = np.flatnonzero(clp)
    nclaims = len(clp_pos)
    claim_id, c_billed, c_paid = tok.fields(clp_pos, [1, 3, 4])
    st_pos = np.flatnonzero(st)
    n1_pos = np.flatnonzero(n1)
    f1, f2, f4 = tok.fields(n1_pos, [1, 2, 4])
    pr, pe = _eq(f1, "PR"), _eq(f1, "PE")
    payer = _state(clp_pos, n1_pos[pr], _nz(f2).filter(pa.array(pr)), st_pos)
    pe_val = pc.coalesce(_nz(f4), _nz(f2)).filter(pa.array(pe))
    provider0 = _state(clp_pos, n1_pos[pe], pe_val, st_pos)

    nm1_pos = np.flatnonzero(tok.mask("NM1") & in_claim & ~in_svc)
    e1, e3, e9 = tok.fields(nm1_pos, [1, 3, 9])
    sel = _eq(e1, "QC")
    patient_id = _pick(_nz(e9).filter(pa.array(sel)), claim_at[nm1_pos[sel]], nclaims)
    sel = _eq(e1, "82")
    rendering = pc.coalesce(_nz(e9), _nz(e3)).filter(pa.array(sel))
    has = _bool(pc.is_valid(rendering))
    provider = pc.coalesce(
        _pick(rendering.filter(pa.array(has)), claim_at[nm1_pos[sel][has]], nclaims), provider0
    )

    svc_pos = np.flatnonzero(svc)
    nsvc = len(svc_pos)
    s1, s2, s3 = tok.fields(svc_pos, [1, 2, 3])
    has_proc, procedure, modifiers = _procedure(s1, comp)
    procedure = pc.if_else(pa.array(has_proc), procedure, pa.scalar(None, _STR))
    svc_claim = claim_at[svc_pos]

    dtm_pos = np.flatnonzero(tok.mask("DTM") & in_claim)
    q1, q2 = tok.fields(dtm_pos, [1, 2])
    dval = _date(q2)
    known = _bool(pc.is_valid(dval))
    at_svc = in_svc[dtm_pos]
    sel = at_svc & _isin(q1, ("472", "150")) & known
    svc_date = _pick(dval.filter(pa.array(sel)), svc_at[dtm_pos[sel]], nsvc, last=False)
    sel = ~at_svc & _isin(q1, ("232", "050", "150")) & known
    claim_date = _pick(dval.filter(pa.array(sel)), claim_at[dtm_pos[sel]], nclaims, last=False)

    amt_pos = np.flatnonzero(tok.mask("AMT") & in_svc)
    a1, a2 = tok.fields(amt_pos, [1, 2])
    sel = _eq(a1, "B6")
    allowed = _pick(_amount(a2).filter(pa.array(sel)), svc_at[amt_pos[sel]], nsvc)
    ref_pos = np.flatnonzero(tok.mask("REF") & in_svc)
    r1, r2 = tok.fields(ref_pos, [1, 2])
    sel = _eq(r1, "6R")
    control = _pick(_nz(r2).filter(pa.array(sel)), svc_at[ref_pos[sel]], nsvc)

    # CAS triplets as GROUP-REASON, on the line when inside a SVC, else on the claim.
    cas_pos = np.flatnonzero(tok.mask("CAS") & in_claim)
    cas = tok.fields(cas_pos, list(range(1, 20)))
    group = _nz(cas[0])
    codes: pa.Array = _null(len(cas_pos))
    for i in range(1, 19, 3):
        reason = _nz(cas[i])
        coded = pc.coalesce(pc.binary_join_element_wise(group, reason, _s("-")), reason)
        codes = _join2(codes, coded, " ")
    at_svc = in_svc[cas_pos]
    sel = pa.array(at_svc)
    svc_carc = _concat_by(codes.filter(sel), svc_at[cas_pos[at_svc]], nsvc)
    sel = pa.array(~at_svc)
    claim_carc = _concat_by(codes.filter(sel), claim_at[cas_pos[~at_svc]], nclaims)

    # Remarks: MOA/MIA on the claim (wherever they stand), LQ*HE on the line.
    moa_pos = np.flatnonzero(tok.mask("MOA", "MIA") & in_claim)
    moa_rows = tok.pylist(moa_pos)
    remark_claim: list[int] = []
    remark_text: list[str] = []
    for p, seg in zip(moa_pos, moa_rows, strict=True):
        picks = range(3, 8) if seg[0] == "MOA" else (5, 20, 21, 22, 23)
        for r in (_el(seg, i) for i in picks):
            if r:
                remark_claim.append(int(claim_at[p]))
                remark_text.append(r)
    claim_rarc = _concat_by(
        pa.array(remark_text, _STR), np.array(remark_claim, dtype=np.int64), nclaims
    )
    lq_pos = np.flatnonzero(tok.mask("LQ") & in_svc)
    l1, l2 = tok.fields(lq_pos, [1, 2])
    sel = _eq(l1, "HE")
    svc_rarc = _concat_by(l2.filter(pa.array(sel)), svc_at[lq_pos[sel]], nsvc)

    # Rows: the SVCs in file order, and one row for each claim without a SVC.
    per_claim = np.bincount(svc_claim, minlength=nclaims) if nsvc else np.zeros(nclaims, int)
    bare = np.flatnonzero(per_claim == 0)
    order = np.argsort(np.concatenate([svc_pos, clp_pos[bare]]), kind="stable")
    ridx = pa.array(order)
    row_claim = np.concatenate([svc_claim, bare])[order]
    row_svc = np.concatenate([np.arange(nsvc), np.full(len(bare), -1)])[order]
    is_svc = row_svc >= 0
    first_row = np.concatenate(([0], np.cumsum(np.bincount(row_claim, minlength=nclaims))))
    line_no = np.arange(len(row_claim)) - first_row[row_claim] + 1
    seg_no = np.concatenate([svc_pos, clp_pos[bare]])[order] + 1

    def per_row(line_values: pa.Array, claim_values: pa.Array) -> pa.Array:
        return pa.concat_arrays(
            [line_values.cast(claim_values.type), _take(claim_values, bare)]
        ).take(ridx)

    rc = row_claim
    cols: dict[str, Any] = {
        "source_row": seg_no,
        "dx_column": _null(len(rc)),
        "line_id": start + np.arange(len(rc)),
        "claim_id": _take(_nz(claim_id), rc),
        "line": pd.arrays.IntegerArray(line_no, ~is_svc),
        "date_raw": pc.coalesce(_take(svc_date, row_svc), _take(claim_date, rc)),
        "dx_position": pd.arrays.IntegerArray(np.zeros(len(rc), np.int64), np.ones(len(rc), bool)),
        "dx_value": _null(len(rc)),
        "procedure": _take(procedure, row_svc),
        "modifiers": _take(modifiers, row_svc),
        "dx_pointers": _null(len(rc)),
        "patient_id": _take(patient_id, rc),
        "birth_date": _null(len(rc)),
        "sex": _null(len(rc)),
        "billed": per_row(_amount(s2), _amount(c_billed)),
        "allowed": _take(allowed, row_svc) if nsvc else pa.nulls(len(rc), pa.float64()),
        "paid": per_row(_amount(s3), _amount(c_paid)),
        "carc": _join2(_take(claim_carc, rc), _take(svc_carc, row_svc), " "),
        "rarc": _join2(_take(claim_rarc, rc), _take(svc_rarc, row_svc), " "),
        "payer": _take(payer, rc),
        "provider": _take(provider, rc),
    }
    return _finish(cols, name, _take(control, row_svc))


# --------------------------------------------------------------------------- public API


def read_x12(path: Path, *, line_id_start: int = 0, source_name: str | None = None) -> ReadResult:
    """Read one X12 837P/837I or 835 file into the canonical frame."""
    path = Path(path)
    name = source_name if source_name is not None else str(path)
    tokens = _tokenize(_decode(path, name), path, name)
    notes = list(tokens.notes)
    kinds = list(_transaction_kinds(tokens))
    if not kinds:
        raise _fail(path, name, "no ST transaction set found; nothing to read")
    types = {k for k, _ in kinds}
    if types - {"837", "835"}:
        other = ", ".join(sorted(types - {"837", "835"}))
        raise _fail(
            path,
            name,
            f"transaction set {other} is not supported; eobcheck reads 837 claims and 835 "
            "remittances",
        )
    if types == {"837", "835"}:
        raise _fail(
            path, name, "the file mixes 837 and 835 transaction sets; give them as two files"
        )
    if "835" in types:
        frame = _frame_835(tokens, name, line_id_start)
        notes.append(_NO_DX_NOTE)
        fmt = "x12-835"
    else:
        frame, nclaims = _frame_837(tokens, name, line_id_start, notes)
        institutional = sum(1 for _, v in kinds if "X223" in v or "X096" in v)
        if not any(v for _, v in kinds):
            institutional = int(tokens.mask("SV2").sum())
        fmt = "x12-837i" if institutional * 2 > len(kinds) else "x12-837p"
        if not nclaims:
            notes.append("the 837 has no CLM segment: no claims were read")
    return ReadResult(
        frame=frame,
        path=path,
        format=fmt,
        rows_read=int(frame["line_id"].nunique()) if len(frame) else 0,
        notes=notes,
    )


_NO_DX_NOTE: Final = (
    "an X12 835 carries no diagnosis codes: add the matching 837 claim file "
    "(CLM01 = CLP01) or the practice's EOB export to check diagnoses"
)


def line_controls(frame: pd.DataFrame) -> list[str | None] | None:
    """Return the REF*6R line control number of each row of an X12 frame, or None."""
    packed = frame.attrs.get(LINE_CONTROL_ATTR)
    if not isinstance(packed, str) or not len(frame):
        return None
    values = packed.split(_CTRL_SEP)
    if len(values) != len(frame):
        return None  # the frame was filtered or concatenated: the numbers no longer align
    return [v or None for v in values]


def _controls(frame: pd.DataFrame) -> pd.Series:
    """The line control numbers as a string Series aligned to ``frame`` (all null if none)."""
    packed = frame.attrs.get(LINE_CONTROL_ATTR)
    values = packed.split(_CTRL_SEP) if isinstance(packed, str) and len(frame) else []
    if len(values) != len(frame):
        return pd.Series(pd.NA, index=frame.index, dtype="string")
    arr = _nz(pa.array(values, _STR))
    return pd.Series(pd.arrays.ArrowStringArray(arr), index=frame.index)


def _subset(frame: pd.DataFrame, keep: BoolArray) -> pd.DataFrame:
    """Rows of an X12 frame, with its line control numbers kept aligned."""
    out = frame[keep].reset_index(drop=True)
    packed = frame.attrs.get(LINE_CONTROL_ATTR)
    if isinstance(packed, str):
        values = packed.split(_CTRL_SEP) if len(frame) else []
        if len(values) == len(frame):
            out.attrs[LINE_CONTROL_ATTR] = _CTRL_SEP.join(
                v for v, k in zip(values, keep, strict=True) if k
            )
        else:
            out.attrs.pop(LINE_CONTROL_ATTR, None)
    return out


def _member(values: pd.Series, pool: pd.Series) -> BoolArray:
    """values.isin(pool) for string columns, without a Python object per value."""
    arr = pa.array(values, _STR)
    pool_arr = pa.array(pool.dropna(), _STR)
    return _bool(pc.is_in(arr, value_set=pc.unique(pool_arr)))


def _match(left: pd.DataFrame, right: pd.DataFrame, keys: list[str]) -> IntArray:
    """For each row of ``left``, the position of the first ``right`` row with equal ``keys``
    (no key null), or -1."""
    out = np.full(len(left), -1, dtype=np.int64)
    lok = left[keys].notna().all(axis=1).to_numpy()
    rok = right[keys].notna().all(axis=1).to_numpy()
    if not lok.any() or not rok.any():
        return out
    both = pd.concat([left.loc[lok, keys], right.loc[rok, keys]], ignore_index=True)
    codes = np.zeros(len(both), dtype=np.int64)
    for k in keys:
        c, u = pd.factorize(both[k])
        codes = codes * (len(u) + 1) + c
    lcodes, rcodes = codes[: lok.sum()], codes[lok.sum() :]
    rpos = np.flatnonzero(rok)
    uniq, first = np.unique(rcodes, return_index=True)
    found = np.searchsorted(uniq, lcodes)
    found = np.minimum(found, len(uniq) - 1)
    hit = uniq[found] == lcodes
    out[np.flatnonzero(lok)[hit]] = rpos[first[found[hit]]]
    return out


def join_remittance(claims: pd.DataFrame, remits: pd.DataFrame) -> pd.DataFrame:
    """Fill allowed/paid/carc/rarc of an 837 frame from an 835 frame (CLP01 = CLM01)."""
    return _join(claims, remits)[0]


def _join(claims: pd.DataFrame, remits: pd.DataFrame) -> tuple[pd.DataFrame, BoolArray]:
    """The joined 837 frame, and which 835 rows were used (or superseded by a correction)."""
    money = ["allowed", "paid", "carc", "rarc"]
    out = claims.copy()
    used = np.zeros(len(remits), dtype=bool)
    if remits.empty or claims.empty:
        return out, used
    r = remits[["claim_id", "procedure", "billed", *money]].copy()
    r["_ctrl"] = _controls(remits).to_numpy()

    # A reversal (negative charge) is superseded by a corrected payment for the same claim.
    rev = r["billed"].lt(0).fillna(False).to_numpy(dtype=bool)
    superseded = rev & _member(r["claim_id"], r.loc[~rev, "claim_id"])
    used |= superseded & _member(r["claim_id"], out["claim_id"])
    kept = np.flatnonzero(~superseded)
    r = r.iloc[kept].reset_index(drop=True)
    line_level = r["procedure"].notna().to_numpy()
    r["_occ"] = r.groupby(["claim_id", "procedure"], dropna=False, sort=False).cumcount()

    # Service lines of the 837, one row per line (the frame has one row per diagnosis).
    first = ~out["line_id"].duplicated().to_numpy()
    lines = out.loc[first, ["line_id", "claim_id", "procedure"]].reset_index(drop=True)
    lines["_ctrl"] = _controls(claims).to_numpy()[first]
    lines["_occ"] = lines.groupby(["claim_id", "procedure"], dropna=False, sort=False).cumcount()

    # Lines by line control number where both sides carry one, then by procedure and its
    # occurrence within the claim (a payer may answer the lines in another order).
    rl = r[line_level]
    rl_pos = np.flatnonzero(line_level)
    src = np.full(len(lines), -1, dtype=np.int64)
    if rl["_ctrl"].notna().any() and lines["_ctrl"].notna().any():
        m = _match(lines, rl, ["claim_id", "_ctrl"])
        src[m >= 0] = rl_pos[m[m >= 0]]
    rest = np.flatnonzero(src < 0)
    m = _match(lines.iloc[rest], rl, ["claim_id", "procedure", "_occ"])
    src[rest[m >= 0]] = rl_pos[m[m >= 0]]

    # Claim-level adjudication (CLP without SVC): its codes apply to every line of the claim.
    rest = np.flatnonzero(src < 0)
    cl_pos = np.flatnonzero(~line_level)
    m = _match(lines.iloc[rest], r.iloc[cl_pos], ["claim_id"])
    claim_src = np.full(len(lines), -1, dtype=np.int64)
    claim_src[rest[m >= 0]] = cl_pos[m[m >= 0]]
    used[kept[src[src >= 0]]] = True
    used[kept[claim_src[claim_src >= 0]]] = True

    # Expand from lines to the frame's rows.
    row_line = pd.Index(lines["line_id"]).get_indexer(out["line_id"])
    row_src = src[row_line]
    row_claim_src = claim_src[row_line]
    for col in money:
        values = r[col]
        pick = (
            row_src
            if col in ("allowed", "paid")
            else np.where(row_src >= 0, row_src, row_claim_src)
        )
        if pd.api.types.is_float_dtype(values.dtype):
            filled = np.where(pick >= 0, values.to_numpy()[np.maximum(pick, 0)], np.nan)
            new = pd.Series(filled, index=out.index, dtype=out[col].dtype)
        else:
            arr = pa.array(values, _STR)
            new = pd.Series(pd.arrays.ArrowStringArray(_take(arr, pick)), index=out.index)
        out[col] = out[col].fillna(new)
    return out, used


def join_results(results: Sequence[ReadResult]) -> list[ReadResult]:
    """Join each 835 of one check into the 837 results whose claims it pays (CLP01 = CLM01).

    The 837 results come back carrying paid/allowed/carc/rarc. Each 835 result keeps only
    what no 837 took: the claims no 837 of the check has, and service payments of known
    claims that matched no 837 line (so no denial code is lost); they are read as an 835
    alone, with its "no diagnoses" note. Other results pass through unchanged, and the
    order of the list is kept.
    """
    out = list(results)
    claims_at = [i for i, r in enumerate(out) if r.format.startswith("x12-837")]
    remits_at = [i for i, r in enumerate(out) if r.format == "x12-835"]
    if not claims_at or not remits_at:
        return out
    for j in remits_at:
        remit = out[j]
        rf = remit.frame
        if rf.empty:
            continue
        known = np.zeros(len(rf), dtype=bool)
        used = np.zeros(len(rf), dtype=bool)
        joined_into: list[str] = []
        for i in claims_at:
            claim = out[i]
            cf = claim.frame
            hit = _member(rf["claim_id"], cf["claim_id"])
            if not hit.any():
                continue
            known |= hit
            joined, took = _join(cf, rf)
            used |= took
            lines = _filled_lines(cf, joined)
            claims_n = int(rf.loc[hit, "claim_id"].nunique())
            out[i] = replace(
                claim,
                frame=joined,
                notes=[
                    *claim.notes,
                    f"{claims_n:,} claim(s) paid in {remit.path} were joined by claim number "
                    f"(835 CLP01 = 837 CLM01): payment and adjustment codes filled on "
                    f"{lines:,} service line(s)",
                ],
            )
            joined_into.append(str(claim.path))
        if not known.any():
            continue
        total = int(rf["claim_id"].nunique(dropna=False))
        matched = int(rf.loc[known, "claim_id"].nunique())
        notes = [n for n in remit.notes if n != _NO_DX_NOTE]
        notes.append(
            f"{matched:,} of {total:,} claim(s) were joined into {', '.join(joined_into)} "
            "and are checked there"
        )
        stray = int((known & ~used).sum())
        if stray:
            notes.append(
                f"{stray:,} service payment(s) of those claims matched no 837 service line "
                "(by REF*6R or by procedure) and are kept here"
            )
        keep = ~used
        if keep.any():
            notes.append(_NO_DX_NOTE)
        out[j] = replace(remit, frame=_subset(rf, keep), notes=notes)
    return out


def _filled_lines(before: pd.DataFrame, after: pd.DataFrame) -> int:
    """Number of service lines that gained a payment or an adjustment code."""
    had = before["paid"].notna() | before["carc"].notna()
    has = after["paid"].notna() | after["carc"].notna()
    return int(after.loc[(has & ~had).to_numpy(), "line_id"].nunique())
