"""Claim consistency rules: codes that conflict with each other, or sit in the wrong position."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from eobcheck.reference.core import Suggestion
from eobcheck.reference.tabular import Tabular
from eobcheck.rule import Applicability, Hits, Severity, rule
from eobcheck.rules.facts import (
    BILATERAL,
    LEFT,
    NO_SIDE,
    RIGHT,
    BoolArray,
    Facts,
    IntArray,
    ObjArray,
    Pairs,
    distinct,
    distinct_inverse,
    facts,
    join,
    modifier_side,
    objects,
    text,
    text_at,
)

if TYPE_CHECKING:
    from eobcheck.engine import Context

TABULAR = "ICD-10-CM Tabular List of Diseases and Injuries (FY2026, April 2026 edition)"
GUIDELINES_EXCLUDES = (
    "ICD-10-CM Official Guidelines for Coding and Reporting, I.A.12.a (Excludes1: never coded "
    "together, except for unrelated conditions)"
)
GUIDELINES_EXTERNAL = (
    "ICD-10-CM Official Guidelines for Coding and Reporting, I.C.20 (external cause codes are "
    "never first-listed)"
)
GUIDELINES_ETIOLOGY = (
    "ICD-10-CM Official Guidelines for Coding and Reporting, I.A.13 (etiology/manifestation: "
    "code first the underlying condition)"
)
GUIDELINES_SEQUELA = (
    "ICD-10-CM Official Guidelines for Coding and Reporting, I.B.10 and I.C.19.a (sequela: the "
    "nature of the sequela is sequenced first)"
)
GUIDELINES_LATERALITY = (
    "ICD-10-CM Official Guidelines for Coding and Reporting, I.B.13 (laterality: a bilateral "
    "code where the condition is bilateral)"
)
MCE_FLAGS = "CMS Medicare Code Editor (MCE) v44 ICD-10-CM master: edit flags by date"
MODIFIERS = "CMS HCPCS Level II modifiers RT, LT and 50 (bilateral procedure)"
DENIALS_11 = "CARC 11 (diagnosis inconsistent with the procedure)"
DENIALS_MA63 = "CARC 16 with RARC MA63 (invalid principal diagnosis)"


def _first_listed(fx: Facts, selected: BoolArray, what: str, advice: object) -> pd.Series:
    """Messages for first-listed codes: '<code> (<what>) is listed first on claim ...'."""
    msg = join(
        fx.code_text[fx.code_id[selected]],
        " (" + what + ") is the first-listed diagnosis (position ",
        text(fx.position[selected]),
        ") on claim ",
        fx.at("claim_id", selected),
        "; ",
        advice,
    )
    return fx.series(selected, msg)


def _group_text(keys: IntArray, build: Callable[[int], str]) -> ObjArray:
    """Per key, the text ``build(key)`` returns, computed once per distinct key."""
    inv, uniq = pd.factorize(keys)
    made = np.empty(len(uniq), dtype=object)
    made[:] = [build(int(k)) for k in uniq]
    out: ObjArray = made[inv]
    return out


@rule(
    "CX001",
    "excludes1-conflict",
    Severity.WARNING,
    "Two codes on one claim that an Excludes1 note forbids together.",
    sources=(TABULAR, GUIDELINES_EXCLUDES, DENIALS_11),
)
def excludes1_conflict(ctx: Context) -> Hits:
    """
    What it does:
        Pairs the diagnoses of each claim and flags a pair that an Excludes1 note forbids
        together. The note may sit at either code, its subcategory, its category or its block
        (the tabular's inheritance). The finding sits on the later-listed code; the message
        names the earlier code, both positions and the note cited.

    Why it matters:
        Excludes1 means "not coded here": the two conditions cannot occur together, so a claim
        carrying both is internally inconsistent and is often denied (CARC 11 or CARC 16).
        The exception is two unrelated conditions, which is why this is a warning.

    Example:
        `M54.50` (low back pain) with `M54.41` (lumbago with sciatica, right side): M54.5
        excludes M54.4-. So do `M54.59` with `S39.012A` and `M54.50` with `M51.26`.

    Fix:
        Keep the code the documentation supports (usually the more specific one). If the two
        conditions are unrelated, mark the pair in the `unrelated` setting, e.g.
        `unrelated = [["M54.50", "M51.26"]]` (prefixes allowed), and it is not reported again.
    """
    fx = facts(ctx)
    pairs = fx.pairs(_conflicting_codes(fx))
    if not len(pairs):
        return fx.nothing()
    ncode = max(len(fx.codes), 1)
    # The tabular lookup runs once per distinct (a, b) code pair, then maps back.
    uniq, inv = distinct_inverse(pairs.a * ncode + pairs.b)
    codes = fx.code_text
    ua, ub = codes[uniq // ncode], codes[uniq % ncode]
    conflict, notes, note_at = _excludes1(fx.tabular, ua, ub)
    unrelated = [
        (p.replace(".", "").upper(), q.replace(".", "").upper()) for p, q in ctx.settings.unrelated
    ]
    if unrelated:
        undot = fx.undotted
        for i in np.flatnonzero(conflict):
            a, b = undot[uniq[i] // ncode], undot[uniq[i] % ncode]
            if any(
                (a.startswith(p) and b.startswith(q)) or (a.startswith(q) and b.startswith(p))
                for p, q in unrelated
            ):
                conflict[i] = False
    hit = np.flatnonzero(conflict[inv])
    if not len(hit):
        return fx.nothing()
    row_b = pairs.row_b[hit]
    pos_a = pairs.pos_a[hit]
    # one finding per later code (row_b): the earliest-listed partner, with a count of others
    width = int(pos_a.max()) + 1
    hit = hit[np.argsort(row_b * width + pos_a, kind="stable")]
    row_b = pairs.row_b[hit]
    start = np.r_[True, row_b[1:] != row_b[:-1]]
    begin = np.flatnonzero(start)
    extra = np.diff(np.r_[begin, len(hit)]) - 1
    hit, rows = hit[begin], row_b[begin]
    pair = inv[hit]
    pos_a = pairs.pos_a[hit]
    pos_b = pairs.pos_b[hit]
    wide = max(int(pos_a.max()), int(pos_b.max())) + 1

    def head(key: int) -> str:
        k, pa, pb = key // (wide * wide), (key // wide) % wide, key % wide
        a, b = codes[uniq[k] // ncode], codes[uniq[k] % ncode]
        return f"{b} (position {pb}) and {a} (position {pa}) on claim "

    many = int(extra.max()) + 1

    def tail(key: int) -> str:
        k, more = divmod(key, many)
        also = f" (and {more} more pair(s))" if more > 0 else ""
        return (
            f': the Excludes1 note at {note_at[k]} ("{notes[k]}") forbids coding them together'
            f"{also}; keep the code the record supports, or list the pair in `unrelated` if the "
            "conditions are unrelated."
        )

    # Messages per distinct (pair, positions) and (pair, count); only the claim id varies.
    msg = join(
        _group_text((pair * wide + pos_a) * wide + pos_b, head),
        text_at(ctx, "claim_id", rows),
        _group_text(pair * many + extra, tail),
    )
    mask = np.zeros(fx.n, dtype=bool)
    mask[rows] = True
    return Hits(pd.Series(mask, index=ctx.frame.index), fx.hit_series(rows, msg))


#: Up to this many distinct code pairs, every pair of the check's codes is looked up first.
_ALL_PAIRS_MAX = 50_000


def _conflicting_codes(fx: Facts) -> BoolArray:
    """Per distinct code: whether an Excludes1 note links it to another code of the check.

    Only those codes can be in a conflicting pair on a claim, so only their rows need
    pairing. With too many codes to try every pair, every code is kept.
    """
    n = len(fx.codes)
    if n * (n - 1) // 2 > _ALL_PAIRS_MAX:
        return np.ones(n, dtype=bool)
    i, j = np.triu_indices(n, k=1)
    codes = fx.code_text
    # an Excludes1 conflict reads notes in both directions: one lookup per unordered pair
    conflict, _, _ = _excludes1(fx.tabular, codes[i], codes[j])
    out = np.zeros(n, dtype=bool)
    out[i[conflict]] = True
    out[j[conflict]] = True
    return out


#: Excludes1 answers per tabular and (code, code): the lookup has a fixed cost that repeated
#: checks in one process (several files, a server) need not pay again.
_EXCLUDES1: weakref.WeakKeyDictionary[Tabular, dict[tuple[str, str], tuple[bool, str, str]]] = (
    weakref.WeakKeyDictionary()
)
_EXCLUDES1_MAX = 200_000


def _excludes1(tab: Tabular, a: ObjArray, b: ObjArray) -> tuple[BoolArray, ObjArray, ObjArray]:
    """Per aligned distinct pair: conflict, note text and where the note sits ("" if none)."""
    known = _EXCLUDES1.setdefault(tab, {})
    todo = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if (x, y) not in known]
    if todo:
        res = tab.excludes1(pd.Series(a[todo], dtype=object), pd.Series(b[todo], dtype=object))
        if len(known) + len(todo) > _EXCLUDES1_MAX:
            known.clear()
        found = zip(
            res["conflict"].to_numpy(dtype=bool),
            text(res["note"].to_numpy(dtype=object)),
            text(res["note_at"].to_numpy(dtype=object)),
            strict=True,
        )
        for i, (c, n, at) in zip(todo, found, strict=True):
            known[(a[i], b[i])] = (bool(c), n, at)
    got = [known[(x, y)] for x, y in zip(a, b, strict=True)]
    conflict = np.array([g[0] for g in got], dtype=bool)
    return conflict, objects([g[1] for g in got]), objects([g[2] for g in got])


@rule(
    "CX002",
    "external-cause-first",
    Severity.ERROR,
    "An external-cause code (V00-Y99) is listed first.",
    sources=(GUIDELINES_EXTERNAL, MCE_FLAGS, DENIALS_MA63),
)
def external_cause_first(ctx: Context) -> Hits:
    """
    What it does:
        Flags a code from chapter 20 (external causes of morbidity, V00-Y99) that is the
        first-listed diagnosis of a service line.

    Why it matters:
        External cause codes say how an injury happened, never what is treated; they can never
        be the principal or first-listed diagnosis. The MCE rejects them as principal
        diagnosis and payers deny the line (CARC 16 with RARC MA63).

    Example:
        `V43.52XA` (car driver injured in a collision) in Dx 1 with `S33.5XXA` in Dx 2.

    Fix:
        List the injury or condition first and the external cause code after it.
    """
    fx = facts(ctx)
    ext = fx.tabular.is_external_cause(pd.Series(fx.code_text, dtype=object))
    sel = fx.first & ext.to_numpy(dtype=bool)[fx.code_id]
    if not sel.any():
        return fx.nothing()
    msg = _first_listed(
        fx, sel, "external cause", "list the injury or condition first and this code after it."
    )
    return Hits(fx.mask(sel), msg)


@rule(
    "CX003",
    "manifestation-first",
    Severity.ERROR,
    "A manifestation code is listed first; the underlying condition must come first.",
    sources=(GUIDELINES_ETIOLOGY, TABULAR, MCE_FLAGS, DENIALS_MA63),
)
def manifestation_first(ctx: Context) -> Hits:
    """
    What it does:
        Flags a code the MCE marks as a manifestation on the date of service (the tabular's
        "in diseases classified elsewhere" codes with a code-first note) when it is the
        first-listed diagnosis of a service line. The message quotes the code-first note.

    Why it matters:
        A manifestation describes a consequence of another disease; the underlying disease
        must be sequenced first. The MCE rejects a manifestation as principal diagnosis.

    Example:
        `F02.80` (dementia in other diseases classified elsewhere) in Dx 1 and `G30.9`
        (Alzheimer's disease, unspecified) in Dx 2.

    Fix:
        List the underlying condition the code-first note names first, then the manifestation.
    """
    fx = facts(ctx)
    sel = fx.first & fx.mce_flag("manifestation")
    if not sel.any():
        return fx.nothing()
    # one code-first note per distinct code
    uniq = distinct(fx.code_id[sel])
    notes = text(fx.tabular.code_first(pd.Series(fx.code_text[uniq], dtype=object)))
    advice = np.empty(len(uniq), dtype=object)
    for i, note in enumerate(notes):
        # Some code-first notes list dozens of conditions: quote the start only.
        if len(note) > _NOTE_MAX:
            note = note[: _NOTE_MAX - 3].rstrip() + "..."
        advice[i] = (
            f'list the underlying condition first (code first: "{note}").'
            if note
            else "list the underlying condition first."
        )
    msg = _first_listed(fx, sel, "a manifestation", advice[np.searchsorted(uniq, fx.code_id[sel])])
    return Hits(fx.mask(sel), msg)


@rule(
    "CX004",
    "sequela-first",
    Severity.WARNING,
    "An injury code with 7th character S (sequela) is listed first or alone.",
    sources=(GUIDELINES_SEQUELA, TABULAR),
)
def sequela_first(ctx: Context) -> Hits:
    """
    What it does:
        Flags an injury code (chapter 19, S00-T88) whose 7th character means "sequela" when it
        is the first-listed diagnosis of a service line or the only diagnosis of the claim.

    Why it matters:
        A sequela code says the condition is a late effect of an old injury; the guidelines
        sequence the nature of the sequela (the condition being treated) first and the
        injury's S code after it. A sequela code alone does not say what is treated.

    Example:
        `S33.5XXS` (sprain of ligaments of lumbar spine, sequela) as the only diagnosis.

    Fix:
        Add and list first the code for the residual condition (e.g. the pain or stiffness
        being treated), then the sequela code.
    """
    fx = facts(ctx)
    sev = fx.seventh()
    injury = np.array([str(c)[:1] in ("S", "T") for c in fx.undotted], dtype=bool)
    sequela = (
        injury
        & sev["requires_7th"].to_numpy(dtype=bool)
        & (text(sev["seventh_meaning"].to_numpy(dtype=object)) == "sequela")
    )
    candidate = sequela[fx.code_id]
    if not candidate.any():
        return fx.nothing()
    # distinct codes per claim, counted on integer (claim, code) keys
    ncode = max(len(fx.codes), 1)
    pairs = distinct(fx.claim_index * ncode + fx.code_id)
    count = np.bincount(pairs // ncode, minlength=fx.n_claims)
    alone = count[fx.claim_index] == 1
    sel = candidate & (fx.first | alone)
    where = np.where(
        alone[sel], " is the only diagnosis on claim ", " is the first-listed diagnosis on claim "
    ).astype(object)
    msg = join(
        fx.code_text[fx.code_id[sel]],
        " (sequela)",
        where,
        fx.at("claim_id", sel),
        "; code the residual condition being treated and list it before the sequela code.",
    )
    return Hits(fx.mask(sel), fx.series(sel, msg))


_NOTE_MAX = 160
_SIDE_NAME = np.array(["", "right", "left", "bilateral"], dtype=object)
_MODIFIER_NAME = np.array(["", "RT", "LT", "50"], dtype=object)


@rule(
    "CX005",
    "laterality-conflict",
    Severity.WARNING,
    "The diagnosis side contradicts the line's RT/LT/50 modifier, or right and left codes "
    "stand for a bilateral code.",
    sources=(GUIDELINES_LATERALITY, MODIFIERS, TABULAR, DENIALS_11),
)
def laterality_conflict(ctx: Context) -> Hits:
    """
    What it does:
        Reads each diagnosis's side from its title (right, left, bilateral) and flags:
        a diagnosis of the other side on a line with modifier RT or LT, or a one-sided
        diagnosis on a line with modifier 50 (bilateral); and a claim with the right and the
        left code of one condition where the code set has a bilateral code for it. When the
        line has diagnosis pointers only the pointed diagnoses count; without pointers a line
        is only flagged when none of its diagnoses matches the modifier's side.

    Why it matters:
        A left-side diagnosis does not support a procedure on the right side: payers deny the
        line as inconsistent with the procedure (CARC 11). Two one-sided codes where a
        bilateral code exists are less specific than the code set allows.

    Example:
        `M54.42` (lumbago with sciatica, left side) on a line with modifier `RT`;
        `H25.11` and `H25.12` (right eye, left eye) on one claim: use `H25.13` (bilateral).

    Fix:
        Correct the modifier or the diagnosis to the side treated; replace right + left codes
        by the bilateral code.
    """
    fx = facts(ctx)
    taken = np.zeros(fx.n, dtype=bool)
    parts: list[tuple[IntArray, ObjArray, ObjArray, ObjArray, ObjArray]] = []
    # Only rows with a one-sided or bilateral code can contradict a modifier: the line
    # fields are read at those rows.
    sided = fx.side != NO_SIDE
    at = np.flatnonzero(sided[fx.code_id]) if sided.any() else np.zeros(0, np.int64)
    side = fx.side[fx.code_id[at]]
    line_side = fx.per_value_code("modifiers", modifier_side, NO_SIDE, at)
    one_sided = (side == RIGHT) | (side == LEFT)
    wrong = (
        ((line_side == RIGHT) & (side == LEFT))
        | ((line_side == LEFT) & (side == RIGHT))
        | ((line_side == BILATERAL) & one_sided)
    )
    if wrong.any():
        pointed = fx.pointed(at)
        wrong &= pointed
        # Without pointers a line is fine when any of its diagnoses matches its side.
        matching = pointed & ((line_side == side) | (side == BILATERAL))
        line = fx.line_index[at]
        ok_line = np.zeros(int(line.max()) + 1, dtype=bool)
        ok_line[line[matching]] = True
        sel = at[wrong & (fx.per_value("dx_pointers", bool, at=at) | ~ok_line[line])]
    else:
        sel = at[wrong]
    if len(sel):
        picked = fx.code_id[sel]
        rows = fx.rows[sel]
        where = np.searchsorted(at, sel)
        chosen = np.zeros(len(fx.rows), dtype=bool)
        chosen[sel] = True
        message = join(
            fx.code_text[picked],
            " (",
            fx.titles[picked],
            ") is a ",
            _SIDE_NAME[side[where]],
            "-side diagnosis on a line with modifier ",
            _MODIFIER_NAME[line_side[where]],
            " (procedure ",
            fx.at("procedure", chosen),
            "); correct the modifier or the diagnosis to the side treated.",
        )
        none = np.full(len(rows), None, dtype=object)
        parts.append((rows, message, objects([()])[np.zeros(len(rows), np.int64)], none, none))
        taken[rows] = True

    # Right + left codes of one condition where a bilateral code exists.
    one_sided_code = (fx.side == RIGHT) | (fx.side == LEFT)
    pairs = fx.pairs(one_sided_code)
    sa, sb = fx.side[pairs.a], fx.side[pairs.b]
    cand = np.flatnonzero(((sa == RIGHT) & (sb == LEFT)) | ((sa == LEFT) & (sb == RIGHT)))
    if len(cand):
        parts += _bilateral_hits(fx, pairs, cand, taken)
    if not parts:
        return fx.nothing()
    rows = np.concatenate([p[0] for p in parts])

    def series(k: int) -> pd.Series:
        return fx.hit_series(rows, np.concatenate([p[k] for p in parts]))

    return Hits(pd.Series(taken, index=ctx.frame.index), series(1), series(2), series(3), series(4))


def _bilateral_hits(
    fx: Facts, pairs: Pairs, cand: IntArray, taken: BoolArray
) -> list[tuple[IntArray, ObjArray, ObjArray, ObjArray, ObjArray]]:
    """Rows, messages, suggestions, applicability and replacement for right + left pairs
    (``cand``) with a bilateral code valid on the date; marks the rows in ``taken``."""
    ctx = fx.ctx
    undot = fx.undotted
    ncode = max(len(fx.codes), 1)
    inv, uniq = pd.factorize(pairs.a[cand] * ncode + pairs.b[cand])
    bilateral = np.array(
        [*_bilaterals(ctx, [(undot[k // ncode], undot[k % ncode]) for k in uniq]), None],
        dtype=object,
    )
    has = pd.notna(bilateral[inv])
    cand, inv = cand[has], inv[has]
    if not len(cand):
        return []
    # validity of the bilateral code on the date: once per distinct (pair, day)
    day = pairs.day[cand]
    dmin = int(day.min())
    span = int(day.max()) - dmin + 1
    kinv, kuniq = pd.factorize(inv * span + (day - dmin))
    bil_u = bilateral[kuniq // span]
    days = (kuniq % span + dmin).astype("datetime64[D]").astype("datetime64[ns]")
    status = ctx.reference.check(pd.Series(bil_u, dtype=object), pd.Series(days))
    ok_u = (status["status"] == "valid").to_numpy(dtype=bool)
    title_u = status["title"].astype(object).to_numpy()
    ok = ok_u[kinv]
    cand, kinv = cand[ok], kinv[ok]
    # the line-modifier finding wins; then the first pair per row
    row_b = pairs.row_b[cand]
    keep = np.flatnonzero(~taken[row_b])
    keep = keep[~pd.Series(row_b[keep]).duplicated().to_numpy()]
    cand, kinv, rows = cand[keep], kinv[keep], row_b[keep]
    if not len(rows):
        return []
    codes = fx.code_text
    bil, title = bil_u[kinv], title_u[kinv]
    message = join(
        codes[pairs.a[cand]],
        " and ",
        codes[pairs.b[cand]],
        " on claim ",
        text_at(ctx, "claim_id", rows),
        " code the right and the left side of one condition; the bilateral code ",
        text(bil),
        " (",
        text(title),
        ") says it in one code.",
    )
    # one suggestion tuple per distinct (code, day) key, shared by its rows
    made = objects(
        [(Suggestion(code=str(c), title=_title(t)),) for c, t in zip(bil_u, title_u, strict=True)]
    )
    unsafe = np.full(len(rows), Applicability.UNSAFE.value, dtype=object)
    taken[rows] = True
    return [(rows, message, made[kinv], unsafe, bil.astype(object))]


def _title(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _bilaterals(ctx: Context, pairs: list[tuple[str, str]]) -> list[str | None]:
    """Per right/left pair of undotted codes: the code that differs from them at their one
    differing character and whose title says bilateral (None when there is none)."""
    cands: list[tuple[int, str]] = []
    for n, (a, b) in enumerate(pairs):
        if len(a) != len(b):
            continue
        diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        if len(diff) == 1:
            i = diff[0]
            cands += [(n, a[:i] + ch + a[i + 1 :]) for ch in "0123456789" if ch not in (a[i], b[i])]
    out: list[str | None] = [None] * len(pairs)
    if not cands:
        return out
    codes = pd.Series([c for _, c in cands], dtype=object)
    titles = ctx.reference.title(codes).fillna("").str.lower()
    said = np.flatnonzero(titles.str.contains("bilateral", regex=False).to_numpy(dtype=bool))
    if not len(said):
        return out
    # only codes whose title says bilateral are normalized (one reference lookup fewer)
    dotted = ctx.reference.normalize(codes.iloc[said])
    for i, code in zip(said.tolist(), dotted, strict=True):
        k = cands[i][0]
        if out[k] is None:
            out[k] = str(code)
    return out
