"""The JSON contract for programs: keys, types, nulls, and the fast path's exact bytes."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest

from eobcheck.report import Report
from eobcheck.writers.json import dumps, report_dict, write_json

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


@pytest.mark.parametrize("indent", [None, 2])
def test_rows_laid_out_in_blocks_give_the_same_bytes(
    indent: int | None, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    import eobcheck
    import eobcheck.writers.json as writer

    sample = Path(__file__).resolve().parents[2] / "fixtures" / "sample_eob.csv"
    report = eobcheck.check(sample)
    option = orjson.OPT_INDENT_2 if indent else 0
    expected = orjson.dumps(report_dict(report), option=option)
    monkeypatch.setattr(writer, "_BLOCK_ROWS", 2)
    assert len(report.findings) > 2 and len(report.denials) > 2
    assert dumps(report, indent=indent) == expected
    path = tmp_path / "report.json"
    write_json(report, path, indent=indent)
    assert path.read_bytes() == expected


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


# Every character orjson escapes (C0 controls, quote, backslash) and some it writes as they
# are (DEL, non-ASCII, a line separator, an emoji).
CONTROLS = "".join(chr(c) for c in range(0x20))
TRICKY = [
    'say "M54.5"',
    "back\\slash \\n not a newline",
    "tab\there, newline\nthere, cr\r, bell\x07, nul\x00, unit sep\x1f",
    CONTROLS,
    "café – ✓ Ç ß 日本語",
    "emoji 🩺 and a surrogate pair 😀",
    "line\u2028separator\u2029and del\x7f",
    '\\"',
    "",
]


def _same_bytes(report: Report) -> None:
    for indent in (None, 2):
        option = orjson.OPT_INDENT_2 if indent else 0
        assert dumps(report, indent=indent) == orjson.dumps(report_dict(report), option=option)


@pytest.mark.parametrize(
    "field", ["message", "value", "claim_id", "file", "column", "normalized", "carc", "sheet"]
)
def test_escaping_matches_orjson_in_every_text_field(field: str) -> None:
    rows = [finding(row=i + 2, **{field: text}) for i, text in enumerate(TRICKY)]
    report = make_report(rows)
    _same_bytes(report)
    data = json.loads(dumps(report))
    decoded = [
        f["location"][field] if field in ("file", "column", "sheet") else f[field]
        for f in data["findings"]
    ]
    assert decoded == TRICKY


@pytest.mark.parametrize("missing", [None, float("nan"), pd.NA])
def test_missing_text_is_null_next_to_escaped_text(missing: Any) -> None:
    rows = [
        finding(message="tab\there", claim_id=missing, value=missing, sheet=missing),
        finding(message='quote "x"', claim_id="C\x01", value='"v"', sheet="Sheet\n1"),
        finding(message="plain", claim_id=missing, value="M54.5", sheet=missing),
    ]
    report = make_report(rows)
    _same_bytes(report)
    found = json.loads(dumps(report))["findings"]
    assert [f["claim_id"] for f in found] == [None, "C\x01", None]
    assert [f["location"]["sheet"] for f in found] == [None, "Sheet\n1", None]


def test_repeated_fields_are_grouped_and_still_exact() -> None:
    # Many rows sharing rule, diagnosis, fix and line fields take the grouped path.
    rows = [
        finding(
            message=f'M54.5 on claim "{i}"\tcheck',
            claim_id=f"C{i % 7}",
            row=i + 2,
            value="M54.5" if i % 3 else 'M\\54"5',
            sheet=None if i % 2 else "Claims ✓",
            carc=None if i % 5 else "CO-146",
            date_of_service=pd.NaT if i % 11 == 0 else pd.Timestamp("2023-01-05"),
            suggestions=() if i % 4 == 0 else finding()["suggestions"],
        )
        for i in range(60)
    ]
    report = make_report(rows)
    _same_bytes(report)
    found = json.loads(dumps(report))["findings"]
    assert found[1]["value"] == "M54.5" and found[3]["value"] == 'M\\54"5'
    assert found[0]["date_of_service"] is None and found[0]["suggestions"] == []
    assert found[1]["location"]["sheet"] is None and found[2]["location"]["sheet"] == "Claims ✓"


def test_non_text_in_an_object_text_column_is_written_as_orjson_would() -> None:
    frame = make_report([finding(), finding(row=3)]).findings
    frame["fix_replacement"] = pd.Series([7, None], dtype=object)
    report = make_report([finding()], findings=frame)
    _same_bytes(report)
    assert json.loads(dumps(report))["findings"][0]["fix"]["replacement"] == 7


def _denials(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """A denials frame as eobcheck.denials.triage hands it over."""
    base = {
        "claim_id": "C1001",
        "line": 1,
        "codes": ["CO-146", "M81"],
        "amount": 125.0,
        "explained": True,
        "explained_by": ["retired-code"],
        "fixable": True,
        "file": "fixtures/eob_sample.csv",
        "sheet": None,
        "row": 2,
    }
    records = [{**base, **row} for row in rows]
    return pd.DataFrame(
        {name: pd.Series([r[name] for r in records], dtype=object) for name in base}
    ).astype({"amount": float, "explained": bool})


def test_denials_are_written_exactly_as_the_plain_records() -> None:
    shared = ["retired-code", "incomplete-code"]
    denials = _denials(
        [
            {},
            {"claim_id": 'C"2\\', "line": None, "amount": float("nan"), "explained_by": []},
            {"claim_id": "Ç\t3", "line": 4, "codes": [], "amount": 2.675, "explained": False},
            {"codes": ["CO-16", 'M"76'], "amount": 0.1 + 0.2, "explained_by": shared},
            {"line": 2.0, "amount": 1e-7, "explained_by": shared},
        ]
    )
    report = make_report([finding()], denials=denials)
    _same_bytes(report)
    written = json.loads(dumps(report))["denials"]
    assert written == report_dict(report)["denials"]
    assert written[1] == {
        "claim_id": 'C"2\\',
        "line": None,
        "codes": ["CO-146", "M81"],
        "amount": None,
        "explained": True,
        "explained_by": [],
    }
    assert written[2]["codes"] == [] and written[2]["amount"] == round(2.675, 2)
    assert written[4]["line"] == 2


def test_denials_with_non_text_codes_fall_back_to_orjson() -> None:
    denials = _denials([{"codes": [146, "M81"]}, {"codes": [146, "M81"]}, {"codes": []}])
    report = make_report([], denials=denials)
    _same_bytes(report)
    assert json.loads(dumps(report))["denials"][0]["codes"] == [146, "M81"]


def test_empty_denials_and_findings_are_empty_arrays() -> None:
    report = make_report([])
    _same_bytes(report)
    assert b'"denials": [],\n  "findings": []\n}' in dumps(report)


def test_a_failed_write_leaves_the_previous_report(
    report: Report, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    import eobcheck.writers.json as writer

    path = tmp_path / "report.json"
    path.write_bytes(b"previous")

    def broken(*_: Any) -> Any:
        raise RuntimeError("disk full")

    monkeypatch.setattr(writer, "_findings_body", broken)
    with pytest.raises(RuntimeError):
        write_json(report, path)
    assert path.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]
