"""Every rule's case file, run with only that rule selected (``pytest -k DX003`` runs one)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import eobcheck
from eobcheck.rules import BY_CODE

CASES = Path(__file__).resolve().parents[2] / "fixtures" / "rules"
CASE_FILES = sorted(CASES.glob("*.csv"))


@pytest.mark.parametrize("path", CASE_FILES, ids=[p.stem for p in CASE_FILES])
def test_rule_case_file(path: Path) -> None:
    code = path.stem.split("-", 1)[0]
    rule = BY_CODE[code]
    assert path.stem == f"{rule.code}-{rule.name}"
    cases = pd.read_csv(path, dtype=str, keep_default_na=False)
    report = eobcheck.check(path, select=[code])
    findings = report.findings
    assert set(findings["code"]) <= {code}
    for i, case in cases.iterrows():
        row = int(i) + 2  # header is row 1
        here = findings[findings["row"] == row]
        got = set(here["code"])
        want = {case["expect"]} if case["expect"] else set()
        assert got == want, f"{path.name} row {row} ({case['note']}): got {got}, want {want}"
        if case["expect_fix"]:
            suggested = sorted({s.code for tup in here["suggestions"] for s in tup})
            assert suggested == sorted(case["expect_fix"].split()), (
                f"{path.name} row {row} ({case['note']}): suggestions {suggested}"
            )
    assert report.stats.rows_read == len(cases)
    assert report.stats.rows_read == report.stats.rows_checked + report.stats.rows_rejected
