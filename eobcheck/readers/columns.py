"""Header recognition: column aliases -> canonical fields, and the user's column mapping.

Headers are compared after :func:`normalize_header` (lower case, letters and digits only), so
"Claim #", "claim_id" and "CLAIM-ID" all meet the aliases of ``claim_id``. The table
:data:`ALIASES` is the single source of the recognised headers; docs/column-mapping.md lists it.
Diagnosis and modifier columns may also be numbered ("Dx 1".."Dx 25", "Modifier 1".."4"): their
stems are in :data:`NUMBERED`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from eobcheck.errors import ConfigError, InputError

#: canonical field -> header texts that name it (compared after normalize_header).
#: ``dx`` is a single diagnosis column; ``dx_list`` a column holding several codes in one cell;
#: ``carc_group`` / ``carc_reason`` are the separate group and reason columns of some exports.
ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "claim_id": (
        "Claim ID", "Claim #", "Claim", "Claim Number", "Claim No", "Claim Nbr", "Claim Num",
        "ICN", "Claim ICN", "Payer Claim ID", "Payer Claim Number", "Claim Control Number",
        "Encounter", "Encounter #", "Encounter ID", "Encounter Number", "Visit ID", "Visit #",
        "Ticket #", "Ticket Number", "CLM01", "Patient Control Number", "PCN", "Invoice #",
    ),
    "date_of_service": (
        "Date of Service", "DOS", "Service Date", "Svc Date", "From Date", "DOS From",
        "From DOS", "Service From", "Service From Date", "Svc From", "Svc From Date",
        "Start Date", "claim_start_date", "Service Start Date", "Date", "Visit Date",
        "Encounter Date", "Line DOS", "Begin Date", "Srv Date", "First Date of Service",
    ),
    "line": (
        "Line", "Line #", "Line No", "Line Number", "Line Nbr", "Ln", "Ln #", "Svc Line",
        "Service Line", "Line Item", "line_num", "Seq", "Line Seq",
    ),
    "procedure": (
        "CPT", "CPT/HCPCS", "HCPCS", "HCPCS/CPT", "Procedure", "Procedure Code", "Proc",
        "Proc Code", "hcpcs_code", "CPT Code", "HCPCS Code", "Service Code", "Svc Code",
        "CPT4", "Code",
    ),
    "modifiers": ("Modifiers", "Mods", "Modifier", "Mod", "CPT Modifier", "Modifier Codes"),
    "dx_pointers": ("Dx Pointer", "Dx Pointers", "Diagnosis Pointer", "Diagnosis Pointers",
                    "Dx Ptr", "Pointer", "Pointers", "ICD Pointer"),
    "dx": (),
    "dx_list": (
        "Diagnosis Codes", "Dx Codes", "ICD-10 Codes", "ICD10 Codes", "ICD Codes",
        "Diagnoses", "Diagnosis", "Dx", "Diagnosis Code", "Dx Code", "ICD10 Code",
        "ICD-10 Code", "ICD Code", "ICD-10", "ICD10", "ICD-10-CM", "ICD-10-CM Codes", "Diag",
        "Diag Codes", "Diagnosis Code(s)", "Dx Code(s)", "ICD Dx",
    ),
    "patient_id": (
        "Patient ID", "Patient #", "MRN", "Medical Record Number", "Member ID", "Member #",
        "Subscriber ID", "Patient Account", "Patient Account Number", "Account #", "Acct #",
        "Chart #", "Chart Number", "Insured ID", "bene_id", "Beneficiary ID",
    ),
    "birth_date": ("DOB", "Birth Date", "Date of Birth", "Birthdate", "Patient DOB",
                   "Pt DOB", "Member DOB"),
    "age": ("Age", "Patient Age", "Age (Years)", "Pt Age"),
    "sex": ("Sex", "Gender", "Patient Sex", "Patient Gender", "Pt Sex", "Member Gender"),
    "billed": ("Billed", "Billed Amount", "Billed Amt", "Charge", "Charges", "Charge Amount",
               "Charge Amt", "Total Charge", "Submitted", "Submitted Amount",
               "Submitted Charge", "Line Charge", "Amount Billed"),
    "allowed": ("Allowed", "Allowed Amount", "Allowed Amt", "Allowable", "Amount Allowed",
                "Approved", "Approved Amount"),
    "paid": ("Paid", "Payment", "Paid Amount", "Paid Amt", "Payment Amount", "Amount Paid",
             "Ins Paid", "Insurance Paid", "Plan Paid", "Provider Paid"),
    "carc": ("Adj Codes", "Adjustment Codes", "Adjustment Code", "Adj Code", "CARC", "CARCs",
             "Reason Codes", "Reason Code(s)", "Adj Reason Codes", "Adjustment Reason Codes",
             "Denial Codes", "Denial Code", "CAS", "Adjustments"),
    "carc_group": ("Group Code", "Adj Group", "Adjustment Group", "Group", "CAS Group",
                   "Claim Adjustment Group Code"),
    "carc_reason": ("Reason Code", "Adj Reason", "Adjustment Reason", "Reason",
                    "Claim Adjustment Reason Code", "Denial Reason Code"),
    "rarc": ("Remark Codes", "Remark Code", "RARC", "RARCs", "Remarks", "Remark",
             "Remittance Remark Codes", "Remark Code(s)", "LQ"),
    "payer": ("Payer", "Payer Name", "Insurance", "Insurance Name", "Insurer", "Plan",
              "Plan Name", "Carrier", "Primary Insurance", "Payor", "Payor Name"),
    "provider": ("Provider", "Rendering Provider", "Rendering", "Provider Name",
                 "Rendering Provider Name", "Therapist", "Clinician", "Physician",
                 "Rendering NPI", "Provider NPI", "NPI"),
}  # fmt: skip

#: numbered columns: field -> header stems followed by a number ("Dx 3", "Modifier 2").
NUMBERED: Final[dict[str, tuple[str, ...]]] = {
    "dx": (
        "Dx",
        "Dx Code",
        "Diag",
        "Diag Code",
        "Diagnosis",
        "Diagnosis Code",
        "diagnosis_code_",
        "ICD",
        "ICD Code",
        "ICD Dx",
        "ICD-10 Dx",
        "ICD10 Dx",
        "ICD-10 Code",
        "ICD10 Code",
        "ICD-10-CM",
        "ICD-10-CM Code",
        "ICD-10 Diagnosis",
        "Dx Cd",
        "Other Dx",
    ),
    "modifiers": ("Mod", "Modifier", "CPT Mod", "CPT Modifier", "Proc Mod", "Mod Code"),
}

#: how many numbered columns of each kind are recognised
NUMBERED_MAX: Final[dict[str, int]] = {"dx": 25, "modifiers": 4}

#: fields a file must have (dx is satisfied by numbered dx columns or a dx_list column)
REQUIRED_FIELDS: Final = ("claim_id", "date_of_service", "dx")

#: field names a user mapping may use
USER_FIELDS: Final = tuple(ALIASES)

_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def normalize_header(text: object) -> str:
    """Return a header reduced to lower-case letters and digits ("Claim #" -> "claim")."""
    if text is None:
        return ""
    return _NON_ALNUM.sub("", str(text).lower())


_ALIAS_INDEX: Final[dict[str, str]] = {}
for _field, _aliases in ALIASES.items():
    for _alias in _aliases:
        _ALIAS_INDEX.setdefault(normalize_header(_alias), _field)

_NUMBERED_RE: Final[dict[str, re.Pattern[str]]] = {
    name: re.compile(
        "^(?:"
        + "|".join(sorted({re.escape(normalize_header(s)) for s in stems}, key=len, reverse=True))
        + r")0*([1-9]\d?)$"
    )
    for name, stems in NUMBERED.items()
}


def classify_header(text: object) -> tuple[str, int | None] | None:
    """Return (field, number) for a header, number set for numbered dx/modifier columns."""
    key = normalize_header(text)
    if not key:
        return None
    # exact aliases first: "ICD-10" is a list column, not ICD position 10
    found = _ALIAS_INDEX.get(key)
    if found:
        return found, None
    for name, pattern in _NUMBERED_RE.items():
        m = pattern.match(key)
        if m:
            number = int(m.group(1))
            if number <= NUMBERED_MAX[name]:
                return name, number
    return None


def header_score(headers: Sequence[object]) -> int:
    """Count the distinct canonical fields a candidate header row names (row detection)."""
    fields = set()
    for h in headers:
        c = classify_header(h)
        if c is not None:
            fields.add("dx" if c[0] == "dx_list" else c[0])
    score = len(fields)
    # a row naming the required fields beats a summary row naming many optional ones
    score += 2 * sum(1 for f in REQUIRED_FIELDS if f in fields)
    return score


def validate_user_columns(
    columns: Mapping[str, str | Sequence[str]] | None,
) -> dict[str, list[str]]:
    """Check a user column mapping and return it as field -> list of header texts."""
    if not columns:
        return {}
    out: dict[str, list[str]] = {}
    for name, value in columns.items():
        if name not in USER_FIELDS:
            raise ConfigError(
                f"unknown field {name!r} in the column mapping; "
                f"known fields: {', '.join(USER_FIELDS)}"
            )
        headers = [value] if isinstance(value, str) else list(value)
        if not headers or not all(isinstance(h, str) and h.strip() for h in headers):
            raise ConfigError(f"column mapping for {name!r} must be a header text or a list")
        if len(headers) > 1 and name not in ("dx", "modifiers"):
            raise ConfigError(f"column mapping for {name!r} takes one header, got {headers}")
        out[name] = headers
    return out


@dataclass
class ColumnMap:
    """Which input column (by position) feeds which canonical field."""

    headers: list[str]
    #: single-column fields: field -> column index
    fields: dict[str, int] = field(default_factory=dict)
    #: wide diagnosis columns: (column index, dx position), ordered by position
    dx: list[tuple[int, int]] = field(default_factory=list)
    #: a column holding a list of diagnosis codes in one cell
    dx_list: int | None = None
    #: modifier columns in order
    modifiers: list[int] = field(default_factory=list)
    #: recognised but unused columns (duplicates), for notes
    ignored: list[str] = field(default_factory=list)

    @classmethod
    def from_headers(
        cls,
        headers: Sequence[object],
        columns: Mapping[str, str | Sequence[str]] | None = None,
    ) -> ColumnMap:
        """Match headers against the user mapping first, then the aliases."""
        texts = ["" if h is None else str(h).strip() for h in headers]
        user = validate_user_columns(columns)
        cmap = cls(headers=texts)
        taken: set[int] = set()
        exact = {t: i for i, t in reversed(list(enumerate(texts))) if t}
        loose = {normalize_header(t): i for i, t in reversed(list(enumerate(texts))) if t}

        def locate(header: str) -> int | None:
            i = exact.get(header.strip())
            return i if i is not None else loose.get(normalize_header(header))

        for name, wanted in user.items():
            idx = [locate(h) for h in wanted]
            found = [i for i in idx if i is not None]
            if not found:
                continue  # reported as missing with the mapping named, if required
            taken.update(found)
            if name == "dx":
                if len(wanted) == 1:
                    cmap.dx_list = found[0]
                else:
                    cmap.dx = [(i, pos) for pos, i in enumerate(found, start=1)]
            elif name == "dx_list":
                cmap.dx_list = found[0]
            elif name == "modifiers":
                cmap.modifiers = found
            else:
                cmap.fields[name] = found[0]
        user_dx = "dx" in user or "dx_list" in user

        numbered_dx: dict[int, int] = {}
        numbered_mod: dict[int, int] = {}
        list_dx: int | None = None
        for i, text in enumerate(texts):
            if i in taken:
                continue
            c = classify_header(text)
            if c is None:
                continue
            name, number = c
            if name == "dx" and number is not None:
                if user_dx or number in numbered_dx:
                    cmap.ignored.append(text)
                else:
                    numbered_dx[number] = i
            elif name == "modifiers":
                if "modifiers" in user or (number is None and (numbered_mod or cmap.modifiers)):
                    cmap.ignored.append(text)
                elif number is None:
                    cmap.modifiers = [i]
                elif number in numbered_mod:
                    cmap.ignored.append(text)
                else:
                    numbered_mod[number] = i
            elif name == "dx_list":
                if user_dx or list_dx is not None:
                    cmap.ignored.append(text)
                else:
                    list_dx = i
            elif name in cmap.fields or name in user:
                cmap.ignored.append(text)
            else:
                cmap.fields[name] = i
        if numbered_mod:
            # numbered modifier columns win over a single "Mod" column
            if cmap.modifiers and "modifiers" not in user:
                cmap.ignored.extend(texts[i] for i in cmap.modifiers)
            cmap.modifiers = [numbered_mod[k] for k in sorted(numbered_mod)]
        if not user_dx:
            if numbered_dx:
                cmap.dx = [(numbered_dx[k], k) for k in sorted(numbered_dx)]
                if list_dx is not None:
                    cmap.ignored.append(texts[list_dx])
            else:
                cmap.dx_list = list_dx
        return cmap

    def missing(self) -> list[str]:
        """Return the required fields that no column feeds."""
        miss = [f for f in ("claim_id", "date_of_service") if f not in self.fields]
        if not self.dx and self.dx_list is None:
            miss.append("dx")
        return miss

    def score(self) -> int:
        """Count recognised fields (used to choose among candidate header rows)."""
        return header_score(self.headers)

    def as_dict(self) -> dict[str, str | list[str]]:
        """Return canonical field -> header(s) found, for ReadResult.column_map."""
        out: dict[str, str | list[str]] = {name: self.headers[i] for name, i in self.fields.items()}
        if self.dx:
            out["dx"] = [self.headers[i] for i, _ in self.dx]
        elif self.dx_list is not None:
            out["dx"] = self.headers[self.dx_list]
        if self.modifiers:
            mods = [self.headers[i] for i in self.modifiers]
            out["modifiers"] = mods if len(mods) > 1 else mods[0]
        return out


def missing_columns_error(
    cmap: ColumnMap,
    *,
    path: str,
    sheet: str | None,
    columns: Mapping[str, str | Sequence[str]] | None = None,
) -> InputError:
    """Build the InputError naming missing fields, headers found and aliases tried."""
    missing = cmap.missing()
    user = validate_user_columns(columns)
    found = [h for h in cmap.headers if h]
    lines = [
        f"required column(s) not found: {', '.join(missing)}.",
        "Headers found: " + (", ".join(repr(h) for h in found) if found else "(none)") + ".",
    ]
    for name in missing:
        if name in user:
            lines.append(f"  {name}: the column mapping names {user[name]}, not in this file")
        if name == "dx":
            tried = [
                *(f"{s} 1..{NUMBERED_MAX['dx']}" for s in NUMBERED["dx"][:8]),
                *ALIASES["dx_list"][:10],
            ]
        else:
            tried = list(ALIASES[name])
        lines.append(f"  {name}: tried {', '.join(repr(t) for t in tried)}, ...")
    example = ", ".join(f'{n} = "<header in your file>"' for n in missing)
    lines.append(
        "Map them with --columns FILE or a [columns] table in eobcheck.toml "
        f"([tool.eobcheck.columns] in pyproject.toml), e.g. {example} "
        '(dx may be a list: dx = ["Primary Dx", "Secondary Dx"]). '
        "See docs/column-mapping.md."
    )
    return InputError("\n".join(lines), path=path, sheet=sheet)
