"""FHIR ExplanationOfBenefit (R4 CARIN Blue Button, STU3 Blue Button v1) into the canonical frame.

Reads a single resource, a Bundle (searchset, with ``_include``d resources: only
ExplanationOfBenefit entries become rows; included Patient and Organization resources fill
birth date, sex and payer), or NDJSON (one resource per line, as bulk export writes it).

Provenance: ``source_row`` is the 1-based index of the resource (the Bundle entry, or the NDJSON
line), ``source_sheet`` is null, and ``dx_column`` is the JSON path of the diagnosis inside the
resource, e.g. ``diagnosis[0].diagnosisCodeableConcept``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pandas as pd

from eobcheck.errors import InputError
from eobcheck.model import DTYPES, conform
from eobcheck.readers.base import ReadResult

__all__ = ["read_fhir"]

Json = dict[str, Any]

# Preferred diagnosis code systems, best first; any other coding with a code comes after.
_DX_SYSTEMS: Final = (
    "http://hl7.org/fhir/sid/icd-10-cm",
    "http://hl7.org/fhir/sid/icd-10",
    "http://hl7.org/fhir/sid/icd-9-cm",
    "http://terminology.hl7.org/CodeSystem/icd9cm",
)
_BILLED: Final = ("submitted", "line_sbmtd_chrg_amt", "rev_cntr_tot_chrg_amt")
_ALLOWED: Final = ("eligible", "line_alowd_chrg_amt", "line_prmry_alowd_chrg_amt")
_PAID: Final = (
    "paidtoprovider",
    "benefit",
    "line_nch_pmt_amt",
    "rev_cntr_pmt_amt_amt",
    "cvrd_d_plan_pd_amt",
)
_CARC_RE: Final = re.compile(r"^(CO|PR|OA|PI|CR)?-?(\d{1,3}|[A-Z]\d{1,2})$")
_SEX: Final = {"male": "M", "female": "F", "other": "U", "unknown": "U"}
_R4_MARKS: Final = ("productOrService", "diagnosisSequence", "insurer", "outcome", "total")
_STU3_MARKS: Final = ("service", "diagnosisLinkId", "organization", "totalCost")


def _tail(code: str) -> str:
    """Return the last path part of a URL-like category code (BFD uses variable URLs)."""
    return code.rsplit("/", 1)[-1]


def _codings(concept: Any) -> list[Json]:
    if not isinstance(concept, dict):
        return []
    return [c for c in concept.get("coding", []) if isinstance(c, dict) and c.get("code")]


def _pick_dx(concept: Any) -> str | None:
    codings = _codings(concept)
    for system in _DX_SYSTEMS:
        for c in codings:
            if c.get("system") == system:
                return str(c["code"])
    return str(codings[0]["code"]) if codings else None


def _pick_procedure(concept: Any) -> str | None:
    for c in _codings(concept):
        system = str(c.get("system", "")).lower()
        if not system or "hcpcs" in system or "cpt" in system:
            return str(c["code"]).strip().upper()
    return None


def _date(value: Any) -> str | None:
    return value[:10] if isinstance(value, str) and value else None


def _ref_id(ref: Any) -> str | None:
    """Return the id of a reference like ``Patient/123`` (or its identifier value)."""
    if not isinstance(ref, dict):
        return None
    if isinstance(ref.get("reference"), str):
        return str(ref["reference"]).rsplit("/", 1)[-1].lstrip("#") or None
    ident = ref.get("identifier")
    if isinstance(ident, dict) and ident.get("value"):
        return str(ident["value"])
    return None


def _claim_id(eob: Json) -> str | None:
    idents = [i for i in eob.get("identifier", []) if isinstance(i, dict) and i.get("value")]
    for ident in idents:
        if any(c.get("code") == "uc" for c in _codings(ident.get("type"))):
            return str(ident["value"])
    for ident in idents:
        if str(ident.get("system", "")).endswith("clm_id"):
            return str(ident["value"])
    if idents:
        return str(idents[0]["value"])
    return str(eob["id"]) if eob.get("id") else None


def _version(eob: Json) -> str | None:
    """Return "r4" or "stu3" from the profile or the element names; None when undecided."""
    profiles = " ".join(map(str, (eob.get("meta") or {}).get("profile", [])))
    if "carin-bb" in profiles:
        return "r4"
    keys = set(eob)
    for item in eob.get("item", [])[:3]:
        if isinstance(item, dict):
            keys |= set(item)
    r4 = sum(k in keys for k in _R4_MARKS)
    stu3 = sum(k in keys for k in _STU3_MARKS)
    if r4 == stu3:
        return None
    return "stu3" if stu3 > r4 else "r4"


class _Index:
    """Patients and organizations available to resolve references (contained or included)."""

    def __init__(self, resources: list[Json]) -> None:
        self.by_ref: dict[str, Json] = {}
        for res in resources:
            rtype, rid = res.get("resourceType"), res.get("id")
            if rtype and rid:
                self.by_ref[f"{rtype}/{rid}"] = res

    def resolve(self, ref: Any, eob: Json) -> Json | None:
        if not isinstance(ref, dict) or not isinstance(ref.get("reference"), str):
            return None
        target = str(ref["reference"])
        if target.startswith("#"):
            for res in eob.get("contained", []):
                if isinstance(res, dict) and res.get("id") == target[1:]:
                    return res
            return None
        parts = target.rstrip("/").split("/")
        return self.by_ref.get("/".join(parts[-2:])) if len(parts) >= 2 else None


def _party(ref: Any, eob: Json, index: _Index) -> str | None:
    if not isinstance(ref, dict):
        return None
    if ref.get("display"):
        return str(ref["display"])
    res = index.resolve(ref, eob)
    if res and res.get("name"):
        return str(res["name"])
    return _ref_id(ref)


def _adjudication(adjs: Any) -> tuple[dict[str, float], list[str]]:
    amounts: dict[str, float] = {}
    carc: list[str] = []
    for adj in adjs if isinstance(adjs, list) else []:
        if not isinstance(adj, dict):
            continue
        cats = [_tail(str(c["code"])) for c in _codings(adj.get("category"))]
        amount = adj.get("amount")
        if isinstance(amount, dict) and isinstance(amount.get("value"), int | float):
            for cat in cats:
                amounts.setdefault(cat, float(amount["value"]))
        for c in _codings(adj.get("reason")):
            system = str(c.get("system", "")).lower()
            # BFD puts processing indicators under "denialreason" too; only X12 CARC systems
            # (or a reason with no system) are adjustment reason codes.
            carc_system = any(k in system for k in ("ansi_cd", "adjustment-reason", "carc"))
            if not (carc_system or ("denialreason" in cats and not system)):
                continue
            m = _CARC_RE.match(str(c["code"]).strip().upper())
            if m and m.group(2).strip("0"):
                carc.append(f"{m.group(1)}-{m.group(2)}" if m.group(1) else m.group(2))
    return amounts, carc


def _first(amounts: dict[str, float], keys: tuple[str, ...]) -> float | None:
    for key in keys:
        if key in amounts:
            return amounts[key]
    return None


_COLUMNS: Final = (
    "source_row",
    "dx_column",
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
    "payer",
    "provider",
)


def _eob_rows(
    eob: Json, row: int, index: _Index, cols: dict[str, list[Any]], skipped: Counter[str]
) -> int:
    """Append the rows of one EOB; return the number of service lines."""
    # (0 if principal else 1, sequence, index in diagnosis[], code, JSON path)
    dx: list[tuple[int, int, int, str, str]] = []
    by_seq: dict[int, int] = {}
    for i, diag in enumerate(eob.get("diagnosis", [])):
        if not isinstance(diag, dict):
            continue
        code = _pick_dx(diag.get("diagnosisCodeableConcept"))
        if code is None:
            what = "diagnosisReference" if "diagnosisReference" in diag else "no code"
            if "packageCode" in diag:
                what = "packageCode (DRG) only"
            skipped[f"diagnosis with {what}"] += 1
            continue
        types = {c.get("code") for t in diag.get("type", []) for c in _codings(t)}
        seq = diag["sequence"] if isinstance(diag.get("sequence"), int) else i + 1
        path = f"diagnosis[{i}].diagnosisCodeableConcept"
        dx.append((0 if "principal" in types else 1, seq, i, code, path))
    dx.sort()
    for rank, entry in enumerate(dx, start=1):
        by_seq.setdefault(entry[1], rank)

    patient = index.resolve(eob.get("patient"), eob)
    birth = _date(patient.get("birthDate")) if patient else None
    sex = _SEX.get(str(patient.get("gender")), None) if patient else None
    patient_id = _ref_id(eob.get("patient"))
    payer = _party(eob.get("insurer") or eob.get("organization"), eob, index)
    provider = _party(eob.get("provider"), eob, index)
    if provider is None:
        for member in eob.get("careTeam", []):
            provider = (
                _party(member.get("provider"), eob, index) if isinstance(member, dict) else None
            )
            if provider:
                break
    claim_id = _claim_id(eob)
    period = eob.get("billablePeriod") or {}
    claim_date = _date(period.get("start")) if isinstance(period, dict) else None

    items = [it for it in eob.get("item", []) if isinstance(it, dict)] or [{}]
    for n, item in enumerate(items, start=1):
        pointers = item.get("diagnosisSequence", item.get("diagnosisLinkId")) or []
        pointers = [p for p in pointers if isinstance(p, int)]
        chosen: list[tuple[int | None, tuple[int, int, int, str, str] | None]]
        if pointers:
            chosen = [(by_seq[p], dx[by_seq[p] - 1]) for p in pointers if p in by_seq]
            if len(chosen) < len(pointers):
                skipped["item diagnosisSequence pointing to no diagnosis"] += 1
        else:
            chosen = list(enumerate(dx, start=1))
        served = item.get("servicedPeriod") or {}
        date = _date(item.get("servicedDate")) or (
            _date(served.get("start")) if isinstance(served, dict) else None
        )
        amounts, carc = _adjudication(item.get("adjudication"))
        mods = [str(c["code"]) for m in item.get("modifier", []) for c in _codings(m)]
        concept = item.get("productOrService", item.get("service"))
        values: dict[str, Any] = {
            "claim_id": claim_id,
            "line": item.get("sequence") if isinstance(item.get("sequence"), int) else n,
            "date_raw": date or claim_date,
            "procedure": _pick_procedure(concept),
            "modifiers": " ".join(mods) or None,
            "dx_pointers": ",".join(map(str, pointers)) or None,
            "patient_id": patient_id,
            "birth_date": birth,
            "sex": sex,
            "billed": _first(amounts, _BILLED),
            "allowed": _first(amounts, _ALLOWED),
            "paid": _first(amounts, _PAID),
            "carc": " ".join(dict.fromkeys(carc)) or None,
            "payer": payer,
            "provider": provider,
        }
        if not item:
            values["line"] = None
        for pos, d in chosen or [(None, None)]:  # a line without diagnoses keeps one row
            cols["source_row"].append(row)
            cols["dx_column"].append(d[4] if d else None)
            cols["dx_position"].append(pos)
            cols["dx_value"].append(d[3] if d else None)
            for key, value in values.items():
                cols[key].append(value)
            cols["line_id"].append(cols["_next"][0])
        cols["_next"][0] += 1
    return len(items)


def _load(path: Path, name: str) -> tuple[str, list[tuple[int, Json]], list[str]]:
    """Return (kind, [(row, resource)], notes) for a JSON or NDJSON file."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read the file ({exc.strerror})", path=name) from exc
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not UTF-8 text (byte {exc.start}); FHIR JSON must be UTF-8", path=name
        ) from exc
    notes: list[str] = []
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as first_error:
        lines = text.splitlines()
        starts = [ln for ln in lines[:3] if ln.strip()]
        if len(lines) < 2 or not all(ln.lstrip().startswith("{") for ln in starts):
            raise InputError(
                f"not valid JSON: {first_error.msg} at line {first_error.lineno}, "
                f"column {first_error.colno}",
                path=name,
            ) from first_error
        out: list[tuple[int, Json]] = []
        for number, ln in enumerate(lines, start=1):
            if not ln.strip():
                continue
            try:
                res = json.loads(ln)
            except json.JSONDecodeError as exc:
                notes.append(f"NDJSON line {number} is not valid JSON ({exc.msg}); skipped")
                continue
            if isinstance(res, dict):
                out.append((number, res))
            else:
                notes.append(f"NDJSON line {number} is not a JSON object; skipped")
        if not out:
            raise InputError("no NDJSON line holds a readable resource", path=name) from None
        return "ndjson", out, notes
    if not isinstance(doc, dict) or "resourceType" not in doc:
        raise InputError(
            "not a FHIR resource: the top-level JSON object has no resourceType", path=name
        )
    if doc["resourceType"] == "Bundle":
        entries = doc.get("entry", [])
        if not isinstance(entries, list):
            raise InputError("Bundle.entry is not a list", path=name, column="entry")
        out = []
        for i, entry in enumerate(entries, start=1):
            res = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(res, dict):
                out.append((i, res))
            else:
                notes.append(f"entry[{i - 1}] has no resource; skipped")
        return "bundle", out, notes
    return "resource", [(1, doc)], notes


def _iter_eobs(resources: list[tuple[int, Json]]) -> Iterator[tuple[int, Json]]:
    for row, res in resources:
        if res.get("resourceType") == "ExplanationOfBenefit":
            yield row, res


def read_fhir(path: Path, *, line_id_start: int = 0, source_name: str | None = None) -> ReadResult:
    """Read a FHIR ExplanationOfBenefit resource, Bundle or NDJSON file into the canonical frame."""
    path = Path(path)
    name = source_name if source_name is not None else str(path)
    kind, resources, notes = _load(path, name)
    eobs = list(_iter_eobs(resources))
    others = Counter(str(res.get("resourceType")) for _, res in resources)
    others.pop("ExplanationOfBenefit", None)
    if not eobs:
        found = ", ".join(f"{k} x{v}" for k, v in sorted(others.items())) or "nothing"
        raise InputError(
            f"no ExplanationOfBenefit resource in this {kind} (found {found}); "
            "give eobcheck an ExplanationOfBenefit, a Bundle of them, or NDJSON",
            path=name,
        )
    if others:
        listed = ", ".join(f"{k} x{v}" for k, v in sorted(others.items()))
        notes.append(f"skipped resources that are not ExplanationOfBenefit: {listed}")

    index = _Index([res for _, res in resources])
    cols: dict[str, list[Any]] = {k: [] for k in (*_COLUMNS, "line_id")}
    cols["_next"] = [line_id_start]
    skipped: Counter[str] = Counter()
    versions: Counter[str | None] = Counter()
    for row, eob in eobs:
        versions[_version(eob)] += 1
        _eob_rows(eob, row, index, cols, skipped)
    ids = [(_claim_id(eob), eob.get("id")) for _, eob in eobs]
    if any(cid is None for cid, _ in ids):
        missing = sum(cid is None for cid, _ in ids)
        notes.append(
            f"{missing} ExplanationOfBenefit resource(s) have neither identifier nor id: "
            "their claim_id is empty"
        )
    shared = Counter(cid for cid, _ in ids if cid is not None)
    repeated = sorted(cid for cid, n in shared.items() if n > 1)
    if repeated:
        notes.append(
            f"{len(repeated)} claim identifier(s) are shared by several ExplanationOfBenefit "
            f"resources (e.g. {repeated[0]}); their lines are checked as one claim"
        )
    for what, count in sorted(skipped.items()):
        notes.append(f"skipped {count} {what}")
    del cols["_next"]

    df = pd.DataFrame(cols)
    df["date_of_service"] = pd.to_datetime(df["date_raw"], format="%Y-%m-%d", errors="coerce")
    df["birth_date"] = pd.to_datetime(df["birth_date"], format="%Y-%m-%d", errors="coerce")
    df["source_file"] = name
    df["source_sheet"] = None
    for col, dtype in DTYPES.items():
        if dtype == "float64" and col in df:
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    frame = conform(df)
    fmt = "fhir-eob-stu3" if versions["stu3"] > versions["r4"] else "fhir-eob-r4"
    if versions["stu3"] and versions["r4"]:
        notes.append(
            f"the file mixes FHIR versions: {versions['r4']} R4 and {versions['stu3']} STU3 "
            "ExplanationOfBenefit resources"
        )
    return ReadResult(
        frame=frame,
        path=path,
        format=fmt,
        rows_read=int(frame["line_id"].nunique()),
        notes=notes,
    )
