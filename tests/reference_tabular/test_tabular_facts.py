"""Fact tests for the tabular facts and MCE flags (eobcheck.reference.tabular)."""

from __future__ import annotations

import pandas as pd
import pytest

from eobcheck.reference.tabular import DATA_DIR, Tabular, load_tabular


@pytest.fixture(scope="module")
def tab() -> Tabular:
    return load_tabular()


def test_load_is_cached(tab: Tabular) -> None:
    assert load_tabular() is tab


def test_m54_5_excludes1_names_m54_4_s39_012_m51_2(tab: Tabular) -> None:
    partners = tab.excludes1_partners("M54.50")
    at_m545 = {p.pattern for p in partners if p.note_at == "M54.5"}
    assert {"M54.4-", "S39.012", "M51.2-"} <= at_m545
    # Inherited rows sit above the code: the category and the block are cited as such.
    assert {p.at_level for p in partners} >= {"subcategory", "category", "block"}


@pytest.mark.parametrize(
    ("a", "b", "note_at", "pattern"),
    [
        ("M54.50", "M54.41", "M54.5", "M54.4-"),
        ("M54.59", "S39.012A", "M54.5", "S39.012"),
        ("M54.50", "M51.26", "M54.5", "M51.2-"),
        # Reversed order: b's notes name a.
        ("M51.26", "M54.50", "M54.5", "M51.2-"),
        # Undotted, lower-case, padded input.
        (" m5450 ", "m5441", "M54.5", "M54.4-"),
    ],
)
def test_excludes1_conflicts(tab: Tabular, a: str, b: str, note_at: str, pattern: str) -> None:
    res = tab.excludes1(pd.Series([a]), pd.Series([b]))
    assert res["conflict"].tolist() == [True]
    assert res["note_at"].iloc[0] == note_at
    assert res["pattern"].iloc[0] == pattern
    assert pattern in res["note"].iloc[0]


@pytest.mark.parametrize(
    ("a", "b"), [("M54.50", "M47.816"), ("M54.50", "M54.50"), ("M54.50", ""), ("XYZ", "M54.41")]
)
def test_excludes1_no_conflict(tab: Tabular, a: str, b: str) -> None:
    res = tab.excludes1(pd.Series([a]), pd.Series([b]))
    assert res["conflict"].tolist() == [False]
    assert res["note"].isna().all()


def test_excludes1_is_aligned_and_keeps_the_index(tab: Tabular) -> None:
    a = pd.Series(["M54.50", "M54.50", None, "M54.59"] * 3, index=range(100, 112))
    b = pd.Series(["M54.41", "M47.816", "M54.41", "S39.012A"] * 3, index=range(100, 112))
    res = tab.excludes1(a, b)
    assert list(res.index) == list(a.index)
    assert res["conflict"].tolist() == [True, False, False, True] * 3


def test_excludes1_ranges_and_chapter_notes(tab: Tabular) -> None:
    # C76 excludes C81-C96 (a range of categories); chapter 4 excludes P70-P74.
    a = pd.Series(["C76.0", "C76.0", "E03.9", "E03.9"])
    b = pd.Series(["C83.30", "C34.90", "P72.1", "P75"])
    res = tab.excludes1(a, b)
    assert res["conflict"].tolist() == [True, False, True, False]
    assert res["note_at"].iloc[0] == "C76"
    assert res["note_at"].iloc[2] == "chapter 4 (E00-E89)"


def test_blocks_follow_tabular_order() -> None:
    # C7A sorts between C76 and C80 alphabetically but is its own block after C75.
    blocks = pd.read_parquet(DATA_DIR / "tabular_category_blocks.parquet")
    of = blocks.groupby("category")["block"].agg(set)
    assert of["C7A"] == {"C7A", "C00-C96", "CH02"}
    assert of["M54"] == {"M50-M54", "M40-M54", "CH13"}


def test_qualifier_limits_a_pattern(tab: Tabular) -> None:
    # S33.0 excludes "M51.- with fifth character 6" (lumbar): M51.26 is named, M51.25 is not.
    res = tab.excludes1(pd.Series(["S33.0XXA", "S33.0XXA"]), pd.Series(["M51.26", "M51.25"]))
    assert (res["note_at"] == "S33.0").tolist() == [True, False]


def test_excludes2_is_separate(tab: Tabular) -> None:
    # S33 lists S39.01- under Excludes2, not Excludes1.
    ex2 = tab.excludes2(pd.Series(["S33.5XXA"]), pd.Series(["S39.012A"]))
    assert ex2["conflict"].iloc[0]
    assert ex2["note_at"].iloc[0] == "S33"
    ex1 = tab.excludes1(pd.Series(["S33.5XXA"]), pd.Series(["S39.012A"]))
    assert not ex1["conflict"].iloc[0]


def test_s33_5_seventh_characters_and_placeholder(tab: Tabular) -> None:
    res = tab.seventh_characters(pd.Series(["S33.5", "S33.5XXD", "S39.012A", "M54.50"]))
    assert res["requires_7th"].tolist() == [True, True, True, False]
    assert res["allowed"].iloc[0] == "ADS"
    assert "A=initial encounter" in res["meanings"].iloc[0]
    assert res["defined_at"].iloc[0] == "S33"
    assert res["needs_placeholder"].tolist() == [True, True, False, False]
    assert res["seventh"].iloc[1] == "D"
    assert res["seventh_meaning"].iloc[1] == "subsequent encounter"


def test_fracture_seventh_characters(tab: Tabular) -> None:
    res = tab.seventh_characters(pd.Series(["S32.2XXA"]))
    assert set("ABDGKS") <= set(res["allowed"].iloc[0])


def test_f02_80_is_a_manifestation_with_code_first_g30(tab: Tabular) -> None:
    first = tab.code_first(pd.Series(["F02.80", "M54.50"]))
    assert "G30.-" in first.iloc[0]
    assert pd.isna(first.iloc[1])
    flags = tab.mce_flags(pd.Series(["F02.80"]), pd.Series(["2023-06-01"]))
    assert flags["manifestation"].iloc[0]


def test_external_cause_range(tab: Tabular) -> None:
    codes = pd.Series(["V00.01XA", "W01.0XXA", "X00.0XXA", "Y93.01", "S33.5XXA", "U07.1", None])
    assert tab.is_external_cause(codes).tolist() == [True, True, True, True, False, False, False]
    assert tab.external_cause_range == ("V00", "Y99")
    flags = tab.mce_flags(pd.Series(["W01.0XXA"]), pd.Series(["2022-01-01"]))
    assert flags["external_cause_pdx"].iloc[0]


def test_mce_sex_edit_ends_2024_09_30(tab: Tabular) -> None:
    codes = pd.Series(["O09.00", "O09.00", "N40.0", "N40.0"])
    dates = pd.Series(pd.to_datetime(["2024-09-30", "2024-10-01", "2024-09-30", "2024-10-01"]))
    flags = tab.mce_flags(codes, dates)
    assert flags["female"].tolist() == [True, False, False, False]
    assert flags["male"].tolist() == [False, False, True, False]
    # Age groups carry on after the sex edit ended.
    assert flags["maternity"].tolist() == [True, True, False, False]
    assert flags["adult"].tolist() == [False, False, True, True]


def test_mce_flags_follow_their_spans(tab: Tabular) -> None:
    # P00.0 carried the newborn edit only through FY2016; Z38.00 still does.
    codes = pd.Series(["P00.0", "P00.0", "Z38.00", "Z38.00", "F02.80"])
    dates = pd.Series(["2016-09-30", "2016-10-01", "2015-10-01", "2030-01-01", "2015-09-30"])
    flags = tab.mce_flags(codes, dates)
    assert flags["newborn"].tolist() == [True, False, True, True, False]
    assert not flags.loc[4].any()  # before ICD-10-CM: no flags


def test_mce_flags_columns_and_index(tab: Tabular) -> None:
    codes = pd.Series(["Z3A.01", "bogus", None], index=[7, 8, 9])
    flags = tab.mce_flags(codes, pd.Series(["2020-01-01", "2020-01-01", "2020-01-01"]))
    assert list(flags.columns) == [
        "manifestation",
        "external_cause_pdx",
        "unacceptable_pdx",
        "unspecified",
        "male",
        "female",
        "newborn",
        "pediatric",
        "maternity",
        "adult",
    ]
    assert list(flags.index) == [7, 8, 9]
    assert flags.loc[7, "unacceptable_pdx"]
    assert not flags.loc[[8, 9]].to_numpy().any()


def test_mce_age_ranges(tab: Tabular) -> None:
    ages = tab.mce_age.set_index(["group", "start"])
    groups = set(tab.mce_age["group"])
    assert groups == {"adult", "maternity", "newborn", "pediatric"}
    maternity = tab.mce_age[tab.mce_age["group"] == "maternity"].sort_values("start")
    assert maternity["max_age"].tolist() == [55, 64]
    assert len(ages) == 5
