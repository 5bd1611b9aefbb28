"""Denial triage: tie each diagnosis-related denial on the EOB to the finding that explains it.

A service line is a *diagnosis-related denial* when its adjustments carry one of the CARCs
9, 10, 11, 50, 146 or 167, or CARC 16 together with one of the RARCs M76, MA63, M64, M81 or
M84 (group prefixes CO/PR/OA/PI are accepted and ignored). The denial is *explained* when a
finding of a rule that can cause that code sits on the same line or the same claim;
``EXPLAINED_BY`` is the documented mapping. Everything else is *unexplained*: a person must look.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from eobcheck.engine import Context

_INVALID_FOR_DATE: Final = frozenset({"retired-code", "premature-code", "icd9-code"})
_INVALID_CODE: Final = frozenset(
    {"malformed-code", "unknown-code", "incomplete-code", "missing-placeholder"}
)
_ANY_INVALID: Final = _INVALID_FOR_DATE | _INVALID_CODE
_MISMATCH: Final = frozenset(
    {"procedure-diagnosis-mismatch", "initial-encounter-for-therapy", "laterality-conflict"}
)

#: denial code -> rules whose findings can explain it (CARCs bare, RARCs as published)
EXPLAINED_BY: Final[dict[str, frozenset[str]]] = {
    "146": _INVALID_FOR_DATE,  # diagnosis invalid for the date(s) of service
    "M84": _INVALID_FOR_DATE,  # code sets in effect at the time of service must be used
    "M81": frozenset({"incomplete-code"}),  # code to the highest level of specificity
    "M76": _INVALID_CODE | {"missing-diagnosis"},  # missing/incomplete/invalid diagnosis
    "MA63": _ANY_INVALID | {"missing-diagnosis", "external-cause-first", "manifestation-first"},
    "M64": _ANY_INVALID,  # missing/incomplete/invalid other diagnosis
    "11": _MISMATCH,  # diagnosis inconsistent with the procedure
    "50": frozenset({"procedure-diagnosis-mismatch"}),  # not deemed a medical necessity
    "167": frozenset({"procedure-diagnosis-mismatch"}),  # diagnosis not covered
    "9": frozenset({"age-conflict"}),  # inconsistent with the patient's age
    "10": frozenset({"sex-conflict"}),  # inconsistent with the patient's gender
}
DENIAL_CARCS: Final = frozenset({"9", "10", "11", "16", "50", "146", "167"})
DENIAL_RARCS: Final = frozenset({"M76", "MA63", "M64", "M81", "M84"})
DENIAL_COLUMNS: Final = (
    "claim_id",
    "line",
    "codes",
    "amount",
    "explained",
    "explained_by",
    "fixable",
    "file",
    "sheet",
    "row",
)

_CARC = re.compile(r"^(?:(CO|PR|OA|PI|CR)-?)?([A-Z]?\d{1,3}|[A-Z]\d?)$")
# every rule that can explain a denial, as one bit each; sorted, so bit order is name order
_RULE_NAMES: Final = tuple(sorted(frozenset().union(*EXPLAINED_BY.values())))
_BITS: Final[dict[str, int]] = {name: 1 << i for i, name in enumerate(_RULE_NAMES)}


def _denial_codes(carc: str, rarc: str) -> tuple[tuple[str, ...], frozenset[str]]:
    """The diagnosis-related denial codes in a line's CARC and RARC lists and their explainers."""
    reasons: list[tuple[str, str]] = []
    for token in carc.split():
        m = _CARC.match(token.upper())
        if m:
            reasons.append((token, m.group(2)))
    remarks = [r.upper() for r in rarc.split()]
    dx_remarks = [r for r in remarks if r in DENIAL_RARCS]
    codes: list[str] = []
    rules: set[str] = set()
    for token, reason in reasons:
        if reason == "16":
            if dx_remarks:
                codes.append(token)
        elif reason in DENIAL_CARCS:
            codes.append(token)
            rules |= EXPLAINED_BY[reason]
    if codes:
        for r in dx_remarks:
            codes.append(r)
            rules |= EXPLAINED_BY[r]
    return tuple(codes), frozenset(rules)


def _has_denial_reason(carc: str) -> bool:
    """Whether a CARC list names a diagnosis-related reason (16 counts: its RARCs decide)."""
    for token in carc.split():
        m = _CARC.match(token.upper())
        if m and m.group(2) in DENIAL_CARCS:
            return True
    return False


def _rule_mask(rules: frozenset[str]) -> int:
    """The bits of ``rules``."""
    mask = 0
    for name in rules:
        mask |= _BITS[name]
    return mask


def _rule_names(mask: int) -> list[str]:
    """The rule names of the bits in ``mask``, sorted."""
    return [name for i, name in enumerate(_RULE_NAMES) if (mask >> i) & 1]


def _line_rows(line_ids: np.ndarray, first: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """The first row of each of ``lines`` (``first``: every line's first row), -1 for a line
    not in the frame."""
    if not len(first) or not len(lines):
        return np.full(len(lines), -1, dtype=np.int64)
    ids = line_ids[first]
    rising = bool((ids[1:] > ids[:-1]).all())
    if rising and ids[-1] - ids[0] == len(ids) - 1:
        # ids run without gaps (as readers number lines): a line's id places it directly
        at = lines - ids[0]
        inside = (at >= 0) & (at < len(ids))
        return np.where(inside, first[np.where(inside, at, 0)], -1)
    if not rising:  # lines out of id order: sort them for the search
        order = np.argsort(ids, kind="stable")
        first, ids = first[order], ids[order]
    at = np.minimum(np.searchsorted(ids, lines), len(ids) - 1)
    return np.where(ids[at] == lines, first[at], -1)


def _group_or(keys: np.ndarray, bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct ``keys`` ascending, and the OR of the ``bits`` of each."""
    if not len(keys):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    k = keys[order]
    starts = np.flatnonzero(np.concatenate(([True], k[1:] != k[:-1])))
    return k[starts], np.bitwise_or.reduceat(bits[order], starts)


def _or_by(keys: np.ndarray, bits: np.ndarray, query: np.ndarray) -> np.ndarray:
    """For each query key, its bits in a ``_group_or`` result (0 when absent)."""
    if not len(keys):
        return np.zeros(len(query), dtype=np.int64)
    pos = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
    return np.where(keys[pos] == query, bits[pos], np.int64(0))


def _has_suggestions(values: np.ndarray) -> np.ndarray:
    """Per finding, whether its suggestions are given and not empty."""
    given = ~pd.isna(values)
    out = np.zeros(len(values), dtype=bool)
    out[given] = [len(v) > 0 for v in values[given]]
    return out


def _objects(values: list[Any], codes: np.ndarray) -> np.ndarray:
    """An object array holding ``values[c]`` for each code: rows of one value share it."""
    table = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):  # one by one: numpy would read equal-length lists as 2-D
        table[i] = value
    out: np.ndarray = table[codes]
    return out


def _text(values: Any) -> Any:
    """A column of the text ``values`` of the given rows, typed as a frame types such text.

    Without missing values a column is text throughout, so the type a frame gives one value
    is the type of the whole column and the values need no per-row scan; otherwise the frame
    types the object array itself.
    """
    missing = np.asarray(values.isna(), dtype=bool)
    if len(values) and not missing.any():
        dtype = pd.DataFrame({"v": np.asarray(values[:1], dtype=object)})["v"].dtype
        if isinstance(values, pd.Categorical):  # the few categories typed, then taken per row
            return pd.Series(values.categories.astype(dtype).array.take(values.codes))
        return pd.Series(values.astype(dtype), copy=False)
    if isinstance(values, pd.Categorical) and missing.all():  # NaN throughout: object
        return pd.Series(np.asarray(values, dtype=object), dtype=object)
    return np.asarray(values, dtype=object)


def empty_denials() -> pd.DataFrame:
    """A denials frame with no rows."""
    return pd.DataFrame({c: pd.Series(dtype="object") for c in DENIAL_COLUMNS})


def triage(ctx: Context, findings: pd.DataFrame) -> pd.DataFrame:
    """One row per diagnosis-related denied line (DENIAL_COLUMNS), explained or not.

    Rows with the same denial codes, or the same explaining rules, share one list object.
    """
    f = ctx.frame
    line_ids = f["line_id"].to_numpy(dtype=np.int64)
    first = np.asarray(ctx.line_first, dtype=np.int64)
    checked_lines = np.flatnonzero(ctx.checked.to_numpy(dtype=bool)[first])
    rows = first[checked_lines]
    if not len(rows):
        return empty_denials()
    # distinct CARC lists are few: only lines whose CARCs name a diagnosis reason need a RARC look
    line_codes, carc_values = ctx.line_carc
    carc_codes = line_codes[checked_lines]
    candidate = np.array([_has_denial_reason(str(v)) for v in carc_values] + [False])
    cand = np.flatnonzero(candidate[carc_codes])
    if not len(cand):
        return empty_denials()
    rarc_codes, rarc_values = pd.factorize(f["rarc"].array.take(rows[cand]))
    width = len(rarc_values) + 1
    rarc_codes = np.where(rarc_codes < 0, width - 1, rarc_codes)  # missing: the "" slot
    pair_codes, pair_values = pd.factorize(carc_codes[cand].astype(np.int64) * width + rarc_codes)
    carcs = [*map(str, carc_values), ""]  # code -1 (missing) reads as no adjustment
    rarcs = [*map(str, rarc_values), ""]
    parsed = [_denial_codes(carcs[int(v) // width], rarcs[int(v) % width]) for v in pair_values]
    pair_denied = np.array([bool(codes) for codes, _ in parsed], dtype=bool)
    pair_mask = np.array([_rule_mask(rules) for _, rules in parsed], dtype=np.int64)
    denied = pair_denied[pair_codes]
    if not denied.any():
        return empty_denials()
    take = rows[cand[denied]]
    pairs = pair_codes[denied]
    explainable = pair_mask[pairs]
    claim_keys = ctx.claim_key.to_numpy(dtype=np.int64)
    denied_lines = line_ids[take]
    denied_claims = claim_keys[take]

    # findings of rules that can explain a denial here, with the claim of their line
    wanted = np.int64(np.bitwise_or.reduce(pair_mask[pair_denied]))
    name_codes, name_values = pd.factorize(findings["name"])
    bit_of = np.array([_BITS.get(str(v), 0) for v in name_values] + [0], dtype=np.int64)
    picked = np.flatnonzero(bit_of[name_codes] & wanted)
    found_rows = _line_rows(line_ids, first, findings["line_id"].to_numpy(dtype=np.int64)[picked])
    picked = picked[found_rows >= 0]
    found_rows = found_rows[found_rows >= 0]
    bits = bit_of[name_codes[picked]]
    found_lines = line_ids[found_rows]
    found_claims = claim_keys[found_rows]
    # a line's own findings belong to its claim too, so the claim's bits cover the line's
    on_line = _or_by(*_group_or(found_lines, bits), denied_lines) & explainable
    explained_mask = _or_by(*_group_or(found_claims, bits), denied_claims) & explainable
    explained = explained_mask != 0

    # suggestions matter on claims with an explained line only; a rule found on the line
    # itself speaks for the line, otherwise the claim's findings of that rule do
    near = np.isin(found_claims, denied_claims[explained])
    fix = _has_suggestions(findings["suggestions"].to_numpy(dtype=object)[picked[near]])
    fix_bits = bits[near][fix]
    line_fix = _or_by(*_group_or(found_lines[near][fix], fix_bits), denied_lines)
    claim_fix = _or_by(*_group_or(found_claims[near][fix], fix_bits), denied_claims)
    fixable = ((on_line & line_fix) | (explained_mask & ~on_line & claim_fix)) != 0

    mask_codes, mask_values = pd.factorize(explained_mask)
    billed = f["billed"].to_numpy(dtype=float)[take]
    paid = f["paid"].to_numpy(dtype=float)[take]
    out = pd.DataFrame(
        {
            "claim_id": _text(f["claim_id"].array.take(take)),
            "line": pd.Series(f["line"].array.take(take).astype("object"), dtype=object),
            "codes": _objects([list(codes) for codes, _ in parsed], pairs),
            "amount": billed - np.where(np.isnan(paid), 0.0, paid),
            "explained": explained,
            "explained_by": _objects([_rule_names(int(v)) for v in mask_values], mask_codes),
            "fixable": fixable,
            "file": _text(f["source_file"].array.take(take)),
            "sheet": _text(f["source_sheet"].array.take(take)),
            "row": f["source_row"].to_numpy(dtype=np.int64)[take],
        }
    )
    return out


def summarize(denials: pd.DataFrame) -> dict[str, float | int]:
    """Denied lines and dollars, how much of it is explained and how much has a suggested fix."""
    amount = denials["amount"].astype(float).fillna(0.0)
    explained = denials["explained"].astype(bool)
    fixable = denials["fixable"].astype(bool)
    return {
        "denied_lines": len(denials),
        "denied_amount": round(float(amount.sum()), 2),
        "denied_explained_lines": int(explained.sum()),
        "denied_explained_amount": round(float(amount[explained].sum()), 2),
        "denied_fixable_amount": round(float(amount[fixable].sum()), 2),
    }
