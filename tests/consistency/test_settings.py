"""Settings the consistency rules read: unrelated pairs and patient thresholds."""

from __future__ import annotations

import pandas as pd
import pytest

import eobcheck
from eobcheck.errors import ConfigError


def _conflicts() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Claim ID": ["C1", "C2"],
            "DOS": ["2023-01-05", "2023-01-05"],
            "CPT": ["97110", "97110"],
            "Dx 1": ["M54.50", "M54.50"],
            "Dx 2": ["M51.26", "M54.41"],
        }
    )


def test_excludes1_reports_both_positions_and_the_note() -> None:
    found = eobcheck.check(_conflicts(), select=["excludes1-conflict"]).findings
    first = found[found["claim_id"] == "C1"].iloc[0]
    assert first["value"] == "M51.26" and first["dx_position"] == 2
    assert "M54.50 (position 1)" in first["message"]
    assert "Excludes1 note at M54.5" in first["message"]


@pytest.mark.parametrize("pair", [["M54.50", "M51.26"], ["M51.2", "M54.5"], ["M5126", "M5450"]])
def test_unrelated_pairs_silence_excludes1(pair: list[str]) -> None:
    found = eobcheck.check(_conflicts(), select=["excludes1-conflict"], unrelated=[pair]).findings
    assert list(found["claim_id"]) == ["C2"]


def test_unrelated_needs_pairs() -> None:
    with pytest.raises(ConfigError, match="unrelated"):
        eobcheck.check(_conflicts(), select=["excludes1-conflict"], unrelated=[["M54.50"]])


def _visits(days: list[str]) -> pd.DataFrame:
    n = len(days)
    return pd.DataFrame(
        {
            "Claim ID": [f"C{i}" for i in range(n)],
            "Patient ID": ["P1"] * n,
            "DOS": days,
            "CPT": ["97110"] * n,
            "Dx 1": ["M54.50"] * n,
        }
    )


def test_unspecified_thresholds_are_settings() -> None:
    visits = _visits(["2023-01-05", "2023-01-20", "2023-02-01"])  # 27 days
    assert eobcheck.check(visits, select=["unspecified-persisting"]).findings.empty
    found = eobcheck.check(visits, select=["unspecified-persisting"], unspecified_days=20).findings
    assert list(found["claim_id"]) == ["C2"]
    assert {s.code for s in found["suggestions"].iloc[0]} == {"M54.51", "M54.59"}
    found = eobcheck.check(
        visits, select=["unspecified-persisting"], unspecified_days=20, unspecified_visits=4
    ).findings
    assert found.empty


def test_episode_gap_is_a_setting() -> None:
    frame = _visits(["2023-01-05", "2023-01-12", "2023-01-19", "2023-03-01"])
    frame.loc[3, "Dx 1"] = "S32.2XXA"
    assert eobcheck.check(frame, select=["episode-region-change"]).findings.empty
    found = eobcheck.check(frame, select=["episode-region-change"], episode_gap_days=60).findings
    assert list(found["claim_id"]) == ["C3"]
