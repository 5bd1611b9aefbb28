"""X12 837P/837I (4010 and 5010) claims and X12 835 remittances into the canonical frame.

A focused, dependency-free reader: it tokenizes the interchange with the separators the ISA
header declares (tolerating CRLF or no newline, indented segments, a component separator used
in the body that differs from ISA16, files that start at ST without an envelope, and several
ISA/GS/ST envelopes in one file) and walks the segments with a small state machine. It reads
what the checker needs, not the whole implementation guide.

Provenance: ``source_row`` is the 1-based segment number in the file (the ISA segment is 1),
``dx_column`` names the HI element and component, e.g. ``HI01-2`` (the code of the first
composite of that HI segment).

An 835 carries no diagnoses: its frame has one row per service payment (SVC) with null
diagnosis columns, and :func:`join_remittance` copies its money and adjustment codes onto the
matching 837 lines (CLP01 = CLM01, and REF*6R line control numbers where both files carry them).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pandas as pd

from eobcheck.errors import InputError
from eobcheck.model import DTYPES, conform, empty_frame
from eobcheck.readers.base import ReadResult

__all__ = ["join_remittance", "line_controls", "read_x12"]

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
_CAS_GROUPS: Final = frozenset({"CO", "PR", "OA", "PI", "CR"})


@dataclass
class _Tokens:
    """The segments of one file with their 1-based segment numbers."""

    segments: list[list[str]]
    numbers: list[int]
    component: str
    notes: list[str]


def _fail(path: Path, name: str, message: str, segment: int | None = None) -> InputError:
    where = f"segment {segment}: " if segment is not None else ""
    return InputError(f"{where}{message}", path=name)


def _decode(path: Path, name: str) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the file ({exc.strerror})", path=name) from exc
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        # X12 is ASCII in practice; latin-1 never fails and keeps byte positions.
        return raw.decode("latin-1")


def _tokenize(text: str, path: Path, name: str) -> _Tokens:
    """Split an X12 text into segments using the separators of its first header."""
    body = text.lstrip()
    notes: list[str] = []
    if body.startswith("ISA"):
        if len(body) < 4:
            raise _fail(path, name, "ISA header is truncated", 1)
        element = body[3]
        parts = body.split(element, 16)
        if len(parts) < 17 or len(parts[16]) < 2:
            raise _fail(
                path, name, "ISA header is truncated: fewer than 16 elements before ISA16", 1
            )
        component = parts[16][0]
        terminator = parts[16][1]
        if terminator in "\r\n":
            terminator = "\n"
    elif body.startswith("ST") and len(body) > 2 and not body[2].isalnum():
        # A bare transaction set (no ISA/GS envelope), as some payer portals export it.
        element = body[2]
        match = re.search(r"[~'\n]", body)
        terminator = match.group(0) if match else "~"
        component = ":"
        notes.append(
            "the file has no ISA interchange header; separators were inferred from the ST "
            f"segment (element {element!r}, segment terminator {terminator!r})"
        )
    else:
        snippet = body[:20].replace("\n", " ")
        raise _fail(
            path,
            name,
            f"not an X12 file: it should start with an ISA (or ST) segment, found {snippet!r}",
        )

    segments: list[list[str]] = []
    numbers: list[int] = []
    number = 0
    for chunk in body.split(terminator):
        seg = chunk.strip()
        if not seg:
            continue
        number += 1
        segments.append(seg.split(element))
        numbers.append(number)

    component = _body_component(segments, component, notes)
    return _Tokens(segments, numbers, component, notes)


def _body_component(segments: list[list[str]], declared: str, notes: list[str]) -> str:
    """Return the component separator the body really uses (some files contradict ISA16)."""
    seen: dict[str, int] = {}
    for seg in segments[:400]:
        tag = seg[0]
        if tag in ("SV1", "SVC", "HI") and len(seg) > 1:
            values = seg[1:] if tag == "HI" else seg[1:2]
        elif tag == "SV2" and len(seg) > 2:
            values = seg[2:3]
        else:
            continue
        for value in values:
            m = _COMPOSITE_RE.match(value)
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


def _date(value: str) -> str | None:
    """Return the first CCYYMMDD of a D8/RD8 value, or None."""
    value = value.strip()
    if len(value) >= 8 and value[:8].isdigit():
        return value[:8]
    return None


def _pointer(value: str) -> int:
    """Return a diagnosis pointer as an int; some senders write "1.00"; 0 when unreadable."""
    if value.isdigit():
        return int(value)
    m = re.fullmatch(r"(\d{1,2})(?:\.0*)?", value.strip())
    return int(m.group(1)) if m else 0


def _amount(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _el(seg: list[str], i: int) -> str:
    return seg[i].strip() if len(seg) > i else ""


def _transaction_kinds(tokens: _Tokens) -> Iterator[tuple[str, str]]:
    """Yield (ST01, implementation version) for each transaction set."""
    gs_version = ""
    for seg in tokens.segments:
        if seg[0] == "GS":
            gs_version = _el(seg, 8)
        elif seg[0] == "ST":
            yield _el(seg, 1), _el(seg, 3) or gs_version


# --------------------------------------------------------------------------- 837


@dataclass
class _Line:
    number: int | None
    seg_no: int
    procedure: str | None = None
    modifiers: str | None = None
    pointers: list[str] = field(default_factory=list)
    pointers_raw: str | None = None
    billed: float | None = None
    date: str | None = None
    control: str | None = None


@dataclass
class _Claim:
    claim_id: str
    seg_no: int
    billed: float | None
    patient_id: str | None
    birth: str | None
    sex: str | None
    payer: str | None
    provider: str | None
    date_472: str | None = None
    date_stmt: str | None = None
    dx: list[tuple[int, int, str, int, str]] = field(default_factory=list)
    lines: list[_Line] = field(default_factory=list)


def _parse_837(tokens: _Tokens, name: str, notes: list[str]) -> list[_Claim]:
    comp = tokens.component
    claims: list[_Claim] = []
    claim: _Claim | None = None
    line: _Line | None = None
    sub_id = sub_birth = sub_sex = None
    pat_id = pat_birth = pat_sex = None
    payer = billing = None
    entity = ""  # which person/party the last NM1 named: "IL", "QC", "PR", "85", ...
    in_claim = False
    hi_order = 0
    for seg, seg_no in zip(tokens.segments, tokens.numbers, strict=True):
        tag = seg[0]
        if tag == "ST":
            claim = line = None
            in_claim = False
            sub_id = sub_birth = sub_sex = pat_id = pat_birth = pat_sex = None
            payer = billing = None
        elif tag == "HL":
            level = _el(seg, 3)
            claim = line = None
            in_claim = False
            if level == "20":
                billing = None
            elif level == "22":
                sub_id = sub_birth = sub_sex = None
                pat_id = pat_birth = pat_sex = None
                payer = None
            elif level == "23":
                pat_id = pat_birth = pat_sex = None
        elif tag == "NM1":
            entity = _el(seg, 1)
            if in_claim:
                # 2310x/2330x/2420x loops: other payers, other subscribers, line providers.
                if entity == "82" and claim is not None and line is None:
                    claim.provider = _el(seg, 9) or _el(seg, 3) or claim.provider
                continue
            if entity == "IL":
                sub_id = _el(seg, 9) or None
            elif entity == "QC":
                pat_id = _el(seg, 9) or None
            elif entity == "PR":
                payer = _el(seg, 3) or _el(seg, 9) or None
            elif entity == "85":
                billing = _el(seg, 9) or _el(seg, 3) or None
        elif tag == "DMG" and not in_claim:
            birth = _date(_el(seg, 2)) if _el(seg, 1) == "D8" else None
            sex = _el(seg, 3) or None
            if entity == "QC":
                pat_birth, pat_sex = birth, sex
            else:
                sub_birth, sub_sex = birth, sex
        elif tag == "CLM":
            in_claim = True
            line = None
            hi_order = 0
            claim_id = _el(seg, 1)
            if not claim_id:
                notes.append(f"segment {seg_no}: CLM without a claim number (CLM01); kept")
            claim = _Claim(
                claim_id=claim_id,
                seg_no=seg_no,
                billed=_amount(_el(seg, 2)),
                patient_id=pat_id or sub_id,
                birth=pat_birth or sub_birth,
                sex=pat_sex or sub_sex,
                payer=payer,
                provider=billing,
            )
            claims.append(claim)
        elif claim is None:
            continue
        elif tag == "HI":
            for i, element in enumerate(seg[1:], start=1):
                parts = element.strip().split(comp)
                qual = parts[0]
                rank = _DX_QUALIFIERS.get(qual)
                if rank is None or len(parts) < 2 or not parts[1]:
                    continue
                claim.dx.append((rank, hi_order, parts[1], seg_no, f"HI{i:02d}-2"))
                hi_order += 1
        elif tag == "LX":
            num = _el(seg, 1)
            line = _Line(number=int(num) if num.isdigit() else None, seg_no=seg_no)
            claim.lines.append(line)
        elif tag in ("SV1", "SV2"):
            if line is None:
                line = _Line(number=len(claim.lines) + 1, seg_no=seg_no)
                claim.lines.append(line)
                notes.append(f"segment {seg_no}: {tag} without LX; numbered it {line.number}")
            proc_el = _el(seg, 1) if tag == "SV1" else _el(seg, 2)
            parts = proc_el.split(comp) if proc_el else []
            if len(parts) >= 2 and parts[1]:
                line.procedure = parts[1].upper()
                mods = [m for m in parts[2:6] if m]
                line.modifiers = " ".join(mods) if mods else None
            line.billed = _amount(_el(seg, 2) if tag == "SV1" else _el(seg, 3))
            if tag == "SV1" and _el(seg, 7):
                ptr = [p for p in _el(seg, 7).split(comp) if p]
                line.pointers = ptr
                line.pointers_raw = ",".join(ptr)
        elif tag == "DTP":
            qual, value = _el(seg, 1), _date(_el(seg, 3))
            if line is not None:
                if qual == "472":
                    line.date = value
            elif qual == "472":
                claim.date_472 = value
            elif qual == "434":
                claim.date_stmt = value
        elif tag == "REF" and line is not None and _el(seg, 1) == "6R":
            line.control = _el(seg, 2) or None
        elif tag == "SE":
            claim = line = None
            in_claim = False
    return claims


def _frame_837(claims: list[_Claim], name: str, start: int, notes: list[str]) -> pd.DataFrame:
    cols: dict[str, list[object]] = {
        k: []
        for k in (
            "source_row",
            "dx_column",
            "line_id",
            "claim_id",
            "line",
            "date_raw",
            "dx_position",
            "dx_value",
            "procedure",
            "modifiers",
            "dx_pointers",
            "patient_id",
            "birth_date",
            "sex",
            "billed",
            "payer",
            "provider",
        )
    }
    control: list[str | None] = []
    line_id = start
    bad_pointers = 0
    for claim in claims:
        # Stable sort: principal first, then the rest in file order.
        dx = sorted(claim.dx, key=lambda d: (d[0], d[1]))
        lines = claim.lines or [_Line(number=None, seg_no=claim.seg_no, billed=claim.billed)]
        claim_date = claim.date_472 or claim.date_stmt
        for ln in lines:
            if ln.pointers:
                chosen: list[tuple[int, tuple[int, int, str, int, str] | None]] = []
                for p in ln.pointers:
                    idx = _pointer(p)
                    if 1 <= idx <= len(dx):
                        chosen.append((idx, dx[idx - 1]))
                    else:
                        bad_pointers += 1
                if not chosen:
                    chosen = [(0, None)]
            elif dx:
                chosen = [(i, d) for i, d in enumerate(dx, start=1)]
            else:
                chosen = [(0, None)]
            date = ln.date or claim_date
            for pos, d in chosen:
                cols["source_row"].append(d[3] if d else ln.seg_no)
                cols["dx_column"].append(d[4] if d else None)
                cols["dx_position"].append(pos if d else None)
                cols["dx_value"].append(d[2] if d else None)
                cols["line_id"].append(line_id)
                cols["claim_id"].append(claim.claim_id or None)
                cols["line"].append(ln.number)
                cols["date_raw"].append(date)
                cols["procedure"].append(ln.procedure)
                cols["modifiers"].append(ln.modifiers)
                cols["dx_pointers"].append(ln.pointers_raw)
                cols["patient_id"].append(claim.patient_id)
                cols["birth_date"].append(claim.birth)
                cols["sex"].append(claim.sex)
                cols["billed"].append(ln.billed)
                cols["payer"].append(claim.payer)
                cols["provider"].append(claim.provider)
                control.append(ln.control)
            line_id += 1
    if bad_pointers:
        notes.append(
            f"{bad_pointers} diagnosis pointer(s) (SV107) point past the claim's HI codes; "
            "those pointers were skipped"
        )
    return _finish(cols, name, control)


def _with_float_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Add absent float columns as NaN (conform cannot cast an all-NA object column)."""
    for name, dtype in DTYPES.items():
        if dtype == "float64" and name not in df.columns:
            df[name] = float("nan")
    return df


def _finish(cols: dict[str, list[object]], name: str, control: list[str | None]) -> pd.DataFrame:
    if not cols["line_id"]:
        frame = empty_frame()
    else:
        df = pd.DataFrame(cols)
        df["date_of_service"] = pd.to_datetime(df["date_raw"], format="%Y%m%d", errors="coerce")
        df["birth_date"] = pd.to_datetime(df["birth_date"], format="%Y%m%d", errors="coerce")
        df["source_file"] = name
        df["source_sheet"] = None
        frame = conform(_with_float_columns(df))
    frame.attrs[LINE_CONTROL_ATTR] = _CTRL_SEP.join(c or "" for c in control)
    return frame


# --------------------------------------------------------------------------- 835


def _cas(seg: list[str]) -> list[str]:
    """Return CAS adjustments as GROUP-REASON codes (triplets from CAS02)."""
    group = _el(seg, 1)
    out = []
    for i in range(2, 20, 3):
        reason = _el(seg, i)
        if reason:
            out.append(f"{group}-{reason}" if group else reason)
    return out


def _parse_835(tokens: _Tokens, name: str, start: int, notes: list[str]) -> pd.DataFrame:
    comp = tokens.component
    cols: dict[str, list[object]] = {
        k: []
        for k in (
            "source_row",
            "dx_column",
            "line_id",
            "claim_id",
            "line",
            "date_raw",
            "dx_position",
            "dx_value",
            "procedure",
            "modifiers",
            "dx_pointers",
            "patient_id",
            "birth_date",
            "sex",
            "billed",
            "allowed",
            "paid",
            "carc",
            "rarc",
            "payer",
            "provider",
        )
    }
    control: list[str | None] = []
    payer = provider = None
    party = ""
    claim: dict[str, object] | None = None
    svc: dict[str, object] | None = None
    lines: list[dict[str, object]] = []
    claims: list[tuple[dict[str, object], list[dict[str, object]]]] = []

    def close() -> None:
        nonlocal claim, lines, svc
        if claim is not None:
            claims.append((claim, lines))
        claim, lines, svc = None, [], None

    for seg, seg_no in zip(tokens.segments, tokens.numbers, strict=True):
        tag = seg[0]
        if tag in ("ST", "SE", "LX", "PLB"):
            close()
            if tag == "ST":
                payer = provider = None
        elif tag == "N1":
            close()
            party = _el(seg, 1)
            if party == "PR":
                payer = _el(seg, 2) or None
            elif party == "PE":
                provider = _el(seg, 4) or _el(seg, 2) or None
        elif tag == "CLP":
            close()
            claim = {
                "claim_id": _el(seg, 1) or None,
                "status": _el(seg, 2),
                "billed": _amount(_el(seg, 3)),
                "paid": _amount(_el(seg, 4)),
                "seg_no": seg_no,
                "carc": [],
                "rarc": [],
                "patient_id": None,
                "date": None,
                "provider": provider,
                "payer": payer,
            }
        elif claim is None:
            continue
        elif tag == "SVC":
            parts = _el(seg, 1).split(comp)
            mods = [m for m in parts[2:6] if m]
            svc = {
                "procedure": parts[1].upper() if len(parts) > 1 and parts[1] else None,
                "modifiers": " ".join(mods) if mods else None,
                "billed": _amount(_el(seg, 2)),
                "paid": _amount(_el(seg, 3)),
                "allowed": None,
                "seg_no": seg_no,
                "carc": [],
                "rarc": [],
                "date": None,
                "control": None,
            }
            lines.append(svc)
        elif tag == "CAS":
            target = svc if svc is not None else claim
            target["carc"].extend(_cas(seg))  # type: ignore[attr-defined]
        elif tag == "NM1" and svc is None:
            if _el(seg, 1) == "QC":
                claim["patient_id"] = _el(seg, 9) or None
            elif _el(seg, 1) == "82":
                claim["provider"] = _el(seg, 9) or _el(seg, 3) or claim["provider"]
        elif tag == "DTM":
            qual, value = _el(seg, 1), _date(_el(seg, 2))
            if svc is not None and qual in ("472", "150"):
                svc["date"] = svc["date"] or value
            elif svc is None and qual in ("232", "050", "150") and claim["date"] is None:
                claim["date"] = value
        elif tag == "AMT" and svc is not None and _el(seg, 1) == "B6":
            svc["allowed"] = _amount(_el(seg, 2))
        elif tag == "REF" and svc is not None and _el(seg, 1) == "6R":
            svc["control"] = _el(seg, 2) or None
        elif tag == "LQ" and svc is not None and _el(seg, 1) == "HE":
            svc["rarc"].append(_el(seg, 2))  # type: ignore[attr-defined]
        elif tag == "MOA":
            claim["rarc"].extend(r for r in (_el(seg, i) for i in range(3, 8)) if r)  # type: ignore[attr-defined]
        elif tag == "MIA":
            claim["rarc"].extend(r for r in (_el(seg, i) for i in (5, 20, 21, 22, 23)) if r)  # type: ignore[attr-defined]
    close()

    line_id = start
    for clm, svcs in claims:
        rows = svcs or [
            {
                "procedure": None,
                "modifiers": None,
                "billed": clm["billed"],
                "paid": clm["paid"],
                "allowed": None,
                "seg_no": clm["seg_no"],
                "carc": [],
                "rarc": [],
                "date": None,
                "control": None,
                "line": None,
            }
        ]
        for n, s in enumerate(rows, start=1):
            carc = [*clm["carc"], *s["carc"]]  # type: ignore[misc]
            rarc = [*clm["rarc"], *s["rarc"]]  # type: ignore[misc]
            cols["source_row"].append(s["seg_no"])
            cols["dx_column"].append(None)
            cols["line_id"].append(line_id)
            cols["claim_id"].append(clm["claim_id"])
            cols["line"].append(s.get("line", n))
            cols["date_raw"].append(s["date"] or clm["date"])
            cols["dx_position"].append(None)
            cols["dx_value"].append(None)
            cols["procedure"].append(s["procedure"])
            cols["modifiers"].append(s["modifiers"])
            cols["dx_pointers"].append(None)
            cols["patient_id"].append(clm["patient_id"])
            cols["birth_date"].append(None)
            cols["sex"].append(None)
            cols["billed"].append(s["billed"])
            cols["allowed"].append(s["allowed"])
            cols["paid"].append(s["paid"])
            cols["carc"].append(" ".join(carc) if carc else None)
            cols["rarc"].append(" ".join(rarc) if rarc else None)
            cols["payer"].append(clm["payer"])
            cols["provider"].append(clm["provider"])
            control.append(s["control"])  # type: ignore[arg-type]
            line_id += 1
    return _finish(cols, name, control)


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
        frame = _parse_835(tokens, name, line_id_start, notes)
        notes.append(
            "an X12 835 carries no diagnosis codes: add the matching 837 claim file "
            "(CLM01 = CLP01) or the practice's EOB export to check diagnoses"
        )
        fmt = "x12-835"
    else:
        claims = _parse_837(tokens, name, notes)
        frame = _frame_837(claims, name, line_id_start, notes)
        institutional = sum(1 for _, v in kinds if "X223" in v or "X096" in v)
        if not any(v for _, v in kinds):
            institutional = sum(1 for s in tokens.segments if s[0] == "SV2")
        fmt = "x12-837i" if institutional * 2 > len(kinds) else "x12-837p"
        if not claims:
            notes.append("the 837 has no CLM segment: no claims were read")
    return ReadResult(
        frame=frame,
        path=path,
        format=fmt,
        rows_read=int(frame["line_id"].nunique()) if len(frame) else 0,
        notes=notes,
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


def _occurrence(df: pd.DataFrame, keys: list[str]) -> pd.Series:
    return df.groupby(keys, dropna=False, sort=False).cumcount()


def join_remittance(claims: pd.DataFrame, remits: pd.DataFrame) -> pd.DataFrame:
    """Fill allowed/paid/carc/rarc of an 837 frame from an 835 frame (CLP01 = CLM01)."""
    money = ["allowed", "paid", "carc", "rarc"]
    out = claims.copy()
    out.attrs = {}
    if remits.empty or claims.empty:
        return conform(out)
    r = remits.copy()
    r.attrs = {}
    r_ctrl = line_controls(remits)
    c_ctrl = line_controls(claims)
    r["_ctrl"] = r_ctrl if r_ctrl is not None and len(r_ctrl) == len(r) else None
    out["_ctrl"] = c_ctrl if c_ctrl is not None and len(c_ctrl) == len(out) else None
    r["_ctrl"] = r["_ctrl"].astype("string")
    out["_ctrl"] = out["_ctrl"].astype("string")

    # A reversal (negative charge) is superseded by a corrected payment for the same claim.
    r["_rev"] = r["billed"].lt(0).fillna(False).astype(bool)
    has_payment = r["claim_id"].isin(r.loc[~r["_rev"], "claim_id"])
    r = r[~r["_rev"] | ~has_payment]
    line_level = r[r["procedure"].notna()].copy()
    claim_level = r[r["procedure"].isna()]
    line_level["_occ"] = _occurrence(line_level, ["claim_id", "procedure"])

    # Service lines of the 837, one row per line (the frame has one row per diagnosis).
    lines = out.drop_duplicates("line_id")[["line_id", "claim_id", "procedure", "_ctrl"]].copy()
    lines["_occ"] = _occurrence(lines, ["claim_id", "procedure"])

    matched: list[pd.DataFrame] = []
    with_ctrl = line_level[line_level["_ctrl"].notna()].drop_duplicates(["claim_id", "_ctrl"])
    if len(with_ctrl) and lines["_ctrl"].notna().any():
        m = lines.merge(with_ctrl[["claim_id", "_ctrl", *money]], on=["claim_id", "_ctrl"])
        matched.append(m[["line_id", *money]])
    done = set(matched[0]["line_id"]) if matched else set()
    rest = lines[~lines["line_id"].isin(done)]
    by_proc = line_level.drop_duplicates(["claim_id", "procedure", "_occ"])
    m2 = rest.merge(
        by_proc[["claim_id", "procedure", "_occ", *money]], on=["claim_id", "procedure", "_occ"]
    )
    matched.append(m2[["line_id", *money]])
    fill = pd.concat(matched, ignore_index=True).drop_duplicates("line_id")

    # Claim-level adjudication (CLP without SVC): its codes apply to every line of the claim.
    cl = claim_level.drop_duplicates("claim_id")[["claim_id", "carc", "rarc"]]
    missing = lines[~lines["line_id"].isin(fill["line_id"])][["line_id", "claim_id"]]
    fill2 = missing.merge(cl, on="claim_id")
    fill = pd.concat([fill, fill2[["line_id", "carc", "rarc"]]], ignore_index=True)

    fill = fill.set_index("line_id")
    for col in money:
        if col in fill:
            mapped = out["line_id"].map(fill[col]).astype(out[col].dtype)
            out[col] = out[col].fillna(mapped)
    out = out.drop(columns=["_ctrl"])
    result = conform(out)
    if LINE_CONTROL_ATTR in claims.attrs:
        result.attrs[LINE_CONTROL_ATTR] = claims.attrs[LINE_CONTROL_ATTR]
    return result
