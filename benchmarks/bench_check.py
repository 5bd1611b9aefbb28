"""Benchmark the whole check: synthetic EOB export -> JSON report (not a test).

    python benchmarks/bench_check.py [--lines 1000000] [--xlsx-lines 100000] [--stages]

Targets: 1,000,000 lines with 4 diagnosis columns, CSV -> JSON report, <= 10 s wall and
<= 4x the time ``pandas.read_csv(path, dtype=str, engine="pyarrow")`` takes on the same file;
peak memory <= 2 GB; 100,000 lines from XLSX <= 15 s. Each measurement runs in its own
process so its peak memory is its own.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import synth

MEASURE = """
import resource, sys, time
t0 = time.perf_counter()
{body}
elapsed = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{{elapsed:.3f}} {{peak:.0f}}")
"""

READ_PYARROW = """
import pandas as pd
df = pd.read_csv(sys.argv[1], dtype=str, engine="pyarrow")
"""

CHECK = """
from eobcheck.cli import main
status = main(["check", sys.argv[1], "--no-config", "--format", "json", "-o", sys.argv[2]])
assert status in (0, 1), status
"""


STAGES = """
import sys, time
clock = time.perf_counter
t0 = clock()
from eobcheck import engine
from eobcheck.config import Settings
from eobcheck.denials import summarize, triage
from eobcheck.reference import get_reference
from eobcheck.report import Report
from eobcheck.rule import select
from eobcheck.rules import RULES
from eobcheck.writers.json import write_json
marks = [("interpreter start to imports done", clock() - t0)]
def mark(name, since):
    marks.append((name, clock() - since))
    return clock()
t = clock()
ref = get_reference()
t = mark("reference data", t)
cfg = Settings()
frames, inputs, maps = engine._read_inputs(sys.argv[1], cfg, None)
frame = engine._concat(frames)
t = mark("read CSV -> canonical frame", t)
ctx = engine.Context(frame, ref, cfg, maps)
ctx.dx
t = mark("reference status of every diagnosis", t)
import dataclasses
rules = select(RULES, cfg.select, cfg.ignore, cfg.severity)
hits = {}
for prefix, label in (("DX", "diagnosis and record rules"), ("CX", "consistency rules"),
                      ("PX", "therapy rules"), ("PT", "patient rules")):
    for r in rules:
        if r.code.startswith(prefix):
            hits[r.code] = r.func(ctx)
    t = mark(label, t)
done = [dataclasses.replace(r, func=lambda _ctx, h=hits[r.code]: h) for r in rules]
findings = engine.run_rules(ctx, done)
t = mark("hits -> findings rows", t)
denials = triage(ctx, findings)
t = mark("denial triage", t)
stats = engine._stats(ctx, findings, inputs).model_copy(update=summarize(denials))
report = Report(valid=False, stats=stats, inputs=inputs, reference=ref.info(),
                rules=[r.name for r in rules], findings=findings, denials=denials)
t = mark("row accounting and report", t)
write_json(report, sys.argv[2])
t = mark("JSON report written", t)
for name, seconds in marks:
    print(f"  {name:<48} {seconds:6.2f} s")
"""


def run(body: str, *args: str) -> tuple[float, float]:
    """Run ``body`` in a fresh interpreter; return (seconds, peak MB)."""
    code = MEASURE.format(body=body)
    out = subprocess.run(
        [sys.executable, "-c", code, *args], check=True, capture_output=True, text=True
    )
    seconds, peak = out.stdout.split()[-2:]
    return float(seconds), float(peak)


def compile_package() -> None:
    """Write eobcheck's bytecode, as installing the wheel does.

    An editable install run with PYTHONDONTWRITEBYTECODE=1 would otherwise compile every
    module from source in every measured interpreter (about 0.2-0.3 s), which no installed
    copy pays.
    """
    import compileall

    import eobcheck

    compileall.compile_dir(Path(eobcheck.__file__).parent, quiet=1)


def main() -> None:
    """Generate the inputs, time each step, print a table."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--xlsx-lines", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--stages",
        action="store_true",
        help="also time each stage of one check in a fresh interpreter (rules run twice)",
    )
    args = ap.parse_args()
    compile_package()
    tmp = Path(tempfile.mkdtemp(prefix="eobcheck-bench-"))
    csv_path = synth.write_csv(tmp / "eob.csv", args.lines)
    size_mb = csv_path.stat().st_size / 1e6
    report = tmp / "report.json"
    base = min(run(READ_PYARROW, str(csv_path))[0] for _ in range(args.repeat))
    runs = [run(CHECK, str(csv_path), str(report)) for _ in range(args.repeat)]
    best = min(r[0] for r in runs)
    peak = max(r[1] for r in runs)
    data = json.loads(report.read_text(encoding="utf-8"))
    stats = data["stats"]
    print(f"CSV: {args.lines:,} lines, {size_mb:.0f} MB, {stats['findings']:,} findings")
    print(f"  pandas.read_csv(dtype=str, engine='pyarrow'): {base:.2f} s")
    print(f"  eobcheck check -> JSON: {best:.2f} s ({best / base:.1f}x), peak {peak:.0f} MB")
    assert stats["rows_read"] == args.lines == stats["rows_checked"] + stats["rows_rejected"]
    if args.stages:
        print("  stages of one check (in-process, wall time):")
        out = subprocess.run(
            [sys.executable, "-c", STAGES, str(csv_path), str(tmp / "stages.json")],
            check=True,
            capture_output=True,
            text=True,
        )
        print(out.stdout, end="")
    if args.xlsx_lines:
        xlsx_path = synth.write_xlsx(tmp / "eob.xlsx", args.xlsx_lines)
        xs, xpeak = run(CHECK, str(xlsx_path), str(tmp / "x.json"))
        print(
            f"XLSX: {args.xlsx_lines:,} lines: eobcheck check -> JSON: {xs:.2f} s, "
            f"peak {xpeak:.0f} MB"
        )
    started = time.strftime("%Y-%m-%d")
    print(f"(measured {started}, python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()
