"""Benchmark the reference data: load time and memory, and ``check`` on 4,000,000 pairs.

Run: ``python benchmarks/bench_reference.py [--rows 4000000] [--write-docs]``. The mix is
realistic for EOB exports: mostly codes valid on their date of service, written in assorted
ways (dotted, undotted, lower case, padded), plus retired codes, headers, ICD-9-CM codes,
malformed text, blanks and unreadable dates. Not a test: timings live here, not in tests/.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eobcheck.reference import Reference  # noqa: E402

DOC = ROOT / "docs" / "performance.md"


def rss_mb() -> float:
    """Resident set size of this process in MB (Linux /proc)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 1e6


def make_pairs(ref: Reference, rows: int, seed: int = 7) -> tuple[pd.Series, pd.Series]:
    """A realistic mix of (code, date of service) pairs drawn from the reference itself."""
    rng = np.random.default_rng(seed)
    spans = ref.spans
    bill = spans[(spans["kind"] == "billable") & spans["end"].isna()]["code"].to_numpy(dtype=object)
    retired = spans[(spans["kind"] == "billable") & spans["end"].notna()]["code"].to_numpy(
        dtype=object
    )
    headers = spans[spans["kind"] == "header"]["code"].to_numpy(dtype=object)
    icd9 = ref.icd9["code"].to_numpy(dtype=object)
    # A billing office's exports repeat a few thousand codes; problem codes come from smaller
    # pools (the same retired or header codes recur claim after claim).
    pools = [
        (0.84, rng.choice(bill, 3000, replace=False)),
        (0.04, rng.choice(bill, 10000, replace=False)),
        (0.04, rng.choice(retired, 400, replace=False)),
        (0.03, rng.choice(headers, 300, replace=False)),
        (0.02, rng.choice(icd9, 300, replace=False)),
        (
            0.02,
            np.array(["XYZ.1", "M5", "54.5M", "N/A", "M99.99", "S33.5A", "m54.5"], dtype=object),
        ),
        (0.01, np.array([None], dtype=object)),
    ]
    which = rng.choice(len(pools), rows, p=[p for p, _ in pools])
    codes = np.empty(rows, dtype=object)
    for i, (_, pool) in enumerate(pools):
        sel = which == i
        codes[sel] = pool[rng.integers(0, len(pool), sel.sum())]
    # assorted spellings: dotted, lower case, padded (spelling variants of the same codes)
    dotted = np.array(
        [
            c if c is None or len(c) <= 3 or not re.match(r"^[A-Z]", c) else f"{c[:3]}.{c[3:]}"
            for c in codes[:50000]
        ],
        dtype=object,
    )
    style = rng.integers(0, 4, rows)
    codes[style == 1] = dotted[rng.integers(0, len(dotted), (style == 1).sum())]
    codes = pd.Series(codes, dtype="string")
    codes[style == 2] = codes[style == 2].str.lower()
    codes[style == 3] = " " + codes[style == 3] + " "
    start = np.datetime64("2019-01-01").astype("datetime64[D]").view("int64")
    end = np.datetime64("2027-12-31").astype("datetime64[D]").view("int64")
    days = rng.integers(start, end, rows).astype("datetime64[D]").astype("datetime64[ns]")
    days[rng.random(rows) < 0.01] = np.datetime64("NaT")
    return codes, pd.Series(days)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument("--write-docs", action="store_true", help="update docs/performance.md")
    args = parser.parse_args()

    gc.collect()
    before = rss_mb()
    t0 = time.perf_counter()
    ref = Reference.load(user_dir=Path("/nonexistent"))
    first_load = time.perf_counter() - t0
    load_mb = rss_mb() - before
    loads = []
    for _ in range(3):
        t0 = time.perf_counter()
        Reference.load(user_dir=Path("/nonexistent"))
        loads.append(time.perf_counter() - t0)
    load_s = min(loads)
    codes, dates = make_pairs(ref, args.rows)
    runs = []
    for _ in range(3):
        fresh = Reference.load(user_dir=Path("/nonexistent"))  # no cached suggestions
        t0 = time.perf_counter()
        res = fresh.check(codes, dates)
        runs.append(time.perf_counter() - t0)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
    counts = res["status"].value_counts(dropna=False).to_dict()
    lines = [
        f"- load: first {first_load:.3f} s, then best {load_s:.3f} s; {load_mb:.0f} MB resident "
        "(Reference.load(), imports excluded)",
        f"- check of {args.rows:,} (code, date) pairs: best {min(runs):.2f} s, "
        f"runs {', '.join(f'{r:.2f}' for r in runs)} s (fresh Reference each run)",
        f"- peak resident memory of the benchmark process: {peak_mb:.0f} MB",
        # the machine is shared: the 1-minute load average says how busy it was
        f"- load average at the end of the run: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)",
        "- status mix: " + ", ".join(f"{k}: {v:,}" for k, v in counts.items()),
    ]
    print("\n".join(lines))
    if args.write_docs:
        write_section(lines, args.rows)
    return 0


def write_section(lines: list[str], rows: int) -> None:
    """Replace (or add) the "Reference" section of docs/performance.md, leaving others alone."""
    body = (
        "## Reference\n\n"
        f"`python benchmarks/bench_reference.py` (2-core machine; {rows:,} pairs; targets: "
        "check <= 2 s, load <= 0.5 s and <= 300 MB):\n\n" + "\n".join(lines) + "\n"
    )
    text = DOC.read_text() if DOC.exists() else "# Performance\n"
    pattern = re.compile(r"^## Reference\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(body + "\n", text).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + body
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text)


if __name__ == "__main__":
    raise SystemExit(main())
