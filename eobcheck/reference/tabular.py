"""Tabular facts (Excludes notes, 7th characters, code-first) and MCE flags, vectorized.

The tables come from tools/build_tabular.py (see docs/reference-data-tabular.md). Notes are stored
where the tabular list prints them (code, subcategory, category, block or chapter); inheritance is
applied at query time: a code is governed by the notes of every ancestor (each prefix of the code,
its category's blocks and chapter). A pattern names a code and everything under it ("S39.012"
covers S39.012A), a prefix ("M51.2-") or a range ("C00-D49", compared in tabular order).

Every lookup takes pandas Series and works on the distinct values, with no Python loop over rows.
"""

from __future__ import annotations

from collections.abc import Container, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from eobcheck.errors import ReferenceDataError

DATA_DIR = Path(__file__).resolve().parent / "data"

TABLES = (
    "tabular_nodes",
    "tabular_blocks",
    "tabular_category_blocks",
    "tabular_notes",
    "tabular_seventh",
    "tabular_mce",
    "tabular_mce_age",
)

# API column -> MCE flag name.
MCE_COLUMNS = {
    "manifestation": "manifestation",
    "external_cause_pdx": "ecodepdx",
    "unacceptable_pdx": "unacceptable",
    "unspecified": "unspecified",
    "male": "male",
    "female": "female",
    "newborn": "newborn",
    "pediatric": "pediatric",
    "maternity": "maternity",
    "adult": "adult",
}

_EXTERNAL_CAUSE_CHAPTER = 20
# Specificity of where a note sits: longer codes are more specific than blocks and chapters.
_BLOCK_DEPTH = 2
_CHAPTER_DEPTH = 1
# Composite search key: code number * _SPAN + day number.
_SPAN = 1 << 20


@dataclass(frozen=True)
class NotePattern:
    """One code pattern an instructional note names, with the note and where it sits."""

    pattern: str
    kind: str
    lo: str
    hi: str
    note: str
    note_at: str
    at_level: str
    qualifier: str | None


def normalize(codes: pd.Series) -> pd.Series:
    """Return codes stripped, upper-cased, without dots or a trailing dash (NA stays NA)."""
    s = codes.astype("string").str.strip().str.upper()
    return s.str.replace(".", "", regex=False).str.rstrip("-")


def _distinct(codes: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """Positions of each code in, and the normalized distinct values (NA -> "") of, codes.

    Claims repeat a few thousand codes millions of times: string work is done once per value.
    """
    pos, uniq = pd.factorize(pd.Series(codes).to_numpy(dtype=object))
    norm = normalize(pd.Series(uniq, dtype=object)).fillna("")
    norm = pd.concat([norm, pd.Series([""], dtype="string")], ignore_index=True)
    return np.where(pos < 0, len(uniq), pos), norm


def _longest_prefix(code: str, keys: Container[str], longest: int) -> str | None:
    """The longest prefix of ``code`` (3..longest characters) in ``keys``, else None."""
    for k in range(min(longest, len(code)), 2, -1):
        if code[:k] in keys:
            return code[:k]
    return None


def _objects(values: Sequence[object]) -> np.ndarray:
    """A 1-D object array of ``values``."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _date_days(column: pa.ChunkedArray) -> np.ndarray:
    """Days since 1970-01-01 of an Arrow date column as int64 (null -> -1)."""
    days: np.ndarray = column.cast(pa.int32()).fill_null(-1).to_numpy(zero_copy_only=False)
    return days.astype(np.int64)


def _days(dates: pd.Series) -> np.ndarray:
    """Days since 1970-01-01 as int64 (NaT -> -1)."""
    ts = pd.to_datetime(pd.Series(dates).reset_index(drop=True), errors="coerce")
    days = ts.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").astype(np.int64)
    return np.where(ts.isna().to_numpy(), -1, days)


@dataclass
class _PatternArrays:
    """Note patterns of one kind as arrays (one entry per pattern row, in table order)."""

    note: np.ndarray
    at: np.ndarray
    pattern: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    n_lo: np.ndarray
    n_hi: np.ndarray
    lo_ord: np.ndarray  # tabular order of a three-character range's ends (NaN otherwise)
    hi_ord: np.ndarray
    rank: np.ndarray  # order by (at_key, note_seq, pattern_seq)
    qualifier: list[tuple[int, list[str]] | None]  # position and alternatives
    rows: dict[str, np.ndarray]  # note key -> pattern rows
    candidates: dict[str, tuple[np.ndarray, np.ndarray]]  # code -> rows and depths


class _Tables(Mapping[str, pd.DataFrame]):
    """The generated tables, each read from its parquet file on first use.

    A check that needs the MCE flags only does not pay for the notes; files are checked for
    presence up front so a missing table still fails at load time.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._read: dict[str, pd.DataFrame] = {}
        for name in TABLES:
            path = self.path(name)
            if not path.exists():
                raise ReferenceDataError(
                    f"{path} is missing; rebuild it with `python tools/build_tabular.py`"
                )

    def path(self, name: str) -> Path:
        """The parquet file of table ``name``."""
        return self.data_dir / f"{name}.parquet"

    def arrow(self, name: str, columns: list[str]) -> pa.Table:
        """Columns of table ``name`` as an Arrow table (no pandas conversion)."""
        # ParquetFile reads one file without importing the dataset machinery (tens of ms)
        return pq.ParquetFile(self.path(name)).read(columns=columns)

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in TABLES:
            raise KeyError(name)
        if name not in self._read:
            self._read[name] = pq.ParquetFile(self.path(name)).read().to_pandas()
        return self._read[name]

    def __iter__(self) -> Iterator[str]:
        return iter(TABLES)

    def __len__(self) -> int:
        return len(TABLES)


def _strings(table: pa.Table, name: str) -> np.ndarray:
    """A string column of an Arrow table as an object array (None for null)."""
    out: np.ndarray = table.column(name).to_numpy(zero_copy_only=False)
    return out


def _grouped_join(keys: np.ndarray, values: np.ndarray, sep: str) -> dict[str, str]:
    """Per key (in the given order), its values joined by ``sep``."""
    out: dict[str, list[str]] = {}
    for k, v in zip(keys.tolist(), values.tolist(), strict=True):
        out.setdefault(k, []).append(v)
    return {k: sep.join(v) for k, v in out.items()}


class Tabular:
    """Tabular facts and MCE flags loaded from the generated tables.

    Every derived lookup is built on first use: a check pays only for the facts its rules ask.
    """

    def __init__(self, tables: Mapping[str, pd.DataFrame]) -> None:
        self._tables = tables

    def _arrow(self, name: str, columns: list[str]) -> pa.Table:
        if isinstance(self._tables, _Tables):
            return self._tables.arrow(name, columns)
        return pa.Table.from_pandas(self._tables[name][columns], preserve_index=False)

    @cached_property
    def nodes(self) -> pd.DataFrame:
        """The tabular nodes table."""
        return self._tables["tabular_nodes"]

    @cached_property
    def blocks(self) -> pd.DataFrame:
        """The tabular blocks and chapters table."""
        return self._tables["tabular_blocks"]

    @cached_property
    def notes(self) -> pd.DataFrame:
        """The tabular instructional notes table."""
        return self._tables["tabular_notes"]

    @cached_property
    def mce(self) -> pd.DataFrame:
        """The MCE flag spans, sorted by code and start date."""
        mce = self._tables["tabular_mce"].sort_values(["code", "start"], kind="stable")
        return mce.reset_index(drop=True)

    @cached_property
    def mce_age(self) -> pd.DataFrame:
        """The MCE age groups with their age ranges and date spans."""
        return self._tables["tabular_mce_age"]

    @cached_property
    def _node_code_set(self) -> frozenset[str]:
        nodes = self._arrow("tabular_nodes", ["code"])
        return frozenset(nodes.column("code").drop_null().to_pylist())

    @cached_property
    def _node_codes(self) -> pd.Index:
        nodes = self._arrow("tabular_nodes", ["code"])
        out: pd.Index = pd.Index(_strings(nodes, "code").astype(str), dtype=object)
        return out

    @cached_property
    def _cat_ord(self) -> pd.Series:
        order = self._cat_ord_map
        return pd.Series(list(order.values()), index=pd.Index(list(order), dtype=object))

    @cached_property
    def _cat_ord_map(self) -> dict[str, int]:
        """Tabular order of each category."""
        nodes = self._arrow("tabular_nodes", ["code", "level", "ord"])
        # filtered in Arrow: categories are a few thousand of the nodes
        keep = pc.and_(
            pc.equal(nodes.column("level"), "category"), pc.is_valid(nodes.column("ord"))
        )
        cats = nodes.filter(keep)
        codes = cats.column("code").to_pylist()
        ords = cats.column("ord").to_pylist()
        return {str(c): int(o) for c, o in zip(codes, ords, strict=True)}

    @cached_property
    def _cat_blocks(self) -> pd.DataFrame:
        members = self._tables["tabular_category_blocks"]
        return pd.DataFrame(
            {
                "category": members["category"].astype(str),
                "key": members["block"].astype(str),
                "depth": np.where(members["level"] == "chapter", _CHAPTER_DEPTH, _BLOCK_DEPTH),
            }
        )

    def _pattern_table(self, kind: str) -> pd.DataFrame:
        """The note patterns of ``kind`` (excludes1, excludes2), prepared on first use."""
        cache: dict[str, pd.DataFrame] = self.__dict__.setdefault("_pattern_tables_cache", {})
        if kind not in cache:
            notes = self.notes
            cache[kind] = self._prepare(notes[(notes["kind"] == kind) & notes["pattern"].notna()])
        return cache[kind]

    @cached_property
    def _code_first(self) -> pd.Series:
        notes = self._arrow("tabular_notes", ["kind", "at_key", "note_seq", "note"])
        kind = _strings(notes, "kind")
        sel = np.flatnonzero(kind == "code_first")
        at_key = _strings(notes, "at_key")[sel]
        seq = notes.column("note_seq").to_numpy(zero_copy_only=False)[sel]
        note = _strings(notes, "note")[sel]
        order = np.lexsort((seq, at_key))
        at_key, seq, note = at_key[order], seq[order], note[order]
        # one note per (code, note number): a note is stored once per pattern it names
        first = np.r_[True, (at_key[1:] != at_key[:-1]) | (seq[1:] != seq[:-1])]
        joined = _grouped_join(at_key[first], note[first], "; ")
        return pd.Series(
            list(joined.values()), index=pd.Index(list(joined), name="at_key"), name="note"
        )

    @cached_property
    def _seventh_tables(self) -> tuple[pd.DataFrame, dict[tuple[str, str], str]]:
        table = self._arrow("tabular_seventh", ["at", "at_key", "char", "meaning"])
        at_key, char = _strings(table, "at_key"), _strings(table, "char")
        at, meaning = _strings(table, "at"), _strings(table, "meaning")
        order = np.lexsort((char, at_key))
        at_key, char, at, meaning = at_key[order], char[order], at[order], meaning[order]
        allowed = _grouped_join(at_key, char, "")
        meanings = _grouped_join(at_key, char + "=" + meaning, "; ")
        defined: dict[str, str] = {}
        for k, a in zip(at_key.tolist(), at.tolist(), strict=True):
            defined.setdefault(k, a)
        keys = list(allowed)
        frame = pd.DataFrame(
            {
                "allowed": [allowed[k] for k in keys],
                "meanings": [meanings[k] for k in keys],
                "defined_at": [defined[k] for k in keys],
            },
            index=pd.Index(keys, name="at_key"),
        )
        lookup = {
            (k, c): m
            for k, c, m in zip(at_key.tolist(), char.tolist(), meaning.tolist(), strict=True)
        }
        return frame, lookup

    @property
    def _seventh(self) -> pd.DataFrame:
        return self._seventh_tables[0]

    @cached_property
    def external_cause_range(self) -> tuple[str, str]:
        """First and last category of the external-cause chapter (V00-Y99)."""
        blocks = self.blocks
        chapter = blocks[
            (blocks["level"] == "chapter") & (blocks["chapter"] == _EXTERNAL_CAUSE_CHAPTER)
        ]
        return (str(chapter["first"].iloc[0]), str(chapter["last"].iloc[0]))

    @cached_property
    def _mce_index(self) -> tuple[pd.Index, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Distinct MCE codes, and per span (sorted by code and start): code id, search key,
        last day and flags."""
        flags = list(MCE_COLUMNS.values())
        table = self._arrow("tabular_mce", ["code", "start", "end", *flags])
        ids, uniques = pd.factorize(_strings(table, "code"), sort=True)
        start = _date_days(table.column("start"))
        end = _date_days(table.column("end"))
        order = np.lexsort((start, ids))
        ids = ids.astype(np.int64)[order]
        start, end = start[order], end[order]
        matrix = np.column_stack(
            [table.column(f).to_numpy(zero_copy_only=False).astype(bool) for f in flags]
        )[order]
        return (
            pd.Index(np.asarray(uniques, dtype=object)),
            ids,
            ids * _SPAN + start,
            np.where(end < 0, np.iinfo(np.int64).max, end),
            matrix,
        )

    def _prepare(self, rows: pd.DataFrame) -> pd.DataFrame:
        out = rows[
            [
                *("at_key", "at", "at_level", "note_seq", "pattern_seq", "note", "pattern"),
                *("pattern_kind", "lo", "hi", "qualifier", "qual_pos", "qual_chars"),
            ]
        ].copy()
        out["at_key"] = out["at_key"].astype(str)
        out["n_lo"] = out["lo"].str.len().astype(np.int64)
        out["n_hi"] = out["hi"].str.len().astype(np.int64)
        # Three-character ranges follow the tabular order (C7A lies inside C00-C96).
        whole = (out["n_lo"] == 3) & (out["n_hi"] == 3)
        out["lo_ord"] = out["lo"].map(self._cat_ord).where(whole)
        out["hi_ord"] = out["hi"].map(self._cat_ord).where(whole)
        return out.reset_index(drop=True)

    # -- ancestors ------------------------------------------------------------------------

    def _ancestors(self, codes: pd.Series) -> pd.DataFrame:
        """Return (pos, key, depth): every prefix of each code, its blocks and its chapter."""
        codes = codes.reset_index(drop=True)
        lengths = codes.str.len().fillna(0).to_numpy()
        parts = []
        for k in range(3, 8):
            has = lengths >= k
            parts.append(
                pd.DataFrame(
                    {"pos": np.flatnonzero(has), "key": codes[has].str[:k].to_numpy(), "depth": k}
                )
            )
        cats = pd.DataFrame({"pos": np.flatnonzero(lengths >= 3)})
        cats["category"] = codes[lengths >= 3].str[:3].to_numpy()
        parts.append(cats.merge(self._cat_blocks, on="category")[["pos", "key", "depth"]])
        out = pd.concat(parts, ignore_index=True)
        out["key"] = out["key"].astype(str)
        return out

    def _pattern_arrays(self, kind: str) -> _PatternArrays:
        """The note patterns of ``kind`` as plain arrays, with the rows per note key."""
        cache: dict[str, _PatternArrays] = self.__dict__.setdefault("_pattern_arrays_cache", {})
        if kind not in cache:
            cols = ["kind", "at_key", "at", "note_seq", "pattern_seq", "note", "pattern"]
            cols += ["lo", "hi", "qual_pos", "qual_chars"]
            table = self._arrow("tabular_notes", cols)
            has_pattern = table.column("pattern").is_valid().to_numpy(zero_copy_only=False)
            sel = np.flatnonzero((_strings(table, "kind") == kind) & has_pattern)

            def col(name: str) -> np.ndarray:
                return _strings(table, name)[sel]

            def num(name: str) -> np.ndarray:
                out: np.ndarray = (
                    table.column(name).to_numpy(zero_copy_only=False).astype("float64")[sel]
                )
                return out

            at_key = col("at_key").astype(str)
            lo, hi = col("lo"), col("hi")
            n_lo = np.array([len(x) for x in lo], dtype=np.int64)
            n_hi = np.array([len(x) for x in hi], dtype=np.int64)
            # Three-character ranges follow the tabular order (C7A lies inside C00-C96).
            whole = (n_lo == 3) & (n_hi == 3)
            cat_ord = self._cat_ord_map
            nan = float("nan")
            lo_ord = np.where(whole, np.array([cat_ord.get(x, nan) for x in lo], "float64"), nan)
            hi_ord = np.where(whole, np.array([cat_ord.get(x, nan) for x in hi], "float64"), nan)
            note_seq, pattern_seq = num("note_seq"), num("pattern_seq")
            # a note's rank among notes at the same depth: at_key, note_seq, pattern_seq
            rank = np.empty(len(sel), dtype=np.int64)
            rank[np.lexsort((pattern_seq, note_seq, at_key))] = np.arange(len(sel))
            rows: dict[str, list[int]] = {}
            for i, k in enumerate(at_key.tolist()):
                rows.setdefault(k, []).append(i)
            qual_pos = num("qual_pos")
            alts = [
                None if q != q else (int(q), str(c).split("|"))  # NaN: no qualifier
                for q, c in zip(qual_pos.tolist(), col("qual_chars").tolist(), strict=True)
            ]
            cache[kind] = _PatternArrays(
                note=col("note"),
                at=col("at"),
                pattern=col("pattern"),
                lo=lo,
                hi=hi,
                n_lo=n_lo,
                n_hi=n_hi,
                lo_ord=lo_ord,
                hi_ord=hi_ord,
                rank=rank,
                qualifier=alts,
                rows={k: np.array(v, dtype=np.int64) for k, v in rows.items()},
                candidates={},
            )
        return cache[kind]

    def _category_keys(self) -> dict[str, list[tuple[str, int]]]:
        """Per category, its blocks and chapter as (key, depth)."""
        if "_category_keys_map" not in self.__dict__:
            blocks = self._arrow("tabular_category_blocks", ["category", "block", "level"])
            found: dict[str, list[tuple[str, int]]] = {}
            for c, b, lvl in zip(
                _strings(blocks, "category").tolist(),
                _strings(blocks, "block").tolist(),
                _strings(blocks, "level").tolist(),
                strict=True,
            ):
                depth = _CHAPTER_DEPTH if lvl == "chapter" else _BLOCK_DEPTH
                found.setdefault(str(c), []).append((str(b), depth))
            self.__dict__["_category_keys_map"] = found
        out: dict[str, list[tuple[str, int]]] = self.__dict__["_category_keys_map"]
        return out

    def _candidates(self, pat: _PatternArrays, code: str) -> tuple[np.ndarray, np.ndarray]:
        """Pattern rows of the notes above ``code`` (each prefix, its blocks, its chapter)
        and the depth each sits at; cached per code."""
        got = pat.candidates.get(code)
        if got is None:
            keys = [(code[:k], k) for k in range(3, min(len(code), 7) + 1)]
            if len(code) >= 3:
                keys += self._category_keys().get(code[:3], [])
            rows = [(pat.rows[k], d) for k, d in keys if k in pat.rows]
            if rows:
                got = (
                    np.concatenate([r for r, _ in rows]),
                    np.concatenate([np.full(len(r), d, dtype=np.int64) for r, d in rows]),
                )
            else:
                got = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
            pat.candidates[code] = got
        return got

    def _named(
        self, pat: _PatternArrays, codes: list[str], src: np.ndarray, other: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """For pairs of code numbers (src, other): the pair and the pattern row of the most
        specific note above src that names other (pairs with none are left out)."""
        cands = [self._candidates(pat, c) for c in codes]
        count = np.array([len(r) for r, _ in cands], dtype=np.int64)
        flat_row = np.concatenate([r for r, _ in cands]) if cands else np.zeros(0, np.int64)
        flat_depth = np.concatenate([d for _, d in cands]) if cands else np.zeros(0, np.int64)
        start = np.cumsum(count) - count
        n = count[src]
        pair = np.repeat(np.arange(len(src)), n)
        step = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
        at = np.repeat(start[src], n) + step
        row, depth = flat_row[at], flat_depth[at]
        oth = other[pair]
        text = np.array(codes, dtype=object)
        cat_ord = self._cat_ord_map
        o_ord = np.array([cat_ord.get(c[:3], np.nan) for c in codes], dtype="float64")[oth]
        lo_ord, hi_ord = pat.lo_ord[row], pat.hi_ord[row]
        ordered = ~np.isnan(lo_ord) & ~np.isnan(hi_ord) & ~np.isnan(o_ord)
        with np.errstate(invalid="ignore"):
            ok = ordered & (o_ord >= lo_ord) & (o_ord <= hi_ord)
        rest = np.flatnonzero(~ordered)
        if len(rest):
            width = int(max(pat.n_lo.max(initial=0), pat.n_hi.max(initial=0))) + 1
            prefix = np.array([[c[:k] for k in range(width)] for c in codes], dtype=object)
            r, o = row[rest], oth[rest]
            lo_ok = prefix[o, pat.n_lo[r]] >= pat.lo[r]
            hi_ok = prefix[o, pat.n_hi[r]] <= pat.hi[r]
            ok[rest] = lo_ok.astype(bool) & hi_ok.astype(bool)
        for i in np.flatnonzero(ok):
            qual = pat.qualifier[row[i]]
            if qual is not None:
                q, alts = qual
                c = text[oth[i]]
                ok[i] = any(c[q : q + len(a)] == a for a in alts)
        hit = np.flatnonzero(ok)
        if not len(hit):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        # most specific first (deepest), then the tabular's order of notes and patterns
        key = (8 - depth[hit]) * (len(pat.rank) + 1) + pat.rank[row[hit]]
        order = np.lexsort((key, pair[hit]))
        hp = pair[hit][order]
        first = np.r_[True, hp[1:] != hp[:-1]]
        return hp[first], row[hit][order][first]

    def _pairs(self, kind: str, a: pd.Series, b: pd.Series) -> pd.DataFrame:
        if len(a) != len(b):
            raise ValueError("a and b must have the same length")
        pos_a, distinct_a = _distinct(a)
        pos_b, distinct_b = _distinct(b)
        width = len(distinct_b)
        codes, pairs = pd.factorize(pos_a.astype(np.int64) * width + pos_b)
        # code numbers over the distinct codes of both sides
        ids, names = pd.factorize(
            pd.concat([distinct_a, distinct_b], ignore_index=True).to_numpy(dtype=object)
        )
        ia = ids[: len(distinct_a)][pairs // width].astype(np.int64)
        ib = ids[len(distinct_a) :][pairs % width].astype(np.int64)
        pat = self._pattern_arrays(kind)
        names_list = [str(x) for x in names]
        conflict = np.zeros(len(pairs), dtype=bool)
        note = np.full(len(pairs), None, dtype=object)
        note_at = np.full(len(pairs), None, dtype=object)
        pattern = np.full(len(pairs), None, dtype=object)
        # A's notes naming b are cited before b's notes naming a.
        for src, oth in ((ib, ia), (ia, ib)):
            pos, row = self._named(pat, names_list, src, oth)
            conflict[pos] = True
            note[pos], note_at[pos], pattern[pos] = pat.note[row], pat.at[row], pat.pattern[row]
        res = pd.DataFrame(
            {
                "conflict": conflict,
                "note": pd.Series(note, dtype="string"),
                "note_at": pd.Series(note_at, dtype="string"),
                "pattern": pd.Series(pattern, dtype="string"),
            }
        )
        out: pd.DataFrame = res.take(codes).set_axis(a.index)
        return out

    # -- public lookups ---------------------------------------------------------------------

    def excludes1(self, a: pd.Series, b: pd.Series) -> pd.DataFrame:
        """Per aligned pair: conflict (an Excludes1 note above a names b, or above b names a),
        the note text, where it sits (note_at) and the pattern matched."""
        return self._pairs("excludes1", a, b)

    def excludes2(self, a: pd.Series, b: pd.Series) -> pd.DataFrame:
        """Per aligned pair: whether an Excludes2 note links them (both may be coded together)."""
        return self._pairs("excludes2", a, b)

    def excludes1_partners(self, code: str) -> list[NotePattern]:
        """Return every Excludes1 pattern governing ``code``, most specific note first."""
        norm = normalize(pd.Series([code]))
        anc = self._ancestors(norm.fillna(""))
        rows = anc.merge(self._pattern_table("excludes1"), left_on="key", right_on="at_key")
        rows = rows.sort_values(
            ["depth", "at_key", "note_seq", "pattern_seq"], ascending=[False, True, True, True]
        )
        return [
            NotePattern(
                pattern=str(r.pattern),
                kind=str(r.pattern_kind),
                lo=str(r.lo),
                hi=str(r.hi),
                note=str(r.note),
                note_at=str(r.at),
                at_level=str(r.at_level),
                qualifier=r.qualifier if isinstance(r.qualifier, str) else None,
            )
            for r in rows.itertuples(index=False)
        ]

    def mce_flags(self, codes: pd.Series, dates: pd.Series) -> pd.DataFrame:
        """Per (code, date): the MCE edit flags in effect on that date (all False when none)."""
        mce_codes, mce_ids, mce_key, mce_end, mce_flags = self._mce_index
        pos_, norm = _distinct(codes)
        ids = mce_codes.get_indexer(pd.Index(norm.to_numpy(dtype=object))).astype(np.int64)[pos_]
        days = _days(dates)
        if len(days) != len(ids):
            raise ValueError("codes and dates must have the same length")
        query = ids * _SPAN + np.clip(days, 0, _SPAN - 1)
        pos = np.searchsorted(mce_key, query, side="right") - 1
        safe = np.clip(pos, 0, None)
        hit = (
            (ids >= 0) & (days >= 0) & (pos >= 0) & (mce_ids[safe] == ids) & (days <= mce_end[safe])
        )
        flags = mce_flags[safe] & hit[:, None]
        return pd.DataFrame(flags, columns=list(MCE_COLUMNS), index=codes.index)

    def mce_flags_ever(self, codes: pd.Series) -> pd.DataFrame:
        """Per code: whether the MCE gives it each flag on any date (a superset of
        ``mce_flags`` on every date; lets callers skip the date lookup for other codes)."""
        mce_codes, mce_ids, _, _, mce_flags = self._mce_index
        pos, norm = _distinct(codes)
        ids = mce_codes.get_indexer(pd.Index(norm.to_numpy(dtype=object))).astype(np.int64)
        ever = np.zeros((len(mce_codes) + 1, mce_flags.shape[1]), dtype=bool)
        if len(mce_ids):
            start = np.flatnonzero(np.r_[True, mce_ids[1:] != mce_ids[:-1]])
            ever[mce_ids[start]] = np.logical_or.reduceat(mce_flags, start, axis=0)
        found = ever[np.where(ids < 0, len(mce_codes), ids)][pos]
        return pd.DataFrame(found, columns=list(MCE_COLUMNS), index=codes.index)

    def is_external_cause(self, codes: pd.Series) -> pd.Series:
        """Whether each code lies in the external-cause chapter (V00-Y99)."""
        pos, norm = _distinct(codes)
        cat = norm.str[:3]
        lo, hi = self.external_cause_range
        syntax = norm.str.fullmatch(r"[A-Z]\d[0-9A-Z][0-9A-Z]{0,4}").fillna(False)
        inside = ((cat >= lo) & (cat <= hi)).fillna(False)
        hit = (syntax & inside).to_numpy(dtype=bool)[pos]
        return pd.Series(hit, index=codes.index, dtype=bool)

    def _nearest(self, norm: pd.Series, table: pd.Index, longest: int = 7) -> pd.Series:
        """Longest prefix of each code (3..longest characters) found in ``table``, else NA."""
        keys = pd.Index(table.astype(str).to_numpy(dtype=object), dtype=object)
        found = np.full(len(norm), None, dtype=object)
        lengths = norm.str.len().fillna(0).to_numpy()
        for k in range(longest, 2, -1):
            prefix = norm.str[:k].to_numpy(dtype=object)
            hit = (found == None) & (lengths >= k) & (keys.get_indexer(prefix) >= 0)  # noqa: E711
            found[hit] = prefix[hit]
        return pd.Series(found, index=norm.index, dtype="string")

    def seventh_characters(self, codes: pd.Series) -> pd.DataFrame:
        """Per code: whether it takes a 7th character, which ones and their meanings, and
        whether placeholder X's are needed (the tabular code is shorter than 6 characters)."""
        pos, norm = _distinct(codes)
        table, lookup = self._seventh_tables
        info = dict(
            zip(
                table.index.tolist(),
                zip(table["allowed"], table["meanings"], table["defined_at"], strict=True),
                strict=True,
            )
        )
        nodes = self._node_code_set
        nan = np.nan
        missing = (nan, nan, nan)
        requires, allowed, meanings, defined, placeholder, seventh, meaning = ([] for _ in range(7))
        # distinct codes are few: plain dictionary lookups beat building string arrays
        for code in norm.tolist():
            at = _longest_prefix(code, info, 6)
            base = _longest_prefix(code, nodes, 6)
            given = code[6] if at is not None and len(code) == 7 else None
            got = info[at] if at is not None else missing
            requires.append(at is not None)
            allowed.append(got[0])
            meanings.append(got[1])
            defined.append(got[2])
            placeholder.append(at is not None and base is not None and len(base) < 6)
            seventh.append(given)
            meaning.append(lookup.get((at or "", given or ""), nan))
        columns = {
            "requires_7th": np.array(requires, dtype=bool),
            "allowed": _objects(allowed),
            "meanings": _objects(meanings),
            "defined_at": _objects(defined),
            "needs_placeholder": np.array(placeholder, dtype=bool),
            "seventh": _objects(seventh),
            "seventh_meaning": _objects(meaning),
        }
        # Index plain numpy arrays: taking string-typed columns row by row is far slower.
        return pd.DataFrame(
            {
                k: pd.Series(
                    v[pos], index=codes.index, dtype=v.dtype if v.dtype == bool else object
                )
                for k, v in columns.items()
            }
        )

    def code_first(self, codes: pd.Series) -> pd.Series:
        """The code-first note governing each code (nearest code, category or block), else NA."""
        pos, norm = _distinct(codes)
        at = self._nearest(norm, self._code_first.index)
        missing = at.isna()
        if missing.any():
            # Blocks carry code-first notes too (B90-B94); use the most specific block.
            anc = self._ancestors(norm[missing].reset_index(drop=True))
            anc = anc[(anc["depth"] <= _BLOCK_DEPTH) & anc["key"].isin(self._code_first.index)]
            anc = anc.sort_values(["pos", "depth"], ascending=[True, False]).drop_duplicates("pos")
            block_at = pd.Series(pd.NA, index=range(int(missing.sum())), dtype="string")
            block_at[anc["pos"].to_numpy()] = anc["key"].to_numpy()
            at = at.copy()
            at[missing.to_numpy()] = block_at.to_numpy()
        values = self._code_first.reindex(at.fillna("").to_numpy()).to_numpy()
        return pd.Series(values[pos], index=codes.index, dtype="string")


@lru_cache(maxsize=4)
def _load(data_dir: Path) -> Tabular:
    return Tabular(_Tables(data_dir))


def load_tabular(data_dir: Path | None = None) -> Tabular:
    """Load (once per directory) the tabular facts and MCE flags."""
    return _load((data_dir or DATA_DIR).resolve())
