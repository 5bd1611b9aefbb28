"""Reader benchmark: a synthetic EOB export (CSV, optionally XLSX) read into the canonical frame.

Not a test. Generates the file in a temporary directory, then times
``pandas.read_csv(path, dtype=str, engine="pyarrow")`` (the baseline) and
``eobcheck.readers.read_file`` on the same file, and reports the peak memory of the read.

    python benchmarks/bench_readers.py                 # 1,000,000 lines, 4 dx columns, CSV
    python benchmarks/bench_readers.py --xlsx         # and the first 100,000 lines as XLSX
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

# codes seen on low-back physical-therapy claims (see DOMAIN.md); written in several styles
DX_POOL = (
    "M54.50", "M5450", " m54.50 ", "M54.5", "M54.41", "M54.42", "M51.26", "M47.816",
    "S33.5XXA", "S33.5XXD", "S39.012A", "S33.5A", "724.2", "M54.40", "", "",
)  # fmt: skip
CPT_POOL = ("97110", "97140", "97112", "97530", "97161", "97162", "G0283")
CARC_POOL = ("", "", "", "CO-45", "CO-45 PR-2", "CO-146", "CO-16", "PR-1")
RARC_POOL = ("", "", "", "", "M81", "N130", "M81, N130")


def generate(n: int, dx_columns: int = 4, seed: int = 7) -> pd.DataFrame:
    """Return a synthetic export with ``n`` service lines and ``dx_columns`` Dx columns."""
    rng = np.random.default_rng(seed)
    claims = rng.integers(0, max(n // 3, 1), n)
    claims.sort()
    days = pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 1400, n), unit="D")
    dos = np.where(rng.random(n) < 0.5, days.strftime("%m/%d/%Y"), days.strftime("%Y-%m-%d"))
    data: dict[str, object] = {
        "Claim #": np.char.add("C", claims.astype(str)),
        "Patient ID": np.char.add("P", (claims // 4).astype(str)),
        "DOS": dos,
        "CPT/HCPCS": np.array(CPT_POOL)[rng.integers(0, len(CPT_POOL), n)],
        "Mod": np.array(["GP", "GP,59", "", "KX"])[rng.integers(0, 4, n)],
    }
    for k in range(1, dx_columns + 1):
        data[f"Dx {k}"] = np.array(DX_POOL)[rng.integers(0, len(DX_POOL), n)]
    cents = rng.integers(2000, 30000, n)
    data["Billed"] = np.char.add("$", (cents / 100).round(2).astype(str))
    data["Paid"] = ((cents * 0.6).round() / 100).astype(str)
    data["Adj Codes"] = np.array(CARC_POOL)[rng.integers(0, len(CARC_POOL), n)]
    data["Remark Codes"] = np.array(RARC_POOL)[rng.integers(0, len(RARC_POOL), n)]
    data["Payer"] = np.array(["Medicare", "Aetna", "BCBS"])[rng.integers(0, 3, n)]
    return pd.DataFrame(data)


def write_xlsx(df: pd.DataFrame, path: Path) -> None:
    """Write ``df`` as one sheet, dates of service as real date cells (write-only: fast)."""
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("EOB")
    ws.append(list(df.columns))
    dos = pd.to_datetime(df["DOS"], format="mixed").dt.to_pydatetime()
    for row, when in zip(df.itertuples(index=False), dos, strict=True):
        values = list(row)
        values[2] = when
        ws.append(values)
    wb.save(path)


def _peak_rss(path: Path) -> float:
    """Return the peak resident memory (MB) of a fresh process that reads ``path``."""
    # VmHWM belongs to the new address space; ru_maxrss would include the parent's pages,
    # which a forked child starts with
    code = (
        "import resource, sys\n"
        "from eobcheck.readers import read_file\n"
        "read_file(sys.argv[1])\n"
        "try:\n"
        "    status = open('/proc/self/status').read().split('VmHWM:')[1].split()[0]\n"
        "    print(int(status) / 1024)\n"
        "except (OSError, IndexError):\n"
        "    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def _timed(label: str, fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    took = time.perf_counter() - start
    print(f"{label:<44} {took:7.2f} s")
    return took


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--dx", type=int, default=4)
    parser.add_argument("--xlsx", action="store_true", help="also write and read an XLSX")
    parser.add_argument("--xlsx-lines", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)

    from eobcheck.readers import read_file

    with tempfile.TemporaryDirectory() as tmp:
        df = generate(args.lines, args.dx)
        csv_path = Path(tmp) / "eob.csv"
        df.to_csv(csv_path, index=False)
        size = csv_path.stat().st_size / 1e6
        print(f"{args.lines:,} lines, {args.dx} dx columns, CSV {size:.0f} MB")
        base = min(
            _timed(
                "pandas.read_csv(dtype=str, engine=pyarrow)",
                lambda: pd.read_csv(csv_path, dtype=str, engine="pyarrow"),
            )
            for _ in range(args.repeat)
        )
        result = None

        def run() -> None:
            nonlocal result
            result = read_file(csv_path)

        ours = min(_timed("eobcheck.readers.read_file (CSV)", run) for _ in range(args.repeat))
        assert result is not None
        frame = result.frame
        print(
            f"canonical rows {len(frame):,}; rows_read {result.rows_read:,}; "
            f"ratio {ours / base:.2f}x; frame {frame.memory_usage(deep=True).sum() / 1e6:.0f} MB; "
            f"peak RSS of a read alone {_peak_rss(csv_path):.0f} MB"
        )
        del result, frame
        if args.xlsx:
            xlsx_path = Path(tmp) / "eob.xlsx"
            start = time.perf_counter()
            write_xlsx(df.head(args.xlsx_lines), xlsx_path)
            print(
                f"(writing {min(args.xlsx_lines, len(df)):,} lines to XLSX took "
                f"{time.perf_counter() - start:.1f} s)"
            )
            from eobcheck.readers.xlsx import engine

            _timed(f"eobcheck.readers.read_file (XLSX, {engine()})", lambda: read_file(xlsx_path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
