"""Tabular facts (Excludes notes, 7th characters, code-first) and MCE flags, vectorized.

The tables come from tools/build_tabular.py (see docs/reference-data-tabular.md). Notes are stored
where the tabular list prints them (code, subcategory, category, block or chapter); inheritance is
applied at query time: a code is governed by the notes of every ancestor (each prefix of the code,
its category's blocks and chapter). A pattern names a code and everything under it ("S39.012"
covers S39.012A), a prefix ("M51.2-") or a range ("C00-D49", compared in tabular order).

Every lookup takes pandas Series and works on the distinct values, with no Python loop over rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd
import pyarrow as pa
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


def _date_days(column: pa.ChunkedArray) -> np.ndarray:
    """Days since 1970-01-01 of an Arrow date column as int64 (null -> -1)."""
    days: np.ndarray = column.cast(pa.int32()).fill_null(-1).to_numpy(zero_copy_only=False)
    return days.astype(np.int64)


def _days(dates: pd.Series) -> np.ndarray:
    """Days since 1970-01-01 as int64 (NaT -> -1)."""
    ts = pd.to_datetime(pd.Series(dates).reset_index(drop=True), errors="coerce")
    days = ts.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").astype(np.int64)
    return np.where(ts.isna().to_numpy(), -1, days)


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
        return pq.read_table(self.path(name), columns=columns)

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in TABLES:
            raise KeyError(name)
        if name not in self._read:
            self._read[name] = pd.read_parquet(self.path(name))
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
    def _node_codes(self) -> pd.Index:
        nodes = self._arrow("tabular_nodes", ["code"])
        out: pd.Index = pd.Index(_strings(nodes, "code").astype(str), dtype=object)
        return out

    @cached_property
    def _cat_ord(self) -> pd.Series:
        nodes = self._arrow("tabular_nodes", ["code", "level", "ord"])
        level = _strings(nodes, "level")
        ords = nodes.column("ord").to_numpy(zero_copy_only=False).astype("float64")
        keep = (level == "category") & ~np.isnan(ords)
        codes = _strings(nodes, "code")[keep].astype(str)
        return pd.Series(ords[keep].astype(np.int64), index=pd.Index(codes, dtype=object))

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
        cache: dict[str, pd.DataFrame] = self.__dict__.setdefault("_pattern_tables", {})
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

    def _named(self, kind: str, src: pd.Series, other: pd.Series) -> pd.DataFrame:
        """For each position: the most specific note of ``kind`` above src that names other."""
        hits = self._ancestors(src).merge(
            self._pattern_table(kind), left_on="key", right_on="at_key"
        )
        empty = pd.DataFrame({"pos": pd.Series([], dtype=np.int64)})
        if hits.empty:
            return empty
        oth = other.reset_index(drop=True).astype(str).to_numpy(dtype=object)[hits["pos"]]
        hits["other"] = oth
        ok = np.zeros(len(hits), dtype=bool)
        other_s = hits["other"].astype(str)
        other_ord = other_s.str[:3].map(self._cat_ord)
        ordered = hits["lo_ord"].notna() & hits["hi_ord"].notna() & other_ord.notna()
        ok |= (
            ordered
            & (other_ord >= hits["lo_ord"]).fillna(False)
            & (other_ord <= hits["hi_ord"]).fillna(False)
        ).to_numpy()
        for key, idx in hits[~ordered].groupby(["n_lo", "n_hi"]).groups.items():
            n_lo, n_hi = cast(tuple[int, int], key)
            sub = other_s.loc[idx]
            ok[idx] = (sub.str[:n_lo] >= hits.loc[idx, "lo"]).to_numpy() & (
                sub.str[:n_hi] <= hits.loc[idx, "hi"]
            ).to_numpy()
        qualified = hits["qual_pos"].notna()
        groups = hits[qualified].groupby(["qual_pos", "qual_chars"]).groups
        for key, idx in groups.items():
            qpos, qchars = cast(tuple[float, str], key)
            start = int(qpos)
            alts = str(qchars).split("|")
            sub = other_s.loc[idx]
            fits = np.zeros(len(idx), dtype=bool)
            for alt in alts:
                fits |= (sub.str[start : start + len(alt)] == alt).to_numpy()
            ok[idx] &= fits
        found = hits[ok].sort_values(
            ["pos", "depth", "at_key", "note_seq", "pattern_seq"],
            ascending=[True, False, True, True, True],
        )
        return found.drop_duplicates("pos")[["pos", "note", "at", "pattern"]]

    def _pairs(self, kind: str, a: pd.Series, b: pd.Series) -> pd.DataFrame:
        if len(a) != len(b):
            raise ValueError("a and b must have the same length")
        pos_a, distinct_a = _distinct(a)
        pos_b, distinct_b = _distinct(b)
        width = len(distinct_b)
        codes, pairs = pd.factorize(pos_a.astype(np.int64) * width + pos_b)
        ua = distinct_a.iloc[pairs // width].reset_index(drop=True)
        ub = distinct_b.iloc[pairs % width].reset_index(drop=True)
        none = pd.Series([None] * len(pairs), dtype="string")
        res = pd.DataFrame(
            {
                "conflict": np.zeros(len(pairs), dtype=bool),
                "note": none,
                "note_at": none,
                "pattern": none,
            }
        )
        # A's notes naming b are cited before b's notes naming a.
        for src, oth in ((ub, ua), (ua, ub)):
            found = self._named(kind, src, oth)
            if found.empty:
                continue
            pos = found["pos"].to_numpy()
            res.loc[pos, "conflict"] = True
            res.loc[pos, "note"] = found["note"].to_numpy()
            res.loc[pos, "note_at"] = found["at"].to_numpy()
            res.loc[pos, "pattern"] = found["pattern"].to_numpy()
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
        at = self._nearest(norm, self._seventh.index, longest=6)
        requires = at.notna().to_numpy()
        info = self._seventh.reindex(at.fillna("").to_numpy())
        base = self._nearest(norm, self._node_codes, longest=6)
        base_len = base.str.len().fillna(0).to_numpy()
        given = norm.str[6].where(requires & (norm.str.len() == 7).to_numpy())
        lookup = self._seventh_tables[1]
        meaning = pd.Series(
            [
                lookup.get((a, g), np.nan)
                for a, g in zip(
                    at.fillna("").tolist(), given.fillna("").astype(object).tolist(), strict=True
                )
            ],
            dtype=object,
        )
        columns = {
            "requires_7th": requires,
            "allowed": info["allowed"].to_numpy(dtype=object),
            "meanings": info["meanings"].to_numpy(dtype=object),
            "defined_at": info["defined_at"].to_numpy(dtype=object),
            "needs_placeholder": requires & (base_len > 0) & (base_len < 6),
            "seventh": given.astype(object).where(given.notna(), None).to_numpy(),
            "seventh_meaning": meaning.to_numpy(dtype=object),
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
