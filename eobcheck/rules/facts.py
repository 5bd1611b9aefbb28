"""Facts the consistency rules share: the checked, valid diagnoses of a check as numpy arrays.

Every consistency rule looks at the same rows (checked lines, diagnoses valid on their date of
service) and at the same per-code facts (titles, MCE flags, first-listed positions). They are
computed once per check and kept on the Context, so turning on ten rules does not factorize the
same two million strings ten times. Per-code work runs on the distinct codes only, per-line work
on the distinct values of a column (factorized once, as integer codes), and messages are built
for the hits only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from eobcheck.reference.tabular import MCE_COLUMNS, Tabular, load_tabular
from eobcheck.rule import Hits

if TYPE_CHECKING:
    from eobcheck.engine import Context

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
ObjArray = npt.NDArray[np.object_]

_ATTR: Final = "_eobcheck_consistency_facts"
_NS_PER_DAY: Final = 86_400 * 10**9
_SIDE_RIGHT = re.compile(r"\bright\b")
_SIDE_LEFT = re.compile(r"\bleft\b")
_SIDE_BOTH = re.compile(r"\bbilateral\b")

#: Side codes (``Facts.side``, ``Facts.line_side``): index into SIDE_LETTERS.
NO_SIDE: Final = 0
RIGHT: Final = 1
LEFT: Final = 2
BILATERAL: Final = 3
SIDE_LETTERS: Final = ("", "R", "L", "B")


@dataclass
class Facts:
    """The checked diagnoses valid on their date of service (one entry per frame row used)."""

    ctx: Context
    rows: IntArray  # positions in the frame
    code_id: IntArray  # index into ``codes``
    codes: pd.Index  # distinct dotted codes
    day: IntArray  # date of service, days since 1970-01-01
    claim: IntArray
    line_id: IntArray
    position: IntArray
    first: BoolArray  # first-listed diagnosis of its service line
    _cache: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of rows of the frame (masks are this long)."""
        return len(self.ctx.frame)

    @property
    def tabular(self) -> Tabular:
        """The tabular facts and MCE flags."""
        return load_tabular()

    def mask(self, selected: BoolArray) -> pd.Series:
        """A frame-aligned boolean mask from a selection over ``rows``."""
        out = np.zeros(self.n, dtype=bool)
        out[self.rows[selected]] = True
        return pd.Series(out, index=self.ctx.frame.index)

    def nothing(self) -> Hits:
        """Hits with no hit."""
        return Hits(pd.Series(np.zeros(self.n, dtype=bool), index=self.ctx.frame.index), "")

    def series(self, selected: BoolArray, values: Any, dtype: str = "object") -> pd.Series:
        """``values`` at the selected rows, as a Series the engine aligns to the frame.

        The Series holds the hit rows only (indexed by their frame labels): a frame-long
        object column per output would cost more than the rule.
        """
        return self.hit_series(self.rows[selected], values, dtype)

    def hit_series(self, rows: IntArray, values: Any, dtype: str = "object") -> pd.Series:
        """``values`` at frame positions ``rows``, as a Series the engine aligns to the frame."""
        index = self.ctx.frame.index
        if not index.is_unique:  # labels cannot align: build the frame-long column
            out = pd.Series(None, index=index, dtype=dtype)
            out.iloc[rows] = values
            return out
        if isinstance(values, np.ndarray) and values.dtype == object:
            arr = values
        else:
            arr = np.full(len(rows), None, dtype=object)
            arr[:] = values
        if len(rows) > 1 and (np.diff(rows) < 0).any():
            order = np.argsort(rows, kind="stable")
            rows, arr = rows[order], arr[order]
        return pd.Series(arr, index=index[rows], dtype=dtype)

    @property
    def code_text(self) -> ObjArray:
        """Distinct dotted codes as an object array (index with ``code_id``)."""
        if "code_text" not in self._cache:
            self._cache["code_text"] = self.codes.to_numpy(dtype=object)
        out: ObjArray = self._cache["code_text"]
        return out

    @property
    def undotted(self) -> ObjArray:
        """Distinct codes without the dot."""
        if "undotted" not in self._cache:
            self._cache["undotted"] = np.array(
                [str(c).replace(".", "") for c in self.code_text], dtype=object
            )
        out: ObjArray = self._cache["undotted"]
        return out

    @property
    def titles(self) -> ObjArray:
        """Title of each distinct code ("" when unknown)."""
        if "titles" not in self._cache:
            t = self.ctx.reference.title(pd.Series(self.code_text, dtype=object))
            self._cache["titles"] = t.astype(object).fillna("").to_numpy(dtype=object)
        out: ObjArray = self._cache["titles"]
        return out

    @property
    def side(self) -> npt.NDArray[np.int8]:
        """Laterality of each distinct code from its title (NO_SIDE, RIGHT, LEFT, BILATERAL)."""
        if "side" not in self._cache:
            self._cache["side"] = np.array([_title_side(str(t)) for t in self.titles], np.int8)
        out: npt.NDArray[np.int8] = self._cache["side"]
        return out

    @property
    def line_side(self) -> npt.NDArray[np.int8]:
        """Per used row, the side its line's modifiers state (RT, LT, 50; see ``modifier_side``)."""
        if "line_side" not in self._cache:
            self._cache["line_side"] = self.per_value_code("modifiers", modifier_side, NO_SIDE)
        out: npt.NDArray[np.int8] = self._cache["line_side"]
        return out

    @property
    def claim_index(self) -> IntArray:
        """Per used row, its claim as a dense number 0..claims-1 (for bincount)."""
        if "claim_index" not in self._cache:
            self._cache["claim_index"] = _dense(self.claim)[0]
        out: IntArray = self._cache["claim_index"]
        return out

    @property
    def claim_sizes(self) -> IntArray:
        """Number of used rows of each claim (by ``claim_index``)."""
        if "claim_sizes" not in self._cache:
            self._cache["claim_sizes"] = np.bincount(self.claim_index, minlength=self.n_claims)
        out: IntArray = self._cache["claim_sizes"]
        return out

    @property
    def n_claims(self) -> int:
        """Number of distinct claims among the used rows."""
        return int(self.claim_index.max()) + 1 if len(self.rows) else 0

    @property
    def line_index(self) -> IntArray:
        """Per used row, its service line as a number 0..lines-1 (for bincount)."""
        return self.lines[1]

    @property
    def lines(self) -> tuple[IntArray, IntArray]:
        """Line-level view: the position (in ``rows``) of the first used row of each service
        line, and per used row the number of its line (0..lines-1, in order of appearance).

        Line fields (procedure, modifiers, payer, patient, date) repeat on every diagnosis
        row of a line: working on one row per line halves the work.
        """
        if "lines" not in self._cache:
            lid = self.line_id
            if len(lid) < 2 or bool((lid[1:] >= lid[:-1]).all()):
                # readers list a line's rows together: lines start where the id changes
                start = np.r_[True, lid[1:] != lid[:-1]] if len(lid) else np.zeros(0, bool)
                self._cache["lines"] = (np.flatnonzero(start), np.cumsum(start) - 1)
            else:
                of, _ = pd.factorize(lid)
                first = np.flatnonzero(~pd.Series(of).duplicated().to_numpy())
                self._cache["lines"] = (first, of.astype(np.int64))
        out: tuple[IntArray, IntArray] = self._cache["lines"]
        return out

    @property
    def lines_contiguous(self) -> bool:
        """Whether each line's used rows are listed together, lines in ascending id order
        (then ``lines``' first rows bound each line's rows)."""
        if "contiguous" not in self._cache:
            lid = self.line_id
            self._cache["contiguous"] = len(lid) < 2 or bool((lid[1:] >= lid[:-1]).all())
        return bool(self._cache["contiguous"])

    def line_any(self, selected: BoolArray) -> BoolArray:
        """Per used row: whether any used row of its line is selected."""
        ids = self.line_index
        hits = np.bincount(ids[selected], minlength=int(ids.max()) + 1 if len(ids) else 0)
        out: BoolArray = hits[ids] > 0
        return out

    def claim_all(self, selected: BoolArray) -> BoolArray:
        """Per used row: whether every used row of its claim is selected."""
        misses = np.bincount(self.claim_index[~selected], minlength=self.n_claims)
        out: BoolArray = misses[self.claim_index] == 0
        return out

    def seventh(self) -> pd.DataFrame:
        """Per distinct code, its 7th-character facts (as ``Tabular.seventh_characters``)."""
        if "seventh" not in self._cache:
            self._cache["seventh"] = self.tabular.seventh_characters(
                pd.Series(self.code_text, dtype=object)
            ).reset_index(drop=True)
        out: pd.DataFrame = self._cache["seventh"]
        return out

    def _mce_lookup(self, at: IntArray) -> tuple[pd.DataFrame, IntArray]:
        """MCE flags per distinct (code, day) of the used rows ``at``, and each row's index
        into them."""
        code_id, day = self.code_id[at], self.day[at]
        # MCE spans change a few times a year: look up distinct (code, day) pairs only.
        dmin = int(day.min()) if len(day) else 0
        span = int(day.max()) - dmin + 1 if len(day) else 1
        uniq, inv = distinct_inverse(code_id * span + (day - dmin))
        codes = pd.Series(self.code_text[uniq // span], dtype=object)
        dates = pd.Series((uniq % span + dmin) * _NS_PER_DAY).astype("datetime64[ns]")
        return self.tabular.mce_flags(codes, dates), inv

    def mce_flag(self, name: str) -> BoolArray:
        """One MCE flag (a column of ``Tabular.mce_flags``) in effect on each used row's date."""
        key = "mce:" + name
        if key not in self._cache:
            if "mce_ever" not in self._cache:
                codes = pd.Series(self.code_text, dtype=object)
                self._cache["mce_ever"] = self.tabular.mce_flags_ever(codes)
            # Most flags belong to few codes: dates are looked up for those codes' rows only.
            maybe = self._cache["mce_ever"][name].to_numpy(dtype=bool)[self.code_id]
            at = np.flatnonzero(maybe)
            if len(at):
                flags, inv = self._mce_lookup(at)
                maybe[at] = flags[name].to_numpy(dtype=bool)[inv]
            self._cache[key] = maybe
        out: BoolArray = self._cache[key]
        return out

    def mce(self) -> pd.DataFrame:
        """MCE flags in effect on each used row's date (columns as ``Tabular.mce_flags``)."""
        return pd.DataFrame({c: self.mce_flag(c) for c in MCE_COLUMNS})

    def claim_pairs(self) -> pd.DataFrame:
        """Every ordered pair of distinct codes on one claim (a listed before b).

        Columns: claim, a, b (code ids), pos_a, pos_b (first position of each code on the
        claim), row_b (frame position of the first row holding b at pos_b), day (the earlier
        date of service of the two rows). Pairs come a-major in (position, row) order.
        """
        p = self.pairs()
        return pd.DataFrame(
            {
                "claim": p.claim,
                "a": p.a,
                "b": p.b,
                "pos_a": p.pos_a,
                "pos_b": p.pos_b,
                "row_b": p.row_b,
                "day": p.day,
            }
        )

    def pairs(self, codes: BoolArray | None = None) -> Pairs:
        """``claim_pairs`` as arrays computed on first use (no frame is built).

        With ``codes`` (a mask over the distinct codes), only pairs of those codes: a rule
        that can only fire on some codes pairs their rows only. The pairs of the other codes
        are left out; everything else (positions, rows, order) is as in the full pairs.
        """
        every = codes is None or bool(codes.all())
        key = "pairs" if every or codes is None else "pairs:" + codes.tobytes().hex()
        if key not in self._cache:
            if every or codes is None:
                self._cache[key] = _claim_pairs(self, np.arange(len(self.rows)))
            else:
                self._cache[key] = _claim_pairs(self, np.flatnonzero(codes[self.code_id]))
        out: Pairs = self._cache[key]
        return out

    @property
    def first_used(self) -> BoolArray:
        """The first of the used (valid) diagnoses of each service line."""
        if "first_used" not in self._cache:
            lid, pos = self.line_id, self.position
            if _ascending_within_lines(lid, pos):
                # the smallest position of a line is its first row
                self._cache["first_used"] = np.r_[True, lid[1:] != lid[:-1]][: len(lid)]
            else:
                self._cache["first_used"] = pos == _line_min(lid, pos)
        out: BoolArray = self._cache["first_used"]
        return out

    def _factorized(self, name: str) -> tuple[IntArray, pd.Index]:
        """A line-level frame column factorized: codes at the used rows (-1 = null) and the
        distinct values."""
        key = "factorized:" + name
        if key not in self._cache:
            col = self.ctx.frame[name]
            if isinstance(col.dtype, pd.CategoricalDtype) and col.count():
                # a categorical column is factorized already
                codes = col.cat.codes.to_numpy().astype(np.int64)[self.rows]
                self._cache[key] = (codes, pd.Index(col.cat.categories))
            else:
                inv, uniq = self.line_factorized(name)
                self._cache[key] = (inv[self.lines[1]], uniq)
        out: tuple[IntArray, pd.Index] = self._cache[key]
        return out

    def line_factorized(self, name: str) -> tuple[IntArray, pd.Index]:
        """A line field factorized once per service line: codes per line (in ``lines``
        order, -1 = null) and the distinct values."""
        key = "line_factorized:" + name
        if key not in self._cache:
            # One row per line, factorized in Arrow (hashing in C): converting the rows to
            # Python strings first costs several times more.
            col = self.ctx.frame[name]
            first, _ = self.lines
            if not col.count():  # an optional field the export does not have
                empty = np.full(len(first), -1, dtype=np.int64)
                self._cache[key] = (empty, pd.Index([], dtype=object))
            elif isinstance(col.dtype, pd.CategoricalDtype):
                codes = col.cat.codes.to_numpy().astype(np.int64)[self.rows[first]]
                self._cache[key] = (codes, pd.Index(col.cat.categories))
            else:
                self._cache[key] = _factorize_at(col, self.rows[first])
        out: tuple[IntArray, pd.Index] = self._cache[key]
        return out

    def column(self, name: str) -> tuple[IntArray, list[str]]:
        """A frame column at the used rows, factorized: codes (-1 = empty) and the values.

        Values are stripped upper-case text; rules test each distinct value once.
        """
        key = "column:" + name
        if key not in self._cache:
            inv, uniq = self._factorized(name)
            self._cache[key] = (inv, _upper(uniq))
        out: tuple[IntArray, list[str]] = self._cache[key]
        return out

    def column_at(self, name: str, at: IntArray) -> tuple[IntArray, list[str]]:
        """``column(name)`` at the used rows ``at`` only (ascending): a rule that needs a line
        field on a few rows does not factorize it for every line."""
        if "column:" + name in self._cache or "factorized:" + name in self._cache:
            inv, values = self.column(name)
            return inv[at], values
        col = self.ctx.frame[name]
        if not col.count() or isinstance(col.dtype, pd.CategoricalDtype) or not len(at):
            inv, values = self.column(name)
            return inv[at], values
        first, of = self.lines
        line = of[at]
        start = np.r_[True, line[1:] != line[:-1]]  # ``at`` is ascending, so are its lines
        codes, uniq = _factorize_at(col, self.rows[first[line[start]]])
        return codes[np.cumsum(start) - 1], _upper(uniq)

    def blank(self, name: str) -> BoolArray:
        """Per used row: whether the column is null or only blanks (no Python string per value)."""
        inv, uniq = self._factorized(name)
        empty = (pd.Series(uniq, dtype="string").str.strip() == "").to_numpy(bool, na_value=True)
        out: BoolArray = np.r_[empty, True][np.where(inv < 0, len(empty), inv)]
        return out

    def per_value(
        self,
        name: str,
        test: Callable[[str], bool],
        empty: bool = False,
        at: IntArray | None = None,
    ) -> BoolArray:
        """``test`` applied to each distinct value of a column, spread to the used rows (or to
        the used rows ``at``)."""
        inv, values = self.column(name) if at is None else self.column_at(name, at)
        ok = np.array([test(v) if v else empty for v in values] + [empty], dtype=bool)
        return ok[np.where(inv < 0, len(values), inv)]

    def per_value_code(
        self,
        name: str,
        func: Callable[[str], int],
        empty: int = -1,
        at: IntArray | None = None,
    ) -> npt.NDArray[np.int8]:
        """``func`` (a small integer per value) applied to each distinct value of a column
        (at the used rows ``at`` when given)."""
        inv, values = self.column(name) if at is None else self.column_at(name, at)
        got = np.array([func(v) if v else empty for v in values] + [empty], dtype=np.int8)
        out: npt.NDArray[np.int8] = got[np.where(inv < 0, len(values), inv)]
        return out

    def family_id(
        self, ranges: dict[str, tuple[tuple[int, int], ...]], at: IntArray | None = None
    ) -> IntArray:
        """Per used row (or per row of ``at``), the index in ``ranges`` of its line's procedure
        family (-1: none)."""
        key = "family:" + repr(sorted(ranges.items()))
        if key not in self._cache:
            names = list(ranges)
            _, values = self.column("procedure")
            fam = [_family(p, ranges) for p in values]
            self._cache[key] = np.array(
                [-1 if f is None else names.index(f) for f in fam] + [-1], np.int64
            )
        ids: IntArray = self._cache[key]
        inv, values = self.column("procedure")
        pick = inv if at is None else inv[at]
        out: IntArray = ids[np.where(pick < 0, len(values), pick)]
        return out

    def procedure_family(self, ranges: dict[str, tuple[tuple[int, int], ...]]) -> pd.Series:
        """Per used row, the name of the procedure family its line's code falls in (or NA)."""
        names = np.array([*ranges, None], dtype=object)
        return pd.Series(names[self.family_id(ranges)], dtype="object")

    @property
    def has_pointers(self) -> BoolArray:
        """Whether each used row's line gives diagnosis pointers."""
        return self.per_value("dx_pointers", bool)

    def pointed(self, at: IntArray | None = None) -> BoolArray:
        """Whether each used row's (or each row of ``at``'s) diagnosis is pointed to by its
        line (True: no pointers)."""
        inv, values = self.column("dx_pointers")
        if not values:
            return np.ones(len(self.rows) if at is None else len(at), dtype=bool)
        if at is not None:
            return self._pointed(inv[at], self.position[at], values)
        if "pointed" not in self._cache:
            self._cache["pointed"] = self._pointed(inv, self.position, values)
        out: BoolArray = self._cache["pointed"]
        return out

    @staticmethod
    def _pointed(inv: IntArray, position: IntArray, values: list[str]) -> BoolArray:
        # distinct (pointers, position) pairs as one integer each
        key = np.where(inv < 0, len(values), inv) * 64 + np.clip(position, 0, 63)
        kuniq, kinv = distinct_inverse(key)
        texts = [*values, ""]
        ok = np.array([_points_at(texts[int(k) // 64], int(k) % 64) for k in kuniq], dtype=bool)
        out: BoolArray = ok[kinv]
        return out

    def at(self, name: str, selected: BoolArray) -> ObjArray:
        """Text of frame column ``name`` at the selected used rows ("" for a null)."""
        return text_at(self.ctx, name, self.rows[selected])


def _title_side(title: str) -> int:
    """Side a code title names: "..., right knee" -> RIGHT; both or neither -> NO_SIDE."""
    low = title.lower()
    if _SIDE_BOTH.search(low):
        return BILATERAL
    right, left = bool(_SIDE_RIGHT.search(low)), bool(_SIDE_LEFT.search(low))
    return RIGHT if right and not left else LEFT if left and not right else NO_SIDE


def modifier_side(text: str) -> int:
    """Side a line's modifiers state: BILATERAL (50, or RT with LT), RIGHT, LEFT or NO_SIDE."""
    tokens = set(text.replace(",", " ").split())
    rt, lt, both = "RT" in tokens, "LT" in tokens, "50" in tokens
    return BILATERAL if both or (rt and lt) else RIGHT if rt else LEFT if lt else NO_SIDE


def _dense(values: IntArray) -> tuple[IntArray, int]:
    """Integers -> dense numbers 0..k-1 (same order when the range is small) and k."""
    if not len(values):
        return values.astype(np.int64), 0
    lo, hi = int(values.min()), int(values.max())
    if hi - lo < 4 * len(values) + 1024:
        return values.astype(np.int64) - lo, hi - lo + 1
    inv, uniq = pd.factorize(values)
    return inv.astype(np.int64), len(uniq)


def _line_min(line_id: IntArray, position: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """Per row, the smallest ``position`` among the rows of its line (NaN ignored)."""
    if not len(line_id):
        return position.astype(np.float64)
    values = position.astype(np.float64)
    if bool((line_id[1:] >= line_id[:-1]).all()):
        # readers list a line's rows together: one reduction per run of equal ids
        start = np.flatnonzero(np.r_[True, line_id[1:] != line_id[:-1]])
        low = np.fmin.reduceat(values, start)
        out: npt.NDArray[np.float64] = np.repeat(low, np.diff(np.r_[start, len(values)]))
        return out
    ids, k = _dense(line_id)
    table = np.full(k, np.inf)
    # NaN positions are ignored, as a groupby minimum would
    np.fmin.at(table, ids, values)
    found: npt.NDArray[np.float64] = table[ids]
    return found


class Pairs:
    """Ordered pairs of distinct codes on one claim, as arrays over the used rows of ``fx``.

    ``ia`` and ``ib`` index the used rows holding a and b; the other fields are taken from
    them when first asked for.
    """

    def __init__(self, fx: Facts, ia: IntArray, ib: IntArray) -> None:
        self.fx, self.ia, self.ib = fx, ia, ib
        self._got: dict[str, IntArray] = {}

    def __len__(self) -> int:
        return len(self.ia)

    def _take(self, name: str, values: IntArray, at: IntArray) -> IntArray:
        if name not in self._got:
            self._got[name] = values[at]
        return self._got[name]

    @property
    def claim(self) -> IntArray:
        """Claim key of each pair."""
        return self._take("claim", self.fx.claim, self.ia)

    @property
    def a(self) -> IntArray:
        """Code id of the earlier-listed code."""
        return self._take("a", self.fx.code_id, self.ia)

    @property
    def b(self) -> IntArray:
        """Code id of the later-listed code."""
        return self._take("b", self.fx.code_id, self.ib)

    @property
    def pos_a(self) -> IntArray:
        """First position of a on the claim."""
        return self._take("pos_a", self.fx.position, self.ia)

    @property
    def pos_b(self) -> IntArray:
        """First position of b on the claim."""
        return self._take("pos_b", self.fx.position, self.ib)

    @property
    def row_b(self) -> IntArray:
        """Frame position of the first row holding b at pos_b."""
        return self._take("row_b", self.fx.rows, self.ib)

    @property
    def day(self) -> IntArray:
        """The earlier date of service of the two rows."""
        if "day" not in self._got:
            self._got["day"] = np.minimum(self.fx.day[self.ia], self.fx.day[self.ib])
        return self._got["day"]


def _claim_pairs(fx: Facts, at: IntArray) -> Pairs:
    """Pairs of distinct codes per claim among the used rows ``at`` (ascending), built with
    integer arrays (no self-merge)."""
    claim = fx.claim_index[at]
    position = fx.position[at]
    # rows are ascending, so a stable sort on (claim, position) orders ties by row; exports
    # list a claim's lines together, which the stable sort (timsort) runs through quickly
    width = int(position.max()) + 1 if len(position) else 1
    order = np.argsort(claim * width + position, kind="stable")
    m = len(order)
    if m == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Pairs(fx, empty, empty)
    # keep the first (position, row) of each code on a claim; claims and codes are numbered
    # densely among these rows so the (claim, code) keys fit a table (no hashing)
    code = fx.code_id[at][order]
    present = np.bincount(code, minlength=len(fx.codes)) > 0
    local = np.cumsum(present) - 1
    c = claim[order]
    group = np.cumsum(np.r_[True, c[1:] != c[:-1]]) - 1
    keep = first_seen(group * max(int(present.sum()), 1) + local[code])
    order, group = order[keep], group[keep]
    m = len(order)
    # dense claim numbers stay ascending, so claims still start where the number changes
    start = np.r_[True, group[1:] != group[:-1]]
    group = np.cumsum(start) - 1
    begin = np.flatnonzero(start)
    size = np.diff(np.r_[begin, m])
    # each entry pairs with every later entry of its claim
    later = size[group] - (np.arange(m) - begin[group]) - 1
    a = np.repeat(np.arange(m), later)
    offset = np.arange(len(a)) - np.repeat(np.cumsum(later) - later, later)
    b = a + 1 + offset
    return Pairs(fx, at[order[a]], at[order[b]])


def _upper(uniq: pd.Index) -> list[str]:
    """Distinct values as stripped upper-case text."""
    return [str(u).strip().upper() for u in uniq.to_numpy(dtype=object)]


def _factorize_at(col: pd.Series, at: IntArray | None) -> tuple[IntArray, pd.Index]:
    """``pd.factorize(col.take(at))`` (``at`` None: the whole column), hashing one value per
    run of equal neighbours.

    Consecutive lines often repeat a field (a claim's patient, modifiers): comparing
    neighbours in Arrow costs a fraction of hashing every value. A sample decides whether
    the runs are long enough to pay for the comparison. String columns are taken and
    hashed in Arrow directly.
    """
    if not isinstance(col.dtype, pd.StringDtype) or col.dtype.storage != "pyarrow":
        inv, uniq = pd.factorize(col if at is None else col.take(at))
        return inv.astype(np.int64), pd.Index(uniq)
    arr = pa.array(col.array)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    sub = arr if at is None else arr.take(pa.array(at))
    n = len(sub)
    if n >= 4096:
        sample = sub.slice(0, 4096)
        changes = pc.not_equal(sample.slice(1), sample.slice(0, 4095)).fill_null(True)
        if pc.sum(changes).as_py() <= 2048:
            # a null never equals its neighbour, so every null starts a run (coded -1)
            change = pc.not_equal(sub.slice(1), sub.slice(0, n - 1)).fill_null(True)
            starts = np.flatnonzero(np.r_[True, change.to_numpy(zero_copy_only=False)])
            inv, uniq = _encode(sub.take(pa.array(starts)))
            return np.repeat(inv, np.diff(np.r_[starts, n])), uniq
    return _encode(sub)


def _encode(arr: pa.Array) -> tuple[IntArray, pd.Index]:
    """Dictionary codes (-1 for null) and the distinct values in order of appearance."""
    encoded = pc.dictionary_encode(arr)
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
    return codes.astype(np.int64), pd.Index(encoded.dictionary.to_pylist(), dtype=object)


def _ascending_within_lines(line_id: IntArray, position: npt.NDArray[Any]) -> bool:
    """Whether line ids never decrease and positions rise within each line (readers list a
    line's diagnoses in order): then a line's first row holds its smallest position."""
    if len(line_id) < 2:
        return True
    same = line_id[1:] == line_id[:-1]
    return bool((line_id[1:] >= line_id[:-1]).all() and (position[1:] > position[:-1])[same].all())


def _family(code: str, ranges: dict[str, tuple[tuple[int, int], ...]]) -> str | None:
    if not (len(code) == 5 and code.isdigit()):
        return None
    value = int(code)
    for name, spans in ranges.items():
        if any(lo <= value <= hi for lo, hi in spans):
            return name
    return None


_LETTERS = "ABCDEFGHIJKL"


def _points_at(pointers: str, position: int) -> bool:
    """``("1,2", 2)`` -> True: pointers "1,2" name position 2 (empty pointers name every one)."""
    text = pointers.strip().upper()
    if not text:
        return True
    parts = re.split(r"[\s,;:/]+", text)
    if len(parts) == 1 and len(text) > 1:
        parts = list(text)  # "1234" or "ABCD": one pointer per character
    named: set[int] = set()
    for p in parts:
        if p.isdigit():
            named.add(int(p))
        elif len(p) == 1 and p in _LETTERS:
            named.add(_LETTERS.index(p) + 1)
    return not named or position in named


def facts(ctx: Context) -> Facts:
    """The shared facts of ``ctx``, computed on first use and kept on the context."""
    cached = ctx.cache.get(_ATTR)
    if isinstance(cached, Facts):
        return cached
    f = ctx.frame
    dx = ctx.dx
    listed = ctx.checked.to_numpy(dtype=bool, na_value=False) & ctx.has_dx.to_numpy(
        dtype=bool, na_value=False
    )
    status = dx["status"]
    if isinstance(status.dtype, pd.CategoricalDtype):
        cats = list(status.cat.categories)
        valid = status.cat.codes.to_numpy() == (cats.index("valid") if "valid" in cats else -2)
    else:
        valid = (status == "valid").to_numpy(dtype=bool, na_value=False)
    use = listed & valid
    rows = np.flatnonzero(use).astype(np.int64)
    # Hashed in Arrow over the whole column (no string take), then renumbered without the
    # codes no used row holds (rules never depend on the numbering, only on equality).
    full_id, full_codes = ctx.dx_ids  # shared with the record rules
    code_id = full_id[rows]
    present: BoolArray = np.bincount(code_id, minlength=len(full_codes)) > 0
    if not present.all():
        code_id = (np.cumsum(present) - 1)[code_id]
    codes = np.asarray(full_codes, dtype=object)[present]
    dates = f["date_of_service"].to_numpy(dtype="datetime64[ns]")[rows]
    day = dates.view(np.int64) // _NS_PER_DAY  # used rows have a date
    claim = ctx.claim_key.to_numpy()[rows].astype(np.int64, copy=False)
    all_lines = f["line_id"].to_numpy().astype(np.int64, copy=False)
    line_id = all_lines[rows]
    all_position = f["dx_position"].to_numpy(dtype="int64", na_value=0)
    position = all_position[rows]
    # First-listed among every diagnosis of the line, valid or not: a retired code in
    # position 1 still comes first.
    every = bool(listed.all())
    listed_at = np.arange(len(f)) if every else np.flatnonzero(listed)
    listed_line = all_lines if every else all_lines[listed_at]
    listed_pos = all_position if every else all_position[listed_at]
    if _ascending_within_lines(listed_line, listed_pos):
        # the first listed row of a line holds its smallest position
        starts = np.zeros(len(f), dtype=bool)
        starts[listed_at[np.r_[True, listed_line[1:] != listed_line[:-1]][: len(listed_at)]]] = True
        first = starts[rows]
    else:
        all_pos = f["dx_position"].to_numpy(dtype="float64", na_value=np.nan)
        first = position == _line_min(all_lines, np.where(listed, all_pos, np.inf))[rows]
    out = Facts(
        ctx=ctx,
        rows=rows,
        code_id=code_id.astype(np.int64),
        codes=pd.Index(codes, dtype=object),
        day=day,
        claim=claim,
        line_id=line_id,
        position=position,
        first=first,
    )
    ctx.cache[_ATTR] = out
    return out


def _span(values: IntArray, per_value: int) -> tuple[int, int] | None:
    """(low, size) of the integer range of ``values`` when a table over it is affordable."""
    if not len(values):
        return None
    lo, hi = int(values.min()), int(values.max())
    size = hi - lo + 1
    return (lo, size) if size <= per_value * len(values) + (1 << 20) else None


def distinct(values: IntArray) -> IntArray:
    """Sorted distinct integers.

    Keys built from small integer codes usually span a range a few times their count: a
    table over the range finds them in linear time. Otherwise hash (``pd.unique``), then sort:
    both beat ``np.unique`` on large arrays.
    """
    span = _span(values, 16)
    if span is None:
        out: IntArray = np.sort(pd.unique(values))
        return out
    lo, size = span
    seen = np.zeros(size, dtype=bool)
    seen[values - lo] = True
    return np.flatnonzero(seen) + lo


def distinct_inverse(values: IntArray) -> tuple[IntArray, IntArray]:
    """Sorted distinct integers and, per value, its index among them."""
    span = _span(values, 4)
    if span is not None:
        lo, size = span
        seen = np.zeros(size, dtype=bool)
        seen[values - lo] = True
        ranks = np.cumsum(seen, dtype=np.int32) - 1
        found: IntArray = ranks[values - lo].astype(np.int64)
        return np.flatnonzero(seen) + lo, found
    change = np.r_[True, values[1:] != values[:-1]]
    if int(np.count_nonzero(change)) * 2 < len(values):
        # long runs of equal neighbours (a claim's lines): hash one value per run
        starts = np.flatnonzero(change)
        uniq_runs, run_rank = distinct_inverse(values[starts])
        return uniq_runs, np.repeat(run_rank, np.diff(np.r_[starts, len(values)]))
    inv, uniq = pd.factorize(values)
    order = np.argsort(uniq)
    rank = np.empty(len(uniq), dtype=np.int64)
    rank[order] = np.arange(len(uniq))
    out: IntArray = uniq[order]
    return out, rank[inv]


def first_seen(values: IntArray) -> BoolArray:
    """Per value, whether it is the first occurrence of that value (``~duplicated``)."""
    span = _span(values, 4)
    if span is None or len(values) >= 2**31:
        out: BoolArray = ~pd.Series(values).duplicated().to_numpy()
        return out
    lo, size = span
    # 32-bit positions: half the table memory, and the table is the cost
    first = np.full(size, len(values), dtype=np.int32)
    at = np.arange(len(values), dtype=np.int32)
    np.minimum.at(first, values - lo, at)
    found: BoolArray = first[values - lo] == at
    return found


def counts(values: IntArray) -> IntArray:
    """Per value, how many times it occurs in ``values``."""
    span = _span(values, 8)
    if span is not None:
        lo, size = span
        found: IntArray = np.bincount(values - lo, minlength=size)[values - lo]
        return found
    inv, _ = pd.factorize(values)
    out: IntArray = np.bincount(inv)[inv]
    return out


def joined(keys: IntArray, words: ObjArray) -> tuple[IntArray, ObjArray]:
    """Per distinct key: its distinct words, sorted and joined by spaces.

    Returns the sorted keys and their texts. The words are ranked once, so one integer sort
    orders every group; the strings are joined by ``np.add.reduceat`` (object concatenation).
    """
    if not len(keys):
        return np.zeros(0, dtype=np.int64), np.empty(0, dtype=object)
    wid, vocab = pd.factorize(words)
    order = np.argsort(np.asarray(vocab, dtype=object))
    rank = np.empty(len(vocab), dtype=np.int64)
    rank[order] = np.arange(len(vocab))
    nword = len(vocab)
    pair = distinct(keys * nword + rank[wid])
    key, word = pair // nword, np.asarray(vocab, dtype=object)[order][pair % nword]
    start = np.r_[True, key[1:] != key[:-1]]
    pieces = np.where(start, "", " ").astype(object) + word
    begin = np.flatnonzero(start)
    texts: ObjArray = np.add.reduceat(pieces, begin)
    return key[begin], texts


def day_text(days: IntArray) -> ObjArray:
    """ISO dates for day numbers."""
    return np.datetime_as_string(days.astype("datetime64[D]")).astype(object)


def at(ctx: Context, name: str, rows: npt.NDArray[np.int64]) -> ObjArray:
    """Values of frame column ``name`` at frame positions ``rows`` (taken before converting:
    turning a whole string column into Python objects costs more than the rule itself)."""
    out: ObjArray = ctx.frame[name].take(rows).to_numpy(dtype=object)
    return out


def text_at(ctx: Context, name: str, rows: npt.NDArray[np.int64]) -> ObjArray:
    """Text of frame column ``name`` at frame positions ``rows`` ("" for a null), converted
    from Arrow in one call: ready to join into messages."""
    col = ctx.frame[name].take(rows)
    if not isinstance(col.dtype, pd.StringDtype):
        col = col.astype("string")
    out: ObjArray = col.fillna("").to_numpy(dtype=object)
    return out


def join(*parts: Any) -> ObjArray:
    """Element-wise concatenation of strings and equal-length object arrays of strings.

    Messages are built for hit rows only; object-array ``+`` concatenates in C with no
    pandas string array in between.
    """
    size = max((len(p) for p in parts if isinstance(p, np.ndarray)), default=1)
    out: ObjArray = np.full(size, "", dtype=object)
    for p in parts:
        out = out + p
    return out


def objects(values: list[Any]) -> ObjArray:
    """A 1-D object array of ``values`` (tuples stay elements, not rows)."""
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        out[i] = v
    return out


def text(values: Any) -> ObjArray:
    """Values as an object array of strings ("" for null; integers without a decimal point)."""
    arr = np.asarray(values)
    if arr.dtype.kind in "iu":
        out: ObjArray = arr.astype(str).astype(object)
        return out
    out = np.empty(len(arr), dtype=object)
    out[:] = [_str(v) for v in arr.astype(object)]
    return out


def _str(value: object) -> str:
    return "" if value is None or value is pd.NA or value != value else str(value)
