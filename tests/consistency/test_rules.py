"""Consistency rules beyond the case files: messages, fixes and edge cases."""

from __future__ import annotations

import pandas as pd

import eobcheck


def _check(rows: dict[str, list[str]], rule: str) -> pd.DataFrame:
    return eobcheck.check(pd.DataFrame(rows), select=[rule]).findings


def test_initial_encounter_fix_is_unsafe_and_valid_on_the_date() -> None:
    found = _check(
        {
            "Claim ID": ["C1"],
            "DOS": ["2023-01-05"],
            "CPT": ["97110"],
            "Dx 1": ["S33.5XXA"],
        },
        "initial-encounter-for-therapy",
    )
    assert list(found["fix_applicability"]) == ["unsafe"]
    assert list(found["fix_replacement"]) == ["S33.5XXD"]


def test_manifestation_message_quotes_the_code_first_note() -> None:
    found = _check(
        {
            "Claim ID": ["C1"],
            "DOS": ["2023-01-05"],
            "CPT": ["99213"],
            "Dx 1": ["F02.80"],
            "Dx 2": ["G30.9"],
        },
        "manifestation-first",
    )
    assert "code first" in found["message"].iloc[0]
    assert len(found["message"].iloc[0]) < 400


def test_rejected_lines_are_skipped() -> None:
    found = _check(
        {
            "Claim ID": ["C1", ""],
            "DOS": ["not a date", "2023-01-05"],
            "CPT": ["97110", "97110"],
            "Dx 1": ["V43.52XA", "V43.52XA"],
        },
        "external-cause-first",
    )
    assert found.empty


def test_sex_conflict_honours_the_end_of_the_sex_edit() -> None:
    found = _check(
        {
            "Claim ID": ["C1", "C2"],
            "Patient ID": ["P1", "P1"],
            "Sex": ["F", "F"],
            "DOS": ["2024-09-30", "2024-10-01"],
            "CPT": ["99213", "99213"],
            "Dx 1": ["N40.0", "N40.0"],
        },
        "sex-conflict",
    )
    assert list(found["claim_id"]) == ["C1"]


def test_laterality_bilateral_fix() -> None:
    found = _check(
        {
            "Claim ID": ["C1"],
            "DOS": ["2023-01-05"],
            "CPT": ["92014"],
            "Dx 1": ["H25.11"],
            "Dx 2": ["H25.12"],
        },
        "laterality-conflict",
    )
    assert list(found["fix_replacement"]) == ["H25.13"]
    assert "bilateral" in found["message"].iloc[0]


def test_every_consistency_rule_runs_on_the_sample() -> None:
    sample = eobcheck.check("fixtures/sample_eob.csv", select=["CX", "PX", "PT"])
    assert set(sample.findings["code"]) <= {
        *(f"CX00{i}" for i in range(1, 6)),
        "PX001",
        "PX002",
        *(f"PT00{i}" for i in range(1, 5)),
    }
    assert not sample.findings.empty
