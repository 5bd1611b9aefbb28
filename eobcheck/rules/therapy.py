"""Procedure rules: do the diagnoses of a line support the therapy or service billed on it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from eobcheck.packs import Edit, Pack, Pattern, load_packs
from eobcheck.reference.core import Suggestion
from eobcheck.rule import Applicability, Hits, Severity, rule
from eobcheck.rules.facts import (
    BoolArray,
    Facts,
    IntArray,
    ObjArray,
    distinct,
    facts,
    join,
    objects,
    text,
    text_at,
)

if TYPE_CHECKING:
    from eobcheck.engine import Context

#: Physical medicine and rehabilitation, and chiropractic manipulative treatment.
THERAPY: Final[dict[str, tuple[tuple[int, int], ...]]] = {
    "therapy": ((97010, 97799), (98940, 98943))
}

GUIDELINES_7TH = (
    "ICD-10-CM Official Guidelines for Coding and Reporting, I.C.19.a (7th character A: active "
    "treatment; D: encounters after active treatment, in the healing or recovery phase)"
)
TABULAR_7TH = "ICD-10-CM Tabular List: 7th-character definitions (FY2026, April 2026 edition)"
DENIALS_11 = "CARC 11 (diagnosis inconsistent with the procedure)"


@rule(
    "PX001",
    "initial-encounter-for-therapy",
    Severity.WARNING,
    "An injury code for the initial encounter (7th character A) on a therapy line.",
    sources=(GUIDELINES_7TH, TABULAR_7TH, DENIALS_11),
)
def initial_encounter_for_therapy(ctx: Context) -> Hits:
    """
    What it does:
        Flags an injury code (chapter 19, S00-T88) whose 7th character is an initial encounter
        (A; for fractures also B or C) on a physical, occupational or chiropractic therapy
        line (procedure 97010-97799 or 98940-98943). It suggests the same code with the
        subsequent-encounter character D when that code is valid on the date of service.
        When the line has diagnosis pointers only the pointed diagnoses count.

    Why it matters:
        The 7th character A is for active treatment (the emergency visit, surgery, the
        evaluation by a new physician). Therapy usually follows active treatment and is coded
        D; an A code on a therapy line is a common reason for a CARC 11 denial. It can be
        right (therapy as part of active treatment), so this is a warning.

    Example:
        `S33.5XXA` (sprain of ligaments of lumbar spine, initial encounter) on a 97110 line:
        `S33.5XXD` is suggested.

    Fix:
        Use the subsequent-encounter code when active treatment is over. The suggestion is an
        unsafe fix: a coder confirms it against the record.
    """
    fx = facts(ctx)
    sev = fx.seventh()
    meaning = text(sev["seventh_meaning"].to_numpy(dtype=object))
    injury = np.array([str(c)[:1] in ("S", "T") for c in fx.undotted], dtype=bool)
    initial = injury & np.array([m.startswith("initial encounter") for m in meaning], dtype=bool)
    allows_d = np.array(["D" in a for a in text(sev["allowed"].to_numpy(dtype=object))], bool)
    # Initial-encounter codes are few: the line fields are read at their rows only.
    at = np.flatnonzero(initial[fx.code_id]) if initial.any() else np.zeros(0, np.int64)
    if len(at):
        at = at[fx.family_id(THERAPY, at) >= 0]
    if len(at):
        at = at[fx.pointed(at)]
    if not len(at):
        return fx.nothing()
    sel = np.zeros(len(fx.rows), dtype=bool)
    sel[at] = True
    rows = fx.rows[sel]
    picked = fx.code_id[sel]
    # The D code and its validity: once per distinct (code, day).
    day = fx.day[sel]
    dmin = int(day.min())
    span = int(day.max()) - dmin + 1
    kinv, kuniq = pd.factorize(picked * span + (day - dmin))
    code_u = kuniq // span
    target_u = np.array(
        [str(fx.code_text[c])[:-1] + "D" if allows_d[c] else None for c in code_u], dtype=object
    )
    days = (kuniq % span + dmin).astype("datetime64[D]").astype("datetime64[ns]")
    status = ctx.reference.check(pd.Series(target_u, dtype=object), pd.Series(days))
    valid_u = (status["status"] == "valid").to_numpy(dtype=bool)
    target_u[~valid_u] = None
    title_u = status["title"].astype(object).to_numpy()
    valid = valid_u[kinv]
    target = target_u[kinv]
    # One suggestion per distinct target code, titled as on its first row.
    tinv, tuniq = pd.factorize(pd.Series(target, dtype=object))
    found, at_row = np.unique(tinv, return_index=True)
    first = at_row[found >= 0]
    sugg = objects(
        [
            (Suggestion(code=str(c), title=_title(title_u[kinv[i]])),)
            for c, i in zip(tuniq, first, strict=True)
        ]
        + [()]
    )
    per_row = sugg[np.where(tinv < 0, len(tuniq), tinv)]
    advice = np.where(
        valid,
        "; if active treatment is over, code the subsequent encounter: " + text(target) + ".",
        "; if active treatment is over, code the subsequent encounter.",
    ).astype(object)
    msg = join(
        fx.code_text[picked],
        " (",
        meaning[picked],
        ") is billed on therapy line ",
        fx.at("line", sel),
        " (procedure ",
        fx.at("procedure", sel),
        ") of claim ",
        fx.at("claim_id", sel),
        advice,
    )
    unsafe = np.full(len(rows), Applicability.UNSAFE.value, dtype=object)
    unsafe[~valid] = None
    return Hits(
        fx.mask(sel),
        fx.series(sel, msg),
        fx.series(sel, per_row),
        fx.series(sel, unsafe),
        fx.series(sel, target),
    )


def _title(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _packs(ctx: Context) -> list[Pack]:
    cfg = ctx.settings
    base = Path(cfg.source).resolve().parent if cfg.source else None
    return load_packs(tuple(cfg.packs), builtin=cfg.builtin_packs, base=base)


def _pattern_index(fx: Facts, patterns: list[Pattern]) -> npt.NDArray[np.int64]:
    """Per distinct code: index of the first pattern it matches, -1 for none (cached)."""
    key = "patterns:" + "|".join(p.model_dump_json() for p in patterns)
    cached = fx._cache.get(key)
    if cached is not None:
        found: npt.NDArray[np.int64] = cached
        return found
    out = np.full(len(fx.codes), -1, dtype=np.int64)
    undot = pd.Series(fx.undotted, dtype="object").astype(str)
    titles = pd.Series(fx.titles, dtype="object").astype(str)
    for k in range(len(patterns) - 1, -1, -1):  # the first matching pattern wins
        out[_matches(patterns[k], undot, titles)] = k
    fx._cache[key] = out
    return out


def _matches(pattern: Pattern, codes: pd.Series, titles: pd.Series) -> BoolArray:
    """Which distinct codes a pattern covers (string operations over the distinct codes)."""
    hit = np.zeros(len(codes), dtype=bool)
    for lo, hi in pattern.bounds():
        hit |= ((codes.str[: len(lo)] >= lo) & (codes.str[: len(hi)] <= hi)).to_numpy(bool)
    if pattern.seventh is not None:
        seventh = codes.str[6].where(codes.str.len() == 7).fillna("")
        hit &= seventh.isin(list(pattern.seventh)).to_numpy(bool)
    if pattern.title is not None:
        hit &= titles.str.contains(pattern.title, case=False, regex=True).to_numpy(bool)
    return hit


def _edit_hits(fx: Facts, pack: Pack, edit: Edit) -> tuple[IntArray, ObjArray]:
    """Used rows (ascending) an edit selects, and one message per selected row.

    Each procedure and payer is tested once; the rows of procedures the edit does not cover
    are never visited, and an edit covering no procedure of the check costs nothing.
    """
    none = (np.zeros(0, dtype=np.int64), np.empty(0, dtype=object))
    inv, values = fx.column("procedure")
    covers = np.array([edit.covers(v) if v else False for v in values] + [False], dtype=bool)
    if not covers.any():
        return none
    if edit.check == "only-unsupported":
        listed = _pattern_index(fx, list(edit.not_supporting))
        # A claim all of whose diagnoses the edit lists: its rows hold listed codes, so
        # only those rows (usually few) are candidates.
        listed_at = np.flatnonzero((listed >= 0)[fx.code_id])
        at = listed_at
        at = at[covers[np.where(inv[at] < 0, len(values), inv[at])]]
    else:
        at = np.flatnonzero(covers[np.where(inv < 0, len(values), inv)])
    if edit.payer is not None and len(at):
        payer_re = re.compile(edit.payer, flags=re.IGNORECASE)
        # lines with no payer are checked too: the export may not say
        at = at[fx.per_value("payer", lambda p: payer_re.search(p) is not None, True, at)]
    if not len(at):
        return none
    codes = fx.code_text
    if edit.check == "only-unsupported":
        at = at[fx.first_used[at]]
        claims = fx.claim_index[at]
        # every used row of the claim is listed: as many listed rows as rows
        listed_rows = np.bincount(fx.claim_index[listed_at], minlength=fx.n_claims)
        at = at[listed_rows[claims] == fx.claim_sizes[claims]]
        notes = np.array([p.note for p in edit.not_supporting], dtype=object)
        picked = fx.code_id[at]
        detail = join(": ", codes[picked], " is ", notes[np.maximum(listed[picked], 0)])
    elif edit.check == "primary-supported":
        listed = _pattern_index(fx, list(edit.supporting))
        at = at[fx.first[at] & (listed[fx.code_id[at]] < 0)]
        detail = join(": the first-listed diagnosis is ", codes[fx.code_id[at]])
    else:
        listed = _pattern_index(fx, list(edit.supporting))
        at = at[fx.first_used[at]]
        if (listed >= 0).any():
            # distinct supporting codes per claim, counted on integer (claim, code) keys
            ncode = max(len(fx.codes), 1)
            good = np.flatnonzero((listed >= 0)[fx.code_id])
            pairs = distinct(fx.claim_index[good] * ncode + fx.code_id[good])
            per_claim = np.bincount(pairs // ncode, minlength=fx.n_claims)
            count = per_claim[fx.claim_index[at]]
        else:
            count = np.zeros(len(at), dtype=np.int64)
        keep = count < edit.min_supporting
        at, count = at[keep], count[keep]
        detail = join(": the claim has ", text(count), " (" + edit.supporting[0].note + ")")
    source = f" [pack {pack.pack}, {edit.id}; {'; '.join(edit.sources)}]"
    rows = fx.rows[at]
    msg = join(
        "Procedure ",
        text_at(fx.ctx, "procedure", rows),
        " on claim ",
        text_at(fx.ctx, "claim_id", rows),
        ": " + edit.message.strip(),
        detail,
        source,
    )
    return at, msg


@rule(
    "PX002",
    "procedure-diagnosis-mismatch",
    Severity.WARNING,
    "The claim's diagnoses do not support the procedure, per a rule pack.",
    sources=(
        "Rule packs in eobcheck/rules/packs (each edit cites its own sources)",
        "CMS Medicare Benefit Policy Manual (Pub. 100-02), Chapter 15, sections 220 and 240",
        DENIALS_11,
        "CARC 50 (not deemed a medical necessity)",
    ),
)
def procedure_diagnosis_mismatch(ctx: Context) -> Hits:
    """
    What it does:
        Applies the rule packs: YAML files that map procedure code sets to diagnosis patterns
        that support them or do not. Each edit checks one of: every diagnosis of the claim is
        in the edit's "not supporting" list; the line's first-listed diagnosis is not in its
        "supporting" list; the claim has fewer distinct supporting diagnoses than needed. The
        shipped packs cover therapy (97010-97799) on a claim whose only diagnoses are a
        fracture in its initial encounter or screening/history Z codes, and Medicare
        chiropractic manipulation (98940-98942) without a first-listed subluxation code
        (M99.00-M99.05) or with fewer regions than the level billed. Add your own packs with
        the `packs` setting (see docs/rule-packs.md).

    Why it matters:
        A diagnosis can be valid and still not justify the service: the line is denied as
        inconsistent with the procedure (CARC 11) or not medically necessary (CARC 50).

    Example:
        `S32.2XXA` (fracture of coccyx, initial encounter) as the only diagnosis of a
        low-back physical-therapy claim (97110, 97140); `M54.50` first-listed on a Medicare
        98940 line.

    Fix:
        Code the condition the service treats (for an injury, usually its subsequent-encounter
        code); for Medicare chiropractic, list the subluxation code of each region treated
        first.
    """
    fx = facts(ctx)
    chosen = np.zeros(len(fx.rows), dtype=bool)
    found: list[tuple[IntArray, ObjArray]] = []
    for pack in _packs(ctx):
        for edit in pack.edits:
            at, msg = _edit_hits(fx, pack, edit)
            # the first edit that selects a row gives its message
            new = ~chosen[at]
            if new.any():
                found.append((at[new], msg[new]))
                chosen[at[new]] = True
    if not found:
        return Hits(fx.mask(chosen), fx.series(chosen, np.empty(0, dtype=object)))
    at = np.concatenate([a for a, _ in found])
    message = np.concatenate([m for _, m in found])[np.argsort(at, kind="stable")]
    return Hits(fx.mask(chosen), fx.series(chosen, message))
