"""Tabular facts (Excludes notes, 7th characters, code-first) and MCE flags, vectorized.

The tables come from tools/build_tabular.py (see docs/reference-data-tabular.md). Notes are stored
where the tabular list prints them (code, subcategory, category, block or chapter); inheritance is
applied at query time: a code is governed by the notes of every ancestor (each prefix of the code,
its category's blocks and chapter). A pattern names a code and everything under it ("S39.012"
covers S39.012A), a prefix ("M51.2-") or a range ("C00-D49", compared in tabular order).

Every lookup takes pandas Series and works on the distinct values, with no Python loop over rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd

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


def _days(dates: pd.Series) -> np.ndarray:
    """Days since 1970-01-01 as int64 (NaT -> -1)."""
    ts = pd.to_datetime(pd.Series(dates).reset_index(drop=True), errors="coerce")
    days = ts.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").astype(np.int64)
    return np.where(ts.isna().to_numpy(), -1, days)


class Tabular:
    """Tabular facts and MCE flags loaded from the generated tables."""

    def __init__(self, tables: dict[str, pd.DataFrame]) -> None:
        nodes = tables["tabular_nodes"]
        self.nodes = nodes
        self._node_codes = pd.Index(nodes["code"].astype(str))
        self.blocks = tables["tabular_blocks"]
        cats = nodes[nodes["level"] == "category"].dropna(subset=["ord"])
        self._cat_ord = pd.Series(
            cats["ord"].astype(np.int64).to_numpy(), index=cats["code"].astype(str)
        )
        members = tables["tabular_category_blocks"]
        self._cat_blocks = pd.DataFrame(
            {
                "category": members["category"].astype(str),
                "key": members["block"].astype(str),
                "depth": np.where(members["level"] == "chapter", _CHAPTER_DEPTH, _BLOCK_DEPTH),
            }
        )
        notes = tables["tabular_notes"]
        self.notes = notes
        self._patterns = {
            kind: self._prepare(notes[(notes["kind"] == kind) & notes["pattern"].notna()])
            for kind in ("excludes1", "excludes2")
        }
        first = notes[notes["kind"] == "code_first"].sort_values(["at_key", "note_seq"])
        first = first.drop_duplicates(["at_key", "note_seq"])
        self._code_first = first.groupby("at_key", sort=True)["note"].agg("; ".join)

        seventh = tables["tabular_seventh"].sort_values(["at_key", "char"])
        grouped = seventh.groupby("at_key", sort=True)
        self._seventh = pd.DataFrame(
            {
                "allowed": grouped["char"].agg("".join),
                "meanings": (seventh["char"] + "=" + seventh["meaning"])
                .groupby(seventh["at_key"], sort=True)
                .agg("; ".join),
                "defined_at": grouped["at"].first(),
            }
        )
        self._meaning = pd.Series(
            seventh["meaning"].to_numpy(),
            index=pd.MultiIndex.from_arrays([seventh["at_key"], seventh["char"]]),
        )

        chapter = self.blocks[
            (self.blocks["level"] == "chapter")
            & (self.blocks["chapter"] == _EXTERNAL_CAUSE_CHAPTER)
        ]
        self.external_cause_range = (str(chapter["first"].iloc[0]), str(chapter["last"].iloc[0]))

        mce = tables["tabular_mce"].sort_values(["code", "start"], kind="stable")
        self.mce = mce.reset_index(drop=True)
        self.mce_age = tables["tabular_mce_age"]
        code_ids, uniques = pd.factorize(self.mce["code"].astype(str), sort=True)
        self._mce_codes = pd.Index(uniques)
        self._mce_ids = code_ids.astype(np.int64)
        start = _days(self.mce["start"])
        end = _days(self.mce["end"])
        self._mce_end = np.where(end < 0, np.iinfo(np.int64).max, end)
        self._mce_key = self._mce_ids * _SPAN + start
        self._mce_flags = self.mce[list(MCE_COLUMNS.values())].to_numpy(dtype=bool)

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
        hits = self._ancestors(src).merge(self._patterns[kind], left_on="key", right_on="at_key")
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
        rows = anc.merge(self._patterns["excludes1"], left_on="key", right_on="at_key")
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
        pos_, norm = _distinct(codes)
        ids = self._mce_codes.get_indexer(norm.to_numpy(dtype=object)).astype(np.int64)[pos_]
        days = _days(dates)
        if len(days) != len(ids):
            raise ValueError("codes and dates must have the same length")
        query = ids * _SPAN + np.clip(days, 0, _SPAN - 1)
        pos = np.searchsorted(self._mce_key, query, side="right") - 1
        safe = np.clip(pos, 0, None)
        hit = (
            (ids >= 0)
            & (days >= 0)
            & (pos >= 0)
            & (self._mce_ids[safe] == ids)
            & (days <= self._mce_end[safe])
        )
        flags = self._mce_flags[safe] & hit[:, None]
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
        meaning_keys = pd.MultiIndex.from_arrays([at.fillna("").to_numpy(), given.fillna("")])
        meaning = pd.Series(self._meaning.reindex(meaning_keys).to_numpy())
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


def _read(data_dir: Path) -> dict[str, pd.DataFrame]:
    tables: dict[str, pd.DataFrame] = {}
    for name in TABLES:
        path = data_dir / f"{name}.parquet"
        if not path.exists():
            raise ReferenceDataError(
                f"{path} is missing; rebuild it with `python tools/build_tabular.py`"
            )
        tables[name] = pd.read_parquet(path)
    return tables


@lru_cache(maxsize=4)
def _load(data_dir: Path) -> Tabular:
    return Tabular(_read(data_dir))


def load_tabular(data_dir: Path | None = None) -> Tabular:
    """Load (once per directory) the tabular facts and MCE flags."""
    return _load((data_dir or DATA_DIR).resolve())
