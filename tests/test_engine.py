"""End to end through the library API: accounting, findings, several inputs, DataFrames."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

import eobcheck
from eobcheck.errors import ConfigError, InputError

SAMPLE_CSV = Path(__file__).resolve().parents[1] / "fixtures" / "sample_eob.csv"
SAMPLE_XLSX = SAMPLE_CSV.with_suffix(".xlsx")


@pytest.fixture(scope="module")
def report() -> eobcheck.Report:
    return eobcheck.check(SAMPLE_CSV)


def test_rows_add_up(report: eobcheck.Report) -> None:
    s = report.stats
    assert s.rows_read == 38
    assert s.rows_read == s.rows_checked + s.rows_rejected
    assert s.rejected_reasons == {"invalid-date": 1, "missing-claim-id": 1}
    assert s.rows_rejected == 2
    (info,) = report.inputs
    assert info.rows_read == 38 and info.rows_checked == 36 and info.rows_rejected == 2
    assert info.sha256 and len(info.sha256) == 64
    assert s.claims == 32
    assert s.findings == len(report.findings)
    assert sum(s.by_rule.values()) == s.findings


def _by(report: eobcheck.Report, claim: str) -> pd.DataFrame:
    f = report.findings
    return f[f["claim_id"] == claim]


def test_expected_findings(report: eobcheck.Report) -> None:
    expect = {
        "1001": "retired-code",
        "1003": "incomplete-code",
        "1004": "incomplete-code",
        "1005": "missing-placeholder",
        "1006": "icd9-code",
        "1009": "duplicate-diagnosis",
        "1010": "missing-diagnosis",
        "1011": "invalid-date",
        "1012": "retired-code",
        "1013": "premature-code",
        "1014": "unknown-code",
        "1015": "malformed-code",
        "1026": "unspecified-persisting",
        "1030": "procedure-diagnosis-mismatch",
        "1031": "laterality-conflict",
        "1032": "sex-conflict",
    }
    for claim, name in expect.items():
        assert set(_by(report, claim)["name"]) == {name}, claim
    assert set(_by(report, "1016")["name"]) == {
        "episode-region-change",
        "initial-encounter-for-therapy",
        "procedure-diagnosis-mismatch",
    }
    assert set(_by(report, "1017")["name"]) == {
        "excludes1-conflict",
        "initial-encounter-for-therapy",
    }
    assert set(_by(report, "1033")["name"]) == {
        "external-cause-first",
        "initial-encounter-for-therapy",
    }
    for clean in ("1002", "1007", "1008", "1018", "1020", "1021", "1022", "1023", "1024", "1025"):
        assert _by(report, clean).empty, clean
    assert not report.valid


def test_retired_finding_fields(report: eobcheck.Report) -> None:
    f = _by(report, "1001")
    assert list(f["row"]) == [2, 3]
    first = f.iloc[0]
    assert first["code"] == "DX003" and first["severity"] == "error"
    assert first["value"] == "M54.5" and first["normalized"] == "M54.5"
    assert first["column"] == "Dx 1" and first["file"] == str(SAMPLE_CSV)
    assert [s.code for s in first["suggestions"]] == ["M54.50", "M54.51", "M54.59"]
    assert all(s.title for s in first["suggestions"])
    assert first["fix_applicability"] == "display_only"
    assert "2021-10-01" in first["message"]
    assert first["denied"] == pytest.approx(165.0)
    assert first["carc"] == "CO-146"


def test_placeholder_fix_is_safe(report: eobcheck.Report) -> None:
    f = _by(report, "1005").iloc[0]
    assert f["fix_applicability"] == "safe" and f["fix_replacement"] == "S33.5XXA"


def test_xlsx_gives_the_same_findings(report: eobcheck.Report) -> None:
    other = eobcheck.check(SAMPLE_XLSX)
    key = ["claim_id", "name", "value", "dx_position"]
    a = report.findings[key].astype(str).sort_values(key).reset_index(drop=True)
    b = other.findings[key].astype(str).sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    assert other.stats.rows_read == report.stats.rows_read


def test_select_and_ignore() -> None:
    only = eobcheck.check(SAMPLE_CSV, select=["retired-code"])
    assert set(only.findings["name"]) == {"retired-code"}
    rest = eobcheck.check(SAMPLE_CSV, select=["DX"], ignore=["DX003"])
    assert "retired-code" not in set(rest.findings["name"])
    # rejection is accounting, not a rule: ignoring the rule keeps the rows rejected
    quiet = eobcheck.check(SAMPLE_CSV, ignore=["invalid-date", "missing-claim-id"])
    assert quiet.stats.rows_rejected == 2
    with pytest.raises(ConfigError, match="unknown rule selector"):
        eobcheck.check(SAMPLE_CSV, select=["no-such-rule"])


def test_severity_override() -> None:
    r = eobcheck.check(SAMPLE_CSV, severity={"retired-code": "warning"})
    assert set(r.findings.loc[r.findings["name"] == "retired-code", "severity"]) == {"warning"}


def test_dataframe_input() -> None:
    df = pd.DataFrame(
        {"Claim ID": ["A", "B"], "DOS": ["2023-01-05", "2019-03-01"], "Dx 1": ["M54.5", "M54.5"]}
    )
    r = eobcheck.check(df)
    assert list(r.findings["claim_id"]) == ["A"]
    assert r.stats.rows_read == 2 and r.stats.rows_checked == 2


def test_batch_with_a_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.csv"
    bad.write_text("foo,bar\n1,2\n", encoding="utf-8")
    good = tmp_path / "good.csv"
    good.write_text(SAMPLE_CSV.read_text(encoding="utf-8"), encoding="utf-8")
    r = eobcheck.check([tmp_path])
    by_path = {Path(i.path).name: i for i in r.inputs}
    assert by_path["broken.csv"].error and "Claim" in by_path["broken.csv"].error
    assert by_path["good.csv"].rows_read == 38
    for path in (bad, good):  # each input's digest, whether it could be read or not
        assert by_path[path.name].sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert r.stats.inputs == 2 and r.stats.inputs_failed == 1
    assert not r.valid


def test_missing_path() -> None:
    with pytest.raises(InputError, match="no such file"):
        eobcheck.check("does/not/exist.csv")


def test_messages_name_each_rows_own_date() -> None:
    df = pd.DataFrame(
        {
            "Claim ID": ["A", "B", "C"],
            "DOS": ["2023-02-02", "2023-03-03", "2021-06-15"],
            "Dx 1": ["M54.4", "m544", "M54.50"],
        }
    )
    f = eobcheck.check(df).findings.set_index("claim_id")
    assert "on 2023-02-02" in f.loc["A", "message"]
    assert "on 2023-03-03" in f.loc["B", "message"]
    assert f.loc["C", "message"] == (
        "M54.50 takes effect on 2021-10-01, after the date of service 2021-06-15; "
        "use M54.5 (Low back pain)."
    )


SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples"


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="../shared/samples is not beside the repository")
def test_835_alone_says_it_has_no_diagnoses() -> None:
    path = next((SAMPLES / "x12-edi835parser").glob("*.txt"))
    r = eobcheck.check(path)
    (info,) = r.inputs
    assert info.format == "x12-835"
    assert any("no diagnosis" in n for n in info.notes)
    assert "missing-diagnosis" not in set(r.findings["name"])
    assert info.rows_read == info.rows_checked + info.rows_rejected + info.rows_joined
    assert r.stats.rows_read == r.stats.rows_checked + r.stats.rows_rejected


def test_837_and_835_are_joined_in_one_check(tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from bench_x12 import write_835, write_837

    p837, p835 = tmp_path / "claims.837", tmp_path / "remit.835"
    write_837(p837, 50)
    write_835(p835, 50)
    r = eobcheck.check([p837, p835])
    by_format = {i.format: i for i in r.inputs}
    remit = by_format["x12-835"]
    assert remit.rows_joined > 0
    assert remit.rows_read == remit.rows_checked + remit.rows_rejected + remit.rows_joined
    assert r.stats.rows_read == r.stats.rows_checked + r.stats.rows_rejected
    assert (
        r.stats.rows_read == by_format["x12-837p"].rows_read + remit.rows_read - remit.rows_joined
    )
