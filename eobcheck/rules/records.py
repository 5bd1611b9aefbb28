"""Record rules: rows that cannot be checked, claims without diagnoses, repeated diagnoses."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import numpy as np
import pandas as pd

from eobcheck.rule import Hits, Severity, rule

if TYPE_CHECKING:
    from eobcheck.engine import Context

#: why a line is not checked (Context.reject_code indexes it)
REJECT_REASONS: Final = ("invalid-date", "missing-claim-id")


@rule(
    "DX010",
    "invalid-date",
    Severity.ERROR,
    "The date of service is missing or cannot be read; the line is not checked.",
    sources=("X12 837 DTP*472 (service date) is required on every service line",),
    rejects=True,
)
def invalid_date(ctx: Context) -> Hits:
    """
    What it does:
        Reports every service line whose date of service is empty or not a date eobcheck can
        read (ISO 2023-01-05, 01/05/2023, 1/5/23, 20230105, Excel dates and serial numbers).
        Such a line is counted as rejected, with this reason, and no other rule checks it.

    Why it matters:
        Whether a code is valid depends on the date of service; without it nothing can be said,
        and a claim without one is rejected by every payer.

    Example:
        `13/45/2023`, `N/A` or an empty cell in the date-of-service column.

    Fix:
        Correct the date in the export (or in the practice-management system) and check again.
    """
    mask = ctx.first_rows(ctx.reject_code == REJECT_REASONS.index("invalid-date"))
    raw = ctx.frame["date_raw"][mask].fillna("").str.strip()
    message = (
        'Date of service "' + raw + '" cannot be read; write it as YYYY-MM-DD or '
        "MM/DD/YYYY. This line was not checked."
    )
    message = message.where(raw != "", "The date of service is empty; this line was not checked.")
    return Hits(
        mask,
        message,
        column=ctx.header_of("date_of_service", mask),
        value=ctx.frame["date_raw"][mask].astype("object"),
    )


@rule(
    "DX011",
    "missing-claim-id",
    Severity.ERROR,
    "The claim number is empty; the line is not checked.",
    sources=("X12 837 CLM01 (patient control number) is required",),
    rejects=True,
)
def missing_claim_id(ctx: Context) -> Hits:
    """
    What it does:
        Reports every service line with an empty claim number. Such a line is counted as
        rejected, with this reason, and no other rule checks it. Total and subtotal rows at the
        bottom of an export usually show up here.

    Why it matters:
        Claim-level checks (duplicates, missing diagnoses, denials) need to know which lines
        belong together; a line without a claim cannot be placed.

    Example:
        A "Total" row, or a service line whose claim number cell is blank.

    Fix:
        Fill in the claim number, or remove summary rows from the export.
    """
    mask = ctx.first_rows(ctx.reject_code == REJECT_REASONS.index("missing-claim-id"))
    return Hits(
        mask,
        "The claim number is empty; this line was not checked.",
        column=ctx.header_of("claim_id", mask),
    )


@rule(
    "DX008",
    "duplicate-diagnosis",
    Severity.WARNING,
    "The same diagnosis code is listed at two positions of one claim.",
    sources=("CMS-1500 item 21 / X12 837 HI: each diagnosis is reported once",),
)
def duplicate_diagnosis(ctx: Context) -> Hits:
    """
    What it does:
        Flags a diagnosis code that appears at a second diagnosis position on the same claim
        (after normalization, so `M54.50` and ` m5450` are the same code). Lines that repeat the
        claim's diagnosis list at the same positions are not duplicates.

    Why it matters:
        A repeated code wastes one of the 12 diagnosis positions and often means a different
        code was intended; some payers reject the claim.

    Example:
        Dx 1 `M54.50` and Dx 3 `M5450` on claim 1001.

    Fix:
        Remove the repeat, or replace it with the code that was meant.
    """
    f = ctx.frame
    use = (ctx.checked & ctx.has_dx).to_numpy(dtype=bool)
    rows = np.flatnonzero(use)
    # integer keys: (claim, normalized code) -> the first position that code is listed at
    code, codes = ctx.dx_ids
    key = ctx.claim_key.to_numpy()[rows] * (len(codes) + 1) + code[rows]
    group, _ = pd.factorize(key)
    at = f["dx_position"].to_numpy(dtype="float64", na_value=np.nan)[rows]
    lowest = np.full(group.max(initial=-1) + 1, np.inf)
    np.minimum.at(lowest, group, at)
    first_at = lowest[group]
    dup = at > first_at
    mask = pd.Series(False, index=f.index)
    mask.iloc[rows[dup]] = True
    hit = f.index[rows[dup]]
    norm = pd.Series(codes.take(code[rows[dup]]), index=hit, dtype="string")
    first = pd.Series(first_at[dup], index=hit)
    pos = pd.Series(at[dup], index=hit)
    message = (
        norm
        + " is listed twice on claim "
        + f["claim_id"].take(rows[dup]).set_axis(hit)
        + ": at diagnosis positions "
        + first.astype("Int64").astype("string")
        + " and "
        + pos.astype("Int64").astype("string")
        + "; remove the repeat or code what was meant."
    )
    return Hits(mask, message.astype("object"), fix_applicability="display_only")


@rule(
    "DX009",
    "missing-diagnosis",
    Severity.ERROR,
    "A claim has no diagnosis code at all.",
    sources=(
        "CMS-1500 item 21 / X12 837 HI*ABK: a principal diagnosis is required",
        "CARC 16 with RARC MA63 (missing principal diagnosis)",
    ),
)
def missing_diagnosis(ctx: Context) -> Hits:
    """
    What it does:
        Flags each claim none of whose checked lines carries a diagnosis code. The finding
        points at the claim's first row. Claims read from an X12 835 alone are not flagged:
        an 835 carries no diagnoses, and the report's input notes say which file to add.

    Why it matters:
        Every professional and institutional claim needs at least a principal diagnosis; such a
        claim is rejected (CARC 16 with RARC MA63).

    Example:
        Claim 1009 whose Dx 1..Dx 4 cells are all empty.

    Fix:
        Add the diagnosis codes from the medical record.
    """
    checked = ctx.checked.to_numpy()
    if ctx.no_dx_files:  # an 835 has no diagnoses to miss: its note says which file to add
        files = ctx.frame["source_file"].astype("object")
        checked = checked & ~files.isin(ctx.no_dx_files).to_numpy()
    rows = np.flatnonzero(checked)
    claim, _ = pd.factorize(ctx.claim_key.to_numpy()[rows])
    with_dx = np.zeros(claim.max(initial=-1) + 1, dtype=bool)
    with_dx[claim[ctx.has_dx.to_numpy()[rows]]] = True
    first_row = np.full(len(with_dx), len(checked), dtype=np.intp)
    np.minimum.at(first_row, claim, rows)
    mask = pd.Series(False, index=ctx.frame.index)
    mask.iloc[first_row[~with_dx]] = True
    message = "Claim " + ctx.frame["claim_id"][mask] + " has no diagnosis code; add at least one."
    return Hits(mask, message.astype("object"), column=ctx.header_of("dx", mask))
