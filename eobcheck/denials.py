"""Denial triage: tie each diagnosis-related denial on the EOB to the finding that explains it.

A service line is a *diagnosis-related denial* when its adjustments carry one of the CARCs
9, 10, 11, 50, 146 or 167, or CARC 16 together with one of the RARCs M76, MA63, M64, M81 or
M84 (group prefixes CO/PR/OA/PI are accepted and ignored). The denial is *explained* when a
finding of a rule that can cause that code sits on the same line or the same claim;
``EXPLAINED_BY`` is the documented mapping. Everything else is *unexplained*: a person must look.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

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


def empty_denials() -> pd.DataFrame:
    """A denials frame with no rows."""
    return pd.DataFrame({c: pd.Series(dtype="object") for c in DENIAL_COLUMNS})


def triage(ctx: Context, findings: pd.DataFrame) -> pd.DataFrame:
    """One row per diagnosis-related denied line (DENIAL_COLUMNS), explained or not."""
    f = ctx.frame
    first = (~f["line_id"].duplicated()).to_numpy()
    rows = np.flatnonzero(first & ctx.checked.to_numpy())
    if not len(rows):
        return empty_denials()
    # distinct (CARC list, RARC list) pairs are few: parse each once
    carc_codes, carc_values = pd.factorize(f["carc"].take(rows).fillna(""))
    rarc_codes, rarc_values = pd.factorize(f["rarc"].take(rows).fillna(""))
    pair = carc_codes.astype(np.int64) * (len(rarc_values) + 1) + rarc_codes
    codes, pair_values = pd.factorize(pair)
    parsed = [
        _denial_codes(
            str(carc_values[int(v) // (len(rarc_values) + 1)]),
            str(rarc_values[int(v) % (len(rarc_values) + 1)]),
        )
        for v in pair_values
    ]
    denial_values = np.empty(len(parsed) + 1, dtype=object)
    denial_values[:] = [p[0] for p in parsed] + [()]
    denial_codes = denial_values[codes]
    denied = np.array([bool(p[0]) for p in parsed] + [False])[codes]
    if not denied.any():
        return empty_denials()
    take = rows[denied]
    lines = f[
        [
            "line_id",
            "claim_id",
            "line",
            "billed",
            "paid",
            "source_file",
            "source_sheet",
            "source_row",
        ]
    ].take(take)
    claim = ctx.claim_key.take(take)
    # (line, rule that could explain it) pairs, one per line x rule
    explainers = pd.DataFrame(
        {"line_id": lines["line_id"].to_numpy(), "claim": claim.to_numpy(), "u": codes[denied]}
    )
    rule_sets = pd.Series([sorted(p[1]) for p in parsed], dtype="object")
    explainers["rule"] = explainers["u"].map(rule_sets)
    explainers = explainers.explode("rule").dropna(subset=["rule"])
    # what was found, by line and by claim, and whether it came with a suggested fix
    found = pd.DataFrame(
        {
            "line_id": findings["line_id"].to_numpy(dtype=np.int64),
            "rule": findings["name"].to_numpy(dtype=object),
            "fix": findings["suggestions"].map(len, na_action="ignore").fillna(0).to_numpy() > 0,
        }
    )
    line_claim = pd.Series(ctx.claim_key.to_numpy()[first], index=f["line_id"].to_numpy()[first])
    found["claim"] = found["line_id"].map(line_claim)
    by_line = found.groupby(["line_id", "rule"], as_index=False)["fix"].any()
    by_claim = found.groupby(["claim", "rule"], as_index=False)["fix"].any()
    on_line = explainers.merge(by_line, on=["line_id", "rule"])
    on_claim = explainers.merge(by_claim, on=["claim", "rule"])
    matched = pd.concat([on_line, on_claim], ignore_index=True)
    # the set of explaining rules per line as a bit mask, then one list per distinct mask
    rule_codes, rule_names = pd.factorize(matched["rule"], sort=True)
    matched["bit"] = np.left_shift(np.int64(1), rule_codes.astype(np.int64))
    matched = matched.drop_duplicates(["line_id", "rule"])
    masks = matched.groupby("line_id")["bit"].sum()
    mask_codes, mask_values = pd.factorize(masks)
    names = list(rule_names)
    lists = np.empty(len(mask_values), dtype=object)
    lists[:] = [[n for i, n in enumerate(names) if (int(v) >> i) & 1] for v in mask_values]
    explained_by = pd.Series(lists[mask_codes], index=masks.index)
    fixable = matched.groupby("line_id")["fix"].any()
    ids = lines["line_id"]
    paid = lines["paid"].fillna(0.0)
    amount = (lines["billed"] - paid).where(lines["billed"].notna())
    by = ids.map(explained_by)
    out = pd.DataFrame(
        {
            "claim_id": lines["claim_id"].astype("object").to_numpy(),
            "line": lines["line"].astype("object").to_numpy(),
            "codes": [list(c) for c in denial_codes[denied]],
            "amount": amount.to_numpy(dtype=float),
            "explained": by.notna().to_numpy(),
            "explained_by": [b if isinstance(b, list) else [] for b in by],
            "fixable": ids.map(fixable).astype("boolean").fillna(False).to_numpy(dtype=bool),
            "file": lines["source_file"].to_numpy(dtype=object),
            "sheet": lines["source_sheet"].to_numpy(dtype=object),
            "row": lines["source_row"].to_numpy(),
        }
    )
    return out.reset_index(drop=True)


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
