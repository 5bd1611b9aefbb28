"""The vectorized ``Reference.check`` agrees with itself one pair at a time, whatever the input.

``check`` computes every column once per distinct (code, date column) cell and takes it back to
the rows; these tests hold the batch result against single-pair checks, against other spellings
of the same input (object, Arrow in one or many chunks, lists; dates in any unit), and against
release boundaries read from the reference itself.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from eobcheck.reference import STATUSES, Reference
from eobcheck.reference.core import _THREAD_ROWS, _Multimap

CODES = [
    "M54.5",
    "m5450",
    " M54.50 ",
    "M54.59",
    "M54.4",
    "M54.41",
    "M51.36",
    "M51.360",
    "S33.5",
    "S33.5A",
    "S33.5XXA",
    "s39.012a",
    "U07.1",
    "724.2",
    "7242",
    "E849.0",
    "M99.99",
    "XYZ.1",
    "M5",
    "N/A",
    "",
    None,
    "M54.5.0",
    "M545\n.",
    "\u00e9.1",
]
DATES = [
    "2015-09-30",
    "2015-10-01",
    "2020-03-31",
    "2020-04-01",
    "2021-09-30",
    "2021-10-01",
    "2023-01-05",
    "2024-09-30",
    "2024-10-01",
    "2040-01-01",
    "1990-06-01",
    None,
]


def _pairs() -> tuple[list[str | None], list[str | None]]:
    codes = [c for c in CODES for _ in DATES]
    dates = [d for _ in CODES for d in DATES]
    return codes, dates


def _dates(values: list[str | None]) -> pd.Series:
    return pd.Series(pd.to_datetime(pd.Series(values), errors="coerce")).astype("datetime64[ns]")


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with categoricals as text and suggestions as (code, title) tuples."""
    out = frame.copy()
    for name in ("status", "title"):
        out[name] = out[name].astype("string")
    plain = [tuple((s.code, s.title) for s in row) for row in out["suggestions"]]
    out["suggestions"] = pd.Series(plain, index=out.index, dtype=object)
    return out


def test_batch_equals_single_pairs(ref: Reference) -> None:
    codes, dates = _pairs()
    batch = ref.check(pd.Series(codes, dtype="string"), _dates(dates))
    singles = [
        ref.check(pd.Series([c], dtype="string"), _dates([d]))
        for c, d in zip(codes, dates, strict=True)
    ]
    expected = pd.concat([_plain(s) for s in singles], ignore_index=True)
    pd.testing.assert_frame_equal(_plain(batch), expected, check_exact=True)
    # every status occurs, so the comparison covers each branch of the cell tables
    assert set(batch["status"].dropna()) == set(STATUSES)


def test_large_batch_takes_every_row_from_its_cell(ref: Reference) -> None:
    """Above the threading threshold, with rows shuffled: each row equals its pair's result."""
    codes, dates = _pairs()
    small = _plain(ref.check(pd.Series(codes, dtype="string"), _dates(dates)))
    rng = np.random.default_rng(5)
    pick = rng.integers(0, len(codes), _THREAD_ROWS + 1000)
    big_codes = pd.Series(np.asarray(codes, dtype=object)[pick], dtype="string")
    big = ref.check(big_codes, _dates([dates[i] for i in pick]))
    expected = small.iloc[pick].reset_index(drop=True)
    pd.testing.assert_frame_equal(_plain(big), expected, check_exact=True)
    # title categories in order of first appearance, as pandas' factorize gives them
    first = pd.unique(big["title"].astype(object).dropna().to_numpy())
    assert list(big["title"].cat.categories) == list(first)


def test_dtypes_index_and_shared_empty_suggestions(ref: Reference) -> None:
    codes, dates = _pairs()
    index = pd.Index(np.arange(len(codes))[::-1] * 7 + 3)
    out = ref.check(
        pd.Series(codes, dtype="string", index=index), pd.Series(_dates(dates).values, index=index)
    )
    assert out.index.equals(index)
    assert {k: str(v) for k, v in out.dtypes.items()} == {
        "normalized": "string",
        "status": "category",
        "title": "category",
        "valid_from": "datetime64[ns]",
        "valid_to": "datetime64[ns]",
        "suggestions": "object",
        "fix_source": "string",
        "beyond_data": "bool",
    }
    assert list(out["status"].cat.categories) == list(STATUSES)
    empty = out.loc[out["fix_source"].isna(), "suggestions"]
    assert len(empty) and all(s is empty.iloc[0] for s in empty)


def _spellings() -> list[tuple[str, Any, Any]]:
    codes, dates = _pairs()
    ns = _dates(dates)
    chunked = pa.chunked_array(
        [pa.array(codes[:50], pa.large_string()), pa.array(codes[50:], pa.large_string())]
    )
    return [
        ("object", pd.Series(codes, dtype=object), ns),
        ("chunks", pd.Series(pd.arrays.ArrowStringArray(chunked)), ns),
        ("list", list(codes), list(dates)),
        ("seconds", pd.Series(codes, dtype="string"), ns.astype("datetime64[s]")),
        ("days", pd.Series(codes, dtype="string"), ns.to_numpy().astype("datetime64[D]")),
        ("millis", pd.Series(codes, dtype="string"), ns.to_numpy().astype("datetime64[ms]")),
    ]


@pytest.mark.parametrize(("name", "codes", "dates"), _spellings(), ids=lambda v: str(v)[:8])
def test_input_forms_agree(ref: Reference, name: str, codes: Any, dates: Any) -> None:
    base_codes, base_dates = _pairs()
    base = ref.check(pd.Series(base_codes, dtype="string"), _dates(base_dates))
    pd.testing.assert_frame_equal(ref.check(codes, dates), base, check_exact=True)


def test_release_and_coverage_boundaries(ref: Reference) -> None:
    releases = ref.releases.sort_values("effective")
    last_day = date.fromisoformat(ref.info()["coverage"]["to"])
    days = [last_day, last_day + timedelta(days=1)]
    for eff in releases["effective"]:
        eff = pd.Timestamp(eff).date()
        days += [eff - timedelta(days=1), eff]
    stamps = pd.Series(pd.to_datetime(days)).astype("datetime64[ns]")
    # the last nanosecond of a day belongs to that day
    late = stamps + pd.Timedelta(days=1) - pd.Timedelta(nanoseconds=1)
    codes = pd.Series(["M54.50"] * len(days), dtype="string")
    at_midnight = ref.check(codes, stamps)
    before_midnight = ref.check(codes, late)
    names = [ref.release_name(d) for d in days]
    assert at_midnight["beyond_data"].tolist()[:2] == [False, True]
    assert before_midnight["beyond_data"].tolist()[:2] == [False, True]
    for i, d in enumerate(days):
        one = ref.lookup("M54.50", d)
        assert at_midnight["status"].iat[i] == one.status, (d, names[i])
        assert before_midnight["status"].iat[i] == one.status, (d, names[i])


def test_nat_and_earliest_timestamps(ref: Reference) -> None:
    earliest = pd.Timestamp.min + pd.Timedelta(hours=1)  # 1677-09-21, a real date
    dates = pd.Series([pd.NaT, earliest, pd.Timestamp("2023-01-05")], dtype="datetime64[ns]")
    out = ref.check(pd.Series(["M54.50"] * 3, dtype="string"), dates)
    assert out["status"].isna().tolist() == [True, False, False]
    assert out["valid_from"].isna().iloc[0] and out["suggestions"].iat[0] == ()
    assert out["status"].tolist()[1:] == ["not_yet_valid", "valid"]
    assert not out["beyond_data"].any()


def test_blank_and_null_codes_and_empty_input(ref: Reference) -> None:
    out = ref.check(pd.Series(["", None, "  "], dtype="string"), _dates(["2023-01-05"] * 3))
    assert out["status"].isna().all() and out["normalized"].isna().all()
    assert out["fix_source"].isna().all() and not out["beyond_data"].any()
    empty = ref.check(pd.Series([], dtype="string"), pd.Series([], dtype="datetime64[ns]"))
    assert len(empty) == 0 and list(empty.columns) == list(out.columns)


def test_length_mismatch_is_an_error(ref: Reference) -> None:
    with pytest.raises(ValueError, match="differ in length"):
        ref.check(pd.Series(["M54.50"], dtype="string"), _dates(["2023-01-05", "2023-01-06"]))


def test_multimap_keeps_table_order_and_skips_null_keys() -> None:
    keys = pa.chunked_array([pa.array(["b", "a", None, "b", "c", "a"])])
    values = pa.chunked_array([pa.array(["b1", "a1", "n", "b2", "c1", "a2"])])
    numbers = pa.chunked_array([pa.array([1, 2, 3, 4, 5, 6])])
    found = _Multimap(keys, [values, numbers])
    assert found.get("a") == [("a1", 2), ("a2", 6)]
    assert found.get("b") == [("b1", 1), ("b2", 4)]
    assert found.get("zz") == ()
    assert found.get("zz", None) is None


def test_crosswalk_rows_by_key_match_the_table(ref: Reference) -> None:
    cw = ref.crosswalk
    for code in ("M545", "M5136", "M5137"):
        rows = cw[cw["previous"] == code]
        expected = list(rows["current"])
        assert [c for c, _, _ in ref._succ.get(code)] == expected
        assert expected  # these codes were split, so the table has rows for them
