"""Benchmark the consistency rules: all rules against the diagnosis rules only (not a test).

    python benchmarks/bench_rules.py [--lines 200000 1000000] [--repeat 2]

Target: with every rule on, a check takes at most 1.5x the time it takes with only the
diagnosis rules (DX). Each measurement runs ``eobcheck.check(path, select=[...])`` in its own
interpreter, so both pay the same reading and reference-loading costs.
"""

from __future__ import annotations

import argparse
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
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="eobcheck-bench-rules-"))
    for lines in args.lines:
        path = synth.write_csv(tmp / f"eob_{lines}.csv", lines)
        dx = [run(path, "DX") for _ in range(args.repeat)]
        everything = [run(path, "ALL") for _ in range(args.repeat)]
        base = min(t for t, _ in dx)
        full = min(t for t, _ in everything)
        print(
            f"{lines:,} lines: diagnosis rules {base:.2f} s ({dx[0][1]:,} findings); "
            f"all rules {full:.2f} s ({everything[0][1]:,} findings); ratio {full / base:.2f}"
        )
    print(f"(measured {time.strftime('%Y-%m-%d')}, python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()
