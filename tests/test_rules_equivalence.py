"""Consistency, therapy and patient rules give exactly the pinned hits.

Each rule of the CX, PX and PT families runs on the sample export, on every rule case file of
those families and on a seeded synthetic export mixed with the case files' codes, modifiers,
pointers, birth dates and sexes (one file, and the same rows split over two files). Every hit
field (mask, message, suggestions, fix applicability and replacement, column, value) is
serialized and hashed; the digests were taken from the rules as they stood when this test was
written, so a rewrite for speed must keep every hit byte for byte. To re-pin after an intended
change of behaviour: ``python tests/test_rules_equivalence.py`` prints the digests.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from eobcheck.config import Settings
from eobcheck.engine import Context, _concat, _read_inputs
from eobcheck.reference import get_reference
from eobcheck.rule import Hits
from eobcheck.rules import RULES

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
FAMILIES = ("CX", "PX", "PT")
CODES = [r.code for r in RULES if r.code[:2] in FAMILIES]
FIELDS = ("message", "suggestions", "fix_applicability", "fix_replacement", "column", "value")


def _case_files() -> list[Path]:
    return sorted(p for p in (FIXTURES / "rules").glob("*.csv") if p.name[:2] in FAMILIES)


def _synthetic(lines: int, seed: int) -> pd.DataFrame:
    """The benchmark generator's export, mixed with codes and line fields of the case files."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import synth
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    df: pd.DataFrame = synth.frame(lines, seed)
    rng = np.random.default_rng(seed)
    cases = [pd.read_csv(p, dtype=str, keep_default_na=False) for p in _case_files()]
    pool = sorted(
        {
            v.strip()
            for c in cases
            for col in c.columns
            if col.startswith("Dx ") and col[3:].isdigit()
            for v in c[col]
            if v.strip()
        }
    )
    dx = [c for c in df.columns if c.startswith("Dx ")]
    for col in dx:
        swap = (df[col] != "") & (rng.random(len(df)) < 0.2)
        df.loc[swap, col] = rng.choice(pool, int(swap.sum()))
    n = len(df)
    # few patients, so episodes and persisting codes form
    claim = df["Claim #"].astype(int) - 100000
    df["Patient ID"] = np.char.add("P", (claim.to_numpy() % 300).astype(str))
    procedures = [*sorted(set(df["CPT/HCPCS"])), "98940", "98941", "98942", "99213"]
    df["CPT/HCPCS"] = rng.choice(procedures, n)
    df["Mod"] = rng.choice(["GP", "GP RT", "GP LT", "GP 50", "GP 59", "RT LT", ""], n)
    df["Dx Pointer"] = rng.choice(["", "", "1", "1,2", "2", "AB", "1234"], n)
    df["Sex"] = rng.choice(["M", "F", ""], n)
    born = np.datetime64("1930-01-01") + rng.integers(0, 33000, n).astype("timedelta64[D]")
    dob = pd.Series(pd.to_datetime(born).strftime("%m/%d/%Y"))
    df["DOB"] = dob.where(rng.random(n) < 0.8, "").to_numpy()
    return df


def _context(paths: list[Path]) -> Context:
    cfg = Settings()
    frames, _, column_maps = _read_inputs([str(p) for p in paths], cfg, None)
    return Context(_concat(frames), get_reference(), cfg, column_maps)


def _canonical(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return "None"
    return repr(value)


def digest(hits: Hits, frame: pd.DataFrame) -> str:
    """A digest of every hit field at the hit rows, aligned as the engine aligns them."""
    pos = np.flatnonzero(hits.mask.fillna(False).to_numpy(dtype=bool))
    h = hashlib.sha256(("mask:" + ",".join(map(str, pos))).encode())
    for name in FIELDS:
        v = getattr(hits, name)
        if v is None or isinstance(v, str):
            text = _canonical(v)
        else:
            picked = v.take(pos) if len(v) == len(frame) else v.reindex(frame.index[pos])
            text = "\x1f".join(_canonical(x) for x in picked.astype(object).to_numpy())
        h.update(f"\x1e{name}:{text}".encode())
    return f"{len(pos)}:{h.hexdigest()[:20]}"


def _inputs(tmp: Path) -> dict[str, list[Path]]:
    synthetic = _synthetic(6000, 11)
    one = tmp / "synthetic.csv"
    synthetic.to_csv(one, index=False)
    half = len(synthetic) // 2
    a, b = tmp / "part_a.csv", tmp / "part_b.csv"
    synthetic.iloc[:half].to_csv(a, index=False)
    synthetic.iloc[half:].to_csv(b, index=False)
    out = {"sample": [FIXTURES / "sample_eob.csv"], "synthetic": [one], "split": [a, b]}
    out.update({p.stem[:5]: [p] for p in _case_files()})
    return out


def compute(tmp: Path) -> dict[str, dict[str, str]]:
    """Per input and rule, the digest of the rule's hits."""
    by_code = {r.code: r for r in RULES}
    found: dict[str, dict[str, str]] = {}
    for name, paths in _inputs(tmp).items():
        ctx = _context(paths)
        found[name] = {code: digest(by_code[code].func(ctx), ctx.frame) for code in CODES}
    return found


EXPECTED: dict[str, dict[str, str]] = {
    "CX001": {
        "CX001": "6:361363899a558ea5d759",
        "CX002": "0:376ece5e5b69a25eb356",
        "CX003": "0:376ece5e5b69a25eb356",
        "CX004": "0:376ece5e5b69a25eb356",
        "CX005": "0:376ece5e5b69a25eb356",
        "PT001": "0:376ece5e5b69a25eb356",
        "PT002": "0:376ece5e5b69a25eb356",
        "PT003": "0:376ece5e5b69a25eb356",
        "PT004": "0:376ece5e5b69a25eb356",
        "PX001": "1:2ecceceb8de4d021495e",
        "PX002": "0:a303198fe6234938551c",
    },
    "CX002": {
        "CX001": "0:376ece5e5b69a25eb356",
        "CX002": "3:3329bf3e4fcd326b31b2",
        "CX003": "0:376ece5e5b69a25eb356",
        "CX004": "0:376ece5e5b69a25eb356",
        "CX005": "0:376ece5e5b69a25eb356",
        "PT001": "0:376ece5e5b69a25eb356",
        "PT002": "0:376ece5e5b69a25eb356",
        "PT003": "0:376ece5e5b69a25eb356",
        "PT004": "0:376ece5e5b69a25eb356",
        "PX001": "4:ba177a297327dbf0b98f",
        "PX002": "0:a303198fe6234938551c",
    },
    "CX003": {
        "CX001": "2:80524e8edb9baae72c96",
        "CX002": "0:376ece5e5b69a25eb356",
        "CX003": "2:51adb27753a437e2a31e",
        "CX004": "0:376ece5e5b69a25eb356",
        "CX005": "0:376ece5e5b69a25eb356",
        "PT001": "0:376ece5e5b69a25eb356",
        "PT002": "0:376ece5e5b69a25eb356",
        "PT003": "0:376ece5e5b69a25eb356",
        "PT004": "0:376ece5e5b69a25eb356",
        "PX001": "0:376ece5e5b69a25eb356",
        "PX002": "0:a303198fe6234938551c",
    },
    "CX004": {
        "CX001": "0:376ece5e5b69a25eb356",
        "CX002": "0:376ece5e5b69a25eb356",
        "CX003": "0:376ece5e5b69a25eb356",
        "CX004": "3:42bce75f0fe14315d2c3",
        "CX005": "0:376ece5e5b69a25eb356",
        "PT001": "0:376ece5e5b69a25eb356",
        "PT002": "0:376ece5e5b69a25eb356",
        "PT003": "0:376ece5e5b69a25eb356",
        "PT004": "0:376ece5e5b69a25eb356",
        "PX001": "0:376ece5e5b69a25eb356",
        "PX002": "0:a303198fe6234938551c",
    },
    "CX005": {
        "CX001": "0:376ece5e5b69a25eb356",
        "CX002": "0:376ece5e5b69a25eb356",
        "CX003": "0:376ece5e5b69a25eb356",
        "CX004": "0:376ece5e5b69a25eb356",
        "CX005": "4:5e4a6ade9f4ca146b7f0",
        "PT001": "0:376ece5e5b69a25eb356",
        "PT002": "0:376ece5e5b69a25eb356",
        "PT003": "0:376ece5e5b69a25eb356",
        "PT004": "0:376ece5e5b69a25eb356",
        "PX001": "0:376ece5e5b69a25eb356",
        "PX002": "0:a303198fe6234938551c",
    },
    "PT001": {
        "CX001": "0:376ece5e5b69a25eb356",
        "CX002": "0:376ece5e5b69a25eb356",
        "CX003": "0:376ece5e5b69a25eb356",
        "CX004": "0:376ece5e5b69a25eb356",
        "CX005": "0:376ece5e5b69a25eb356",
        "PT001": "6:d681d5ccdc36eb445e90",
        "PT002": "0:a303198fe6234938551c",
        "PT003": "0:376ece5e5b69a25eb356",
        "PT004": "0:376ece5e5b69a25eb356",
        "PX001": "0:376ece5e5b69a25eb356",
        "PX002": "0:a303198fe6234938551c",
    },
    "PT002": {
        "CX001": "0:376ece5e5b69a25eb356",
        "CX002": "0:376ece5e5b69a25eb356",
        "CX003": "0:376ece5e5b69a25eb356",
        "CX004": "0:376ece5e5b69a25eb356",
        "CX005": "0:376ece5e5b69a25eb356",
        "PT001": "0:a303198fe6234938551c",
        "PT002": "3:198e1cc17765310b388c",
        "PT003": "0:376ece5e5b69a25eb356",
        "PT004": "0:376ece5e5b69a25eb356",
        "PX001": "0:376ece5e5b69a25eb356",
        "PX002": "0:a303198fe6234938551c",
    },
    "PT003": {
        "CX001": "0:376ece5e5b69a25eb356",
        "CX002": "0:376ece5e5b69a25eb356",
        "CX003": "0:376ece5e5b69a25eb356",
        "CX004": "0:376ece5e5b69a25eb356",
        "CX005": "0:376ece5e5b69a25eb356",
        "PT001": "0:376ece5e5b69a25eb356",
        "PT002": "0:376ece5e5b69a25eb356",
        "PT003": "1:ea36b4827170363d7995",
        "PT004": "0:376ece5e5b69a25eb356",
        "PX001": "0:376ece5e5b69a25eb356",
        "PX002": "0:a303198fe6234938551c",
    },
    "PT004": {
        "CX001": "0:376ece5e5b69a25eb356",
        "CX002": "0:376ece5e5b69a25eb356",
        "CX003": "0:376ece5e5b69a25eb356",
        "CX004": "0:376ece5e5b69a25eb356",
        "CX005": "0:376ece5e5b69a25eb356",
        "PT001": "0:376ece5e5b69a25eb356",
        "PT002": "0:376ece5e5b69a25eb356",
        "PT003": "0:376ece5e5b69a25eb356",
        "PT004": "1:c2538e4aced15e7543e5",
        "PX001": "2:dc58e3375753cf72120e",
        "PX002": "2:974f3bee441620c9173f",
    },
    "PX001": {
        "CX001": "0:376ece5e5b69a25eb356",
        "CX002": "0:376ece5e5b69a25eb356",
        "CX003": "0:376ece5e5b69a25eb356",
        "CX004": "0:376ece5e5b69a25eb356",
        "CX005": "0:376ece5e5b69a25eb356",
        "PT001": "0:376ece5e5b69a25eb356",
        "PT002": "0:376ece5e5b69a25eb356",
        "PT003": "0:376ece5e5b69a25eb356",
        "PT004": "0:376ece5e5b69a25eb356",
        "PX001": "4:08b2459f8de7994c72b7",
        "PX002": "2:a31ce41943de54275ace",
    },
    "PX002": {
        "CX001": "0:376ece5e5b69a25eb356",
        "CX002": "0:376ece5e5b69a25eb356",
        "CX003": "0:376ece5e5b69a25eb356",
        "CX004": "0:376ece5e5b69a25eb356",
        "CX005": "0:376ece5e5b69a25eb356",
        "PT001": "0:376ece5e5b69a25eb356",
        "PT002": "0:376ece5e5b69a25eb356",
        "PT003": "0:376ece5e5b69a25eb356",
        "PT004": "0:376ece5e5b69a25eb356",
        "PX001": "3:3a9aaf1eac831631f898",
        "PX002": "8:e1dd150912e9c5a5309f",
    },
    "sample": {
        "CX001": "1:5538d91b9e512a623afa",
        "CX002": "1:6dae47a9c20b73396328",
        "CX003": "0:376ece5e5b69a25eb356",
        "CX004": "0:376ece5e5b69a25eb356",
        "CX005": "1:9a7740f3ca8a0023ce1a",
        "PT001": "0:a303198fe6234938551c",
        "PT002": "1:544c36b380f689dc832f",
        "PT003": "1:39bb5ed727e4631ad97d",
        "PT004": "1:057e032bb697beca2d39",
        "PX001": "3:c7a0fc360640df4f30b1",
        "PX002": "2:e32274b2e488cc1006b7",
    },
    "split": {
        "CX001": "591:a76f854efb7ca99822ff",
        "CX002": "78:f9c443e9873bb2042ab0",
        "CX003": "48:df797fd0840637dd2038",
        "CX004": "65:fd1bbdfc5788116346f0",
        "CX005": "600:c41b0cc8c65fd51a9579",
        "PT001": "151:5d764833c855b2a3bf10",
        "PT002": "43:1974720ac3330c724de0",
        "PT003": "51:b4a8b63a72097ea697ab",
        "PT004": "27:65892ccac1914a4410f1",
        "PX001": "177:aa8791d6fccd993039e3",
        "PX002": "347:67e60d5a337baaf23026",
    },
    "synthetic": {
        "CX001": "591:a76f854efb7ca99822ff",
        "CX002": "78:f9c443e9873bb2042ab0",
        "CX003": "48:df797fd0840637dd2038",
        "CX004": "65:fd1bbdfc5788116346f0",
        "CX005": "600:c41b0cc8c65fd51a9579",
        "PT001": "151:5d764833c855b2a3bf10",
        "PT002": "43:1974720ac3330c724de0",
        "PT003": "51:b4a8b63a72097ea697ab",
        "PT004": "27:65892ccac1914a4410f1",
        "PX001": "177:aa8791d6fccd993039e3",
        "PX002": "347:67e60d5a337baaf23026",
    },
}


@pytest.fixture(scope="module")
def digests(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    return compute(tmp_path_factory.mktemp("equivalence"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_rules_give_the_pinned_hits(name: str, digests: dict[str, dict[str, str]]) -> None:
    assert digests[name] == EXPECTED[name]


def test_pinned_inputs_are_the_inputs_checked(digests: dict[str, dict[str, str]]) -> None:
    assert sorted(digests) == sorted(EXPECTED)
    assert all(sorted(d) == sorted(CODES) for d in EXPECTED.values())


def test_synthetic_input_exercises_every_rule() -> None:
    # A pin over no hits pins nothing: the mixed synthetic export hits every rule.
    silent = {c for c, d in EXPECTED["synthetic"].items() if d.startswith("0:")}
    assert not silent


def test_general_paths_give_the_pinned_hits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fast paths (64-bit code sets) have a general fallback for larger code sets: both pinned.
    from eobcheck.rules import patient

    monkeypatch.setattr(patient, "_episode_masks", lambda *args: None)
    paths = _inputs(tmp_path)
    for name in ("synthetic", "PT004"):
        ctx = _context(paths[name])
        got = digest(patient.episode_region_change.func(ctx), ctx.frame)
        assert got == EXPECTED[name]["PT004"], name


def test_fallbacks_give_the_pinned_hits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Frames whose lines are not listed in order take the general first-listed and episode
    # paths; forcing them on ordered input must give the same hits.
    from eobcheck.rules import facts as facts_module

    monkeypatch.setattr(facts_module, "_ascending_within_lines", lambda *args: False)
    monkeypatch.setattr(facts_module.Facts, "lines_contiguous", property(lambda self: False))
    by_code = {r.code: r for r in RULES}
    paths = _inputs(tmp_path)
    for name in ("synthetic", "sample"):
        ctx = _context(paths[name])
        got = {code: digest(by_code[code].func(ctx), ctx.frame) for code in CODES}
        assert got == EXPECTED[name], name


def test_distinct_helpers_match_numpy() -> None:
    from eobcheck.rules.facts import counts, distinct, distinct_inverse, first_seen

    rng = np.random.default_rng(5)
    runs = np.repeat(rng.integers(0, 10**12, 3000), rng.integers(1, 6, 3000))
    for values in (
        rng.integers(0, 50, 20_000),  # small range: table
        rng.integers(0, 10**12, 20_000),  # wide range: hashing
        runs,  # wide range in runs of equal neighbours
    ):
        uniq, inv = np.unique(values, return_inverse=True)
        got_uniq, got_inv = distinct_inverse(values)
        assert np.array_equal(got_uniq, uniq) and np.array_equal(got_inv, inv)
        assert np.array_equal(distinct(values), uniq)
        _, first = np.unique(values, return_index=True)
        want = np.zeros(len(values), dtype=bool)
        want[first] = True
        assert np.array_equal(first_seen(values), want)
        assert np.array_equal(counts(values), np.bincount(inv)[inv])


def test_segment_or_others_matches_a_loop() -> None:
    from eobcheck.rules.patient import _segment_or_others

    rng = np.random.default_rng(9)
    sizes = rng.integers(1, 40, 300)
    begin = np.cumsum(sizes) - sizes
    segment = np.repeat(np.arange(len(sizes)), sizes)
    values = rng.integers(0, 2**63, int(sizes.sum()), dtype=np.uint64)
    got = _segment_or_others(values, segment, begin)
    for i in range(len(values)):
        lo, hi = begin[segment[i]], begin[segment[i]] + sizes[segment[i]]
        others = [int(v) for j, v in enumerate(values[lo:hi], start=lo) if j != i]
        want = 0
        for v in others:
            want |= v
        assert int(got[i]) == want


def test_release_bisection_matches_asking_every_day() -> None:
    from eobcheck.rules.patient import _date, _release_names

    ctx = Context(pd.DataFrame(), get_reference())
    days = np.unique(np.random.default_rng(2).integers(16000, 21000, 400))
    want = [ctx.reference.release_name(_date(int(d))) for d in days]
    assert list(_release_names(ctx, days)) == want


if __name__ == "__main__":
    import pprint
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        pprint.pprint(compute(Path(tmp)), width=100, sort_dicts=True)
