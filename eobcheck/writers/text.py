"""Text writer: a concise terminal report grouped by rule, coloured only on request."""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import pandas as pd

from eobcheck.report import SEVERITIES, Report
from eobcheck.writers.tables import (
    codes_of,
    count_distinct,
    first_rows,
    none_if_missing,
    suggestion_texts,
)

#: Examples printed under each rule unless told otherwise.
PER_RULE: Final = 5

_RESET: Final = "\x1b[0m"
_STYLES: Final[dict[str, str]] = {
    "error": "\x1b[1;31m",
    "warning": "\x1b[1;33m",
    "info": "\x1b[1;36m",
    "bold": "\x1b[1m",
    "dim": "\x1b[2m",
    "ok": "\x1b[1;32m",
}


class _Paint:
    """Wraps text in ANSI styles when colour is on; a no-op otherwise."""

    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, text: str, style: str) -> str:
        if not self.color:
            return text
        return f"{_STYLES[style]}{text}{_RESET}"


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}" if count == 1 else f"{count:,} {word}s"


def _location(file: Any, sheet: Any, row: Any, column: Any) -> str:
    """Return ``file[sheet]:row:column`` as a clerk would look the cell up."""
    where = str(file) if file is not None else "?"
    if sheet is not None:
        where += f"[{sheet}]"
    if row is not None:
        where += f":{row}"
    if column is not None:
        where += f":{column}"
    return where


def summary_lines(report: Report, paint: _Paint) -> list[str]:
    """Return the header: validity, row accounting, findings by severity, inputs."""
    s = report.summary
    sev = s["by_severity"]
    counts = ", ".join(
        paint(_plural(int(sev.get(name, 0)), name), name) for name in SEVERITIES if sev.get(name, 0)
    )
    verdict = paint("valid", "ok") if s["valid"] else paint("not valid", "error")
    found = _plural(int(s["findings"]), "finding")
    lines = [
        f"eobcheck: {verdict}: {found}" + (f" ({counts})" if counts else ""),
    ]
    rows = (
        f"rows: {s['rows_read']:,} read = {s['rows_checked']:,} checked"
        f" + {s['rows_rejected']:,} rejected"
    )
    if s["rejected_reasons"]:
        reasons = ", ".join(f"{k} {v:,}" for k, v in s["rejected_reasons"].items())
        rows += f" ({reasons})"
    lines.append(rows)
    lines.append(
        f"claims: {s['claims']:,}  lines: {s['lines']:,}  diagnoses: {s['diagnoses']:,}"
        f"  inputs: {s['inputs']:,}"
        + (f" ({s['inputs_failed']:,} could not be read)" if s["inputs_failed"] else "")
    )
    if s["denied_lines"]:
        lines.append(
            f"denials: {s['denied_lines']:,} diagnosis-related denied lines, "
            f"${s['denied_amount']:,.2f}; {s['denied_explained_lines']:,} explained by a finding "
            f"(${s['denied_explained_amount']:,.2f}); ${s['denied_fixable_amount']:,.2f} has a "
            "suggested fix"
        )
    for info in report.inputs:
        if info.format.startswith(("x12", "fhir")):
            lines.extend(f"  {info.path}: {note}" for note in info.notes)
        if info.error is not None:
            lines.append(paint(f"  cannot read {info.path}: {info.error}", "error"))
    release = report.reference.get("release") or report.reference.get("name")
    if release:
        lines.append(f"reference: {release}")
    return lines


def render_text(
    report: Report,
    *,
    color: bool = False,
    max_findings: int | None = 200,
    per_rule: int | None = PER_RULE,
) -> str:
    """Return the terminal report: header, findings grouped by rule, and a closing count.

    Rules are listed errors first, then by count. Under each rule up to ``per_rule``
    findings are shown (file:row:column, claim, value -> suggested codes, message), and no
    more than ``max_findings`` in all; None lifts either limit.
    """
    paint = _Paint(color)
    out = summary_lines(report, paint)
    findings = report.findings
    if findings.empty:
        out.append("")
        failed = report.stats.inputs_failed
        out.append(
            paint("No problems found.", "ok")
            if not failed
            else paint(
                f"No problems found in what could be read; {failed} input(s) could not "
                "be read (see above).",
                "error",
            )
        )
        return "\n".join(out) + "\n"

    code_key, n_codes = codes_of(findings["code"])
    first = first_rows(code_key)
    groups = pd.DataFrame(
        {
            "code": none_if_missing(findings["code"].iloc[first]),
            "name": none_if_missing(findings["name"].iloc[first]),
            "severity": none_if_missing(findings["severity"].iloc[first]),
            "findings": np.bincount(code_key, minlength=n_codes),
            "claims": count_distinct(code_key, codes_of(findings["claim_id"])[0], n_codes),
        }
    )
    rank = {name: i for i, name in enumerate(SEVERITIES)}
    groups["rank"] = [rank.get(str(v), len(rank)) for v in groups["severity"]]
    groups = groups.sort_values(["rank", "findings", "code"], ascending=[True, False, True])

    order = np.arange(len(findings))
    if per_rule is not None:
        shown_mask = pd.Series(code_key).groupby(code_key).cumcount().to_numpy() < per_rule
    else:
        shown_mask = np.ones(len(findings), dtype=bool)
    shown_rows = order[shown_mask]
    shown = findings.iloc[shown_rows]
    codes, _ = suggestion_texts(shown["suggestions"])
    fields = {
        name: none_if_missing(shown[name]).tolist()
        for name in ("code", "message", "claim_id", "line", "value", "file", "sheet", "row")
    }
    fields["column"] = none_if_missing(shown["column"]).tolist()
    fields["suggested"] = none_if_missing(codes).tolist()
    by_code: dict[str, list[int]] = {}
    for i, code in enumerate(fields["code"]):
        by_code.setdefault(str(code), []).append(i)

    table = report.crosswalk()
    budget = max_findings
    group: Any
    for group in groups.itertuples(index=False):
        severity = str(group.severity)
        style = severity if severity in _STYLES else "bold"
        head = (
            f"{paint(f'{severity:<7}', style)} {paint(str(group.code), 'bold')}"
            f" {group.name}: {_plural(int(group.findings), 'finding')}"
            f" on {_plural(int(group.claims), 'claim')}"
        )
        out.append("")
        out.append(head)
        listed = 0
        for i in by_code.get(str(group.code), []):
            if budget is not None and budget <= 0:
                break
            where = _location(
                fields["file"][i], fields["sheet"][i], fields["row"][i], fields["column"][i]
            )
            claim = fields["claim_id"][i]
            line = fields["line"][i]
            value = fields["value"][i]
            parts = [f"  {where}"]
            if claim is not None:
                parts.append(f"claim {claim}" + (f" line {line}" if line is not None else ""))
            if value is not None:
                suggested = str(fields["suggested"][i] or "").replace(" ", ", ")
                fix = f" -> {suggested}" if suggested else ""
                parts.append(f"{str(value).strip() or repr(value)}{fix}")
            out.append("  ".join(parts))
            out.append("      " + paint(str(fields["message"][i]), "dim"))
            listed += 1
            if budget is not None:
                budget -= 1
        rest = int(group.findings) - listed
        if rest > 0:
            out.append(paint(f"  ... and {rest:,} more", "dim"))
        rows = table[table["code"] == group.code]
        titled = rows[rows["suggestions"].fillna("") != ""].head(3)
        for rec in titled.itertuples(index=False):
            out.append(f"  {rec.problem_code} -> {rec.suggestions}")

    s = report.summary
    out.append("")
    out.append(
        f"Found {_plural(int(s['findings']), 'finding')} on "
        f"{_plural(int(s['rows_checked']), 'checked row')} "
        f"({s['rows_read']:,} read = {s['rows_checked']:,} checked"
        f" + {s['rows_rejected']:,} rejected)."
    )
    return "\n".join(out) + "\n"
