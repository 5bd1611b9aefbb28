"""Reports built from hand-made findings frames, as the engine would hand them over."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest

from eobcheck.report import FINDING_COLUMNS, InputInfo, Report, build_stats


@dataclass(frozen=True)
class Sugg:
    """A suggestion as the reference layer hands it over: a code and its title."""

    code: str
    title: str


# Titles as published in the ICD-10-CM tabular list (FY2022 onwards).
M545_CHILDREN = (
    Sugg("M54.50", "Low back pain, unspecified"),
    Sugg("M54.51", "Vertebrogenic low back pain"),
    Sugg("M54.59", "Other low back pain"),
)
S335_FIX = (Sugg("S33.5XXA", "Sprain of ligaments of lumbar spine, initial encounter"),)


def finding(**over: Any) -> dict[str, Any]:
    """Return one findings row (a retired M54.5 on a denied line) with overrides."""
    row: dict[str, Any] = {
        "code": "DX003",
        "name": "retired-code",
        "severity": "error",
        "message": "M54.5 is not valid on 2023-01-05: it became a header on 2021-10-01.",
        "claim_id": "C1001",
        "line": 1,
        "dx_position": 1,
        "value": "M54.5",
        "normalized": "M54.5",
        "date_of_service": pd.Timestamp("2023-01-05"),
        "suggestions": M545_CHILDREN,
        "fix_applicability": "display_only",
        "fix_replacement": None,
        "file": "fixtures/eob_sample.csv",
        "sheet": None,
        "row": 2,
        "column": "Dx 1",
        "line_id": 0,
        "procedure": "97110",
        "billed": 125.0,
        "denied": 125.0,
        "carc": "CO-146",
        "rarc": "M81",
    }
    row.update(over)
    return row


def findings_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Return a findings frame with contract dtypes from row dicts."""
    data = {name: [r[name] for r in rows] for name in FINDING_COLUMNS}
    frame = pd.DataFrame({k: v for k, v in data.items() if k != "suggestions"})
    suggestions = np.empty(len(rows), dtype=object)
    for i, r in enumerate(rows):
        suggestions[i] = r["suggestions"]
    frame["suggestions"] = suggestions
    dtypes = {
        "line": "Int64",
        "dx_position": "Int64",
        "row": "Int64",
        "line_id": "int64",
        "billed": "float64",
        "denied": "float64",
    }
    for name in FINDING_COLUMNS:
        if name in dtypes:
            frame[name] = frame[name].astype(dtypes[name])  # type: ignore[call-overload]
        elif name == "date_of_service":
            frame[name] = pd.to_datetime(frame[name]).astype("datetime64[ns]")
        elif name != "suggestions":
            frame[name] = frame[name].astype("string")
    return frame[list(FINDING_COLUMNS)]


def make_report(rows: list[dict[str, Any]], **over: Any) -> Report:
    """Return a Report over the given findings rows with plausible row accounting."""
    findings = findings_frame(rows) if rows else findings_frame([finding()]).iloc[0:0]
    inputs = [
        InputInfo(
            path="fixtures/eob_sample.csv",
            format="csv",
            sha256="ab" * 32,
            rows_read=10,
            rows_checked=9,
            rows_rejected=1,
            rejected_reasons={"invalid-date": 1},
        )
    ]
    stats = build_stats(findings, inputs, claims=4, lines=10, diagnoses=18)
    fields: dict[str, Any] = {
        "valid": findings.empty,
        "stats": stats,
        "inputs": inputs,
        "reference": {"release": "FY2027", "valid_from": "2015-10-01", "valid_to": "2027-09-30"},
        "rules": ["retired-code", "incomplete-code", "missing-placeholder"],
        "findings": findings,
    }
    fields.update(over)
    return Report(**fields)


def sample_rows() -> list[dict[str, Any]]:
    """Three findings: retired M54.5 (twice, one line), a placeholder fix, a bad date."""
    return [
        finding(),
        finding(
            claim_id="C1002",
            row=3,
            line_id=1,
            dx_position=2,
            column="Dx 2",
            billed=80.0,
            denied=0.0,
            carc=None,
            rarc=None,
        ),
        finding(
            code="DX006",
            name="missing-placeholder",
            message="S33.5A lacks the placeholder X: bill S33.5XXA.",
            claim_id="C1003",
            value=" s335a ",
            normalized="S33.5A",
            suggestions=S335_FIX,
            fix_applicability="unsafe",
            fix_replacement="S33.5XXA",
            row=4,
            line_id=2,
            billed=float("nan"),
            denied=float("nan"),
            procedure=None,
            carc=None,
            rarc=None,
        ),
        finding(
            code="DX010",
            name="invalid-date",
            severity="warning",
            message="The date of service '13/45/2023' cannot be read.",
            claim_id="C1004",
            line=None,
            dx_position=None,
            value=None,
            normalized=None,
            date_of_service=pd.NaT,
            suggestions=(),
            fix_applicability=None,
            row=5,
            column=None,
            line_id=3,
            billed=float("nan"),
            denied=float("nan"),
        ),
    ]


@pytest.fixture
def report() -> Report:
    """A report with four findings of four kinds."""
    return make_report(sample_rows())


@pytest.fixture
def empty_report() -> Report:
    """A report with no findings."""
    return make_report([])


@pytest.fixture
def report_factory() -> Callable[..., Report]:
    """Build a report from findings rows."""
    return make_report
