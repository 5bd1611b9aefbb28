"""The shared facts and integer helpers behind the consistency rules, against plain oracles."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import pandas as pd
import pytest

import eobcheck
from eobcheck.engine import Context
from eobcheck.readers import read
from eobcheck.reference import get_reference
from eobcheck.rules.facts import (
    BILATERAL,
    LEFT,
    NO_SIDE,
    RIGHT,
    Facts,
    counts,
    distinct,
    distinct_inverse,
    facts,
    first_seen,
    join,
    joined,
    modifier_side,
    text,
)

# Narrow keys take the table path, keys spread over a wide range take the hashing path.
KEYS = {
    "narrow": np.random.default_rng(1).integers(-50, 400, 3_000),
    "wide": np.random.default_rng(2).integers(0, 10**15, 3_000) * 7,
    "empty": np.zeros(0, dtype=np.int64),
}


@pytest.mark.parametrize("kind", list(KEYS))
def test_integer_helpers_match_numpy_and_pandas(kind: str) -> None:
    values = KEYS[kind].astype(np.int64)
    assert np.array_equal(distinct(values), np.unique(values))
    uniq, inv = distinct_inverse(values)
    assert np.array_equal(uniq, np.unique(values))
    assert np.array_equal(uniq[inv], values)
    assert np.array_equal(first_seen(values), ~pd.Series(values).duplicated().to_numpy())
    expected = pd.Series(values).map(pd.Series(values).value_counts()).to_numpy()
    assert np.array_equal(counts(values), expected)


def test_joined_sorts_and_deduplicates_words_per_key() -> None:
    keys = np.array([5, 2, 5, 5, 2, 9])
    words = np.array(["M54.50", "S32.2XXA", "M51.26", "M54.50", "M47.816", "Z00.00"], object)
    got_keys, texts = joined(keys, words)
    assert got_keys.tolist() == [2, 5, 9]
    assert texts.tolist() == ["M47.816 S32.2XXA", "M51.26 M54.50", "Z00.00"]


def test_join_and_text_build_messages_without_nulls() -> None:
    assert text(np.array([1, 22])).tolist() == ["1", "22"]
    assert text(np.array(["a", None, pd.NA, np.nan], dtype=object)).tolist() == ["a", "", "", ""]
    got = join("x", np.array(["1", "2"], dtype=object), "-", np.array(["a", "b"], dtype=object))
    assert got.tolist() == ["x1-a", "x2-b"]


@pytest.mark.parametrize(
    ("modifiers", "side"),
    [
        ("GP RT", RIGHT),
        ("LT", LEFT),
        ("RT,LT", BILATERAL),
        ("50 GP", BILATERAL),
        ("GP 59", NO_SIDE),
        ("RTX", NO_SIDE),
    ],
)
def test_modifier_side(modifiers: str, side: int) -> None:
    assert modifier_side(modifiers) == side


def _context(rows: dict[str, list[str]]) -> Context:
    return Context(read(pd.DataFrame(rows)), get_reference())


CLAIMS = {
    "Claim ID": ["C1", "C1", "C2", "C3", "C1"],
    "DOS": ["2023-01-05", "2023-01-05", "2023-01-06", "2023-01-07", "2023-01-09"],
    "CPT": ["97110", "97140", "97110", "97110", "97112"],
    "Dx 1": ["M54.50", "M54.41", "M51.26", "M54.2", "M54.42"],
    "Dx 2": ["M54.41", "M54.50", "M54.16", "", "M54.50"],
    "Dx 3": ["M62.81", "", "M51.26", "", "M62.81"],
}


def _pairs_by_merge(fx: Facts) -> pd.DataFrame:
    """The pairs as a self-merge computes them (the reference for the integer version)."""
    d = pd.DataFrame(
        {"claim": fx.claim, "code": fx.code_id, "pos": fx.position, "row": fx.rows, "day": fx.day}
    )
    d = d.sort_values(["claim", "pos", "row"], kind="stable").drop_duplicates(["claim", "code"])
    m = d.merge(d, on="claim", suffixes=("_a", "_b"))
    m = m[(m["pos_a"] < m["pos_b"]) | ((m["pos_a"] == m["pos_b"]) & (m["row_a"] < m["row_b"]))]
    return pd.DataFrame(
        {
            "claim": m["claim"].to_numpy(),
            "a": m["code_a"].to_numpy(),
            "b": m["code_b"].to_numpy(),
            "pos_a": m["pos_a"].to_numpy(),
            "pos_b": m["pos_b"].to_numpy(),
            "row_b": m["row_b"].to_numpy(),
            "day": np.minimum(m["day_a"].to_numpy(), m["day_b"].to_numpy()),
        }
    )


def test_claim_pairs_match_a_self_merge() -> None:
    fx = facts(_context(CLAIMS))
    got = fx.claim_pairs()
    want = _pairs_by_merge(fx)
    key = ["claim", "a", "b"]
    assert len(got) == len(want) > 0
    pd.testing.assert_frame_equal(
        got.sort_values(key).reset_index(drop=True),
        want.sort_values(key).reset_index(drop=True),
        check_dtype=False,
    )
    # a-major order: findings keep the first partner listed
    assert got.groupby("row_b")["pos_a"].apply(lambda s: s.is_monotonic_increasing).all()


def test_line_fields_spread_from_one_row_per_line() -> None:
    ctx = _context({**CLAIMS, "Mod": ["GP RT", "GP", "LT", "50", "RT LT"]})
    fx = facts(ctx)
    first, line_of = fx.lines
    assert len(first) == len(CLAIMS["Claim ID"])
    assert np.array_equal(fx.line_id[first][line_of], fx.line_id)
    inv, values = fx.column("modifiers")
    by_row = ctx.frame["modifiers"].take(fx.rows).tolist()
    assert [values[i] for i in inv] == [str(v).upper() for v in by_row]
    assert fx.line_side.tolist() == [modifier_side(str(v)) for v in by_row]


def test_lines_when_rows_of_a_line_are_not_together() -> None:
    fx = Facts(
        ctx=cast(Any, None),
        rows=np.arange(6),
        code_id=np.zeros(6, dtype=np.int64),
        codes=pd.Index(["M54.50"], dtype=object),
        day=np.zeros(6, dtype=np.int64),
        claim=np.zeros(6, dtype=np.int64),
        line_id=np.array([7, 3, 7, 9, 3, 9]),
        position=np.array([1, 1, 2, 1, 2, 2]),
        first=np.zeros(6, dtype=bool),
    )
    first, line_of = fx.lines
    assert first.tolist() == [0, 1, 3]
    assert line_of.tolist() == [0, 1, 0, 2, 1, 2]
    assert fx.first_used.tolist() == [True, True, False, True, False, False]


def test_hit_series_is_aligned_by_frame_label() -> None:
    ctx = _context(CLAIMS)
    fx = facts(ctx)
    rows = np.array([4, 1], dtype=np.int64)
    s = fx.hit_series(rows, np.array(["four", "one"], dtype=object))
    assert s.index.tolist() == ctx.frame.index[[1, 4]].tolist()
    assert s.tolist() == ["one", "four"]


def test_excludes1_counts_further_pairs_on_the_later_code() -> None:
    found = eobcheck.check(
        pd.DataFrame(
            {
                "Claim ID": ["C1"],
                "DOS": ["2023-01-05"],
                "CPT": ["97110"],
                "Dx 1": ["M54.41"],
                "Dx 2": ["M54.42"],
                "Dx 3": ["M54.50"],
            }
        ),
        select=["CX001"],
    ).findings
    assert list(found["dx_position"]) == [3]
    message = found["message"].iloc[0]
    assert message.startswith("M54.50 (position 3) and M54.41 (position 1) on claim C1:")
    assert "(and 1 more pair(s))" in message


def test_unspecified_persisting_lists_siblings_of_the_release() -> None:
    found = eobcheck.check(
        pd.DataFrame(
            {
                "Claim ID": ["C1", "C2", "C3"],
                "Patient ID": ["P1"] * 3,
                "DOS": ["2023-01-05", "2023-01-26", "2023-02-23"],
                "CPT": ["97110"] * 3,
                "Dx 1": ["M54.50"] * 3,
            }
        ),
        select=["PT003"],
    ).findings
    assert list(found["claim_id"]) == ["C3"]
    assert found["message"].iloc[0].endswith("consider a specific code: M54.51 M54.59.")
    assert [s.code for s in found["suggestions"].iloc[0]] == ["M54.51", "M54.59"]


def test_episode_message_names_the_other_visits_codes() -> None:
    found = eobcheck.check(
        pd.DataFrame(
            {
                "Claim ID": ["C1", "C2", "C3", "C4"],
                "Patient ID": ["P1"] * 4,
                "DOS": ["2023-01-05", "2023-01-12", "2023-01-19", "2023-01-26"],
                "CPT": ["97110"] * 4,
                "Dx 1": ["M54.50", "M54.50", "M54.50", "S32.2XXA"],
                "Dx 2": ["M62.81", "", "", ""],
            }
        ),
        select=["PT004"],
    ).findings
    assert list(found["claim_id"]) == ["C4"]
    message = found["message"].iloc[0]
    assert "episode 2023-01-05 to 2023-01-26) is coded S32.2XXA," in message
    assert "other visits (M54.50 M62.81)" in message


def test_excludes1_answers_are_kept_per_code_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    from eobcheck.reference.tabular import Tabular
    from eobcheck.rules import consistency

    monkeypatch.setattr(consistency, "_EXCLUDES1", consistency.weakref.WeakKeyDictionary())
    asked: list[int] = []
    lookup = Tabular.excludes1

    def counting(self: Tabular, a: pd.Series, b: pd.Series) -> pd.DataFrame:
        asked.append(len(a))
        return lookup(self, a, b)

    monkeypatch.setattr(Tabular, "excludes1", counting)
    frame = pd.DataFrame(
        {"Claim ID": ["C1"], "DOS": ["2023-01-05"], "Dx 1": ["M54.41"], "Dx 2": ["M54.50"]}
    )
    first = eobcheck.check(frame, select=["CX001"]).findings
    again = eobcheck.check(frame, select=["CX001"]).findings
    assert asked == [1]  # one distinct pair, looked up once
    assert list(first["message"]) == list(again["message"])
    assert len(first) == 1


def test_categorical_line_fields_use_their_codes() -> None:
    ctx = _context({**CLAIMS, "Mod": ["GP RT", "GP", "LT", "50", "RT LT"]})
    plain = facts(ctx).column("modifiers")
    ctx.frame["modifiers"] = ctx.frame["modifiers"].astype("category")
    ctx.cache.clear()
    inv, values = facts(ctx).column("modifiers")
    assert [values[i] for i in inv] == [plain[1][i] for i in plain[0]]
