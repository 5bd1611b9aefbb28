"""Benchmark the consistency rules: all rules against the diagnosis rules only (not a test).

    python benchmarks/bench_rules.py [--lines 200000 1000000] [--repeat 3] [--per-rule]

Target: with every rule on, a check takes at most 1.5x the time it takes with only the
diagnosis rules (DX). Each measurement runs ``eobcheck.check(path, select=[...])`` in its own
interpreter, so both pay the same reading and reference-loading costs. The two selections
alternate (DX, ALL, DX, ALL, ...) so that other work on a shared machine hits both alike; the
ratio is reported per pair, as their median and as best over best.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import synth

CHECK = """
import sys, time
import eobcheck
from eobcheck.reference import get_reference
from eobcheck.reference.tabular import load_tabular
get_reference(); load_tabular()  # loading is not what is compared
t0 = time.perf_counter()
report = eobcheck.check(sys.argv[1], select=sys.argv[2].split(","))
print(f"{time.perf_counter() - t0:.3f} {len(report.findings)}")
"""


PER_RULE = """
import sys, time
from eobcheck.config import Settings
from eobcheck.engine import Context
from eobcheck.readers import read_file
from eobcheck.reference import get_reference
from eobcheck.rules import RULES
from eobcheck.rules.facts import facts
res = read_file(sys.argv[1])
ctx = Context(res.frame, get_reference(), Settings())
ctx.dx, ctx.checked, ctx.claim_key  # shared with the diagnosis rules: not counted
best = {}
for _ in range(int(sys.argv[2])):
    ctx.cache.clear()  # the consistency facts are rebuilt each round
    t = time.perf_counter(); facts(ctx)
    best["facts"] = min(best.get("facts", 1e9), time.perf_counter() - t)
    for r in RULES:
        if r.code.startswith("DX"):
            continue
        t = time.perf_counter(); r.func(ctx)
        best[r.code] = min(best.get(r.code, 1e9), time.perf_counter() - t)
print(" ".join(f"{k} {v:.3f}" for k, v in best.items()), f"sum {sum(best.values()):.3f}")
"""


def per_rule(path: Path, repeat: int) -> str:
    """Best time of the shared facts and of each consistency rule, in one interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", PER_RULE, str(path), str(repeat)],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def run(path: Path, select: str) -> tuple[float, int]:
    """Time one check in a fresh interpreter; return (seconds, findings)."""
    out = subprocess.run(
        [sys.executable, "-c", CHECK, str(path), select], check=True, capture_output=True, text=True
    )
    seconds, findings = out.stdout.split()[-2:]
    return float(seconds), int(findings)


def main() -> None:
    """Generate exports, time both selections, print the ratio."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lines", type=int, nargs="+", default=[200_000, 1_000_000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--per-rule", action="store_true", help="also time the facts and each rule in-process"
    )
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="eobcheck-bench-rules-"))
    for lines in args.lines:
        path = synth.write_csv(tmp / f"eob_{lines}.csv", lines)
        dx: list[tuple[float, int]] = []
        everything: list[tuple[float, int]] = []
        for _ in range(args.repeat):
            dx.append(run(path, "DX"))
            everything.append(run(path, "ALL"))
        base = min(t for t, _ in dx)
        full = min(t for t, _ in everything)
        ratios = [a / d for (d, _), (a, _) in zip(dx, everything, strict=True)]
        print(
            f"{lines:,} lines: diagnosis rules {base:.2f} s ({dx[0][1]:,} findings); "
            f"all rules {full:.2f} s ({everything[0][1]:,} findings); ratio best/best "
            f"{full / base:.2f}, median of pairs {statistics.median(ratios):.2f} "
            f"(pairs: {', '.join(f'{r:.2f}' for r in ratios)})"
        )
        if args.per_rule:
            print(f"  seconds (best of {args.repeat}): {per_rule(path, args.repeat)}")
    print(f"load average after the runs: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"(measured {time.strftime('%Y-%m-%d')}, python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()
