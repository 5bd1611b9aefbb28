"""Patient rules: a code against the patient's age and sex, and against the other visits."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from eobcheck.reference.core import Suggestion
from eobcheck.rule import Applicability, Hits, Severity, rule
from eobcheck.rules.facts import BoolArray, Facts, at, day_text, facts

if TYPE_CHECKING:
    from eobcheck.engine import Context

MCE_AGE = (
    "CMS Medicare Code Editor (MCE) v44: age edits and age groups (newborn 0, pediatric 0-17, "
    "maternity 12-55 through 2019-09-30 and 9-64 from 2019-10-01, adult 15-124)"
)
MCE_SEX = (
    "CMS Medicare Code Editor (MCE) v44: sex edit (male/female codes), in effect through 2024-09-30"
)
DENIALS_9 = "CARC 9 (diagnosis inconsistent with the patient's age)"
DENIALS_10 = "CARC 10 (diagnosis inconsistent with the patient's gender)"
GUIDELINES_SPECIFIC = (
    "ICD-10-CM Official Guidelines for Coding and Reporting, I.B.18 (use of sign/symptom/"
    "unspecified codes: when sufficient information is available, code the specific condition)"
)
MCE_UNSPECIFIED = "CMS Medicare Code Editor (MCE) v44: unspecified-code flag"
DENIALS_M81 = "CARC 16 with RARC M81 (code to the highest level of specificity)"

_GROUPS: Final = ("newborn", "pediatric", "maternity", "adult")
_NS_PER_DAY: Final = 86_400 * 10**9


def _txt(values: object) -> pd.Series:
    return pd.Series(values, dtype="object").astype("string").fillna("")


def _age(fx: Facts) -> npt.NDArray[np.float64]:
    """Age in whole years on the date of service (NaN when unknown)."""
    f = fx.ctx.frame
    dob = pd.Series(f["birth_date"].to_numpy(dtype="datetime64[ns]")[fx.rows])
    dos = pd.Series(fx.day.astype("datetime64[D]").astype("datetime64[ns]"))
    years = dos.dt.year - dob.dt.year
    before = (dos.dt.month < dob.dt.month) | (
        (dos.dt.month == dob.dt.month) & (dos.dt.day < dob.dt.day)
    )
    from_dob = (years - before.astype(np.int64)).to_numpy(dtype="float64", na_value=np.nan)
    given = f["age"].to_numpy(dtype="float64", na_value=np.nan)[fx.rows]
    out: npt.NDArray[np.float64] = np.where(np.isnan(from_dob), given, from_dob)
    return out


def _day_of(value: object, default: int) -> int:
    """Day number (since 1970-01-01) of a date cell; ``default`` when empty."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return default
    text = str(value).strip()
    if not text or text in ("NaT", "None", "nan"):
        return default
    return int(np.datetime64(text[:10], "D").astype(np.int64))


@rule(
    "PT001",
    "age-conflict",
    Severity.ERROR,
    "The code's MCE age group does not include the patient's age on the date of service.",
    sources=(MCE_AGE, DENIALS_9),
)
def age_conflict(ctx: Context) -> Hits:
    """
    What it does:
        When the export gives a birth date (or an age), computes the patient's age on the date
        of service and flags a code the Medicare Code Editor restricts to an age group that
        does not include it: newborn (0), pediatric (0-17), maternity (12-55 through
        2019-09-30, 9-64 from 2019-10-01) and adult (15-124), with the flags and ranges in
        effect on the date of service.

    Why it matters:
        A code for another age group is either a coding error or a wrong birth date; payers
        deny the line (CARC 9).

    Example:
        `Z00.129` (routine child health examination, a pediatric code) for a patient born on
        1961-03-14 seen on 2023-01-05 (age 61).

    Fix:
        Check the birth date in the export, then the code: use the code for the patient's age.
    """
    fx = facts(ctx)
    if ctx.frame["birth_date"].isna().all() and ctx.frame["age"].isna().all():
        return fx.nothing()  # the export gives no age
    age = _age(fx)
    known = ~np.isnan(age)
    flags = fx.mce()
    table = fx.tabular.mce_age
    conflict = np.zeros(len(fx.rows), dtype=bool)
    label = np.full(len(fx.rows), "", dtype=object)
    for g in table.to_dict("records"):  # a handful of age-group spans, not rows
        group, lo, hi = str(g["group"]), int(g["min_age"]), int(g["max_age"])
        start, end = _day_of(g["start"], 0), _day_of(g["end"], np.iinfo(np.int64).max)
        in_span = (fx.day >= start) & (fx.day <= end)
        col = flags[group].to_numpy(dtype=bool)
        bad = known & in_span & col & ((age < lo) | (age > hi)) & ~conflict
        label[bad] = f"{group} code (MCE ages {lo}-{hi})"
        conflict |= bad
    code = _txt(fx.codes.to_numpy(dtype=object)[fx.code_id[conflict]])
    shown = pd.Series(age[conflict]).astype("Int64").astype("string")
    msg = (
        code
        + " is a "
        + _txt(label[conflict])
        + "; the patient is "
        + shown.fillna("")
        + " on "
        + _txt(day_text(fx.day[conflict]))
        + ". Check the birth date, then the code."
    )
    return Hits(fx.mask(conflict), fx.series(conflict, msg.to_numpy(dtype=object)))


@rule(
    "PT002",
    "sex-conflict",
    Severity.ERROR,
    "A male-only or female-only code for a patient of the other sex (MCE, through 2024-09-30).",
    sources=(MCE_SEX, DENIALS_10),
)
def sex_conflict(ctx: Context) -> Hits:
    """
    What it does:
        When the export gives the patient's sex (M or F), flags a code the Medicare Code
        Editor marks male-only or female-only on the date of service for a patient of the
        other sex. The MCE dropped its sex edit on 2024-10-01: codes on later dates of service
        are not flagged.

    Why it matters:
        Until the edit ended, such lines were denied (CARC 10); it is still worth a look at
        the sex in the export for older dates.

    Example:
        `N40.0` (benign prostatic hyperplasia, male-only) for a patient with sex F on
        2023-01-05; not flagged on 2024-10-01.

    Fix:
        Check the patient's sex in the export, then the code.
    """
    fx = facts(ctx)
    if ctx.frame["sex"].isna().all():
        return fx.nothing()  # the export gives no sex
    inv, values = fx.column("sex")
    sex = np.array([*values, ""], dtype=object)[np.where(inv < 0, len(values), inv)]
    flags = fx.mce()
    male = flags["male"].to_numpy(dtype=bool)
    female = flags["female"].to_numpy(dtype=bool)
    sel = (male & (sex == "F")) | (female & (sex == "M"))
    which = np.where(male[sel], "male-only", "female-only")
    msg = (
        _txt(fx.codes.to_numpy(dtype=object)[fx.code_id[sel]])
        + " is a "
        + _txt(which)
        + " code in the MCE sex edit on "
        + _txt(day_text(fx.day[sel]))
        + "; the patient's sex is "
        + _txt(sex[sel])
        + ". Check the sex in the export, then the code."
    )
    return Hits(fx.mask(sel), fx.series(sel, msg.to_numpy(dtype=object)))


_UNSPECIFIED = re.compile(r"\bunspecified\b", re.IGNORECASE)


def _patients(fx: Facts) -> tuple[npt.NDArray[np.int64], BoolArray]:
    """Patient number per used row (-1 when the export has none) and whether it is known."""
    inv, values = fx.column("patient_id")
    blank = np.array([not v for v in values] + [True], dtype=bool)
    key = np.where(blank[np.where(inv < 0, len(values), inv)], -1, inv)
    return key, key >= 0


@rule(
    "PT003",
    "unspecified-persisting",
    Severity.INFO,
    "The same patient is billed with one unspecified code across many visits.",
    sources=(GUIDELINES_SPECIFIC, MCE_UNSPECIFIED, DENIALS_M81),
)
def unspecified_persisting(ctx: Context) -> Hits:
    """
    What it does:
        Finds a patient billed with the same unspecified code (MCE "unspecified" flag on the
        date of service, or "unspecified" in its title) on at least `unspecified_visits`
        dates of service (default 3) spanning more than `unspecified_days` days (default 42,
        six weeks). The finding sits on the code at the patient's last such visit and lists
        the specific sibling codes valid on that date.

    Why it matters:
        An unspecified code fits a first visit; after weeks of care the record usually says
        more, and payers increasingly ask for the specific code (RARC M81) or deny continued
        care as not supported.

    Example:
        `M54.50` (low back pain, unspecified) on 2023-01-05, 2023-01-26 and 2023-02-23:
        consider `M54.51` or `M54.59`.

    Fix:
        Code what the record now documents; the siblings are shown for a coder to choose.
    """
    fx = facts(ctx)
    cfg = ctx.settings
    patient, known = _patients(fx)
    flag = fx.mce()["unspecified"].to_numpy(dtype=bool)
    by_title = np.array([bool(_UNSPECIFIED.search(str(t))) for t in fx.titles], dtype=bool)
    unspec = known & (flag | by_title[fx.code_id])
    d = pd.DataFrame(
        {"patient": patient[unspec], "code": fx.code_id[unspec], "day": fx.day[unspec]}
    )
    idx = np.flatnonzero(unspec)
    g = d.groupby(["patient", "code"], sort=False)["day"]
    visits = g.transform("nunique").to_numpy()
    first = g.transform("min").to_numpy()
    last = g.transform("max").to_numpy()
    hit = (visits >= cfg.unspecified_visits) & (last - first > cfg.unspecified_days)
    hit &= d["day"].to_numpy() == last
    # one finding per patient and code, on the first row of the last visit
    chosen = pd.DataFrame({"p": d["patient"].to_numpy()[hit], "c": d["code"].to_numpy()[hit]})
    keep = ~chosen.duplicated().to_numpy()
    rows_sel = idx[hit][keep]
    sel = np.zeros(len(fx.rows), dtype=bool)
    sel[rows_sel] = True
    code_ids = fx.code_id[rows_sel]
    days = fx.day[rows_sel]
    # Siblings valid on the last date: computed once per distinct (code, day).
    key = pd.Series(code_ids * 1_000_000 + days)
    inv, uniq = pd.factorize(key)
    codes = fx.codes.to_numpy(dtype=object)
    sibs = np.empty(len(uniq) + 1, dtype=object)
    for i, k in enumerate(uniq):
        sibs[i] = _siblings(ctx, str(codes[int(k) // 1_000_000]), int(k) % 1_000_000)
    sibs[len(uniq)] = ()
    per = sibs[inv] if len(inv) else np.empty(0, dtype=object)
    n_visits = visits[hit][keep]
    span = (last - first)[hit][keep]
    names = pd.Series([" ".join(s.code for s in t) for t in per], dtype="string")
    advice = pd.Series(
        np.where(
            names.fillna("").to_numpy(dtype=object) != "",
            "; consider a specific code: " + names.fillna("").to_numpy(dtype=object) + ".",
            "; code what the record now documents.",
        ),
        dtype="string",
    )
    msg = (
        _txt(codes[code_ids])
        + " (unspecified) is billed for patient "
        + _txt(at(ctx, "patient_id", fx.rows[rows_sel]))
        + " on "
        + _txt(n_visits)
        + " visits over "
        + _txt(span)
        + " days (first "
        + _txt(day_text(first[hit][keep]))
        + ", last "
        + _txt(day_text(days))
        + ")"
        + advice
    )
    n = len(rows_sel)
    applicability = np.full(n, Applicability.DISPLAY_ONLY.value, dtype=object)
    # selected rows are in ascending order, as fx.series expects
    order = np.argsort(rows_sel, kind="stable")
    return Hits(
        fx.mask(sel),
        fx.series(sel, msg.to_numpy(dtype=object)[order]),
        fx.series(sel, per[order]),
        fx.series(sel, applicability),
    )


def _siblings(ctx: Context, code: str, day: int) -> tuple[Suggestion, ...]:
    """Billable codes sharing the code's parent on the date, except itself and unspecified."""
    on = np.datetime64(day, "D").astype(object)
    parent = code.replace(".", "")[:-1]
    while len(parent) > 3 and parent.endswith("X"):
        parent = parent[:-1]
    found = ctx.reference.children(parent, on)
    return tuple(
        s for s in found if s.code != code and not (s.title and _UNSPECIFIED.search(s.title))
    )


# Body regions named in titles; a title may name several (lumbosacral: lumbar and sacral).
_REGIONS: Final = {
    "head": r"\b(head|skull|face|facial|jaw|occipit\w*)\b",
    "cervical": r"\b(cervical|cervicothoracic|cervicocranial|neck|cervicalgia)\b",
    "thoracic": r"\b(thoracic|thoracolumbar|cervicothoracic|thorax|rib|ribs|chest|dorsalgia)\b",
    "lumbar": r"\b(lumbar|lumbosacral|thoracolumbar|low back|lower back|lumbago|lumbar region)\b",
    "sacral": r"\b(sacral|sacrum|sacrococcygeal|coccyx|coccygeal|lumbosacral|sacroiliac)\b",
    "pelvis": r"\b(pelvis|pelvic|sacroiliac|pubis|ilium|ischium|acetabulum)\b",
    "shoulder": r"\b(shoulder|clavicle|scapula|rotator cuff|acromioclavicular)\b",
    "arm": r"\b(upper arm|humerus|elbow|forearm|radius|ulna)\b",
    "hand": r"\b(wrist|hand|finger|fingers|thumb|carpal|metacarpal)\b",
    "hip": r"\b(hip|femur|thigh)\b",
    "knee": r"\b(knee|patella|lower leg|tibia|fibula|meniscus)\b",
    "foot": r"\b(ankle|foot|toe|toes|tarsal|metatarsal|heel|achilles)\b",
}
_REGION_RE: Final = {k: re.compile(v, re.IGNORECASE) for k, v in _REGIONS.items()}
#: Procedure families for episodes of care.
FAMILIES: Final[dict[str, tuple[tuple[int, int], ...]]] = {
    "physical medicine 97010-97799": ((97010, 97799),),
    "chiropractic 98940-98943": ((98940, 98943),),
}


def _features(fx: Facts) -> pd.DataFrame:
    """Per distinct code: its category and the body regions its title names (long form)."""
    rows: list[tuple[int, str]] = []
    for i, (code, title) in enumerate(zip(fx.undotted, fx.titles, strict=True)):
        rows.append((i, "category " + str(code)[:3]))
        rows += [(i, k) for k, rx in _REGION_RE.items() if rx.search(str(title))]
    return pd.DataFrame(rows, columns=["code", "feature"])


@rule(
    "PT004",
    "episode-region-change",
    Severity.WARNING,
    "A visit of a therapy episode whose diagnoses share no category or body region with the "
    "episode's other visits.",
    sources=(
        "CMS Medicare Benefit Policy Manual (Pub. 100-02), Chapter 15, section 220.1 (the plan "
        "of care for an episode of therapy states the diagnoses treated)",
        "CARC 11 (diagnosis inconsistent with the procedure)",
    ),
)
def episode_region_change(ctx: Context) -> Hits:
    """
    What it does:
        Groups each patient's visits into episodes: the same procedure family (physical
        medicine 97010-97799, or chiropractic 98940-98943) with at most `episode_gap_days`
        (default 30) days between visits. It flags a visit whose diagnoses share no
        3-character category and no body region (read from the titles: cervical, thoracic,
        lumbar, sacral/coccyx, pelvis, knee, ...) with the other visits of its episode. In a
        two-visit episode only the second visit is flagged.

    Why it matters:
        An episode of care treats one problem; a visit coded for a different body region looks
        like a new condition without a new evaluation, or like a wrong code picked from a
        list. Either way the line is likely denied as inconsistent with the plan of care.

    Example:
        `M54.50` (low back pain) on three visits, then `S32.2XXA` (fracture of coccyx) on the
        fourth visit two weeks later.

    Fix:
        Check the diagnosis of the odd visit against the record and the plan of care; if it
        is a new condition, document a new evaluation.
    """
    fx = facts(ctx)
    patient, known = _patients(fx)
    family = fx.procedure_family(FAMILIES)
    fam_id, fam_names = pd.factorize(family)
    use = known & (fam_id >= 0)
    idx = np.flatnonzero(use)
    empty = Hits(fx.mask(np.zeros(len(fx.rows), dtype=bool)), "")
    if not len(idx):
        return empty
    v = pd.DataFrame({"patient": patient[idx], "family": fam_id[idx], "day": fx.day[idx], "i": idx})
    visits = (
        v[["patient", "family", "day"]].drop_duplicates().sort_values(["patient", "family", "day"])
    )
    new = (
        (visits["patient"].diff() != 0)
        | (visits["family"].diff() != 0)
        | (visits["day"].diff() > ctx.settings.episode_gap_days)
    )
    visits = visits.assign(episode=new.cumsum().to_numpy(), visit=np.arange(len(visits)))
    v = v.merge(visits, on=["patient", "family", "day"])
    feats = _features(fx)
    vf = pd.DataFrame({"visit": v["visit"].to_numpy(), "code": fx.code_id[v["i"].to_numpy()]})
    vf = vf.drop_duplicates().merge(feats, on="code")[["visit", "feature"]].drop_duplicates()
    vf = vf.merge(visits[["visit", "episode"]], on="visit")
    shared = vf.groupby(["episode", "feature"])["visit"].transform("size").to_numpy() > 1
    visit_shares = pd.Series(shared).groupby(vf["visit"].to_numpy()).any()
    has_region = (
        pd.Series(~vf["feature"].str.startswith("category ").to_numpy())
        .groupby(vf["visit"].to_numpy())
        .any()
    )
    ep = visits.set_index("visit")["episode"]
    n_visits = ep.map(ep.value_counts())
    order = visits.groupby("episode").cumcount()
    order.index = visits["visit"].to_numpy()
    lonely = ~visit_shares.reindex(ep.index, fill_value=False)
    flagged = (
        lonely
        & has_region.reindex(ep.index, fill_value=False)
        & (n_visits >= 2)
        & ((order > 0) | (n_visits >= 3))
    )
    bad_visits = flagged[flagged].index.to_numpy()
    if not len(bad_visits):
        return empty
    # The finding sits on the visit's first listed diagnosis.
    rows_v = v[v["visit"].isin(bad_visits)]
    rows_v = rows_v.assign(pos=fx.position[rows_v["i"].to_numpy()], line=fx.line_id[rows_v["i"]])
    rows_v = rows_v.sort_values(["visit", "line", "pos"]).drop_duplicates("visit")
    # The other visits' codes, for the message (only the flagged episodes).
    bad_eps = ep.loc[bad_visits].unique()
    other = v[v["visit"].map(ep).isin(bad_eps).to_numpy()]
    other = other.assign(
        code=fx.codes.to_numpy(dtype=object)[fx.code_id[other["i"].to_numpy()]],
        episode=other["visit"].map(ep).to_numpy(),
    )
    rows_v = rows_v.assign(episode=rows_v["visit"].map(ep).to_numpy())
    # Codes per (small) group of flagged episodes only: joined once per visit / episode.
    this = other[["visit", "code"]].drop_duplicates().sort_values("code")
    this_codes = this.groupby("visit")["code"].agg(" ".join)
    rest = other[~other["visit"].isin(bad_visits).to_numpy()]
    rest = rest[["episode", "code"]].drop_duplicates().sort_values("code")
    rest_codes = rest.groupby("episode")["code"].agg(" ".join)
    first_day = visits.groupby("episode")["day"].min()
    last_day = visits.groupby("episode")["day"].max()
    eps = rows_v["episode"].to_numpy()
    sel = np.zeros(len(fx.rows), dtype=bool)
    sel[rows_v["i"].to_numpy()] = True
    rows_v = rows_v.sort_values("i")
    eps = rows_v["episode"].to_numpy()
    msg = (
        "The visit on "
        + _txt(day_text(rows_v["day"].to_numpy()))
        + " (patient "
        + _txt(at(ctx, "patient_id", fx.rows[rows_v["i"].to_numpy()]))
        + ", "
        + _txt(np.asarray(fam_names, dtype=object)[rows_v["family"].to_numpy()])
        + " episode "
        + _txt(day_text(first_day.reindex(eps).to_numpy()))
        + " to "
        + _txt(day_text(last_day.reindex(eps).to_numpy()))
        + ") is coded "
        + _txt(this_codes.reindex(rows_v["visit"].to_numpy()).to_numpy())
        + ", which shares no category or body region with the episode's other visits ("
        + _txt(rest_codes.reindex(eps).to_numpy())
        + "); check the code against the record and the plan of care."
    )
    return Hits(fx.mask(sel), fx.series(sel, msg.to_numpy(dtype=object)))
