"""The Report: what one check found, and the findings-frame contract every writer reads.

The engine builds a :class:`Report` from the findings frame (one row per finding, columns
in :data:`FINDING_COLUMNS`) plus row accounting per input; the writers in
:mod:`eobcheck.writers` only ever see a Report.

Findings frame (name -> dtype, meaning)::

    code               string          stable rule code, e.g. "DX003"
    name               string          rule name, e.g. "retired-code"
    severity           string          "error", "warning" or "info"
    message            string          one sentence for a billing clerk
    claim_id           string          null when the claim id is missing
    line               Int64           line number within the claim
    dx_position        Int64           1-based diagnosis position; null when none
    value              string          the code as written
    normalized         string          dotted upper-case form; null when not a code
    date_of_service    datetime64[ns]  NaT when unreadable or missing
    suggestions        object          tuple of objects with .code and .title (may be empty)
    fix_applicability  string          "safe", "unsafe", "display_only" or null
    fix_replacement    string          replacement code for safe/unsafe fixes
    file               string          input path
    sheet              string          XLSX sheet; null for CSV
    row                Int64           1-based row as the user sees it
    column             string          header as written
    line_id            int64           internal service-line id (never written to JSON)
    procedure          string          CPT/HCPCS code only, never a description
    billed             float64         billed amount of the line; NaN when unknown
    denied             float64         amount denied on the line; 0 when paid, NaN unknown
    carc               string          adjustment codes on the line, "CO-146 PR-2"
    rarc               string          remark codes, "M81 N130"
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final, Protocol

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

FINDING_DTYPES: Final[dict[str, str]] = {
    "code": "string",
    "name": "string",
    "severity": "string",
    "message": "string",
    "claim_id": "string",
    "line": "Int64",
    "dx_position": "Int64",
    "value": "string",
    "normalized": "string",
    "date_of_service": "datetime64[ns]",
    "suggestions": "object",
    "fix_applicability": "string",
    "fix_replacement": "string",
    "file": "string",
    "sheet": "string",
    "row": "Int64",
    "column": "string",
    "line_id": "int64",
    "procedure": "string",
    "billed": "float64",
    "denied": "float64",
    "carc": "string",
    "rarc": "string",
}
FINDING_COLUMNS: Final[tuple[str, ...]] = tuple(FINDING_DTYPES)

SEVERITIES: Final = ("error", "warning", "info")
APPLICABILITIES: Final = ("safe", "unsafe", "display_only")

#: How many problems ``Report.summary`` lists under ``top_problems``.
TOP_PROBLEMS: Final = 10


class Suggestion(Protocol):
    """What a suggested replacement code must offer: the code and its title."""

    @property
    def code(self) -> str: ...

    @property
    def title(self) -> str: ...


def empty_findings() -> pd.DataFrame:
    """Return a findings frame with no rows and every column typed."""
    return conform_findings(pd.DataFrame({name: [] for name in FINDING_COLUMNS}))


def conform_findings(df: pd.DataFrame) -> pd.DataFrame:
    """Return ``df`` with the findings columns in contract order and contract dtypes.

    Raises ``ValueError`` naming the missing columns. Columns already of the right dtype are
    not copied, so this is cheap on an engine-built frame.
    """
    missing = [name for name in FINDING_COLUMNS if name not in df.columns]
    if missing:
        raise ValueError(f"findings frame lacks columns: {', '.join(missing)}")
    out: dict[str, pd.Series] = {}
    for name, dtype in FINDING_DTYPES.items():
        col = df[name]
        if dtype.startswith("datetime"):
            if str(col.dtype) != dtype:
                col = pd.to_datetime(col, errors="coerce").astype("datetime64[ns]")
        elif dtype == "string":
            # Any string flavour (object, str, string[python|pyarrow]) is fine for writers.
            # An empty frame's object columns are typed so that .str accessors work.
            textual = pd.api.types.is_string_dtype(col.dtype) or col.dtype == object
            if not textual or (col.dtype == object and len(col) == 0):
                col = col.astype("string")
        elif str(col.dtype) != dtype:
            col = col.astype(dtype)  # type: ignore[call-overload]
        out[name] = col
    return pd.DataFrame(out, index=df.index).reset_index(drop=True)


class InputInfo(BaseModel):
    """One input file: where it was, what it was, and how its rows were accounted for.

    rows_read = rows_checked + rows_rejected + rows_joined, where rows_joined counts the
    service lines of an X12 835 that were joined into the 837 lines they pay (and are checked
    there).
    """

    path: str
    format: str
    sha256: str | None = None
    sheets: list[str] = Field(default_factory=list)
    rows_read: int = 0
    rows_checked: int = 0
    rows_rejected: int = 0
    rows_joined: int = 0
    rejected_reasons: dict[str, int] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)
    error: str | None = None


class Stats(BaseModel):
    """Counts over the whole check; rows_read = rows_checked + rows_rejected."""

    rows_read: int = 0
    rows_checked: int = 0
    rows_rejected: int = 0
    rejected_reasons: dict[str, int] = Field(default_factory=dict)
    claims: int = 0
    lines: int = 0
    diagnoses: int = 0
    findings: int = 0
    by_severity: dict[str, int] = Field(default_factory=dict)
    by_rule: dict[str, int] = Field(default_factory=dict)
    inputs: int = 0
    inputs_failed: int = 0
    denied_lines: int = 0
    denied_amount: float = 0.0
    denied_explained_lines: int = 0
    denied_explained_amount: float = 0.0
    denied_fixable_amount: float = 0.0


def build_stats(
    findings: pd.DataFrame,
    inputs: Sequence[InputInfo],
    *,
    claims: int,
    lines: int,
    diagnoses: int,
) -> Stats:
    """Return the Stats of a check: row accounting summed over inputs, findings counted."""
    reasons: dict[str, int] = {}
    for info in inputs:
        for reason, count in info.rejected_reasons.items():
            reasons[reason] = reasons.get(reason, 0) + count
    severity_counts = findings["severity"].value_counts()
    by_severity = {sev: int(severity_counts.get(sev, 0)) for sev in SEVERITIES}
    # Severities outside the contract are still counted rather than hidden.
    for sev, count in severity_counts.items():
        by_severity.setdefault(str(sev), int(count))
    rule_counts = findings["name"].value_counts(sort=False)
    by_rule = {
        str(name): int(count)
        for name, count in sorted(rule_counts.items(), key=lambda kv: (-int(kv[1]), str(kv[0])))
    }
    return Stats(
        rows_read=sum(i.rows_read - i.rows_joined for i in inputs),
        rows_checked=sum(i.rows_checked for i in inputs),
        rows_rejected=sum(i.rows_rejected for i in inputs),
        rejected_reasons=dict(sorted(reasons.items())),
        claims=claims,
        lines=lines,
        diagnoses=diagnoses,
        findings=len(findings),
        by_severity=by_severity,
        by_rule=by_rule,
        inputs=len(inputs),
        inputs_failed=sum(1 for i in inputs if i.error is not None),
    )


def suggestion_pairs(sugg: object) -> list[tuple[str, str]]:
    """Return ``[(code, title), ...]`` for one findings-frame suggestions cell (None -> [])."""
    if sugg is None or not isinstance(sugg, Iterable) or isinstance(sugg, str):
        return []
    return [(str(s.code), "" if s.title is None else str(s.title)) for s in sugg]


def empty_denials() -> pd.DataFrame:
    """A denials frame with no rows (see eobcheck.denials)."""
    from eobcheck.denials import empty_denials as empty

    return empty()


class Report(BaseModel):
    """The result of a check: validity, statistics, inputs, reference coverage and findings."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    valid: bool
    stats: Stats
    inputs: list[InputInfo] = Field(default_factory=list)
    reference: dict[str, Any] = Field(default_factory=dict)
    rules: list[str] = Field(default_factory=list)
    findings: pd.DataFrame = Field(default_factory=empty_findings, exclude=True, repr=False)
    denials: pd.DataFrame = Field(default_factory=empty_denials, exclude=True, repr=False)

    @field_validator("findings")
    @classmethod
    def _check_findings(cls, value: pd.DataFrame) -> pd.DataFrame:
        return conform_findings(value)

    _crosswalk: pd.DataFrame | None = PrivateAttr(default=None)

    def crosswalk(self) -> pd.DataFrame:
        """Return one row per problem code x rule x suggestion set (the XLSX Crosswalks)."""
        if self._crosswalk is None:
            from eobcheck.writers.tables import crosswalk

            self._crosswalk = crosswalk(self.findings)
        return self._crosswalk

    @property
    def summary(self) -> dict[str, Any]:
        """Return the stats plus validity and the most frequent problems (code, rule, fix)."""
        top: list[dict[str, Any]] = []
        table = self.crosswalk().sort_values(["findings", "lines"], ascending=False, kind="stable")
        records: list[dict[str, Any]] = table.head(TOP_PROBLEMS).to_dict("records")  # type: ignore[assignment]
        for rec in records:
            top.append(
                {
                    "value": str(rec["problem_code"]),
                    "code": str(rec["code"]),
                    "name": str(rec["rule"]),
                    "severity": str(rec["severity"]),
                    "findings": int(rec["findings"]),
                    "lines": int(rec["lines"]),
                    "claims": int(rec["claims"]),
                    "suggested_codes": str(rec["suggested_codes"] or "").split(),
                }
            )
        return {"valid": self.valid, **self.stats.model_dump(), "top_problems": top}

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON contract for programs as plain Python objects."""
        from eobcheck.writers.json import report_dict

        return report_dict(self)

    def to_json(self, path: str | Path | None = None, *, indent: int | None = 2) -> str:
        """Return the JSON report as text; also write it to ``path`` when given."""
        from eobcheck.writers.json import dumps

        data = dumps(self, indent=indent)
        if path is not None:
            Path(path).write_bytes(data)
        return data.decode("utf-8")

    def to_csv(self, path: str | Path) -> None:
        """Write the findings as CSV (UTF-8 with BOM, one row per finding) to ``path``."""
        from eobcheck.writers.csv import write_csv

        write_csv(self, path)

    def to_excel(self, path: str | Path) -> None:
        """Write the XLSX workbook (Summary, Findings, Crosswalks) to ``path``."""
        from eobcheck.writers.xlsx import write_xlsx

        write_xlsx(self, path)

    def to_text(self, *, color: bool = False, max_findings: int | None = 200) -> str:
        """Return the terminal report: a summary, then findings grouped by rule."""
        from eobcheck.writers.text import render_text

        return render_text(self, color=color, max_findings=max_findings)
