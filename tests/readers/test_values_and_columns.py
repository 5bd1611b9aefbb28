"""Value parsers and header recognition, unit by unit."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from eobcheck.errors import ConfigError, InputError
from eobcheck.readers import ALIASES, ColumnMap, read, validate_user_columns
from eobcheck.readers.columns import classify_header, normalize_header
from eobcheck.readers.values import (
    parse_amounts,
    parse_carc,
    parse_carc_pair,
    parse_code_list,
    parse_dates,
    parse_int,
    parse_modifiers,
    parse_procedure,
    parse_sex,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "column-mapping.md"
TOOLS = Path(__file__).resolve().parents[2] / "tools"


def _s(*values: object) -> pd.Series:
    return pd.Series(list(values), dtype="string")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-01-05", "2023-01-05"),
        ("1/5/2023", "2023-01-05"),
        ("01/05/2023", "2023-01-05"),
        ("1/5/23", "2023-01-05"),
        ("20230105", "2023-01-05"),
        ("44931", "2023-01-05"),
        ("44931.0", "2023-01-05"),
        ("2023-01-05 00:00:00", "2023-01-05"),
        ("2023-01-05T08:15:00", "2023-01-05"),
        ("05-Jan-2023", "2023-01-05"),
        ("Jan 5, 2023", "2023-01-05"),
        (" 01/05/2023 ", "2023-01-05"),
        ("13/45/2023", None),
        ("2023-02-30", None),
        ("soon", None),
        ("12", None),  # a serial before 1900-03-01 is no date of service
        ("", None),
        (None, None),
    ],
)
def test_dates(text: str | None, expected: str | None) -> None:
    got = parse_dates(_s(text)).iloc[0]
    if expected is None:
        assert pd.isna(got)
    else:
        assert got == pd.Timestamp(expected)


def test_dates_dtype_and_index_kept() -> None:
    s = pd.Series(["2023-01-05", None, "x"], index=[10, 11, 12], dtype="string")
    out = parse_dates(s)
    assert str(out.dtype) == "datetime64[ns]"
    assert list(out.index) == [10, 11, 12]


def test_two_digit_birth_years_are_in_the_past() -> None:
    out = parse_dates(_s("3/14/61", "1/5/23"), past_only=True)
    assert out.tolist() == [pd.Timestamp("1961-03-14"), pd.Timestamp("2023-01-05")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$1,234.50", 1234.5),
        ("(12.00)", -12.0),
        ("$(12.00)", -12.0),
        ("-5", -5.0),
        ("12.00-", -12.0),
        ("  7 ", 7.0),
        ("0", 0.0),
        ("", None),
        ("n/a", None),
        (None, None),
    ],
)
def test_amounts(text: str | None, expected: float | None) -> None:
    got = parse_amounts(_s(text)).iloc[0]
    assert (np.isnan(got) and expected is None) or got == expected


def test_amounts_object_input_same_as_arrow() -> None:
    values = ["$1,234.50", "(12.00)", None, "x"]
    arrow = parse_amounts(_s(*values))
    plain = parse_amounts(pd.Series(values, dtype=object))
    pd.testing.assert_series_equal(arrow, plain)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("CO-45 PR-2", "CO-45 PR-2"),
        ("CO45", "CO-45"),
        ("CO 45", "CO-45"),
        ("co-45, pr-2", "CO-45 PR-2"),
        ("45", "45"),
        ("CO-45;OA-23|PI-B7", "CO-45 OA-23 PI-B7"),
        ("CO-A1", "CO-A1"),
        ("", None),
    ],
)
def test_adjustment_codes(text: str, expected: str | None) -> None:
    got = parse_carc(_s(text)).iloc[0]
    assert (pd.isna(got) and expected is None) or got == expected


def test_separate_group_and_reason_columns() -> None:
    out = parse_carc_pair(_s("CO", "PR", None, "CO PR", "CO"), _s("45", "1, 2", "16", "45 2", None))
    assert out.tolist()[:4] == ["CO-45", "PR-1 PR-2", "16", "CO-45 PR-2"]
    assert pd.isna(out.iloc[4])


def test_remark_codes_and_modifiers() -> None:
    assert parse_code_list(_s("M81, N130", "ma130", " ")).tolist()[:2] == ["M81 N130", "MA130"]
    mods = parse_modifiers([_s("GP,59", "GP", None, "gp 59"), _s(None, "59", "KX", None)])
    assert mods.tolist() == ["GP 59", "GP 59", "KX", "GP 59"]


def test_sex_procedure_and_integers() -> None:
    assert parse_sex(_s("M", "Male", "f", "FEMALE", "X", None)).tolist()[:5] == [
        "M",
        "M",
        "F",
        "F",
        "U",
    ]
    assert parse_procedure(_s("97110", "g0283", "97110 - description", "words only")).tolist()[
        :3
    ] == ["97110", "G0283", "97110"]
    assert pd.isna(parse_procedure(_s("words only")).iloc[0])
    assert parse_int(_s("3", "3.0", "45 y", "x")).tolist()[:3] == [3, 3, 45]


@pytest.mark.parametrize(
    ("header", "field", "number"),
    [
        ("Claim ID", "claim_id", None),
        ("Claim #", "claim_id", None),
        ("CLAIM-NUMBER", "claim_id", None),
        ("claim_id", "claim_id", None),
        ("ICN", "claim_id", None),
        ("Date of Service", "date_of_service", None),
        ("DOS", "date_of_service", None),
        ("From Date", "date_of_service", None),
        ("claim_start_date", "date_of_service", None),
        ("Svc Date", "date_of_service", None),
        ("CPT/HCPCS", "procedure", None),
        ("hcpcs_code", "procedure", None),
        ("Proc Code", "procedure", None),
        ("Dx 1", "dx", 1),
        ("Dx12", "dx", 12),
        ("Diagnosis Code 3", "dx", 3),
        ("ICD-10 Dx 1", "dx", 1),
        ("diagnosis_code_25", "dx", 25),
        ("Diag 2", "dx", 2),
        ("ICD10 Code", "dx_list", None),
        ("ICD-10", "dx_list", None),  # not "ICD" position 10
        ("Diagnosis Codes", "dx_list", None),
        ("Dx Codes", "dx_list", None),
        ("Mod", "modifiers", None),
        ("Modifier 2", "modifiers", 2),
        ("Dx Pointer", "dx_pointers", None),
        ("MRN", "patient_id", None),
        ("Birth Date", "birth_date", None),
        ("Gender", "sex", None),
        ("Charges", "billed", None),
        ("Payment", "paid", None),
        ("Reason Code(s)", "carc", None),
        ("Group Code", "carc_group", None),
        ("Reason Code", "carc_reason", None),
        ("RARC", "rarc", None),
        ("Insurance", "payer", None),
        ("Rendering Provider", "provider", None),
        ("Line No", "line", None),
        ("Notes", None, None),
        ("Dx 26", None, None),
    ],
)
def test_header_aliases(header: str, field: str | None, number: int | None) -> None:
    got = classify_header(header)
    assert got == ((field, number) if field else None)


def test_alias_table_has_no_ambiguous_entries() -> None:
    seen: dict[str, str] = {}
    for field, aliases in ALIASES.items():
        for alias in aliases:
            key = normalize_header(alias)
            assert seen.setdefault(key, field) == field, (alias, field, seen[key])


def test_numbered_dx_columns_sorted_by_number_and_duplicates_ignored() -> None:
    cmap = ColumnMap.from_headers(["Claim #", "DOS", "Dx 2", "Dx 1", "Diagnosis Code 1"])
    assert [(cmap.headers[i], pos) for i, pos in cmap.dx] == [("Dx 1", 1), ("Dx 2", 2)]
    assert cmap.ignored == ["Diagnosis Code 1"]
    assert cmap.missing() == []


def test_wide_columns_win_over_a_list_column() -> None:
    cmap = ColumnMap.from_headers(["Claim #", "DOS", "Dx Codes", "Dx 1"])
    assert cmap.dx_list is None and len(cmap.dx) == 1
    assert "Dx Codes" in cmap.ignored


def test_user_mapping_validation() -> None:
    assert validate_user_columns({"dx": "Codes"}) == {"dx": ["Codes"]}
    with pytest.raises(ConfigError, match="unknown field"):
        validate_user_columns({"diagnosis": "Codes"})
    with pytest.raises(ConfigError, match="one header"):
        validate_user_columns({"claim_id": ["A", "B"]})
    with pytest.raises(ConfigError):
        validate_user_columns({"claim_id": ""})


def test_dataframe_input_uses_aliases_and_row_numbers() -> None:
    df = pd.DataFrame(
        {
            "Claim #": ["C1", "C2", None],
            "DOS": [pd.Timestamp("2023-01-05"), pd.Timestamp("2023-01-06"), pd.NaT],
            "Dx 1": ["M54.50", None, None],
            "Dx 2": ["M51.26", "M54.41", None],
            "Billed": [100.0, np.nan, np.nan],
        }
    )
    frame = read(df)
    assert frame["source_file"].unique().tolist() == ["<dataframe>"]
    # the all-empty third row is blank and not read; rows are numbered as if row 1 were headers
    assert frame["source_row"].tolist() == [2, 2, 3]
    assert frame["dx_value"].tolist() == ["M54.50", "M51.26", "M54.41"]
    assert frame["dx_position"].tolist() == [1, 2, 2]
    assert frame["date_of_service"].tolist()[2] == pd.Timestamp("2023-01-06")
    assert frame["billed"].tolist()[0] == 100.0


def test_docs_list_every_alias() -> None:
    if not DOCS.is_file():
        pytest.fail(f"{DOCS} is missing: run python tools/gen_column_docs.py")
    text = DOCS.read_text(encoding="utf-8")
    for field, aliases in ALIASES.items():
        assert re.search(rf"`{field}`", text), field
        for alias in aliases:
            assert f"`{alias}`" in text, alias


def test_dataframe_input_with_mapping_and_missing_columns() -> None:
    df = pd.DataFrame({"Ref": ["R1"], "When": ["01/05/2023"], "Codes": ["M54.50; M51.26"]})
    frame = read(df, columns={"claim_id": "Ref", "date_of_service": "When", "dx": "Codes"})
    assert frame["dx_value"].tolist() == ["M54.50", "M51.26"]
    with pytest.raises(InputError) as info:
        read(df)
    assert "<dataframe>" in str(info.value) and "'Ref', 'When', 'Codes'" in str(info.value)


def test_docs_page_is_generated_from_the_alias_table() -> None:
    spec = importlib.util.spec_from_file_location("gen_column_docs", TOOLS / "gen_column_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert DOCS.read_text(encoding="utf-8") == module.render(), (
        "docs/column-mapping.md is out of date: run python tools/gen_column_docs.py"
    )
