"""Claim consistency rules: codes that conflict with each other, or sit in the wrong position."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from eobcheck.reference.core import Suggestion
from eobcheck.rule import Applicability, Hits, Severity, rule
from eobcheck.rules.facts import Facts, at, facts

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


def _txt(values: object) -> pd.Series:
    return pd.Series(values, dtype="object").astype("string").fillna("")


def _claim_ids(fx: Facts, rows: np.ndarray) -> pd.Series:
    return _txt(at(fx.ctx, "claim_id", rows))


def _first_listed(fx: Facts, selected: np.ndarray, what: str, advice: str) -> pd.Series:
    """Messages for first-listed codes: '<code> (<what>) is listed first on claim ...'."""
    rows = fx.rows[selected]
    code = _txt(fx.codes.to_numpy(dtype=object)[fx.code_id[selected]])
    pos = _txt(fx.position[selected])
    msg = (
        code
        + " ("
        + what
        + ") is the first-listed diagnosis (position "
        + pos
        + ") on claim "
        + _claim_ids(fx, rows)
        + "; "
        + advice
    )
    return fx.series(selected, msg.to_numpy(dtype=object))


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
    pairs = fx.claim_pairs()
    if pairs.empty:
        return Hits(fx.mask(np.zeros(len(fx.rows), dtype=bool)), "")
    ncode = max(len(fx.codes), 1)
    inv, uniq = pd.factorize(pairs["a"].to_numpy() * ncode + pairs["b"].to_numpy())
    codes = fx.codes.to_numpy(dtype=object)
    ua, ub = codes[uniq // ncode], codes[uniq % ncode]
    res = fx.tabular.excludes1(pd.Series(ua, dtype=object), pd.Series(ub, dtype=object))
    conflict = res["conflict"].to_numpy(dtype=bool).copy()
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
    hit = conflict[inv]
    found = pairs[hit].assign(
        note=res["note"].to_numpy(dtype=object)[inv[hit]],
        at=res["note_at"].to_numpy(dtype=object)[inv[hit]],
    )
    found = found.sort_values(["row_b", "pos_a"], kind="stable")
    extra = found.groupby("row_b")["a"].transform("size").to_numpy() - 1
    keep = ~found["row_b"].duplicated().to_numpy()
    found, extra = found[keep], extra[keep]
    rows = found["row_b"].to_numpy()
    msg = (
        _txt(codes[found["b"].to_numpy()])
        + " (position "
        + _txt(found["pos_b"].to_numpy())
        + ") and "
        + _txt(codes[found["a"].to_numpy()])
        + " (position "
        + _txt(found["pos_a"].to_numpy())
        + ") on claim "
        + _txt(at(ctx, "claim_id", rows))
        + ": the Excludes1 note at "
        + _txt(found["at"].to_numpy())
        + ' ("'
        + _txt(found["note"].to_numpy())
        + '") forbids coding them together'
        + _txt(np.where(extra > 0, " (and " + extra.astype(str) + " more pair(s))", ""))
        + "; keep the code the record supports, or list the pair in `unrelated` if the "
        "conditions are unrelated."
    )
    mask = np.zeros(fx.n, dtype=bool)
    mask[rows] = True
    message = pd.Series(None, index=ctx.frame.index, dtype="object")
    message.iloc[rows] = msg.to_numpy(dtype=object)
    return Hits(pd.Series(mask, index=ctx.frame.index), message)


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
    ext = fx.tabular.is_external_cause(pd.Series(fx.codes.to_numpy(dtype=object)))
    sel = fx.first & ext.to_numpy(dtype=bool)[fx.code_id]
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
    flags = fx.mce()
    sel = fx.first & flags["manifestation"].to_numpy(dtype=bool)
    if not sel.any():
        return fx.nothing()
    note_row = _txt(
        fx.tabular.code_first(pd.Series(fx.codes.to_numpy(dtype=object)[fx.code_id[sel]]))
    )
    # Some code-first notes list dozens of conditions: quote the start only.
    long = note_row.str.len() > _NOTE_MAX
    note_row = note_row.where(~long, note_row.str[: _NOTE_MAX - 3].str.rstrip() + "...")
    advice = pd.Series(
        np.where(
            note_row != "",
            'list the underlying condition first (code first: "' + note_row + '").',
            "list the underlying condition first.",
        ),
        dtype="object",
    )
    rows = fx.rows[sel]
    code = _txt(fx.codes.to_numpy(dtype=object)[fx.code_id[sel]])
    msg = (
        code
        + " (a manifestation) is the first-listed diagnosis (position "
        + _txt(fx.position[sel])
        + ") on claim "
        + _claim_ids(fx, rows)
        + "; "
        + advice.astype("string")
    )
    return Hits(fx.mask(sel), fx.series(sel, msg.to_numpy(dtype=object)))


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
    sev = fx.tabular.seventh_characters(pd.Series(fx.codes.to_numpy(dtype=object)))
    injury = pd.Series(fx.undotted).str[:1].isin(["S", "T"]).to_numpy(dtype=bool)
    sequela = (
        injury
        & sev["requires_7th"].to_numpy(dtype=bool)
        & (sev["seventh_meaning"].astype("string").fillna("") == "sequela").to_numpy(dtype=bool)
    )
    candidate = sequela[fx.code_id]
    if not candidate.any():
        return fx.nothing()
    # count distinct codes only on the claims that hold a sequela code
    on_claim = np.isin(fx.claim, np.unique(fx.claim[candidate]))
    per_claim = pd.DataFrame({"claim": fx.claim[on_claim], "code": fx.code_id[on_claim]})
    count = per_claim.drop_duplicates().groupby("claim")["code"].size()
    alone = count.reindex(fx.claim).fillna(0).to_numpy() == 1
    sel = candidate & (fx.first | alone)
    code = _txt(fx.codes.to_numpy(dtype=object)[fx.code_id[sel]])
    where = pd.Series(
        np.where(
            alone[sel],
            " is the only diagnosis on claim ",
            " is the first-listed diagnosis on claim ",
        ),
        dtype="string",
    )
    msg = (
        code
        + " (sequela)"
        + where
        + _claim_ids(fx, fx.rows[sel])
        + "; code the residual condition being treated and list it before the sequela code."
    )
    return Hits(fx.mask(sel), fx.series(sel, msg.to_numpy(dtype=object)))


_NOTE_MAX = 160
_SIDE_NAME = {"R": "right", "L": "left", "B": "bilateral"}


def _line_side(text: str) -> str:
    """Side a line's modifiers state: R (RT), L (LT), B (50, or RT with LT), "" (none)."""
    tokens = set(text.replace(",", " ").split())
    rt, lt, both = "RT" in tokens, "LT" in tokens, "50" in tokens
    return "B" if both or (rt and lt) else "R" if rt else "L" if lt else ""


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
    side = fx.side[fx.code_id]
    inv, values = fx.column("modifiers")
    sides = np.array([*(_line_side(v) for v in values), ""], dtype=object)
    line_side = sides[np.where(inv < 0, len(values), inv)]
    pointed = fx.pointed()
    has_ptr = fx.has_pointers
    wrong = pointed & (
        ((line_side == "R") & (side == "L"))
        | ((line_side == "L") & (side == "R"))
        | ((line_side == "B") & ((side == "R") | (side == "L")))
    )
    matching = pointed & (side != "") & ((line_side == side) | (side == "B"))
    line_ok = pd.Series(matching).groupby(fx.line_id).transform("any").to_numpy(dtype=bool)
    sel = wrong & (has_ptr | ~line_ok)

    codes = fx.codes.to_numpy(dtype=object)
    titles = fx.titles
    side_name = pd.Series(side[sel], dtype="object").map(_SIDE_NAME)
    mod_name = pd.Series(line_side[sel], dtype="object").map({"R": "RT", "L": "LT", "B": "50"})
    msg1 = (
        _txt(codes[fx.code_id[sel]])
        + " ("
        + _txt(titles[fx.code_id[sel]])
        + ") is a "
        + side_name.astype("string")
        + "-side diagnosis on a line with modifier "
        + mod_name.astype("string")
        + " (procedure "
        + _txt(at(ctx, "procedure", fx.rows[sel]))
        + "); correct the modifier or the diagnosis to the side treated."
    )
    message = fx.series(sel, msg1.to_numpy(dtype=object))
    mask = fx.mask(sel)
    suggestions = pd.Series(None, index=ctx.frame.index, dtype="object")
    applicability = pd.Series(None, index=ctx.frame.index, dtype="object")
    replacement = pd.Series(None, index=ctx.frame.index, dtype="object")

    # Right + left codes of one condition where a bilateral code exists.
    pairs = fx.claim_pairs()
    sa, sb = fx.side[pairs["a"].to_numpy()], fx.side[pairs["b"].to_numpy()]
    cand = pairs[((sa == "R") & (sb == "L")) | ((sa == "L") & (sb == "R"))]
    if len(cand):
        undot = fx.undotted
        ncode = max(len(fx.codes), 1)
        inv, uniq = pd.factorize(cand["a"].to_numpy() * ncode + cand["b"].to_numpy())
        bilateral = np.array(
            [*_bilaterals(ctx, [(undot[k // ncode], undot[k % ncode]) for k in uniq]), None],
            dtype=object,
        )
        bil = bilateral[inv]
        has = pd.notna(bil)
        cand, bil = cand[has], bil[has]
        if len(cand):
            days = cand["day"].to_numpy().astype("datetime64[D]").astype("datetime64[ns]")
            status = ctx.reference.check(pd.Series(bil, dtype=object), pd.Series(days))
            ok = (status["status"] == "valid").to_numpy(dtype=bool)
            cand, bil, status = cand[ok], bil[ok], status[ok]
            cand = cand.assign(bil=bil, title=status["title"].astype("object").to_numpy())
            cand = cand[~pd.Series(cand["row_b"].to_numpy()).isin(np.flatnonzero(mask)).to_numpy()]
            cand = cand.drop_duplicates("row_b")
            rows = cand["row_b"].to_numpy()
            msg2 = (
                _txt(codes[cand["a"].to_numpy()])
                + " and "
                + _txt(codes[cand["b"].to_numpy()])
                + " on claim "
                + _txt(at(ctx, "claim_id", rows))
                + " code the right and the left side of one condition; the bilateral code "
                + _txt(cand["bil"].to_numpy())
                + " ("
                + _txt(cand["title"].to_numpy())
                + ") says it in one code."
            )
            mask.iloc[rows] = True
            message.iloc[rows] = msg2.to_numpy(dtype=object)
            sugg = [
                (Suggestion(code=str(c), title=None if pd.isna(t) else str(t)),)
                for c, t in zip(cand["bil"], cand["title"], strict=True)
            ]
            suggestions.iloc[rows] = pd.Series(sugg, dtype="object").to_numpy()
            applicability.iloc[rows] = Applicability.UNSAFE.value
            replacement.iloc[rows] = cand["bil"].to_numpy(dtype=object)
    empty = mask & suggestions.isna()
    suggestions[empty] = pd.Series([()] * int(empty.sum()), dtype="object").to_numpy()
    return Hits(mask, message, suggestions, applicability, replacement)


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
    dotted = ctx.reference.normalize(codes)
    for (n, _), title, code in zip(cands, titles, dotted, strict=True):
        if out[n] is None and "bilateral" in str(title):
            out[n] = str(code)
    return out
