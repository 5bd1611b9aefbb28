"""ICD-10-CM by date of service: the Reference object and its vectorized ``check``.

Every change in the code set happens on a release date, so a date of service only matters
through the release segment it falls in. ``check`` factorizes the codes, builds a status matrix
for the distinct codes x segments (bit operations over per-code release bitmasks), computes
suggestions once per distinct problem cell, and indexes everything back to the rows.
"""

from __future__ import annotations

import bisect
import os
import re
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict

from eobcheck.errors import ReferenceDataError

STATUSES: Final = (
    "valid",
    "retired",
    "not_yet_valid",
    "incomplete",
    "needs_placeholder",
    "unknown",
    "malformed",
    "icd9",
)
VALID, RETIRED, NOT_YET, INCOMPLETE, PLACEHOLDER, UNKNOWN, MALFORMED, ICD9 = range(8)
NULL: Final = -1

#: The ICD-10-CM implementation date; ICD-9-CM applies before it.
ICD10_START: Final = date(2015, 10, 1)

DATA_DIR: Final = Path(__file__).resolve().parent / "data"
TABLES: Final = ("codes", "spans", "releases", "crosswalk", "gems", "icd9")

# Syntax, undotted. ICD-10-CM: letter, digit, letter/digit, up to four more (categories with a
# letter in second place, such as QA0, are accepted when the category is known).
_ICD10_SYNTAX = re.compile(r"^[A-Z][0-9][0-9A-Z][0-9A-Z]{0,4}$")
_ICD10_LOOSE = re.compile(r"^[A-Z][0-9A-Z]{2}[0-9A-Z]{0,4}$")
_ICD9_SYNTAX = re.compile(r"^(?:[0-9]{3}[0-9]{0,2}|V[0-9]{2}[0-9]{0,2}|E[0-9]{3}[0-9]?)$")

_EMPTY: Final[tuple[Any, ...]] = ()
_NAT: Final = np.iinfo(np.int64).min
_NS_PER_DAY: Final = 86_400 * 10**9
#: Ticks per day of the datetime64 units a date column may come in.
_PER_DAY: Final = {
    "D": 1,
    "h": 24,
    "m": 1_440,
    "s": 86_400,
    "ms": 86_400 * 10**3,
    "us": 86_400 * 10**6,
    "ns": _NS_PER_DAY,
}

#: Rows from which ``check`` runs its Arrow steps in a second thread.
_THREAD_ROWS: Final = 100_000

#: Where suggestions come from (the ``fix_source`` column).
FIX_SOURCES: Final = ("cms-conversion-table", "heuristic", "gem", "children", "placeholder")


class Suggestion(BaseModel):
    """A replacement code (dotted) with its title."""

    model_config = ConfigDict(frozen=True)

    code: str
    title: str | None = None


class CodeLookup(BaseModel):
    """One code checked on one date of service, with a reason a billing clerk can read."""

    code: str
    input: str
    status: str
    title: str | None = None
    valid_from: date | None = None
    valid_to: date | None = None
    suggestions: list[Suggestion]
    reason: str
    date_of_service: date
    release: str
    beyond_data: bool = False
    fix_source: str | None = None


def default_user_dir() -> Path:
    """The user data directory: $EOBCHECK_DATA_DIR, else $XDG_DATA_HOME/eobcheck."""
    env = os.environ.get("EOBCHECK_DATA_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "eobcheck"


def dot(code: str) -> str:
    """Dotted form of an undotted ICD-10-CM code."""
    return code if len(code) <= 3 else f"{code[:3]}.{code[3:]}"


def _to_days(dates: Any) -> npt.NDArray[np.int64]:
    """Dates (any array-like) as int64 days since the epoch; NaT as the int64 minimum."""
    values = dates.to_numpy() if isinstance(dates, pd.Series | pd.Index) else np.asarray(dates)
    if not np.issubdtype(values.dtype, np.datetime64):
        values = np.asarray(pd.to_datetime(pd.Series(values), errors="coerce").to_numpy())
    days = values.astype("datetime64[D]").view("int64")
    return np.asarray(days, dtype=np.int64)


def _days(column: Any) -> npt.NDArray[np.int64]:
    """A date32 Arrow column as int64 days since the epoch."""
    return np.asarray(pc.cast(column, pa.int32()).to_numpy(zero_copy_only=False), dtype=np.int64)


class _Lookup:
    """Positions of strings in a fixed Arrow string array, for few values or many."""

    def __init__(self, values: Any, is_sorted: bool = False) -> None:
        self.values = values
        if is_sorted:  # the code tables are sorted when loaded: no second sort at load time
            self._order = np.arange(len(values), dtype=np.int64)
            self._sorted = np.asarray(values.to_numpy(zero_copy_only=False))
        else:
            self._order = np.asarray(pc.sort_indices(values).to_numpy(), dtype=np.int64)
            self._sorted = np.asarray(values.take(self._order).to_numpy(zero_copy_only=False))

    def index(self, values: npt.NDArray[np.object_]) -> npt.NDArray[np.int64]:
        """Position of each value (first of equal ones), -1 where absent."""
        n = len(self._sorted)
        if len(values) * 32 >= n or not n:
            # many values: one Arrow hash join (it hashes the whole set on every call)
            found = pc.index_in(pa.array(values, type=pa.string()), value_set=self.values)
            return np.asarray(pc.fill_null(found, -1).to_numpy(zero_copy_only=False), np.int64)
        # few values (the usual check): binary searches instead of hashing the whole set
        at = np.minimum(np.searchsorted(self._sorted, values, side="left"), n - 1)
        hit = np.asarray(self._sorted[at] == values, dtype=bool)
        return np.where(hit, self._order[at], -1)


def _day(d: date) -> int:
    return (d - date(1970, 1, 1)).days


def _date(days: int) -> date:
    return date(1970, 1, 1) + timedelta(days=int(days))


@dataclass(frozen=True)
class _Parsed:
    """Per distinct input: classification and positions in the code tables."""

    normalized: npt.NDArray[np.object_]
    kind: npt.NDArray[
        np.int8
    ]  # 0 null, 1 ICD-10 code, 2 ICD-9, 3 placeholder, 4 unknown, 5 malformed,
    # 6 ICD-9-CM form but in no ICD-9-CM list (unknown before FY2016, icd9 after)
    pos: npt.NDArray[np.int64]  # ICD-10: row in codes; placeholder: row of the X-filled code
    icd9_listed: npt.NDArray[np.bool_]
    key: npt.NDArray[np.object_]


class _Multimap:
    """Rows of a table by key, in table order: ``get(key)`` gives the other columns' values.

    Built with one stable Arrow sort instead of a dict of lists filled row by row, so the first
    check of a process does not pay for every key of the crosswalk or the GEMs.
    """

    def __init__(self, keys: Any, columns: Sequence[Any]) -> None:
        # Arrow's sort is stable (rows of one key stay in table order); nulls sort last
        order = pc.sort_indices(keys)[: len(keys) - keys.null_count]
        self._keys = np.asarray(keys.take(order).to_numpy(), dtype=object)
        self._columns = [np.asarray(c.take(order).to_numpy(zero_copy_only=False)) for c in columns]
        self._found: dict[str, list[tuple[Any, ...]]] = {}

    def get(self, key: str, default: Any = ()) -> Any:
        """The rows of ``key`` as tuples of Python values, or ``default`` when there are none."""
        found = self._found.get(key)
        if found is None:
            lo = int(np.searchsorted(self._keys, key, side="left"))
            hi = int(np.searchsorted(self._keys, key, side="right"))
            found = list(zip(*(c[lo:hi].tolist() for c in self._columns), strict=True))
            self._found[key] = found
        return found if found else default


class Reference:
    """The code knowledge: code history, titles, crosswalk, GEMs and the ICD-9-CM list."""

    data_dir: Path
    user_dir: Path | None

    def __init__(
        self,
        tables: dict[str, pa.Table],
        data_dir: Path = DATA_DIR,
        user_dir: Path | None = None,
        user_tables: Sequence[str] = (),
    ) -> None:
        self.data_dir = data_dir
        self.user_dir = user_dir
        self.user_tables = tuple(user_tables)
        self.tables = tables
        self._index()
        self._cells: dict[tuple[int, str, int], tuple[tuple[Suggestion, ...], str | None]] = {}
        self._suggestion: dict[str, Suggestion] = {}
        self._succ_map: _Multimap | None = None
        self._pred_map: _Multimap | None = None
        self._gem_map: _Multimap | None = None
        self._codes_py: list[str] | None = None
        self._days_table: tuple[int, npt.NDArray[np.integer[Any]]] | None = None

    # --- loading --------------------------------------------------------------------------

    @classmethod
    def load(cls, user_dir: Path | str | None = None) -> Reference:
        """Load the bundled tables, each replaced by the user data directory's copy if present."""
        udir = Path(user_dir).expanduser() if user_dir is not None else default_user_dir()
        tables: dict[str, pa.Table] = {}
        used: list[str] = []
        for name in TABLES:
            user_path = udir / f"{name}.parquet"
            path = user_path if user_path.is_file() else DATA_DIR / f"{name}.parquet"
            if path is user_path:
                used.append(name)
            try:
                tables[name] = pq.ParquetFile(path).read()
            except (OSError, pa.ArrowException) as exc:
                raise ReferenceDataError(
                    f"cannot read reference table {path}: {exc}; reinstall eobcheck or "
                    "re-import the release (eobcheck reference import DIR)"
                ) from exc
        return cls(tables, DATA_DIR, udir if used else None, used)

    def _frame(self, name: str) -> pd.DataFrame:
        frame: pd.DataFrame = self.tables[name].to_pandas(
            types_mapper={pa.string(): pd.StringDtype("pyarrow")}.get
        )
        return frame

    @property
    def codes(self) -> pd.DataFrame:
        """Every ICD-10-CM code ever billable or a header (undotted), with title and source."""
        return self._frame("codes")

    @property
    def spans(self) -> pd.DataFrame:
        """Billable and header spans: code, kind, start, end (null end = still valid)."""
        return self._frame("spans")

    @property
    def releases(self) -> pd.DataFrame:
        """Every release (effective date where the code set changed) with its billable count."""
        return self._frame("releases")

    @property
    def crosswalk(self) -> pd.DataFrame:
        """Previous -> current code rows with effective date and source."""
        return self._frame("crosswalk")

    @property
    def gems(self) -> pd.DataFrame:
        """ICD-9-CM -> ICD-10-CM General Equivalence Mappings (2015)."""
        return self._frame("gems")

    @property
    def icd9(self) -> pd.DataFrame:
        """The final ICD-9-CM diagnosis code list (v32) with titles."""
        return self._frame("icd9")

    def _index(self) -> None:
        """Arrays the vectorized lookups work on (Arrow compute; no Python loop over codes)."""
        t = self.tables
        rel = t["releases"].sort_by("effective")
        self._eff = _days(rel["effective"])
        self._names = [str(n) for n in rel["name"].to_pylist()]
        self._counts = [int(n) for n in rel["billable"].to_pylist()]
        nrel = len(self._eff)
        codes = t["codes"].sort_by("code")
        self._code_pa = codes["code"].combine_chunks()
        self._code_arr = np.asarray(self._code_pa.to_numpy(zero_copy_only=False), dtype=object)
        self._titles = np.asarray(codes["title"].to_numpy(zero_copy_only=False), dtype=object)
        sp = t["spans"]
        found = pc.index_in(sp["code"], value_set=self._code_pa)
        if found.null_count:
            raise ReferenceDataError("reference spans name codes missing from the codes table")
        pos = np.asarray(found.to_numpy(zero_copy_only=False), dtype=np.int64)
        start = _days(sp["start"])
        open_end = np.asarray(sp["end"].is_null().to_numpy(zero_copy_only=False), dtype=bool)
        end_raw = pc.fill_null(pc.cast(sp["end"], pa.int32()), 0)
        end = np.where(open_end, np.iinfo(np.int64).max, np.asarray(end_raw, dtype=np.int64))
        first = np.searchsorted(self._eff, start, side="left")
        # index of the release after the span's last day; open spans run to the end
        after = np.where(open_end, nrel, np.searchsorted(self._eff, np.where(open_end, 0, end + 1)))
        one = np.int64(1)
        mask = (np.left_shift(one, after) - 1) ^ (np.left_shift(one, first) - 1)
        billable = np.asarray(
            pc.equal(sp["kind"], "billable").to_numpy(zero_copy_only=False), dtype=bool
        )
        self._bill = np.zeros(len(self._code_arr), dtype=np.int64)
        self._head = np.zeros(len(self._code_arr), dtype=np.int64)
        np.bitwise_or.at(self._bill, pos[billable], mask[billable])
        np.bitwise_or.at(self._head, pos[~billable], mask[~billable])
        # billable spans sorted by (code, start) for valid_from / valid_to
        bpos, bstart, bend = pos[billable], start[billable], end[billable]
        order = np.lexsort((bstart, bpos))
        self._span_key = (bpos[order] << 20) + bstart[order]
        self._span_start = bstart[order]
        self._span_end = np.where(open_end[billable][order], np.iinfo(np.int64).min, bend[order])
        self._categories = _Lookup(pc.unique(pc.utf8_slice_codeunits(self._code_pa, 0, 3)))
        self._code_set = _Lookup(self._code_pa, is_sorted=True)
        icd9 = t["icd9"].sort_by("code")
        self._icd9_pa = icd9["code"].combine_chunks()
        self._icd9_titles = np.asarray(icd9["title"].to_numpy(zero_copy_only=False), dtype=object)
        # ICD-9-CM categories and subcategories (prefixes that are not codes themselves)
        prefixes = pa.concat_arrays(
            [pc.utf8_slice_codeunits(self._icd9_pa, 0, n) for n in (3, 4)]
        ).unique()
        self._icd9_prefixes = _Lookup(
            pc.filter(prefixes, pc.invert(pc.is_in(prefixes, value_set=self._icd9_pa)))
        )
        self._icd9_set = _Lookup(self._icd9_pa, is_sorted=True)

    @property
    def _succ(self) -> _Multimap:
        if self._succ_map is None:
            self._build_edges()
        assert self._succ_map is not None
        return self._succ_map

    @property
    def _pred(self) -> _Multimap:
        if self._pred_map is None:
            self._build_edges()
        assert self._pred_map is not None
        return self._pred_map

    def _build_edges(self) -> None:
        cw = self.tables["crosswalk"]
        eff = pa.array(_days(cw["effective"]))
        succ = _Multimap(cw["previous"], [cw["current"], eff, cw["source"]])
        pred = _Multimap(cw["current"], [cw["previous"], eff, cw["source"]])
        self._succ_map, self._pred_map = succ, pred

    @property
    def _gem(self) -> _Multimap:
        if self._gem_map is None:
            g = self.tables["gems"]
            self._gem_map = _Multimap(g["icd9"], [g["icd10"]])
        return self._gem_map

    # --- small helpers --------------------------------------------------------------------

    def _seg(self, day: int) -> int:
        """Release index in force on a day; -1 before the first release."""
        return int(np.searchsorted(self._eff, day, side="right")) - 1

    def _pos(self, code: str) -> int:
        # a binary search in the sorted codes instead of a dict of ~100,000 codes built on
        # first use; the last of equal codes, as a dict would keep it
        codes = self._code_list
        i = bisect.bisect_right(codes, code) - 1
        return i if i >= 0 and codes[i] == code else -1

    @property
    def _code_list(self) -> list[str]:
        """The sorted codes as a Python list: bisect on it beats numpy's per-call overhead."""
        if self._codes_py is None:
            self._codes_py = self._code_arr.tolist()
        return self._codes_py

    def _valid(self, pos: int, seg: int) -> bool:
        return pos >= 0 and seg >= 0 and bool((int(self._bill[pos]) >> seg) & 1)

    def _sugg(self, code: str) -> Suggestion:
        found = self._suggestion.get(code)
        if found is None:
            pos = self._pos(code)
            found = Suggestion(code=dot(code), title=self._titles[pos] if pos >= 0 else None)
            self._suggestion[code] = found
        return found

    def _undot(self, code: str) -> str:
        return code.strip().upper().replace(".", "")

    # --- chains ---------------------------------------------------------------------------

    def _forward(self, code: str, seg: int, day: int, depth: int = 0) -> tuple[list[str], set[str]]:
        """Successors of ``code`` chained through the crosswalk to codes billable in ``seg``."""
        out: list[str] = []
        sources: set[str] = set()
        for cur, eff, source in self._succ.get(code, ()):
            if eff > day:
                continue
            pos = self._pos(cur)
            if self._valid(pos, seg):
                out.append(cur)
                sources.add(source)
            elif depth < 8:
                more, src = self._forward(cur, seg, day, depth + 1)
                out += more
                sources |= src if more else set()
        return out, sources

    def _backward(
        self, code: str, seg: int, day: int, depth: int = 0
    ) -> tuple[list[str], set[str]]:
        """Predecessors of ``code`` chained back to codes billable in ``seg``."""
        out: list[str] = []
        sources: set[str] = set()
        for prev, eff, source in self._pred.get(code, ()):
            if eff <= day:
                continue
            pos = self._pos(prev)
            if self._valid(pos, seg):
                out.append(prev)
                sources.add(source)
            elif depth < 8:
                more, src = self._backward(prev, seg, day, depth + 1)
                out += more
                sources |= src if more else set()
        return out, sources

    def _children(self, code: str, seg: int) -> list[str]:
        lo = bisect.bisect_right(self._code_list, code)
        hi = bisect.bisect_left(self._code_list, code + "\x7f")
        if seg < 0:
            return []
        bits = (self._bill[lo:hi] >> seg) & 1
        return [str(c) for c in self._code_arr[lo:hi][bits.astype(bool)]]

    @staticmethod
    def _source(sources: set[str]) -> str | None:
        if not sources:
            return None
        return "cms-conversion-table" if "cms-conversion-table" in sources else sorted(sources)[0]

    def _cell(
        self, status: int, key: str, pos: int, seg: int, day: int
    ) -> tuple[tuple[Suggestion, ...], str | None]:
        """Suggestions and their source for one distinct problem (code, release segment)."""
        cache_key = (status, key, seg)
        hit = self._cells.get(cache_key)
        if hit is not None:
            return hit
        codes: list[str] = []
        source: str | None = None
        if status == RETIRED:
            codes, srcs = self._forward(key, seg, day)
            source = self._source(srcs)
            if not codes:
                codes, source = self._children(key, seg), "children"
        elif status == NOT_YET and seg >= 0:
            codes, srcs = self._backward(key, seg, day)
            source = self._source(srcs)
        elif status == INCOMPLETE and pos >= 0:
            codes, source = self._children(key, seg), "children"
        elif status == PLACEHOLDER:
            codes, source = [str(self._code_arr[pos])], "placeholder"
        elif status == ICD9 and seg >= 0:
            for (target,) in self._gem.get(key, ()):
                tpos = self._pos(target)
                if self._valid(tpos, seg):
                    codes.append(target)
                else:
                    codes += self._forward(target, seg, day)[0] or self._children(target, seg)
            source = "gem"
        seen: dict[str, None] = dict.fromkeys(codes)
        result = (tuple(self._sugg(c) for c in seen), source if seen else None)
        self._cells[cache_key] = result
        return result

    # --- parsing --------------------------------------------------------------------------

    def _parse(self, uniques: npt.NDArray[np.object_]) -> _Parsed:
        """Classify distinct raw inputs (vectorized over the distinct values)."""
        # Arrow's string kernels straight on the distinct values (the ones pandas' .str would
        # call, without its fixed cost per call); Python's str.find and re where pandas
        # falls back to them (character offsets; "$" before a trailing newline).
        n = len(uniques)
        text = pc.utf8_upper(pc.utf8_trim_whitespace(pa.array(uniques, type=pa.string())))
        null = _np_bool(pc.or_kleene(pc.is_null(text), pc.equal(text, "")), missing=True)
        text_o = np.asarray(pc.fill_null(text, "").to_numpy(zero_copy_only=False), dtype=object)
        dotpos = np.fromiter((t.find(".") for t in text_o), dtype=np.int64, count=n)
        ndots = _np_int(pc.count_substring(text, "."))
        key_pa = pc.fill_null(pc.replace_substring(text, ".", ""), "")
        key = np.asarray(key_pa.to_numpy(zero_copy_only=False), dtype=object)
        klen = _np_int(pc.utf8_length(key_pa))
        strict10 = _match(key_pa, key, _ICD10_SYNTAX)
        loose10 = _match(key_pa, key, _ICD10_LOOSE)
        head3 = pc.utf8_slice_codeunits(key_pa, 0, 3)
        cat_known = self._categories.index(np.asarray(head3.to_numpy(zero_copy_only=False))) >= 0
        dot_ok10 = (ndots == 0) | ((ndots == 1) & (dotpos == 3) & (klen > 3))
        shape10 = (strict10 | (loose10 & cat_known)) & dot_ok10 & ~null
        is_e = _np_bool(pc.starts_with(key_pa, "E"))
        dot_ok9 = (ndots == 0) | ((ndots == 1) & (dotpos == np.where(is_e, 4, 3)) & (klen > dotpos))
        shape9 = _match(key_pa, key, _ICD9_SYNTAX) & dot_ok9 & ~null
        pos = self._code_set.index(key)
        pos = np.where(shape10, pos, -1)
        known10 = pos >= 0
        pos9 = self._icd9_set.index(key)
        listed9 = shape9 & (pos9 >= 0)
        prefix9 = shape9 & (self._icd9_prefixes.index(key) >= 0)
        is9 = ~known10 & (listed9 | prefix9)
        kind = np.full(n, 5, dtype=np.int8)
        # a dotted ICD-9-CM form that no list has; undotted digits (a CPT code in the wrong
        # column, say) stay malformed
        kind[shape9 & ~shape10 & (ndots == 1)] = 6
        kind[shape10] = 4
        kind[is9] = 2
        kind[known10] = 1
        kind[null] = 0
        # Missing placeholder X: try every way of inserting X's (after the category, before the
        # last character) that reaches seven characters; only over the distinct unknown codes.
        for j in np.flatnonzero(kind == 4):
            k = str(key[j])
            if not 4 <= len(k) <= 6:
                continue
            found = self._placeholder(k)
            if found >= 0:
                kind[j] = 3
                pos[j] = found
        # dotted forms, vectorized: ICD-10-CM and ICD-9-CM after three characters, E codes four
        e9 = ((kind == 2) | (kind == 6)) & is_e
        dotted3 = _dotted(key_pa, 3)
        dotted4 = _dotted(key_pa, 4)
        normalized = np.where(klen > 3, dotted3, key)
        normalized = np.where(e9, np.where(klen > 4, dotted4, key), normalized)
        normalized = np.where(kind == 5, text_o, normalized)
        normalized = normalized.astype(object)
        normalized[kind == 0] = None
        return _Parsed(normalized, kind, pos, listed9, key)

    def _placeholder(self, key: str) -> int:
        """Row of the billable code that ``key`` becomes with placeholder X's inserted, or -1."""
        missing = 7 - len(key)
        body, last = key[:-1], key[-1]
        cands: set[str] = set()

        def insert(s: str, left: int, start: int) -> None:
            if left == 0:
                cands.add(s + last)
                return
            for p in range(max(start, 3), len(s) + 1):
                insert(s[:p] + "X" + s[p:], left - 1, p + 1)

        insert(body, missing, 3)
        found = [self._pos(c) for c in sorted(cands)]
        hits = [p for p in found if p >= 0 and self._bill[p] != 0]
        return hits[0] if len(hits) == 1 else (hits[0] if hits else -1)

    # --- the vectorized check ---------------------------------------------------------------

    def check(self, codes: Any, dates: Any) -> pd.DataFrame:
        """Status, title, validity span and suggestions of each (code, date of service) pair."""
        rows = len(codes) if hasattr(codes, "__len__") else 0
        # On large inputs the two Arrow steps (hashing the codes, building the normalized
        # strings) run beside the numpy work: Arrow releases the GIL.
        pool = ThreadPoolExecutor(max_workers=1) if rows >= _THREAD_ROWS else None
        try:
            return self._check(codes, dates, pool)
        finally:
            if pool is not None:
                pool.shutdown(wait=True)

    def _check(self, codes: Any, dates: Any, pool: ThreadPoolExecutor | None) -> pd.DataFrame:
        encoded = _submit(pool, _factorize, codes)
        col = self._date_columns(dates)
        index, uidx, uniques = encoded.result()
        if len(col) != len(uidx):
            raise ValueError(f"codes ({len(uidx)}) and dates ({len(col)}) differ in length")
        parsed = self._parse(uniques)
        normalized = _submit(pool, _strings, parsed.normalized, uidx)
        nrel = len(self._eff)
        nseg = nrel + 1
        width = nrel + 3  # row columns: NaT, before ICD-10-CM, one per release, beyond the data

        # Spellings of one code (" m5450", "M54.50") share status and suggestions: work on
        # canonical entries (kind + code), so each (code, release) cell is computed once.
        cidx, canon = self._canonical(parsed)
        status = self._status_matrix(canon)  # (canonical entries, nseg)
        vf, vt = self._span_matrix(canon, status)

        # Every output column is a table over (distinct input, row column) cells taken once by
        # the row's cell number: the rows only ever see integer arrays.
        scol = np.minimum(np.arange(width) - 1, nrel)  # status column of each row column
        scol[0] = 0
        cst = status[cidx][:, scol]
        cst[:, 0] = NULL
        cvf = vf[cidx][:, scol]
        cvt = vt[cidx][:, scol]
        cvf[:, 0] = _NAT
        cvt[:, 0] = _NAT
        cst, cvf, cvt = cst.reshape(-1), cvf.reshape(-1), cvt.reshape(-1)
        cell = np.multiply(uidx, width, dtype=np.intp)
        cell += col
        st = cst[cell]

        # suggestions once per distinct problem cell that actually occurs; every other row
        # holds the shared empty tuple and no source
        problem = (cst >= RETIRED) & (cst != UNKNOWN) & (cst != MALFORMED)
        prow = np.flatnonzero(problem[cell])
        pcell = cell[prow]
        used = np.zeros(len(cst), dtype=bool)
        used[pcell] = True
        csugg = np.empty(len(cst), dtype=object)
        cfsrc = np.full(len(cst), len(FIX_SOURCES), dtype=np.int8)
        found: dict[int, tuple[tuple[Suggestion, ...], int]] = {}
        for c in np.flatnonzero(used).tolist():
            u, k = divmod(c, width)
            s = int(scol[k])
            canon_cell = int(cidx[u]) * nseg + s
            hit = found.get(canon_cell)
            if hit is None:
                cu = int(cidx[u])
                day = int(self._eff[s - 1]) if s > 0 else _day(ICD10_START) - 1
                pos_u = int(canon.pos[cu])
                key = str(self._code_arr[pos_u]) if canon.kind[cu] == 3 else str(canon.key[cu])
                sugg, source = self._cell(int(status[cu, s]), key, pos_u, s - 1, day)
                hit = (sugg, FIX_SOURCES.index(source) if source is not None else len(FIX_SOURCES))
                found[canon_cell] = hit
            csugg[c], cfsrc[c] = hit
        suggestions = np.empty(len(cell), dtype=object)
        suggestions.fill(_EMPTY)
        suggestions[prow] = csugg[pcell]

        titles = self._unique_titles(parsed)
        columns: dict[str, Any] = {
            "normalized": None,  # filled below, when the background take is done
            "status": pd.Categorical.from_codes(
                st, categories=pd.Index(list(STATUSES)), validate=False
            ),
            # Titles as a categorical of strings: one copy per distinct title instead of one
            # per row keeps a multi-million-row check fast.
            "title": _categorical(titles, uidx),
            "valid_from": cvf[cell].view("datetime64[ns]"),
            "valid_to": cvt[cell].view("datetime64[ns]"),
            # a Series of dtype object, so the frame does not scan the tuples to infer a type
            "suggestions": pd.Series(suggestions, index=index, dtype=object, copy=False),
            "fix_source": _sparse_strings(
                np.array([*FIX_SOURCES, None], dtype=object), cfsrc[pcell], prow, len(cell)
            ),
            "beyond_data": col == width - 1,
        }
        columns["normalized"] = normalized.result()
        return pd.DataFrame(columns, index=index, copy=False)

    def _date_columns(self, dates: Any) -> npt.NDArray[np.integer[Any]]:
        """Per date: 0 NaT, 1 before ICD-10-CM, 2 + k in release k, last beyond the data."""
        values = dates.to_numpy() if isinstance(dates, pd.Series | pd.Index) else np.asarray(dates)
        if not np.issubdtype(values.dtype, np.datetime64):
            values = np.asarray(pd.to_datetime(pd.Series(values), errors="coerce").to_numpy())
        unit, count = np.datetime_data(values.dtype)
        per_day = _PER_DAY.get(unit) if count == 1 else None
        if per_day is None:
            values, per_day = values.astype("datetime64[D]"), 1
        ticks = values.view(np.int64)
        first, table = self._day_table()
        # whole days (floor), clamped to the table: earlier days are all before ICD-10-CM,
        # later ones all beyond the data; a table lookup per row instead of a binary search
        days = ticks // per_day if per_day != 1 else ticks.copy()
        np.clip(days, first, first + len(table) - 1, out=days)
        days -= first
        col = np.take(table, days)
        if len(ticks) and ticks.min() == _NAT:
            col[ticks == _NAT] = 0
        return col

    def _day_table(self) -> tuple[int, npt.NDArray[np.integer[Any]]]:
        """First day and row column of every day from the eve of ICD-10-CM to beyond the data."""
        if self._days_table is None:
            first = int(self._eff[0]) - 1
            beyond = _day(_fy_end(_date(int(self._eff[-1])))) + 1
            day = np.arange(first, beyond + 1, dtype=np.int64)
            found = 1 + np.searchsorted(self._eff, day, side="right") + (day >= beyond)
            # the row column numbers fit a byte unless releases number in the hundreds
            small = np.int8 if int(found[-1]) < 127 else np.int16
            self._days_table = (first, found.astype(small))
        return self._days_table

    def _canonical(self, p: _Parsed) -> tuple[npt.NDArray[np.int64], _Parsed]:
        """Map distinct inputs to distinct (kind, code) entries; return the map and entries."""
        code = np.where(p.kind == 3, self._code_arr[np.maximum(p.pos, 0)], p.key)
        label = pd.Series(p.kind).astype(str).to_numpy(dtype=object) + ":" + code.astype(object)
        cid, uniq = pd.factorize(label)
        first = np.full(len(uniq), -1, dtype=np.int64)
        first[cid[::-1]] = np.arange(len(cid) - 1, -1, -1)  # first input of each entry
        canon = _Parsed(
            p.normalized[first], p.kind[first], p.pos[first], p.icd9_listed[first], p.key[first]
        )
        return cid.astype(np.int64), canon

    def _segments(
        self, days: npt.NDArray[np.int64], nat: npt.NDArray[np.bool_]
    ) -> npt.NDArray[np.int64]:
        """Column of the status matrix per row: 0 before ICD-10-CM, k for release k-1."""
        if not len(days) or nat.all():
            return np.zeros(len(days), dtype=np.int64)
        real = days[~nat]
        lo, hi = int(real.min()), int(real.max())
        if hi - lo > 5_000_000:  # absurd dates: plain binary search
            seg = np.searchsorted(self._eff, days, side="right")
            return np.where(nat, 0, seg).astype(np.int64)
        # a lookup table over the date range beats a binary search per row
        table = np.searchsorted(self._eff, np.arange(lo, hi + 1), side="right").astype(np.int8)
        return table[np.clip(days - lo, 0, hi - lo)].astype(np.int64)

    def _status_matrix(self, p: _Parsed) -> npt.NDArray[np.int8]:
        """Status of every distinct input x segment (segment 0 = before ICD-10-CM)."""
        nu = len(p.kind)
        nrel = len(self._eff)
        segs = np.arange(nrel + 1, dtype=np.int64) - 1  # -1 = pre-ICD-10
        out = np.full((nu, nrel + 1), MALFORMED, dtype=np.int8)
        pos = np.where(p.pos >= 0, p.pos, 0)
        bill = np.where(p.pos >= 0, self._bill[pos], 0)[:, None]
        head = np.where(p.pos >= 0, self._head[pos], 0)[:, None]
        s = np.maximum(segs, 0)[None, :]
        here = (bill >> s) & 1
        below_mask = (np.int64(1) << s) - 1
        earlier = (bill & below_mask) != 0
        later = (bill >> s >> 1) != 0
        head_here = ((head >> s) & 1) != 0
        head_later = (head >> s >> 1) != 0
        code_status = np.select(
            [here.astype(bool), earlier, head_here, later, head_later],
            [VALID, RETIRED, INCOMPLETE, NOT_YET, NOT_YET],
            RETIRED,
        ).astype(np.int8)
        code_status[:, 0] = NOT_YET  # every ICD-10-CM code before 2015-10-01
        kind = p.kind[:, None]
        out = np.where(kind == 1, code_status, out)
        ph = np.where(code_status == VALID, PLACEHOLDER, code_status)
        out = np.where(kind == 3, ph, out)
        icd9 = np.full((nu, nrel + 1), ICD9, dtype=np.int8)
        icd9[:, 0] = np.where(p.icd9_listed, VALID, INCOMPLETE)
        out = np.where(kind == 2, icd9, out)
        icd9[:, 0] = UNKNOWN
        out = np.where(kind == 6, icd9, out)
        out = np.where(kind == 4, UNKNOWN, out)
        out = np.where(kind == 0, NULL, out)
        return out.astype(np.int8)

    def _span_matrix(
        self, p: _Parsed, status: npt.NDArray[np.int8]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """valid_from / valid_to (datetime64[ns] integers; NaT = none) per input x segment."""
        nu, ns = status.shape
        vf = np.full((nu, ns), _NAT, dtype=np.int64)
        vt = np.full((nu, ns), _NAT, dtype=np.int64)
        rows, cols = np.nonzero((status == VALID) & (p.kind[:, None] == 1))
        if len(rows):
            q = (p.pos[rows] << 20) + self._eff[cols - 1]
            i = np.searchsorted(self._span_key, q, side="right") - 1
            vf[rows, cols] = self._span_start[i] * _NS_PER_DAY
            end = self._span_end[i]
            vt[rows, cols] = np.where(end == _NAT, _NAT, end * _NS_PER_DAY)
        icd9_valid = (p.kind == 2) & p.icd9_listed
        vt[icd9_valid, 0] = (_day(ICD10_START) - 1) * _NS_PER_DAY
        return vf, vt

    def _unique_titles(self, p: _Parsed) -> npt.NDArray[np.object_]:
        titles = np.full(len(p.kind), None, dtype=object)
        k1 = p.kind == 1
        titles[k1] = self._titles[p.pos[k1]]
        k2 = np.flatnonzero((p.kind == 2) & p.icd9_listed)
        if len(k2):
            titles[k2] = self._icd9_titles[self._icd9_set.index(p.key[k2])]
        return titles

    # --- conveniences -----------------------------------------------------------------------

    def normalize(self, codes: Any) -> pd.Series:
        """Dotted upper-case form of each code (malformed: stripped upper-case text)."""
        index, take, uniques = _factorize(codes)
        parsed = self._parse(uniques)
        name = codes.name if isinstance(codes, pd.Series) else None
        return pd.Series(_strings(parsed.normalized, take), index=index, name=name)

    def title(self, codes: Any) -> pd.Series:
        """Title of each code (ICD-10-CM, retired ones too, or ICD-9-CM) where known."""
        index, take, uniques = _factorize(codes)
        parsed = self._parse(uniques)
        name = codes.name if isinstance(codes, pd.Series) else None
        return pd.Series(_strings(self._unique_titles(parsed), take), index=index, name=name)

    def children(self, code: str, on: date | str) -> list[Suggestion]:
        """Billable descendants of ``code`` on the date."""
        seg = self._seg(_day(_as_date(on)))
        return [self._sugg(c) for c in self._children(self._undot(code), seg)]

    def successors(self, code: str, on: date | str) -> list[Suggestion]:
        """Successors of ``code`` chained through the crosswalk to codes valid on the date."""
        day = _day(_as_date(on))
        found, _ = self._forward(self._undot(code), self._seg(day), day)
        return [self._sugg(c) for c in dict.fromkeys(found)]

    def predecessors(self, code: str, on: date | str) -> list[Suggestion]:
        """Predecessors of ``code`` chained back to codes valid on the date."""
        day = _day(_as_date(on))
        found, _ = self._backward(self._undot(code), self._seg(day), day)
        return [self._sugg(c) for c in dict.fromkeys(found)]

    def billable_codes(self, release: int) -> frozenset[str]:
        """Undotted billable codes of the release at position ``release`` (0 = oldest)."""
        bits = ((self._bill >> release) & 1).astype(bool)
        return frozenset(str(c) for c in self._code_arr[bits])

    def release_name(self, on: date | str) -> str:
        """Name of the release in force on a date ("FY2023"); the ICD-9-CM era before FY2016."""
        seg = self._seg(_day(_as_date(on)))
        return self._names[seg] if seg >= 0 else "ICD-9-CM (before FY2016)"

    def info(self) -> dict[str, Any]:
        """Coverage and sources, for reports and ``eobcheck reference info``."""
        import json

        releases = [
            {"name": n, "effective": _date(int(e)).isoformat(), "billable": b}
            for n, e, b in zip(self._names, self._eff, self._counts, strict=True)
        ]
        manifest_path = self.data_dir / "manifest.json"
        sources: list[Any] = []
        if manifest_path.is_file():
            sources = json.loads(manifest_path.read_text())["sources"]
        if self.user_dir is not None and (self.user_dir / "manifest.json").is_file():
            sources = sources + json.loads((self.user_dir / "manifest.json").read_text()).get(
                "sources", []
            )
        newest = _date(int(self._eff[-1]))
        return {
            "releases": releases,
            "newest": self._names[-1],
            "coverage": {"from": _iso(_date(int(self._eff[0]))), "to": _fy_end(newest).isoformat()},
            "sources": sources,
            "user_data": str(self.user_dir) if self.user_dir is not None else None,
        }

    def reasons(self, result: pd.DataFrame, dates: Any) -> pd.Series:
        """The clerk sentence of every row of a ``check()`` result, without a loop over rows.

        Sentences are built once per distinct (code, status, release) and the date of service
        is filled in column-wise, so a million rows cost what their distinct problems cost.
        """
        days = _to_days(dates)
        nat = days == np.iinfo(np.int64).min
        seg = self._segments(days, nat)
        marker = "\x00"
        keys = pd.DataFrame(
            {
                "code": result["normalized"].astype("object").to_numpy(),
                "status": result["status"].astype("object").to_numpy(),
                "seg": seg,
                "beyond": result["beyond_data"].to_numpy(),
            },
            index=result.index,
        )
        usable = keys["code"].notna().to_numpy() & keys["status"].notna().to_numpy() & ~nat
        out = pd.Series(pd.NA, index=result.index, dtype="object")
        if not usable.any():
            return out
        sub = keys[usable]
        group = sub.groupby(["code", "status", "seg", "beyond"], sort=False).ngroup().to_numpy()
        first = np.unique(group, return_index=True)[1]
        rows = np.flatnonzero(usable)
        suggestions = result["suggestions"].to_numpy()
        templates = np.empty(len(first), dtype=object)
        for g, i in enumerate(first):
            r = rows[i]
            day = _date(int(days[r]))
            templates[g] = self._reason(
                str(keys["code"].iat[r]),
                str(keys["code"].iat[r]),
                str(keys["status"].iat[r]),
                day,
                list(suggestions[r]),
                self.release_name(day),
                bool(keys["beyond"].iat[r]),
                dos=marker,
            )
        # every template holds the date marker at most once: prefix + date + suffix
        split = [t.split(marker, 1) for t in templates]
        prefix = np.array([p[0] for p in split], dtype=object)
        suffix = np.array([p[1] if len(p) > 1 else "" for p in split], dtype=object)
        has = np.array([len(p) > 1 for p in split])
        day_codes, day_values = pd.factorize(days[usable])
        day_text = np.asarray(
            pd.to_datetime(day_values.astype("datetime64[D]")).strftime("%Y-%m-%d"), dtype=object
        )
        dos = np.where(has[group], day_text[day_codes], "")
        joined = pc.binary_join_element_wise(
            pa.array(prefix[group], type=pa.string()),
            pa.array(dos, type=pa.string()),
            pa.array(suffix[group], type=pa.string()),
            "",
        )
        out[usable] = joined.to_numpy(zero_copy_only=False)
        return out

    def lookup(self, code: str, on: date | str) -> CodeLookup:
        """Check one code on one date of service and explain the result in one sentence."""
        day = _as_date(on)
        res = self.check(pd.Series([code], dtype="object"), pd.Series([pd.Timestamp(day)]))
        row = res.iloc[0]
        normalized = row["normalized"] if not pd.isna(row["normalized"]) else ""
        status = str(row["status"]) if not pd.isna(row["status"]) else "malformed"
        suggestions = list(row["suggestions"])
        beyond = bool(row["beyond_data"])
        title = None if pd.isna(row["title"]) else str(row["title"])
        vf = None if pd.isna(row["valid_from"]) else row["valid_from"].date()
        vt = None if pd.isna(row["valid_to"]) else row["valid_to"].date()
        release = self.release_name(day)
        reason = self._reason(str(normalized), code, status, day, suggestions, release, beyond)
        return CodeLookup(
            code=str(normalized),
            input=code,
            status=status,
            title=title,
            valid_from=vf,
            valid_to=vt,
            suggestions=suggestions,
            reason=reason,
            date_of_service=day,
            release=release + (" (newest release; date beyond the data)" if beyond else ""),
            beyond_data=beyond,
            fix_source=None if pd.isna(row["fix_source"]) else str(row["fix_source"]),
        )

    def _reason(
        self,
        code: str,
        raw: str,
        status: str,
        day: date,
        sugg: list[Suggestion],
        release: str,
        beyond: bool,
        dos: str | None = None,
    ) -> str:
        """One sentence a billing clerk understands (``dos`` replaces the date in the text)."""
        dos = dos or day.isoformat()
        listing = ", ".join(f"{s.code} ({s.title})" if s.title else s.code for s in sugg)
        use = (f"; use {listing}" if len(sugg) == 1 else f"; use one of {listing}") if sugg else ""
        key = code.replace(".", "")
        pos = self._pos(key)
        bits = int(self._bill[pos]) if pos >= 0 else 0
        seg = self._seg(_day(day))
        if status == "valid":
            if seg < 0:
                text = f"{code} is a valid ICD-9-CM code for {dos} (before ICD-10-CM)"
            else:
                text = f"{code} is billable on {dos} ({release})"
        elif status == "retired":
            last = (
                max(i for i in range(len(self._eff)) if (bits >> i) & 1 and i <= seg)
                if bits
                else -1
            )
            gone = next((i for i in range(last + 1, len(self._eff)) if not (bits >> i) & 1), None)
            when = (
                _date(int(self._eff[gone])).isoformat()
                if gone is not None
                else "an earlier release"
            )
            text = f"{code} was retired on {when}" + use
        elif status == "not_yet_valid":
            if seg < 0:
                text = (
                    f"{code} is an ICD-10-CM code, which applies only to dates of service from "
                    f"{ICD10_START.isoformat()}; {dos} needs ICD-9-CM"
                )
            else:
                first = next((i for i in range(seg + 1, len(self._eff)) if (bits >> i) & 1), None)
                when = (
                    _date(int(self._eff[first])).isoformat()
                    if first is not None
                    else "a later release"
                )
                text = f"{code} takes effect on {when}, after the date of service {dos}" + use
        elif status == "incomplete":
            if seg < 0:
                text = (
                    f"{code} is an ICD-9-CM category, not a complete code; add the missing digits"
                )
            else:
                text = f"{code} is a header, not a billable code, on {dos}; add characters" + (
                    f": {listing}" if sugg else ""
                )
        elif status == "needs_placeholder":
            text = f"{code} lacks the placeholder X" + use
        elif status == "unknown":
            span = f"{self._names[0]} to {self._names[-1]}"
            if seg < 0:
                text = (
                    f"{code} is not in the final ICD-9-CM code list (v32), which applies to "
                    f"{dos}, nor in any ICD-10-CM release from {span}"
                )
            else:
                text = f"{code} is not an ICD-10-CM code in any release from {span}"
        elif status == "icd9":
            text = (
                f"{code} is an ICD-9-CM code, not valid for dates of service from "
                f"{ICD10_START.isoformat()}"
            ) + use
        elif seg < 0:
            text = (
                f"'{raw.strip()}' is not an ICD-9-CM code, which {dos} needs: expected three "
                "digits (or V and two digits, or E and three digits), then up to two more after "
                "a dot"
            )
        else:
            text = (
                f"'{raw.strip()}' is not an ICD-10-CM code: expected a letter, a digit, a letter "
                "or digit, then up to four more, with an optional dot after the third"
            )
        if beyond:
            text += f" (checked against {self._names[-1]}, the newest release in the data)"
        return text + "."


def _factorize(
    codes: Any,
) -> tuple[pd.Index, npt.NDArray[np.integer[Any]], npt.NDArray[np.object_]]:
    """Index, per-row position among the distinct values, and the distinct values plus a
    trailing None that every null row points to (distinct values in order of appearance)."""
    if isinstance(codes, pd.Series) and isinstance(codes.array, pd.arrays.ArrowStringArray):
        found = _factorize_arrow(codes.array.__arrow_array__())
        if found is not None:
            return codes.index, found[0], found[1]
    if isinstance(codes, pd.Series):
        index, values = codes.index, codes
    else:
        values = pd.Series(
            np.asarray(list(codes) if not hasattr(codes, "__array__") else codes, dtype=object),
            dtype=object,
        )
        index = values.index
    uidx, uniques = pd.factorize(values, use_na_sentinel=True)
    distinct = pd.Series(uniques, dtype=object).to_numpy(dtype=object)
    n = len(distinct)
    uniq = np.empty(n + 1, dtype=object)
    uniq[:n] = distinct
    uniq[n] = None
    return index, np.where(uidx < 0, n, uidx).astype(np.intp), uniq


def _factorize_arrow(
    chunked: pa.ChunkedArray,
) -> tuple[npt.NDArray[np.integer[Any]], npt.NDArray[np.object_]] | None:
    """Arrow's dictionary encoding of a string column (what pandas' factorize does for it,
    without pandas' wrapping); None when the column is empty."""
    if not len(chunked):
        return None
    arr = chunked.combine_chunks() if chunked.num_chunks > 1 else chunked.chunk(0)
    encoded = pc.dictionary_encode(arr)
    dictionary = encoded.dictionary
    n = len(dictionary)
    indices = encoded.indices
    if indices.null_count:
        indices = pc.fill_null(indices, n)
    uniq = np.empty(n + 1, dtype=object)
    uniq[:n] = dictionary.to_numpy(zero_copy_only=False)
    uniq[n] = None
    return np.asarray(indices.to_numpy(zero_copy_only=False)), uniq


def _np_bool(values: Any, missing: bool = False) -> npt.NDArray[np.bool_]:
    """An Arrow boolean array as numpy, nulls as ``missing``."""
    return np.asarray(pc.fill_null(values, missing).to_numpy(zero_copy_only=False), dtype=bool)


def _np_int(values: Any) -> npt.NDArray[np.int64]:
    """An Arrow integer array as numpy int64, nulls as 0."""
    return np.asarray(pc.fill_null(values, 0).to_numpy(zero_copy_only=False), dtype=np.int64)


def _match(
    values: Any, texts: npt.NDArray[np.object_], pattern: re.Pattern[str]
) -> npt.NDArray[np.bool_]:
    """Whether each string matches ``pattern`` from its start (RE2 in Arrow).

    Python's ``re`` decides the strings holding a newline, where its "$" differs from RE2's.
    """
    found = _np_bool(pc.match_substring_regex(values, pattern.pattern))
    newline = _np_bool(pc.match_substring(values, "\n"))
    for i in np.flatnonzero(newline):
        found[i] = pattern.match(str(texts[i])) is not None
    return found


def _dotted(values: Any, cut: int) -> npt.NDArray[np.object_]:
    """Each string with a dot inserted after ``cut`` characters."""
    head = pc.utf8_slice_codeunits(values, 0, cut)
    tail = pc.utf8_slice_codeunits(values, cut, np.iinfo(np.int64).max)
    joined = pc.binary_join_element_wise(head, tail, ".")
    return np.asarray(joined.to_numpy(zero_copy_only=False), dtype=object)


def _categorical(
    values: npt.NDArray[np.object_], take: npt.NDArray[np.integer[Any]]
) -> pd.Categorical:
    """A categorical of ``values[take]`` (None -> missing) without copying strings per row."""
    codes, cats = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
    # the smallest code type pandas itself would choose, so the per-row take is the only copy
    small = np.int8 if len(cats) < 127 else np.int16 if len(cats) < 32_767 else np.int32
    # np.take, not fancy indexing: it reads 32-bit row indices without converting them first
    return pd.Categorical.from_codes(
        np.take(codes.astype(small), take),
        categories=pd.Index(np.asarray(cats, dtype=object), dtype="string"),
        validate=False,
    )


def _strings(values: npt.NDArray[np.object_], take: npt.NDArray[np.integer[Any]]) -> Any:
    """A pandas string array of ``values[take]`` built with one Arrow take (no Python loop)."""
    # large_string, the type pandas keeps its strings in, so no cast copies the result
    arr = pa.array(values, type=pa.large_string()).take(pa.array(take))
    return pd.arrays.ArrowStringArray(pa.chunked_array([arr], type=pa.large_string()))


def _submit(pool: ThreadPoolExecutor | None, fn: Any, *args: Any) -> Future[Any]:
    """``fn(*args)`` in the pool, or right here (as a finished future) without one."""
    if pool is not None:
        return pool.submit(fn, *args)
    done: Future[Any] = Future()
    done.set_result(fn(*args))
    return done


def _sparse_strings(
    values: npt.NDArray[np.object_],
    take: npt.NDArray[np.integer[Any]],
    rows: npt.NDArray[np.intp],
    n: int,
) -> Any:
    """A pandas string array of ``n`` rows, null except ``values[take]`` at ``rows``.

    Null rows hold no bytes, so the Arrow data buffer is that of the few taken values and only
    the offsets and the validity bitmap span every row.
    """
    small = pa.array(values, type=pa.large_string()).take(pa.array(take))
    ends = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(np.asarray(pc.binary_length(small).fill_null(0), dtype=np.int64), out=ends[1:])
    # offsets step up only after the taken rows: a repeat of the running ends, no per-row sum
    offsets = np.repeat(ends, np.diff(np.concatenate(([-1], rows, [n]))))
    valid = np.zeros(n, dtype=bool)
    valid[rows] = np.asarray(small.is_valid(), dtype=bool)
    nulls = n - int(np.count_nonzero(valid))
    small = small.combine_chunks() if isinstance(small, pa.ChunkedArray) else small
    data = small.buffers()[2] if len(small) else pa.py_buffer(b"")
    arr = pa.Array.from_buffers(
        pa.large_string(),
        n,
        [
            pa.py_buffer(np.packbits(valid, bitorder="little")) if nulls else None,
            pa.py_buffer(offsets),
            data,
        ],
        null_count=nulls,
    )
    return pd.arrays.ArrowStringArray(pa.chunked_array([arr], type=pa.large_string()))


def _as_date(value: date | str | datetime | pd.Timestamp) -> date:
    if isinstance(value, pd.Timestamp | datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def _iso(value: Any) -> str:
    return pd.Timestamp(value).date().isoformat()


def _fy_end(effective: date) -> date:
    """Last day of the fiscal year a release belongs to (September 30)."""
    year = effective.year + 1 if effective.month >= 10 else effective.year
    return date(year, 9, 30)


_REFERENCE: Reference | None = None


def get_reference() -> Reference:
    """The process-wide Reference (bundled tables plus the user data directory), loaded once."""
    global _REFERENCE
    if _REFERENCE is None:
        _REFERENCE = Reference.load()
    return _REFERENCE


def reset_reference() -> None:
    """Forget the cached Reference (after an import, or when $EOBCHECK_DATA_DIR changes)."""
    global _REFERENCE
    _REFERENCE = None


def lookup(code: str, on: date | str) -> CodeLookup:
    """Check one code on one date of service with the process-wide Reference."""
    return get_reference().lookup(code, on)
