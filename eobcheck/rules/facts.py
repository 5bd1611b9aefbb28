"""Facts the consistency rules share: the checked, valid diagnoses of a check as numpy arrays.

Every consistency rule looks at the same rows (checked lines, diagnoses valid on their date of
service) and at the same per-code facts (titles, MCE flags, first-listed positions). They are
computed once per check and kept on the Context, so turning on ten rules does not factorize the
same two million strings ten times. Per-code work runs on the distinct codes only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from eobcheck.reference.tabular import Tabular, load_tabular
from eobcheck.rule import Hits

if TYPE_CHECKING:
    from eobcheck.engine import Context

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_ATTR: Final = "_eobcheck_consistency_facts"
_NS_PER_DAY: Final = 86_400 * 10**9
_SIDE_RIGHT = re.compile(r"\bright\b")
_SIDE_LEFT = re.compile(r"\bleft\b")
_SIDE_BOTH = re.compile(r"\bbilateral\b")


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
        return Hits(pd.Series(False, index=self.ctx.frame.index), "")

    def series(self, selected: BoolArray, values: Any, dtype: str = "object") -> pd.Series:
        """A frame-aligned Series holding ``values`` at the selected rows (null elsewhere)."""
        out = pd.Series(None, index=self.ctx.frame.index, dtype=dtype)
        out.iloc[self.rows[selected]] = values
        return out

    @property
    def undotted(self) -> npt.NDArray[np.object_]:
        """Distinct codes without the dot."""
        if "undotted" not in self._cache:
            self._cache["undotted"] = self.codes.str.replace(".", "", regex=False).to_numpy(
                dtype=object
            )
        out: npt.NDArray[np.object_] = self._cache["undotted"]
        return out

    @property
    def titles(self) -> npt.NDArray[np.object_]:
        """Title of each distinct code ("" when unknown)."""
        if "titles" not in self._cache:
            t = self.ctx.reference.title(pd.Series(self.codes.to_numpy(dtype=object)))
            self._cache["titles"] = t.fillna("").to_numpy(dtype=object)
        out: npt.NDArray[np.object_] = self._cache["titles"]
        return out

    @property
    def side(self) -> npt.NDArray[np.object_]:
        """Laterality of each distinct code from its title: "R", "L", "B" or ""."""
        if "side" not in self._cache:
            sides = []
            for title in self.titles:
                low = str(title).lower()
                if _SIDE_BOTH.search(low):
                    sides.append("B")
                elif _SIDE_RIGHT.search(low) and not _SIDE_LEFT.search(low):
                    sides.append("R")
                elif _SIDE_LEFT.search(low) and not _SIDE_RIGHT.search(low):
                    sides.append("L")
                else:
                    sides.append("")
            self._cache["side"] = np.array(sides, dtype=object)
        out: npt.NDArray[np.object_] = self._cache["side"]
        return out

    def mce(self) -> pd.DataFrame:
        """MCE flags in effect on each used row's date (columns as ``Tabular.mce_flags``)."""
        if "mce" not in self._cache:
            # MCE spans change a few times a year: look up distinct (code, day) pairs only.
            key = self.code_id * 1_000_000 + self.day
            inv, uniq = pd.factorize(key)
            codes = pd.Series(self.codes.to_numpy(dtype=object)[uniq // 1_000_000])
            dates = pd.Series((uniq % 1_000_000) * _NS_PER_DAY).astype("datetime64[ns]")
            flags = self.tabular.mce_flags(codes, dates)
            self._cache["mce"] = pd.DataFrame(
                {c: flags[c].to_numpy(dtype=bool)[inv] for c in flags.columns}
            )
        out: pd.DataFrame = self._cache["mce"]
        return out

    def claim_pairs(self) -> pd.DataFrame:
        """Every ordered pair of distinct codes on one claim (a listed before b).

        Columns: claim, a, b (code ids), pos_a, pos_b (first position of each code on the
        claim), row_b (frame position of the first row holding b at pos_b), day (the claim's
        first date of service).
        """
        if "pairs" not in self._cache:
            d = pd.DataFrame(
                {
                    "claim": self.claim,
                    "code": self.code_id,
                    "pos": self.position,
                    "row": self.rows,
                    "day": self.day,
                }
            )
            d = d.sort_values(["claim", "pos", "row"], kind="stable")
            d = d.drop_duplicates(["claim", "code"])
            m = d.merge(d, on="claim", suffixes=("_a", "_b"))
            m = m[
                (m["pos_a"] < m["pos_b"]) | ((m["pos_a"] == m["pos_b"]) & (m["row_a"] < m["row_b"]))
            ]
            self._cache["pairs"] = pd.DataFrame(
                {
                    "claim": m["claim"].to_numpy(),
                    "a": m["code_a"].to_numpy(),
                    "b": m["code_b"].to_numpy(),
                    "pos_a": m["pos_a"].to_numpy(),
                    "pos_b": m["pos_b"].to_numpy(),
                    "row_b": m["row_b"].to_numpy(),
                    "day": np.minimum(m["day_a"].to_numpy(), m["day_b"].to_numpy()),
                }
            )
        out: pd.DataFrame = self._cache["pairs"]
        return out

    @property
    def first_used(self) -> BoolArray:
        """The first of the used (valid) diagnoses of each service line."""
        if "first_used" not in self._cache:
            low = pd.Series(self.position).groupby(self.line_id).transform("min").to_numpy()
            self._cache["first_used"] = self.position == low
        out: BoolArray = self._cache["first_used"]
        return out

    def column(self, name: str) -> tuple[IntArray, list[str]]:
        """A frame column at the used rows, factorized: codes (-1 = empty) and the values.

        Values are stripped upper-case text; rules test each distinct value once.
        """
        key = "column:" + name
        if key not in self._cache:
            inv, uniq = pd.factorize(self.ctx.frame[name].take(self.rows).to_numpy(dtype=object))
            values = [str(u).strip().upper() for u in uniq]
            self._cache[key] = (inv.astype(np.int64), values)
        out: tuple[IntArray, list[str]] = self._cache[key]
        return out

    def per_value(self, name: str, test: Callable[[str], bool], empty: bool = False) -> BoolArray:
        """``test`` applied to each distinct value of a column, spread to the used rows."""
        inv, values = self.column(name)
        ok = np.array([test(v) if v else empty for v in values] + [empty], dtype=bool)
        return ok[np.where(inv < 0, len(values), inv)]

    def procedure_family(self, ranges: dict[str, tuple[tuple[int, int], ...]]) -> pd.Series:
        """Per used row, the name of the procedure family its line's code falls in (or NA)."""
        inv, values = self.column("procedure")
        fam = np.array([_family(p, ranges) for p in values] + [None], dtype=object)
        return pd.Series(fam[np.where(inv < 0, len(values), inv)], dtype="object")

    @property
    def has_pointers(self) -> BoolArray:
        """Whether each used row's line gives diagnosis pointers."""
        inv, values = self.column("dx_pointers")
        ok = np.array([bool(v) for v in values] + [False], dtype=bool)
        return ok[np.where(inv < 0, len(values), inv)]

    def pointed(self) -> BoolArray:
        """Whether each used row's diagnosis is pointed to by its line (True: no pointers)."""
        if "pointed" not in self._cache:
            inv, values = self.column("dx_pointers")
            if not values:
                self._cache["pointed"] = np.ones(len(self.rows), dtype=bool)
            else:
                # distinct (pointers, position) pairs as one integer each
                key = np.where(inv < 0, len(values), inv) * 64 + np.clip(self.position, 0, 63)
                kinv, kuniq = pd.factorize(key)
                texts = [*values, ""]
                ok = np.array(
                    [_points_at(texts[int(k) // 64], int(k) % 64) for k in kuniq], dtype=bool
                )
                self._cache["pointed"] = ok[kinv]
        out: BoolArray = self._cache["pointed"]
        return out


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
    use = (ctx.checked & ctx.has_dx & (dx["status"] == "valid")).fillna(False).to_numpy(bool)
    rows = np.flatnonzero(use).astype(np.int64)
    code_id, codes = pd.factorize(dx["normalized"].take(rows).to_numpy(dtype=object))
    dates = f["date_of_service"].to_numpy(dtype="datetime64[ns]")[rows]
    day = dates.astype("datetime64[D]").astype(np.int64)
    claim = ctx.claim_key.to_numpy()[rows].astype(np.int64)
    line_id = f["line_id"].to_numpy()[rows].astype(np.int64)
    position = f["dx_position"].to_numpy(dtype="float64", na_value=np.nan)[rows]
    position = np.nan_to_num(position, nan=0).astype(np.int64)
    # First-listed among every diagnosis of the line, valid or not: a retired code in
    # position 1 still comes first.
    listed = (ctx.checked & ctx.has_dx).to_numpy(bool)
    all_pos = f["dx_position"].to_numpy(dtype="float64", na_value=np.nan)[listed]
    line_min = pd.Series(all_pos).groupby(f["line_id"].to_numpy()[listed]).min()
    first_pos = line_min.reindex(line_id).to_numpy()
    out = Facts(
        ctx=ctx,
        rows=rows,
        code_id=code_id.astype(np.int64),
        codes=pd.Index(codes, dtype=object),
        day=day,
        claim=claim,
        line_id=line_id,
        position=position,
        first=position == first_pos,
    )
    ctx.cache[_ATTR] = out
    return out


def day_text(days: IntArray) -> npt.NDArray[np.object_]:
    """ISO dates for day numbers."""
    return np.datetime_as_string(days.astype("datetime64[D]")).astype(object)


def at(ctx: Context, name: str, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.object_]:
    """Values of frame column ``name`` at frame positions ``rows`` (taken before converting:
    turning a whole string column into Python objects costs more than the rule itself)."""
    out: npt.NDArray[np.object_] = ctx.frame[name].take(rows).to_numpy(dtype=object)
    return out
