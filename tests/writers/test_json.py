"""The JSON contract for programs: keys, types, nulls, and the fast path's exact bytes."""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
import pandas as pd
import pytest

from eobcheck.report import Report
from eobcheck.writers.json import dumps, report_dict

from .conftest import finding, make_report

TOP_KEYS = {
    "schema_version",
    "tool",
    "valid",
    "stats",
    "inputs",
    "reference",
    "rules",
    "denials",
    "findings",
}
FINDING_KEYS = {
    "code",
    "name",
    "severity",
    "message",
    "claim_id",
    "line",
    "dx_position",
    "value",
    "normalized",
    "date_of_service",
    "suggestions",
    "fix",
    "location",
    "procedure",
    "carc",
    "rarc",
}
STATS_KEYS = {
    "rows_read",
    "rows_checked",
    "rows_rejected",
    "rejected_reasons",
    "claims",
    "lines",
    "diagnoses",
    "findings",
    "by_severity",
    "by_rule",
    "inputs",
    "inputs_failed",
    "denied_lines",
    "denied_amount",
    "denied_explained_lines",
    "denied_explained_amount",
    "denied_fixable_amount",
}
INPUT_KEYS = {
    "path",
    "format",
    "sha256",
    "sheets",
    "rows_read",
    "rows_checked",
    "rows_rejected",
    "rows_joined",
    "rejected_reasons",
    "notes",
    "error",
}


def _load(report: Report) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(report.to_json())
    return data


def test_top_level_and_stats_keys_are_pinned(report: Report) -> None:
    data = _load(report)
    assert set(data) == TOP_KEYS
    assert data["schema_version"] == 1
    assert data["tool"]["name"] == "eobcheck"
    assert data["valid"] is False
    assert set(data["stats"]) == STATS_KEYS
    for key in ("rows_read", "rows_checked", "rows_rejected", "claims", "lines", "findings"):
        assert type(data["stats"][key]) is int
    stats = data["stats"]
    assert stats["rows_read"] == stats["rows_checked"] + stats["rows_rejected"]
    assert stats["by_severity"] == {"error": 3, "warning": 1, "info": 0}
    assert stats["by_rule"] == {"retired-code": 2, "invalid-date": 1, "missing-placeholder": 1}
    assert [set(i) for i in data["inputs"]] == [INPUT_KEYS]
    assert data["reference"]["release"] == "FY2027"


def test_finding_keys_and_types_are_pinned(report: Report) -> None:
    first = _load(report)["findings"][0]
    assert set(first) == FINDING_KEYS
    assert first["code"] == "DX003"
    assert first["name"] == "retired-code"
    assert first["severity"] in ("error", "warning", "info")
    assert isinstance(first["message"], str)
    assert first["claim_id"] == "C1001"
    assert first["line"] == 1 and first["dx_position"] == 1
    assert first["value"] == "M54.5" and first["normalized"] == "M54.5"
    assert first["date_of_service"] == "2023-01-05"
    assert first["suggestions"] == [
        {"code": "M54.50", "title": "Low back pain, unspecified"},
        {"code": "M54.51", "title": "Vertebrogenic low back pain"},
        {"code": "M54.59", "title": "Other low back pain"},
    ]
    assert first["fix"] == {"applicability": "display_only", "replacement": None}
    assert first["location"] == {
        "file": "fixtures/eob_sample.csv",
        "sheet": None,
        "row": 2,
        "column": "Dx 1",
    }
    assert (first["procedure"], first["carc"], first["rarc"]) == ("97110", "CO-146", "M81")
    assert "line_id" not in first


def test_value_is_as_written_and_fix_carries_replacement(report: Report) -> None:
    placeholder = _load(report)["findings"][2]
    assert placeholder["value"] == " s335a "
    assert placeholder["fix"] == {"applicability": "unsafe", "replacement": "S33.5XXA"}


def test_nat_nan_and_nulls_become_null(report: Report) -> None:
    bad_date = _load(report)["findings"][3]
    assert bad_date["date_of_service"] is None
    assert bad_date["line"] is None and bad_date["dx_position"] is None
    assert bad_date["value"] is None and bad_date["normalized"] is None
    assert bad_date["suggestions"] == []
    assert bad_date["fix"] == {"applicability": None, "replacement": None}
    assert bad_date["location"]["column"] is None


def test_empty_findings(empty_report: Report) -> None:
    data = _load(empty_report)
    assert data["findings"] == []
    assert data["valid"] is True
    assert data["stats"]["findings"] == 0


@pytest.mark.parametrize("indent", [None, 2])
def test_fast_path_equals_plain_serialization(report: Report, indent: int | None) -> None:
    option = orjson.OPT_INDENT_2 if indent else 0
    assert dumps(report, indent=indent) == orjson.dumps(report_dict(report), option=option)


def test_escaping_quotes_backslashes_controls_and_unicode() -> None:
    tricky = 'say "M54.5"\\ then\ttab\nnewline \x01 café – ✓'
    report = make_report([finding(message=tricky, value='"M54.5"', claim_id="Ç-1")])
    for indent in (None, 2):
        data = json.loads(dumps(report, indent=indent))
        assert data["findings"][0]["message"] == tricky
        assert data["findings"][0]["value"] == '"M54.5"'
        assert data["findings"][0]["claim_id"] == "Ç-1"


def test_other_indent_widths_and_to_dict_agree(report: Report) -> None:
    assert json.loads(report.to_json(indent=4)) == report.to_dict()
    assert json.loads(report.to_json(indent=None)) == report.to_dict()


def test_to_json_writes_the_file(report: Report, tmp_path: Any) -> None:
    path = tmp_path / "report.json"
    text = report.to_json(path)
    assert json.loads(path.read_text(encoding="utf-8")) == json.loads(text)


def test_equal_suggestion_tuples_in_different_objects_encode_alike() -> None:
    rows = [finding(line_id=i, suggestions=tuple(finding()["suggestions"])) for i in range(3)]
    data = json.loads(make_report(rows).to_json())
    assert len({json.dumps(f["suggestions"]) for f in data["findings"]}) == 1


def test_no_nan_or_numpy_leaks_into_the_document(report: Report) -> None:
    text = report.to_json()
    assert "NaN" not in text and "NaT" not in text

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, float):
            assert not math.isnan(node)

    walk(json.loads(text))


def test_findings_frame_missing_a_column_is_refused() -> None:
    frame = make_report([finding()]).findings.drop(columns=["rarc"])
    with pytest.raises(ValueError, match="rarc"):
        make_report([finding()], findings=frame)


def test_dates_with_time_of_day_print_as_dates() -> None:
    report = make_report([finding(date_of_service=pd.Timestamp("2023-01-05 13:45"))])
    assert _load(report)["findings"][0]["date_of_service"] == "2023-01-05"
