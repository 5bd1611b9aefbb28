"""Denial triage output pinned on the fixtures, and checked against a plain pandas oracle.

The oracle below is the straightforward merge/groupby statement of what ``triage`` returns;
``triage`` itself works on integer bit masks for speed and must agree with it exactly: same
rows, same order, same values and dtypes of every column.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from eobcheck.config import Settings
from eobcheck.denials import _RULE_NAMES, EXPLAINED_BY, _denial_codes, empty_denials, triage
from eobcheck.engine import Context, _concat, _read_inputs, run_rules
from eobcheck.reference import get_reference
from eobcheck.rule import select
from eobcheck.rules import RULES

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
SAMPLE = FIXTURES / "sample_eob.csv"
RULE_CASES = sorted((FIXTURES / "rules").glob("*.csv"))

# every shape of adjustment the triage tells apart, cycled over fixture rows
ADJUSTMENTS: tuple[tuple[str, str], ...] = (
    ("CO-146", "M84"),
    ("CO146", ""),
    ("146", "M81"),
    ("CO-16", "M81"),
    ("CO-16", "M76"),
    ("CO-16", "MA63"),
    ("PI-16", "M64 N130"),
    ("CO-16", "N130"),
    ("OA-11 CO-45", ""),
    ("CO-11", "M76 M81"),
    ("CO-50", ""),
    ("CO-167", "M64"),
    ("PR-9", ""),
    ("CO-10", "MA63"),
    ("CO-45 PR-2", ""),
    ("CO-197", ""),
    ("", ""),
    ("co-146 pr-1", "m84"),
)


def _oracle(ctx: Context, findings: pd.DataFrame) -> pd.DataFrame:
    """Triage stated with merges and groupbys, one row per denied line x explaining rule."""
    f = ctx.frame
    first = (~f["line_id"].duplicated()).to_numpy()
    rows = np.flatnonzero(first & ctx.checked.to_numpy())
    carc = f["carc"].take(rows).fillna("").to_numpy(dtype=object)
    rarc = f["rarc"].take(rows).fillna("").to_numpy(dtype=object)
    parsed = [_denial_codes(str(c), str(r)) for c, r in zip(carc, rarc, strict=True)]
    denied = np.array([bool(p[0]) for p in parsed], dtype=bool)
    if not denied.any():
        return empty_denials()
    take = rows[denied]
    lines = f.take(take)
    claim = ctx.claim_key.to_numpy()[take]
    kept = [p for p, d in zip(parsed, denied, strict=True) if d]
    explainers = pd.DataFrame(
        {
            "line_id": lines["line_id"].to_numpy(),
            "claim": claim,
            "rule": [sorted(p[1]) for p in kept],
        }
    ).explode("rule")
    explainers = explainers.dropna(subset=["rule"])
    line_claim = pd.Series(ctx.claim_key.to_numpy()[first], index=f["line_id"].to_numpy()[first])
    found = pd.DataFrame(
        {
            "line_id": findings["line_id"].to_numpy(dtype=np.int64),
            "rule": findings["name"].to_numpy(dtype=object),
            "fix": [
                s is not None and not (isinstance(s, float) and np.isnan(s)) and len(s) > 0
                for s in findings["suggestions"]
            ],
        }
    )
    found["claim"] = found["line_id"].map(line_claim)
    by_line = found.groupby(["line_id", "rule"], as_index=False)["fix"].any()
    by_claim = found.groupby(["claim", "rule"], as_index=False)["fix"].any()
    # a rule found on the line itself speaks for the line; otherwise the claim's findings do
    matched = pd.concat(
        [
            explainers.merge(by_line, on=["line_id", "rule"]),
            explainers.merge(by_claim, on=["claim", "rule"]),
        ],
        ignore_index=True,
    ).drop_duplicates(["line_id", "rule"])
    by_rules = matched.groupby("line_id")["rule"].agg(lambda s: sorted(s))
    fixable = matched.groupby("line_id")["fix"].any()
    ids = lines["line_id"]
    paid = lines["paid"].fillna(0.0)
    amount = (lines["billed"] - paid).where(lines["billed"].notna())
    by = ids.map(by_rules)
    return pd.DataFrame(
        {
            "claim_id": lines["claim_id"].astype("object").to_numpy(),
            "line": lines["line"].astype("object").to_numpy(),
            "codes": [list(p[0]) for p in kept],
            "amount": amount.to_numpy(dtype=float),
            "explained": by.notna().to_numpy(),
            "explained_by": [b if isinstance(b, list) else [] for b in by],
            "fixable": ids.map(fixable).astype("boolean").fillna(False).to_numpy(dtype=bool),
            "file": lines["source_file"].to_numpy(dtype=object),
            "sheet": lines["source_sheet"].to_numpy(dtype=object),
            "row": lines["source_row"].to_numpy(),
        }
    )


def _context(source: Any) -> tuple[Context, pd.DataFrame]:
    """The Context and findings that eobcheck.check builds for ``source``."""
    cfg = Settings()
    frames, _, column_maps = _read_inputs(source, cfg, None)
    ctx = Context(_concat(frames), get_reference(), cfg, column_maps)
    findings = run_rules(ctx, select(RULES, cfg.select, cfg.ignore, cfg.severity))
    return ctx, findings


def _assert_same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert list(got.dtypes) == list(want.dtypes)
    for name in ("claim_id", "line", "codes", "explained_by", "file", "sheet"):
        assert [type(v) for v in got[name]] == [type(v) for v in want[name]], name
    for name in ("codes", "explained_by"):
        assert list(got[name]) == list(want[name]), name


def _with_adjustments(path: Path, shift: int = 0) -> pd.DataFrame:
    """A rule case file with adjustment and remark codes cycled over its rows, money added."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df = df.drop(columns=[c for c in ("expect", "expect_fix", "note") if c in df.columns])
    picks = [ADJUSTMENTS[(i + shift) % len(ADJUSTMENTS)] for i in range(len(df))]
    df["Adj Codes"] = [c for c, _ in picks]
    df["Remark Codes"] = [r for _, r in picks]
    df["Billed"] = [f"{100 + 5 * i}.00" for i in range(len(df))]
    df["Paid"] = ["" if i % 7 == 3 else "0.00" for i in range(len(df))]
    return df


def _synthetic(lines: int, seed: int) -> pd.DataFrame:
    """The benchmark generator's export with every adjustment shape mixed in."""
    bench = ROOT / "benchmarks"
    if not (bench / "synth.py").exists():
        pytest.skip("benchmarks/synth.py is not in this tree")
    sys.path.insert(0, str(bench))
    try:
        import synth  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(bench))
    df: pd.DataFrame = synth.frame(lines, seed=seed)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(ADJUSTMENTS), len(df))
    df["Adj Codes"] = [ADJUSTMENTS[i][0] for i in pick]
    df["Remark Codes"] = [ADJUSTMENTS[i][1] for i in pick]
    return df


def test_explaining_rules_fit_in_a_bit_mask() -> None:
    # triage keeps the explaining rules of a line as bits of one int64
    assert set(_RULE_NAMES) == set().union(*EXPLAINED_BY.values())
    assert list(_RULE_NAMES) == sorted(_RULE_NAMES) and len(_RULE_NAMES) < 63


# --- pinned on the bundled sample ------------------------------------------------------------

SAMPLE_DENIALS = [
    # claim, line, codes, amount, explained_by, fixable, row
    ("1001", 1, ["CO-146", "M84"], 165.0, ["retired-code"], True, 2),
    ("1001", 2, ["CO-146", "M84"], 120.0, ["retired-code"], True, 3),
    ("1003", 1, ["CO-16", "M81"], 165.0, ["incomplete-code"], True, 6),
    ("1004", 1, ["CO-16", "M81"], 120.0, ["incomplete-code"], True, 7),
    ("1005", 1, ["CO-16", "M76"], 165.0, ["missing-placeholder"], True, 8),
    ("1006", 1, ["CO-146", "M84"], 140.0, ["icd9-code"], True, 9),
    ("1010", 1, ["CO-16", "MA63"], 165.0, ["missing-diagnosis"], False, 14),
    ("1012", 1, ["CO-146", "M84"], 170.0, ["retired-code"], True, 16),
    ("1013", 1, ["CO-146", "M84"], 160.0, ["premature-code"], True, 17),
    ("1014", 1, ["CO-16", "M76"], 165.0, ["unknown-code"], False, 18),
    ("1015", 1, ["CO-16", "M76"], 165.0, ["malformed-code"], False, 19),
    (
        "1016",
        1,
        ["CO-11"],
        165.0,
        ["initial-encounter-for-therapy", "procedure-diagnosis-mismatch"],
        True,
        20,
    ),
    ("1030", 1, ["CO-50"], 75.0, ["procedure-diagnosis-mismatch"], False, 35),
    ("1031", 1, ["CO-11"], 165.0, ["laterality-conflict"], False, 36),
    ("1032", 1, ["CO-10"], 165.0, ["sex-conflict"], False, 37),
    ("1033", 1, ["CO-16", "MA63"], 165.0, ["external-cause-first"], False, 38),
]


def test_sample_denials_pinned() -> None:
    ctx, findings = _context(SAMPLE)
    d = triage(ctx, findings)
    assert list(d.columns) == [
        "claim_id",
        "line",
        "codes",
        "amount",
        "explained",
        "explained_by",
        "fixable",
        "file",
        "sheet",
        "row",
    ]
    got: list[tuple[Any, ...]] = [
        (r.claim_id, r.line, r.codes, r.amount, r.explained_by, r.fixable, r.row)
        for r in d.itertuples()
    ]
    assert got == SAMPLE_DENIALS
    assert d["explained"].tolist() == [True] * len(SAMPLE_DENIALS)
    assert d["sheet"].isna().all() and set(d["file"]) == {str(SAMPLE)}
    assert d.dtypes["amount"] == np.float64 and d.dtypes["row"] == np.int64
    assert d.dtypes["explained"] == np.bool_ and d.dtypes["fixable"] == np.bool_
    _assert_same(d, _oracle(ctx, findings))


# --- the same answer as the oracle ------------------------------------------------------------


def test_sample_csv_and_xlsx_together() -> None:
    # two inputs: claims are per file, sheets are named in one of them
    ctx, findings = _context([SAMPLE, FIXTURES / "sample_eob.xlsx"])
    d = triage(ctx, findings)
    assert len(d) == 2 * len(SAMPLE_DENIALS)
    assert set(d["sheet"].dropna()) == {"Remittance Detail"}
    _assert_same(d, _oracle(ctx, findings))


def test_sample_xlsx() -> None:
    # every line has a sheet: the sheet column is text throughout
    ctx, findings = _context(FIXTURES / "sample_eob.xlsx")
    d = triage(ctx, findings)
    assert len(d) == len(SAMPLE_DENIALS) and d["sheet"].notna().all()
    _assert_same(d, _oracle(ctx, findings))


@pytest.mark.parametrize("shift", [0, 5, 11])
def test_rule_cases_with_denials(shift: int, tmp_path: Path) -> None:
    # every rule case file as one input of a single check: claims C1, C2... repeat per file
    paths = []
    for case in RULE_CASES:
        path = tmp_path / case.name
        _with_adjustments(case, shift).to_csv(path, index=False)
        paths.append(path)
    ctx, findings = _context(paths)
    d = triage(ctx, findings)
    # the cycled adjustments must meet the rules' findings, or the comparison proves little
    assert d["explained"].sum() >= 5 and d["fixable"].any() and not d["explained"].all()
    assert d["file"].nunique() > 10
    _assert_same(d, _oracle(ctx, findings))


@pytest.mark.parametrize("seed", [1, 2])
def test_synthetic_export(seed: int) -> None:
    ctx, findings = _context(_synthetic(1500, seed))
    d = triage(ctx, findings)
    assert d["explained"].any() and not d["explained"].all() and d["fixable"].any()
    _assert_same(d, _oracle(ctx, findings))


def test_fix_comes_from_the_line_before_the_claim() -> None:
    # a rule found on the line without a suggestion and elsewhere on the claim with one
    ctx, findings = _context(_synthetic(1500, 3))
    rng = np.random.default_rng(3)
    blank = rng.random(len(findings)) < 0.5
    changed = findings.copy()
    sugg = changed["suggestions"].to_numpy(dtype=object, copy=True)
    sugg[blank] = [None if i % 2 else () for i in range(int(blank.sum()))]
    changed["suggestions"] = sugg
    d = triage(ctx, changed)
    _assert_same(d, _oracle(ctx, changed))
    assert not d["fixable"].equals(triage(ctx, findings)["fixable"])


def test_lines_out_of_order() -> None:
    # a frame whose line ids do not ascend (each line's rows still together)
    ctx, findings = _context(_synthetic(600, 4))
    order = ctx.frame["line_id"].to_numpy()
    pos = np.lexsort((np.arange(len(order)), -order))
    frame = ctx.frame.take(pos).reset_index(drop=True)
    moved = Context(frame, ctx.reference, ctx.settings, ctx.column_maps)
    d = triage(moved, findings)
    _assert_same(d, _oracle(moved, findings))
    assert len(d) == len(triage(ctx, findings))


def test_line_ids_with_gaps() -> None:
    # every third line dropped from the frame: its findings belong to no line of the frame
    ctx, findings = _context(_synthetic(900, 6))
    keep = ctx.frame["line_id"].to_numpy() % 3 != 1
    frame = ctx.frame[keep].reset_index(drop=True)
    holed = Context(frame, ctx.reference, ctx.settings, ctx.column_maps)
    d = triage(holed, findings)
    assert 0 < len(d) < len(triage(ctx, findings))
    _assert_same(d, _oracle(holed, findings))


def test_no_findings_and_no_denials() -> None:
    ctx, findings = _context(_synthetic(300, 5))
    none = findings.iloc[:0]
    d = triage(ctx, none)
    assert len(d) and not d["explained"].any() and not d["fixable"].any()
    _assert_same(d, _oracle(ctx, none))
    df = _synthetic(300, 5).assign(**{"Adj Codes": "CO-45 PR-2", "Remark Codes": ""})
    ctx, findings = _context(df)
    d = triage(ctx, findings)
    assert d.empty and list(d.columns) == list(empty_denials().columns)
