"""Diagnosis-code rules: is each code billable on its date of service, and if not, why not."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from eobcheck.rule import Applicability, Hits, Severity, rule

if TYPE_CHECKING:
    from eobcheck.engine import Context

CMS_ORDER = "CMS ICD-10-CM code descriptions in tabular order (order file), FY2016-FY2027"
CMS_CONVERSION = "CMS/NCHS ICD-10-CM conversion table (previous -> current codes)"
MCE = "CMS Medicare Code Editor (MCE) v44 ICD-10-CM master: code validity dates"
GUIDELINES_I_B_2 = (
    "ICD-10-CM Official Guidelines for Coding and Reporting, I.A.3 and I.B.2 "
    "(code to the highest number of characters available)"
)
DENIALS_146 = "CARC 146 (diagnosis invalid for the date of service) and RARC M84"
DENIALS_M76 = "CARC 16 with RARC M76 (missing/incomplete/invalid diagnosis)"


def fixes(suggestions: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Applicability and replacement from suggestion tuples: one -> unsafe, several -> display."""
    n = suggestions.map(len, na_action="ignore").fillna(0)
    applicability = pd.Series(None, index=suggestions.index, dtype="object")
    applicability[n == 1] = Applicability.UNSAFE.value
    applicability[n > 1] = Applicability.DISPLAY_ONLY.value
    replacement = suggestions.map(lambda s: s[0].code if len(s) == 1 else None, na_action="ignore")
    return applicability, replacement.astype("object")


def status_hits(ctx: Context, status: str, fix: Applicability | None = None) -> Hits:
    """Hits for every checked diagnosis with reference ``status``; messages from the reference.

    The message is the reference's one-sentence reason for the code on its date of service.
    """
    dx = ctx.dx
    codes = ctx.cache.get("dx_status")
    if codes is None:  # the status as integers, once for all of these rules
        codes = ctx.cache["dx_status"] = dx["status"].cat.codes.to_numpy()
    pos = np.flatnonzero(codes == dx["status"].cat.categories.get_loc(status))
    mask = pd.Series(np.zeros(len(dx), dtype=bool), index=dx.index)
    mask.iloc[pos] = True
    hit = dx.take(pos)
    message = ctx.reference.reasons(hit, ctx.frame["date_of_service"].take(pos))
    suggestions = hit["suggestions"]
    if fix is None:
        applicability, replacement = fixes(suggestions)
    else:
        applicability = pd.Series(fix.value, index=suggestions.index, dtype="object")
        replacement = suggestions.map(lambda s: s[0].code if s else None, na_action="ignore")
    return Hits(mask, message, suggestions, applicability, replacement)


@rule(
    "DX001",
    "malformed-code",
    Severity.ERROR,
    "The diagnosis is not written as an ICD-10-CM code at all.",
    sources=("ICD-10-CM Official Guidelines I.A (code structure)", DENIALS_M76),
)
def malformed_code(ctx: Context) -> Hits:
    """
    What it does:
        Flags diagnosis cells whose text does not have ICD-10-CM form: a letter, a digit, a
        letter or digit, then up to four more letters or digits, with an optional dot after the
        third character. Lower case, spaces around the code and a missing dot are accepted.

    Why it matters:
        A payer cannot read such a value as a diagnosis; the line is rejected or denied
        (CARC 16 with RARC M76).

    Example:
        `XYZ.1`, `M5` or `54.5M` on any date of service.

    Fix:
        Look the diagnosis up in the medical record and write the full code, e.g. `M54.50`.
    """
    return status_hits(ctx, "malformed")


@rule(
    "DX002",
    "unknown-code",
    Severity.ERROR,
    "The diagnosis looks like an ICD-10-CM code but has never been one.",
    sources=(CMS_ORDER, DENIALS_M76),
)
def unknown_code(ctx: Context) -> Hits:
    """
    What it does:
        Flags well-formed codes that are in no ICD-10-CM release from FY2016 to the newest one
        eobcheck knows, neither billable nor as a header.

    Why it matters:
        A typo such as `M99.99` or `M54.55` passes a format check but is denied (CARC 16 with
        RARC M76).

    Example:
        `M99.99` on 2023-01-05.

    Fix:
        Check the code against the medical record; often a digit is transposed.
    """
    return status_hits(ctx, "unknown")


@rule(
    "DX003",
    "retired-code",
    Severity.ERROR,
    "The code was billable before the date of service but was retired by then.",
    sources=(CMS_ORDER, CMS_CONVERSION, MCE, DENIALS_146),
)
def retired_code(ctx: Context) -> Hits:
    """
    What it does:
        Flags codes that were billable at some date before the date of service and are not
        billable on it, and suggests the codes that replaced them, chained through later
        changes to codes valid on the date of service.

    Why it matters:
        Payers apply the code set in effect on the date of service with no grace period: a
        retired code is denied with CARC 146 / RARC M84.

    Example:
        `M54.5` (Low back pain) on 2023-01-05: retired on 2021-10-01, replaced by `M54.50`,
        `M54.51` and `M54.59`.

    Fix:
        Choose the successor that the documentation supports. One successor is offered as an
        unsafe fix; several are shown for a coder to choose.
    """
    return status_hits(ctx, "retired")


@rule(
    "DX004",
    "premature-code",
    Severity.ERROR,
    "The code was not yet valid on the date of service.",
    sources=(CMS_ORDER, CMS_CONVERSION, MCE, DENIALS_146),
)
def premature_code(ctx: Context) -> Hits:
    """
    What it does:
        Flags codes that became billable only after the date of service (including every
        ICD-10-CM code before 2015-10-01) and suggests the predecessor valid on that date.

    Why it matters:
        A claim for an older date of service must use the code set of that date; a code from a
        later release is denied (CARC 146 / RARC M84), typically when an old claim is corrected
        or resubmitted with today's codes.

    Example:
        `M54.50` on 2021-06-15 (valid from 2021-10-01): bill `M54.5` instead.

    Fix:
        Use the predecessor code valid on the date of service.
    """
    return status_hits(ctx, "not_yet_valid")


@rule(
    "DX005",
    "incomplete-code",
    Severity.ERROR,
    "The code is a header on the date of service: it needs more characters.",
    sources=(
        CMS_ORDER,
        GUIDELINES_I_B_2,
        "CARC 16 with RARC M81 (code to the highest specificity)",
    ),
)
def incomplete_code(ctx: Context) -> Hits:
    """
    What it does:
        Flags category or subcategory codes that have children on the date of service (and were
        never billable themselves before it), and lists the billable children valid then.

    Why it matters:
        Only the most specific codes are billable; a header is denied with RARC M81
        ("code to the highest level of specificity").

    Example:
        `M54.4` needs a 5th character (`M54.40`, `M54.41`, `M54.42`); `S33.5` needs the
        placeholder and a 7th character (`S33.5XXA`, `S33.5XXD`, `S33.5XXS`).

    Fix:
        Choose the child code the documentation supports.
    """
    return status_hits(ctx, "incomplete")


@rule(
    "DX006",
    "missing-placeholder",
    Severity.ERROR,
    "A 7th character is present but the placeholder X is missing.",
    sources=(
        "ICD-10-CM Official Guidelines I.A.4-5 (placeholder character, 7th characters)",
        DENIALS_M76,
    ),
)
def missing_placeholder(ctx: Context) -> Hits:
    """
    What it does:
        Flags codes that become valid on the date of service once the placeholder `X` is
        inserted before the 7th character.

    Why it matters:
        `S33.5A` is not a code; payers reject it (RARC M76) even though the intent is clear.

    Example:
        `S33.5A` -> `S33.5XXA`.

    Fix:
        Insert the placeholder(s). The result is valid on the date of service, so the fix is
        offered as safe.
    """
    return status_hits(ctx, "needs_placeholder", fix=Applicability.SAFE)


@rule(
    "DX007",
    "icd9-code",
    Severity.ERROR,
    "An ICD-9-CM code on a date of service on or after 2015-10-01.",
    sources=(
        "CMS: ICD-10 compliance date 2015-10-01",
        "CMS 2015 General Equivalence Mappings (ICD-9-CM -> ICD-10-CM)",
        CMS_CONVERSION,
        DENIALS_146,
    ),
)
def icd9_code(ctx: Context) -> Hits:
    """
    What it does:
        Flags ICD-9-CM codes (e.g. `724.2`, `V57.1`, `E849.0`) on dates of service on or after
        2015-10-01 and suggests the ICD-10-CM codes the General Equivalence Mappings give,
        chained through later code changes to codes valid on the date of service.

    Why it matters:
        ICD-9-CM has not been accepted since 2015-10-01; such lines are denied.

    Example:
        `724.2` (lumbago) on 2023-01-05: the GEM maps it to `M54.5`, retired in 2021, so the
        suggestions are `M54.50`, `M54.51`, `M54.59`. On 2019-03-01 the suggestion is `M54.5`.

    Fix:
        Code the diagnosis in ICD-10-CM; the GEM targets are a starting point, not an answer.
    """
    return status_hits(ctx, "icd9")
