"""Terminal text: summary, grouping by rule, examples, limits and colour."""

from __future__ import annotations

from eobcheck.report import Report

from .conftest import finding, make_report


def test_summary_and_groups(report: Report) -> None:
    text = report.to_text()
    assert "not valid" in text
    assert "rows: 10 read = 9 checked + 1 rejected (invalid-date 1)" in text
    assert "error   DX003 retired-code: 2 findings on 2 claims" in text
    assert (
        "fixtures/eob_sample.csv:2:Dx 1  claim C1001 line 1  M54.5 -> M54.50, M54.51, M54.59"
        in (text)
    )
    assert "M54.5 -> M54.50 Low back pain, unspecified; M54.51" in text
    assert "s335a -> S33.5XXA" in text
    assert text.rstrip().endswith("(10 read = 9 checked + 1 rejected).")
    # errors come before warnings
    assert text.index("DX003") < text.index("DX010")
    assert "\x1b[" not in text


def test_colour_only_when_asked(report: Report) -> None:
    assert "\x1b[1;31m" in report.to_text(color=True)


def test_limits_per_rule_and_overall() -> None:
    rows = [finding(line_id=i, row=i + 2, claim_id=f"C{i}") for i in range(12)]
    report = make_report(rows)
    text = report.to_text()
    assert text.count("claim C") == 5
    assert "... and 7 more" in text
    assert report.to_text(max_findings=2).count("claim C") == 2
    assert report.to_text(max_findings=None).count("claim C") == 5


def test_empty_report_says_so(empty_report: Report) -> None:
    text = empty_report.to_text()
    assert "valid" in text and "No problems found." in text


def test_summary_property_lists_top_problems(report: Report) -> None:
    summary = report.summary
    assert summary["valid"] is False
    assert summary["rows_read"] == 10
    top = summary["top_problems"][0]
    assert top["value"] == "M54.5" and top["name"] == "retired-code"
    assert top["suggested_codes"] == ["M54.50", "M54.51", "M54.59"]
    assert top["lines"] == 2 and top["claims"] == 2
