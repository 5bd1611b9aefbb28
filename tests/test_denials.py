"""Denial triage: which denials are diagnosis-related, and which finding explains each."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

import eobcheck
from eobcheck.denials import EXPLAINED_BY, _denial_codes

SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "sample_eob.csv"


@pytest.mark.parametrize(
    ("carc", "rarc", "codes"),
    [
        ("CO-146", "M84", ("CO-146", "M84")),
        ("CO146", "", ("CO146",)),
        ("146", "", ("146",)),
        ("CO-16", "M81", ("CO-16", "M81")),
        ("CO-16", "N130", ()),  # 16 without a diagnosis remark is not about diagnoses
        ("CO-45 PR-2", "", ()),
        ("CO-197", "", ()),  # authorization, not diagnosis
        ("OA-11 CO-45", "", ("OA-11",)),
        ("PR-9", "", ("PR-9",)),
        ("CO-167", "", ("CO-167",)),
    ],
)
def test_denial_codes(carc: str, rarc: str, codes: tuple[str, ...]) -> None:
    assert _denial_codes(carc, rarc)[0] == codes


def test_mapping_is_documented() -> None:
    assert EXPLAINED_BY["146"] == {"retired-code", "premature-code", "icd9-code"}
    assert "incomplete-code" in EXPLAINED_BY["M81"]
    assert EXPLAINED_BY["9"] == {"age-conflict"} and EXPLAINED_BY["10"] == {"sex-conflict"}


def _frame(rows: list[tuple[str, str, str, str, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        rows, columns=["Claim ID", "DOS", "Dx 1", "Adj Codes", "Billed", "Paid"]
    ).assign(**{"Remark Codes": ""})


def test_explained_and_unexplained() -> None:
    df = _frame(
        [
            ("A", "2023-01-05", "M54.5", "CO-146", 100.0, 0.0),  # retired: explained
            ("B", "2023-01-05", "M54.50", "CO-146", 80.0, 0.0),  # valid code: unexplained
            ("C", "2023-01-05", "M54.50", "CO-45", 90.0, 20.0),  # not a denial
        ]
    )
    r = eobcheck.check(df)
    d = r.denials.set_index("claim_id")
    assert list(d.index) == ["A", "B"]
    assert d.loc["A", "explained"] and d.loc["A", "explained_by"] == ["retired-code"]
    assert not d.loc["B", "explained"] and d.loc["B", "explained_by"] == []
    assert d.loc["A", "amount"] == pytest.approx(100.0)
    assert r.stats.denied_lines == 2 and r.stats.denied_amount == pytest.approx(180.0)
    assert r.stats.denied_explained_amount == pytest.approx(100.0)
    assert r.stats.denied_fixable_amount == pytest.approx(100.0)


def test_claim_level_explanation() -> None:
    # the retired code is on line 1; line 2 of the same claim was denied too
    df = pd.DataFrame(
        {
            "Claim ID": ["A", "A"],
            "DOS": ["2023-01-05", "2023-01-05"],
            "Dx 1": ["M54.5", ""],
            "Adj Codes": ["CO-146", "CO-146"],
            "Remark Codes": ["M84", "M84"],
            "Billed": [100.0, 50.0],
            "Paid": [0.0, 0.0],
        }
    )
    d = eobcheck.check(df).denials
    assert list(d["explained"]) == [True, True]


def test_sample_report_denials(tmp_path: Path) -> None:
    r = eobcheck.check(SAMPLE)
    data = json.loads(r.to_json())
    assert set(data) >= {"denials", "findings"}
    first = data["denials"][0]
    assert set(first) == {"claim_id", "line", "codes", "amount", "explained", "explained_by"}
    assert first == {
        "claim_id": "1001",
        "line": 1,
        "codes": ["CO-146", "M84"],
        "amount": 165.0,
        "explained": True,
        "explained_by": ["retired-code"],
    }
    assert data["stats"]["denied_lines"] == len(data["denials"])
    out = tmp_path / "r.xlsx"
    r.to_excel(out)
    wb = openpyxl.load_workbook(out, read_only=True)
    assert "Denials" in wb.sheetnames
    rows = list(wb["Denials"].iter_rows(values_only=True))
    assert rows[0][:3] == ("Claim", "Line", "Denial codes")
    assert len(rows) == len(data["denials"]) + 1
