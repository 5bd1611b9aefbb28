"""Import an official CMS/NCHS ICD-10-CM release into the user data directory.

``import_release(src)`` reads the files CMS publishes each year, as a zip or a folder (zips
inside a folder are opened too): the order file (``icd10cm_order_2026.txt``: every code with its
billable flag and titles) or else the code file (``icd10cm_codes_2026.txt``: billable codes
only), and the conversion table (``*conversion*.xlsx`` or ``.csv``) when present. It inserts
that code set as a release at its effective date and writes complete tables into the user data
directory, where they take precedence over the bundled ones.

The effective date is, in order: the ``effective`` argument; the date of a known release whose
billable set is identical (CMS files named for one fiscal year sometimes hold a mid-year set);
a month and year in a file name ("April-2025" -> 2025-04-01); the fiscal year in a file name
("icd10cm_order_2026.txt" -> 2025-10-01).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from eobcheck.errors import ReferenceDataError
from eobcheck.reference import history
from eobcheck.reference.core import Reference, default_user_dir, reset_reference

_MONTHS = {
    m: i
    for i, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ],
        start=1,
    )
    for m in names
}
_CODE_TOKEN = re.compile(
    r"\b[A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?\b|\bQA[0-9](?:\.[0-9A-Z]{1,4})?\b"
)


@dataclass
class ImportResult:
    """What an import did."""

    effective: date
    release: str
    billable: int
    added: int
    deleted: int
    new_release: bool
    titles: int
    crosswalk_rows: int
    heuristic_rows: int
    user_dir: Path
    files: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """A few lines for the command line."""
        what = "added" if self.new_release else "replaced (same effective date)"
        return (
            f"{self.release} (effective {self.effective.isoformat()}) {what}: "
            f"{self.billable} billable codes, +{self.added} / -{self.deleted} against the "
            f"previous release; {self.titles} titles; {self.crosswalk_rows} conversion-table "
            f"rows, {self.heuristic_rows} heuristic crosswalk rows.\n"
            f"Files: {', '.join(self.files)}\nWritten to {self.user_dir}"
        )


@dataclass
class _Files:
    order: list[tuple[str, str]] = field(default_factory=list)
    codes: list[tuple[str, str]] = field(default_factory=list)
    conversion: list[tuple[str, bytes]] = field(default_factory=list)
    digests: dict[str, str] = field(default_factory=dict)


def _collect(src: Path) -> _Files:
    """Gather the release files in a zip or a folder (zips inside a folder included)."""
    files = _Files()

    def take(name: str, data: bytes) -> None:
        base = name.rsplit("/", 1)[-1].lower()
        if base.endswith(".zip"):
            try:
                with zipfile.ZipFile(io.BytesIO(data)) as zf:
                    for inner in zf.namelist():
                        take(f"{name}/{inner}", zf.read(inner))
            except zipfile.BadZipFile as exc:
                raise ReferenceDataError(f"{name}: not a readable zip file ({exc})") from exc
            return
        if "addenda" in base or "__macosx" in name.lower():
            return
        if base.endswith(".txt") and "order" in base:
            files.order.append((name, data.decode("latin-1")))
        elif base.endswith(".txt") and "code" in base and "pcs" not in base:
            files.codes.append((name, data.decode("latin-1")))
        elif "conversion" in base and base.endswith((".xlsx", ".csv")):
            files.conversion.append((name, data))
        else:
            return
        files.digests[name] = hashlib.sha256(data).hexdigest()

    if not src.exists():
        raise ReferenceDataError(f"{src}: no such file or folder")
    if src.is_dir():
        for path in sorted(p for p in src.rglob("*") if p.is_file()):
            take(str(path.relative_to(src)), path.read_bytes())
    else:
        take(src.name, src.read_bytes())
    return files


def parse_order(text: str) -> tuple[frozenset[str], dict[str, str]]:
    """Billable codes and long titles of a CMS order file (fixed width)."""
    billable: set[str] = set()
    titles: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        code, flag = line[6:13].strip(), line[14:15]
        if not history.ICD10_RE.fullmatch(code) or flag not in "01":
            raise ReferenceDataError(
                f"order file line {number}: expected 'NNNNN CODE    F TITLE', got {line[:40]!r}"
            )
        if flag == "1":
            billable.add(code)
        titles[code] = line[77:].strip() or line[16:76].strip()
    return frozenset(billable), titles


def parse_codes(text: str) -> tuple[frozenset[str], dict[str, str]]:
    """Billable codes and long titles of a CMS code file."""
    titles: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        code = line[:8].strip()
        if not history.ICD10_RE.fullmatch(code):
            raise ReferenceDataError(
                f"code file line {number}: no code at the start: {line[:40]!r}"
            )
        titles[code] = line[8:].strip()
    return frozenset(titles), titles


def parse_conversion(data: bytes, name: str) -> list[tuple[str, str, date]]:
    """(previous, current, effective) rows of an NCHS conversion table (xlsx or csv).

    The "Effective" column holds a year (October 1 of that year) or a date (mid-year
    updates); the previous-code cell may list several codes ("G56.01 and G56.02").
    """
    rows: list[tuple[Any, ...]]
    if name.lower().endswith(".csv"):
        rows = [tuple(r) for r in csv.reader(io.StringIO(data.decode("latin-1")))]
    else:
        import openpyxl

        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        rows = [tuple(r) for r in book.worksheets[0].iter_rows(values_only=True)]
    out: list[tuple[str, str, date]] = []
    for row in rows:
        if len(row) < 3 or row[0] is None:
            continue
        current = str(row[0]).strip().upper().replace(".", "")
        if not history.ICD10_RE.fullmatch(current):
            continue
        eff_raw = row[1]
        if isinstance(eff_raw, datetime):
            eff = eff_raw.date()
        elif isinstance(eff_raw, date):
            eff = eff_raw
        else:
            match = re.search(r"(20\d\d)", str(eff_raw))
            if match is None:
                continue
            eff = date(int(match.group(1)), 10, 1)
        for token in _CODE_TOKEN.findall(str(row[2] or "").upper()):
            out.append((token.replace(".", ""), current, eff))
    return out


def _name_date(names: list[str]) -> date | None:
    """An effective date spelled in file names, if any."""
    for name in names:
        base = name.rsplit("/", 1)[-1].lower()
        match = re.search(r"([a-z]+)[-_ ]?(20\d\d)", base)
        if match and match.group(1) in _MONTHS:
            return date(int(match.group(2)), _MONTHS[match.group(1)], 1)
    for name in names:
        base = name.rsplit("/", 1)[-1].lower()
        match = re.search(r"(?:fy|order|codes)[-_ ]?(20\d\d)", base)
        if match:
            return date(int(match.group(1)) - 1, 10, 1)
    return None


def _release_sets(ref: Reference) -> tuple[list[date], list[frozenset[str]], list[str]]:
    """Per release of ``ref``: effective date, billable set and source."""
    rel = ref.tables["releases"].sort_by("effective").to_pylist()
    effective = [r["effective"] for r in rel]
    sets = [ref.billable_codes(i) for i in range(len(effective))]
    return effective, sets, [str(r["source"]) for r in rel]


def import_release(
    src: Path, user_dir: Path | None = None, effective: date | None = None
) -> ImportResult:
    """Import a CMS ICD-10-CM release (zip or folder) into the user data directory."""
    src = Path(src)
    udir = Path(user_dir) if user_dir is not None else default_user_dir()
    files = _collect(src)
    if files.order:
        name, text = files.order[0]
        billable, titles = parse_order(text)
        headers_from_file = {c for c in titles if c not in billable}
    elif files.codes:
        name, text = files.codes[0]
        billable, titles = parse_codes(text)
        headers_from_file = set()
    else:
        raise ReferenceDataError(
            f"{src}: no CMS order file (icd10cm_order_YYYY.txt) or code file "
            "(icd10cm_codes_YYYY.txt) found; point to the unpacked release or its zip"
        )
    if len(billable) < 1000:
        raise ReferenceDataError(
            f"{name}: only {len(billable)} billable codes; not a full code set"
        )

    ref = Reference.load(user_dir=udir)
    dates, sets, sources = _release_sets(ref)
    if effective is None:
        same = [d for d, s in zip(dates, sets, strict=True) if s == billable]
        effective = same[-1] if same else _name_date([name] + [n for n, _ in files.conversion])
    if effective is None:
        raise ReferenceDataError(
            f"{name}: cannot tell the effective date from the file names; pass it "
            "(eobcheck reference import DIR --effective YYYY-MM-DD)"
        )
    new_release = effective not in dates
    if new_release:
        i = sum(d < effective for d in dates)
        dates.insert(i, effective)
        sets.insert(i, billable)
        sources.insert(i, name)
    else:
        i = dates.index(effective)
        sets[i] = billable
        sources[i] = name
    previous = sets[i - 1] if i > 0 else frozenset()

    # codes table: existing rows, file titles win for the codes the file names
    codes = {r["code"]: (r["title"], r["title_source"]) for r in ref.tables["codes"].to_pylist()}
    label = f"CMS {name.rsplit('/', 1)[-1]}"
    for code, title in titles.items():
        if title:
            codes[code] = (title, label)
    all_codes = set(codes) | headers_from_file
    for s in sets:
        all_codes |= s | history.derive_headers(s)
    codes_tbl = pa.Table.from_pylist(
        [
            {
                "code": c,
                "title": codes.get(c, (None, None))[0],
                "title_source": codes.get(c, (None, None))[1],
            }
            for c in sorted(all_codes)
        ],
        schema=history.CODES_SCHEMA,
    )

    # crosswalk: existing CMS rows, rows of the given conversion tables, heuristic elsewhere
    cw = [r for r in ref.tables["crosswalk"].to_pylist() if r["source"] != "heuristic"]
    seen = {(r["previous"], r["current"], r["effective"]) for r in cw}
    table_rows = 0
    for conv_name, data in files.conversion:
        for prev, cur, eff in parse_conversion(data, conv_name):
            table_rows += 1
            if (prev, cur, eff) not in seen:
                seen.add((prev, cur, eff))
                cw.append(
                    {
                        "previous": prev,
                        "current": cur,
                        "effective": eff,
                        "source": "cms-conversion-table",
                    }
                )
    known = {(r["previous"], r["effective"]) for r in cw}
    title_map = {c: codes.get(c, (None, None))[0] for c in all_codes}
    heur = history.heuristic_rows(dates, sets, known, title_map)
    crosswalk = pa.Table.from_pylist(cw + heur, schema=history.CROSSWALK_SCHEMA)

    udir.mkdir(parents=True, exist_ok=True)
    history.write_table(codes_tbl, udir / "codes.parquet", ["code"])
    history.write_table(
        history.spans_table(dates, sets), udir / "spans.parquet", ["code", "kind", "start"]
    )
    history.write_table(
        history.releases_table(dates, sets, sources), udir / "releases.parquet", ["effective"]
    )
    history.write_table(
        crosswalk, udir / "crosswalk.parquet", ["previous", "effective", "current", "source"]
    )
    manifest_path = udir / "manifest.json"
    manifest: dict[str, Any] = (
        json.loads(manifest_path.read_text()) if manifest_path.is_file() else {"sources": []}
    )
    manifest["sources"] = [
        s for s in manifest["sources"] if s.get("effective") != effective.isoformat()
    ]
    manifest["sources"].append(
        {
            "package": "CMS ICD-10-CM release files",
            "effective": effective.isoformat(),
            "files": [{"file": n, "sha256": d} for n, d in sorted(files.digests.items())],
        }
    )
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    reset_reference()
    return ImportResult(
        effective=effective,
        release=history.release_name(effective),
        billable=len(billable),
        added=len(billable - previous) if previous else len(billable),
        deleted=len(previous - billable),
        new_release=new_release,
        titles=len(titles),
        crosswalk_rows=table_rows,
        heuristic_rows=len(heur),
        user_dir=udir,
        files=sorted(files.digests),
    )
