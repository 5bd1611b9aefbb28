"""Code history tables: turn dated billable sets into spans, releases and heuristic crosswalks.

Shared by the maintainer build (``tools/build_reference.py``) and the CMS importer, so both
write tables of exactly the same shape. Every table is written deterministically (sorted rows,
fixed writer options, no pandas metadata, no timestamps) so a rebuild is byte-identical.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.parquet as pq

#: A code-shaped token, undotted: a letter, two more characters, up to four more. Loose on
#: purpose: FY2026 added categories with a letter in second place (QA0).
ICD10_RE: Final = re.compile(r"[A-Z][0-9A-Z]{2}[0-9A-Z]{0,4}")

_MONTHS: Final = {1: "January", 4: "April", 7: "July", 10: "October"}

CODES_SCHEMA: Final = pa.schema(
    [("code", pa.string()), ("title", pa.string()), ("title_source", pa.string())]
)
SPANS_SCHEMA: Final = pa.schema(
    [
        ("code", pa.string()),
        ("kind", pa.string()),
        ("start", pa.date32()),
        ("end", pa.date32()),
    ]
)
RELEASES_SCHEMA: Final = pa.schema(
    [
        ("name", pa.string()),
        ("effective", pa.date32()),
        ("billable", pa.int32()),
        ("added", pa.int32()),
        ("deleted", pa.int32()),
        ("source", pa.string()),
    ]
)
CROSSWALK_SCHEMA: Final = pa.schema(
    [
        ("previous", pa.string()),
        ("current", pa.string()),
        ("effective", pa.date32()),
        ("source", pa.string()),
    ]
)


def release_name(effective: date) -> str:
    """Name a release by its effective date: "FY2023" for October, else "FY2023 April update"."""
    fiscal_year = effective.year + 1 if effective.month >= 10 else effective.year
    if effective.month == 10 and effective.day == 1:
        return f"FY{fiscal_year}"
    month = _MONTHS.get(effective.month, effective.strftime("%B"))
    return f"FY{fiscal_year} {month} update"


def _prefixes(code: str) -> tuple[str, ...]:
    """Header candidates of a code: prefixes of 3+ characters not ending in a placeholder X."""
    found = _PREFIXES.get(code)
    if found is None:
        found = tuple(p for p in (code[:n] for n in range(3, len(code))) if not p.endswith("X"))
        _PREFIXES[code] = found
    return found


_PREFIXES: dict[str, tuple[str, ...]] = {}


def derive_headers(billable: Iterable[str]) -> set[str]:
    """Return the header codes implied by a billable set.

    A header is a proper prefix (three characters or more, not ending in a placeholder X) of a
    billable code that is not itself billable.
    """
    codes = set(billable)
    headers: set[str] = set()
    for code in codes:
        headers.update(_prefixes(code))
    return headers - codes


def _runs(memberships: Mapping[str, list[int]], n: int) -> list[tuple[str, int, int]]:
    """Split each code's sorted release indexes into runs of consecutive releases."""
    runs: list[tuple[str, int, int]] = []
    for code, idx in memberships.items():
        start = prev = idx[0]
        for i in idx[1:]:
            if i != prev + 1:
                runs.append((code, start, prev))
                start = i
            prev = i
        runs.append((code, start, prev))
    return runs


def spans_table(effective: Sequence[date], billable: Sequence[frozenset[str]]) -> pa.Table:
    """Billable and header spans from the billable set of each release (sorted by date)."""
    n = len(effective)
    rows: list[tuple[str, str, date, date | None]] = []
    for kind, sets in (("billable", billable), ("header", [derive_headers(b) for b in billable])):
        members: dict[str, list[int]] = {}
        for i, codes in enumerate(sets):
            for code in codes:
                members.setdefault(code, []).append(i)
        for code, first, last in _runs(members, n):
            end = None if last == n - 1 else effective[last + 1] - timedelta(days=1)
            rows.append((code, kind, effective[first], end))
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    return pa.Table.from_pylist(
        [{"code": c, "kind": k, "start": s, "end": e} for c, k, s, e in rows], schema=SPANS_SCHEMA
    )


def releases_table(
    effective: Sequence[date], billable: Sequence[frozenset[str]], sources: Sequence[str]
) -> pa.Table:
    """One row per release: name, effective date, billable count, codes added and deleted."""
    rows = []
    previous: frozenset[str] = frozenset()
    for eff, codes, source in zip(effective, billable, sources, strict=True):
        rows.append(
            {
                "name": release_name(eff),
                "effective": eff,
                "billable": len(codes),
                "added": len(codes - previous) if previous else len(codes),
                "deleted": len(previous - codes),
                "source": source,
            }
        )
        previous = codes
    return pa.Table.from_pylist(rows, schema=RELEASES_SCHEMA)


def _words(title: str | None) -> set[str]:
    return set(re.findall(r"[a-z]+", (title or "").lower())) - {"of", "and", "the", "with", "or"}


def _starting_with(ordered: Sequence[str], prefix: str) -> list[str]:
    """Items of a sorted sequence that start with ``prefix`` (binary search)."""
    lo = bisect.bisect_left(ordered, prefix)
    hi = bisect.bisect_left(ordered, prefix + "\x7f")
    return list(ordered[lo:hi])


def heuristic_successors(
    code: str,
    before: frozenset[str],
    after: frozenset[str],
    titles: Mapping[str, str | None],
    _sorted: tuple[list[str], list[str]] | None = None,
) -> list[str]:
    """Guess the successors of ``code`` deleted between two releases.

    New codes starting with it ('X' placeholder positions match anything); else codes of the
    new release starting with it; else the new codes of the same category that share the most
    title words. Used only where the CMS conversion table has no row.
    """
    added_sorted, after_sorted = _sorted or (sorted(after - before), sorted(after))
    stem = code.split("X", 1)[0] if "X" in code[3:] else code
    stem = stem if len(stem) >= 3 else code[:3]
    pattern = re.compile(re.escape(code).replace("X", "[0-9A-Z]") + ".*")
    found = [c for c in _starting_with(added_sorted, stem) if pattern.fullmatch(c) and c != code]
    if found:
        return found
    found = [c for c in _starting_with(after_sorted, code) if c != code]
    if found:
        return found
    words = _words(titles.get(code))
    best: list[str] = []
    best_score = 0.0
    for cand in _starting_with(added_sorted, code[:3]):
        other = _words(titles.get(cand))
        if not words or not other:
            continue
        score = len(words & other) / len(words | other)
        if score > best_score:
            best, best_score = [cand], score
        elif score == best_score and score > 0:
            best.append(cand)
    return best if best_score >= 0.5 else []


def heuristic_rows(
    effective: Sequence[date],
    billable: Sequence[frozenset[str]],
    known: set[tuple[str, date]],
    titles: Mapping[str, str | None],
) -> list[dict[str, object]]:
    """Heuristic crosswalk rows for every deletion the CMS table does not cover."""
    rows: list[dict[str, object]] = []
    for i in range(1, len(effective)):
        deleted = sorted(c for c in billable[i - 1] - billable[i] if (c, effective[i]) not in known)
        if not deleted:
            continue
        ordered = (sorted(billable[i] - billable[i - 1]), sorted(billable[i]))
        for code in deleted:
            for succ in heuristic_successors(code, billable[i - 1], billable[i], titles, ordered):
                rows.append(
                    {
                        "previous": code,
                        "current": succ,
                        "effective": effective[i],
                        "source": "heuristic",
                    }
                )
    return rows


def write_table(table: pa.Table, path: Path, sort_by: Sequence[str]) -> None:
    """Write a table as zstd parquet, sorted, with fixed options (byte-identical rebuilds)."""
    table = table.replace_schema_metadata(None)
    if sort_by and table.num_rows:
        table = table.sort_by([(c, "ascending") for c in sort_by])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    pq.write_table(
        table,
        tmp,
        compression="zstd",
        compression_level=9,
        use_dictionary=True,
        write_statistics=False,
        row_group_size=1 << 20,
        data_page_version="2.0",
        store_schema=False,
    )
    tmp.replace(path)
