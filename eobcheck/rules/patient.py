"""Patient rules: a code against the patient's age and sex, and against the other visits."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from eobcheck.reference.core import Suggestion
from eobcheck.rule import Applicability, Hits, Severity, rule
from eobcheck.rules.facts import (
    BoolArray,
    Facts,
    IntArray,
    ObjArray,
    day_text,
    distinct,
    distinct_inverse,
    facts,
    first_seen,
    join,
    joined,
    objects,
    text,
    text_at,
)

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
    table = fx.tabular.mce_age
    conflict = np.zeros(len(fx.rows), dtype=bool)
    label = np.full(len(fx.rows), "", dtype=object)
    for g in table.to_dict("records"):  # a handful of age-group spans, not rows
        group, lo, hi = str(g["group"]), int(g["min_age"]), int(g["max_age"])
        start, end = _day_of(g["start"], 0), _day_of(g["end"], np.iinfo(np.int64).max)
        in_span = (fx.day >= start) & (fx.day <= end)
        col = fx.mce_flag(group)
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
    male = fx.mce_flag("male")
    female = fx.mce_flag("female")
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


def _patient_lines(fx: Facts) -> npt.NDArray[np.int64]:
    """Patient number per service line (in ``fx.lines`` order; -1 when the export has none)."""
    got = fx._cache.get("patient_lines")
    if got is None:
        inv, uniq = fx.line_factorized("patient_id")
        # blank ids are decided once per distinct value, then spread with one take
        empty = (pd.Series(uniq, dtype="string").str.strip() == "").to_numpy(bool, na_value=True)
        number = np.r_[np.where(empty, -1, np.arange(len(uniq))), -1]
        got = fx._cache["patient_lines"] = number[np.where(inv < 0, len(uniq), inv)]
    out: npt.NDArray[np.int64] = got
    return out


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
    patient_line = _patient_lines(fx)
    if not (patient_line >= 0).any():
        return fx.nothing()
    flag = fx.mce_flag("unspecified")
    by_title = np.array([bool(_UNSPECIFIED.search(str(t))) for t in fx.titles], dtype=bool)
    idx = np.flatnonzero(flag | by_title[fx.code_id])
    patient = patient_line[fx.lines[1][idx]]
    idx, patient = idx[patient >= 0], patient[patient >= 0]
    if not len(idx):
        return fx.nothing()
    ncode = max(len(fx.codes), 1)
    # (patient, code) groups and their distinct visit days, as sorted integer keys
    _, group = distinct_inverse(patient * ncode + fx.code_id[idx])
    day = fx.day[idx]
    dmin = int(day.min())
    span = int(day.max()) - dmin + 1
    visit = distinct(group * span + (day - dmin))
    vgroup = visit // span
    vday = visit % span + dmin
    n_groups = int(group.max()) + 1
    visits = np.bincount(vgroup, minlength=n_groups)
    first = np.zeros(n_groups, dtype=np.int64)
    last = np.zeros(n_groups, dtype=np.int64)
    # keys are sorted: a group's first key holds its first day, its last key its last day
    starts = np.r_[True, vgroup[1:] != vgroup[:-1]]
    ends = np.r_[vgroup[1:] != vgroup[:-1], True]
    first[vgroup[starts]] = vday[starts]
    last[vgroup[ends]] = vday[ends]
    persisting = (visits >= cfg.unspecified_visits) & (last - first > cfg.unspecified_days)
    hit = persisting[group] & (day == last[group])
    if not hit.any():
        return fx.nothing()
    # one finding per patient and code, on the first row of the last visit
    at_hit = np.flatnonzero(hit)
    at_hit = at_hit[~pd.Series(group[at_hit]).duplicated().to_numpy()]
    rows_sel = idx[at_hit]
    hit_group = group[at_hit]
    sel = np.zeros(len(fx.rows), dtype=bool)
    sel[rows_sel] = True
    code_ids = fx.code_id[rows_sel]
    days = fx.day[rows_sel]
    # Siblings valid on the last date depend on the code and the release in force on it
    # (release names are unique): looked up once per distinct (code, release).
    day_u, day_inv = distinct_inverse(days)
    release, _ = pd.factorize(_release_names(ctx, day_u))
    width = int(release.max()) + 1
    inv, uniq = pd.factorize(code_ids * width + release[day_inv])
    codes = fx.code_text
    asked = np.flatnonzero(first_seen(inv))  # the first row of each (code, release)
    sibs = objects(
        [
            _siblings(ctx, str(codes[int(k) // width]), int(days[i]))
            for k, i in zip(uniq, asked, strict=True)
        ]
    )
    per = sibs[inv]
    names = objects([" ".join(x.code for x in t) for t in sibs])[inv]
    advice = np.where(
        names != "",
        "; consider a specific code: " + names + ".",
        "; code what the record now documents.",
    ).astype(object)
    msg = join(
        codes[code_ids],
        " (unspecified) is billed for patient ",
        text_at(ctx, "patient_id", fx.rows[rows_sel]),
        " on ",
        text(visits[hit_group]),
        " visits over ",
        text((last - first)[hit_group]),
        " days (first ",
        day_text(first[hit_group]),
        ", last ",
        day_text(days),
        ")",
        advice,
    )
    applicability = np.full(len(rows_sel), Applicability.DISPLAY_ONLY.value, dtype=object)
    # fx.series fills the selected rows in ascending order
    order = np.argsort(rows_sel, kind="stable")
    return Hits(
        fx.mask(sel),
        fx.series(sel, msg[order]),
        fx.series(sel, per[order]),
        fx.series(sel, applicability),
    )


def _release_names(ctx: Context, days: IntArray) -> ObjArray:
    """The release in force on each of the sorted ``days``.

    The release is a step function of the date and a release's name is unique, so where
    both ends of a span of days have one release, every day between has it: the lookups
    bisect the change points instead of asking once per day.
    """
    out = np.full(len(days), None, dtype=object)
    if not len(days):
        return out

    def name(i: int) -> str:
        if out[i] is None:
            out[i] = ctx.reference.release_name(_date(int(days[i])))
        return str(out[i])

    todo = [(0, len(days) - 1)]
    while todo:
        lo, hi = todo.pop()
        if name(lo) == name(hi):
            out[lo : hi + 1] = out[lo]
        elif hi - lo > 1:
            mid = (lo + hi) // 2
            todo += [(lo, mid), (mid, hi)]
    return out


def _date(day: int) -> date:
    """The date of a day number (days since 1970-01-01)."""
    return date(1970, 1, 1) + timedelta(days=day)


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


def _features(fx: Facts) -> tuple[IntArray, IntArray, BoolArray]:
    """Per distinct code its features as integer (code, feature) pairs, sorted by code: its
    3-character category and the body regions its title names; and which features are regions.
    """
    names: dict[str, int] = {k: i for i, k in enumerate(_REGION_RE)}
    code: list[int] = []
    feature: list[int] = []
    for i, (c, title) in enumerate(zip(fx.undotted, fx.titles, strict=True)):
        found = [names.setdefault("category " + str(c)[:3], len(names))]
        found += [names[k] for k, rx in _REGION_RE.items() if rx.search(str(title))]
        code += [i] * len(found)
        feature += found
    region = np.zeros(len(names), dtype=bool)
    region[: len(_REGION_RE)] = True
    return np.array(code, dtype=np.int64), np.array(feature, dtype=np.int64), region


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
    patient_line = _patient_lines(fx)
    # Visits: distinct (patient, family, day) as sorted integer keys, built on one row per
    # service line (the three are line fields); an episode starts where the patient or the
    # family changes or the gap exceeds the setting.
    first, line_of = fx.lines
    family_first = fx.family_id(FAMILIES, first)
    keep = (patient_line >= 0) & (family_first >= 0)
    line_no = np.flatnonzero(keep)  # numbers of the lines with a visit
    lines = first[line_no]
    if not len(lines):
        return fx.nothing()
    day = fx.day[lines]
    dmin = int(day.min())
    span = int(day.max()) - dmin + 1
    who = patient_line[line_no] * len(FAMILIES) + family_first[line_no]
    visits, line_visit = distinct_inverse(who * span + (day - dmin))
    visit_of_line = np.full(len(first), -1, dtype=np.int64)
    visit_of_line[line_no] = line_visit
    visit_who, visit_day = visits // span, visits % span + dmin
    gap = np.diff(visit_day) > ctx.settings.episode_gap_days
    new = np.r_[True, (visit_who[1:] != visit_who[:-1]) | gap]
    episode = np.cumsum(new) - 1
    n_visit = len(visits)
    begin = np.flatnonzero(new)
    size = np.diff(np.r_[begin, n_visit])
    n_in = size[episode]
    order = np.arange(n_visit) - begin[episode]
    codes = fx.code_text
    found = _episode_masks(fx, line_no, line_visit, n_visit, episode, begin)
    if found is None:
        found = _episode_sets(fx, visit_of_line, n_visit, episode, begin)
    shares, has_region, visit_text = found
    flagged = ~shares & has_region & (n_in >= 2) & ((order > 0) | (n_in >= 3))
    if not flagged.any():
        return fx.nothing()
    # The finding sits on the visit's first listed diagnosis.
    flagged_line = flagged[np.maximum(visit_of_line, 0)] & (visit_of_line >= 0)
    idx = np.flatnonzero(flagged_line[line_of])
    visit_of = visit_of_line[line_of[idx]]
    cand = np.lexsort((fx.position[idx], fx.line_id[idx], visit_of))
    cand = np.sort(cand[np.r_[True, visit_of[cand][1:] != visit_of[cand][:-1]]])
    bad = visit_of[cand]
    eps = episode[bad]
    this, rest = visit_text(flagged, bad, eps)
    names = np.array(list(FAMILIES), dtype=object)
    msg = join(
        "The visit on ",
        day_text(visit_day[bad]),
        " (patient ",
        text_at(ctx, "patient_id", fx.rows[idx[cand]]),
        ", ",
        names[fx.family_id(FAMILIES, idx[cand])],
        " episode ",
        day_text(visit_day[begin[eps]]),
        " to ",
        day_text(visit_day[begin[eps] + size[eps] - 1]),
        ") is coded ",
        this,
        ", which shares no category or body region with the episode's other visits (",
        rest,
        "); check the code against the record and the plan of care.",
    )
    del codes
    sel = np.zeros(len(fx.rows), dtype=bool)
    sel[idx[cand]] = True
    return Hits(fx.mask(sel), fx.series(sel, msg))


VisitText = Callable[[BoolArray, IntArray, IntArray], tuple[ObjArray, ObjArray]]


def _episode_sets(
    fx: Facts, visit_of_line: IntArray, n_visit: int, episode: IntArray, begin: IntArray
) -> tuple[BoolArray, BoolArray, VisitText]:
    """Per visit: whether it shares a feature with another visit of its episode and whether
    it names a body region; and the code texts of flagged visits and of their episodes'
    other visits. Works on sorted (visit, code) and (feature, visit) keys for any codes."""
    _, line_of = fx.lines
    visit_of = visit_of_line[line_of]
    idx = np.flatnonzero(visit_of >= 0)
    visit_of = visit_of[idx]
    # distinct (visit, code), then (visit, feature) through each code's feature list
    ncode = max(len(fx.codes), 1)
    vc = distinct(visit_of * ncode + fx.code_id[idx])
    vc_visit, vc_code = vc // ncode, vc % ncode
    f_code, f_feature, region = _features(fx)
    per_code = np.bincount(f_code, minlength=ncode)
    start = np.cumsum(per_code) - per_code
    count = per_code[vc_code]
    step = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    feature = f_feature[np.repeat(start[vc_code], count) + step]
    # distinct (feature, visit), sorted by feature then visit: the visits of one episode
    # are consecutive numbers, so a feature is shared when a neighbour has the same feature
    # and episode
    vf = distinct(feature * n_visit + np.repeat(vc_visit, count))
    vf_feature, vf_visit = vf // n_visit, vf % n_visit
    ep = episode[vf_visit]
    same = (vf_feature[1:] == vf_feature[:-1]) & (ep[1:] == ep[:-1])
    shared = np.r_[False, same] | np.r_[same, False]
    shares = np.bincount(vf_visit[shared], minlength=n_visit) > 0
    has_region = np.bincount(vf_visit[region[vf_feature]], minlength=n_visit) > 0
    codes = fx.code_text

    def visit_text(flagged: BoolArray, bad: IntArray, eps: IntArray) -> tuple[ObjArray, ObjArray]:
        # The codes of the flagged visits, and of the other (unflagged) visits of their
        # episodes.
        mine = flagged[vc_visit]
        this = _joined(vc_visit[mine], codes[vc_code[mine]], bad)
        bad_episode = np.zeros(len(begin), dtype=bool)
        bad_episode[eps] = True
        others = bad_episode[episode[vc_visit]] & ~mine
        rest = _joined(episode[vc_visit[others]], codes[vc_code[others]], eps)
        return this, rest

    return shares, has_region, visit_text


_WORD: Final = 64


def _episode_masks(
    fx: Facts,
    line_no: IntArray,
    line_visit: IntArray,
    n_visit: int,
    episode: IntArray,
    begin: IntArray,
) -> tuple[BoolArray, BoolArray, VisitText] | None:
    """``_episode_sets`` with each visit's codes and features as one 64-bit set: a few
    passes over the lines instead of sorting (visit, code) keys. None when the check has
    more than 64 distinct codes or features, or a line's rows are not listed together."""
    ncode = len(fx.codes)
    f_code, f_feature, region = _features(fx)
    if ncode > _WORD or len(region) > _WORD or not fx.lines_contiguous:
        return None
    one = np.uint64(1)
    # code sets in 32 bits when the codes fit: half the memory traffic over the rows
    word = np.uint32 if ncode <= 32 else np.uint64
    code_bit = (one << np.arange(ncode, dtype=np.uint64)).astype(word)
    feature_bits = np.zeros(max(ncode, 1), dtype=np.uint64)
    np.bitwise_or.at(feature_bits, f_code, one << f_feature.astype(np.uint64))
    region_bits = np.bitwise_or.reduce(
        one << np.flatnonzero(region).astype(np.uint64), initial=np.uint64(0)
    )
    first, _ = fx.lines
    # codes of each line (its rows are listed together), then of each visit; consecutive
    # lines of one visit (a claim's lines) are merged before the scattered OR
    line_codes = np.bitwise_or.reduceat(code_bit[fx.code_id], first) if len(first) else first
    run = np.flatnonzero(np.r_[True, line_visit[1:] != line_visit[:-1]])
    visit_codes: npt.NDArray[np.unsignedinteger[Any]] = np.zeros(n_visit, dtype=word)
    if len(run):
        run_codes = np.bitwise_or.reduceat(line_codes[line_no], run)
        np.bitwise_or.at(visit_codes, line_visit[run], run_codes)
    # features of each distinct code set, looked up byte by byte
    feats = np.zeros(n_visit, dtype=np.uint64)
    for k in range(0, ncode, 8):
        table = np.zeros(256, dtype=np.uint64)
        for value in range(1, 256):
            bits = [k + b for b in range(8) if value >> b & 1 and k + b < ncode]
            table[value] = np.bitwise_or.reduce(feature_bits[bits], initial=np.uint64(0))
        byte = (visit_codes >> word(k)) & word(255)
        feats |= table[byte.astype(np.int64)]
    others = _segment_or_others(feats, episode, begin)
    shares = (feats & others) != 0
    has_region = (feats & region_bits) != 0
    codes = fx.code_text

    def visit_text(flagged: BoolArray, bad: IntArray, eps: IntArray) -> tuple[ObjArray, ObjArray]:
        rest_codes = np.bitwise_or.reduceat(np.where(flagged, word(0), visit_codes), begin)
        return _mask_text(visit_codes[bad], codes), _mask_text(rest_codes[eps], codes)

    return shares, has_region, visit_text


def _segment_or_others(
    values: npt.NDArray[np.uint64], segment: IntArray, begin: IntArray
) -> npt.NDArray[np.uint64]:
    """Per element: the OR of the other elements of its segment (segments are consecutive)."""
    n = len(values)
    at = np.arange(n) - begin[segment]  # position within the segment
    size = np.diff(np.r_[begin, n])[segment]
    before = np.zeros(n, dtype=np.uint64)  # OR of the earlier elements (inclusive scan, shifted)
    after = np.zeros(n, dtype=np.uint64)
    acc_f, acc_b = values.copy(), values.copy()
    step = 1
    longest = int(size.max()) if n else 0
    while step < longest:
        # Hillis-Steele scans within segments, forwards and backwards
        nf, nb = acc_f.copy(), acc_b.copy()
        fwd = at[step:] >= step
        nf[step:][fwd] |= acc_f[:-step][fwd]
        bwd = (size[:-step] - at[:-step] - 1) >= step
        nb[:-step][bwd] |= acc_b[step:][bwd]
        acc_f, acc_b = nf, nb
        step *= 2
    before[1:] = np.where(at[1:] > 0, acc_f[:-1], np.uint64(0))
    after[:-1] = np.where(at[:-1] < size[:-1] - 1, acc_b[1:], np.uint64(0))
    out: npt.NDArray[np.uint64] = before | after
    return out


def _mask_text(masks: npt.NDArray[np.unsignedinteger[Any]], codes: ObjArray) -> ObjArray:
    """Per 64-bit code set: its codes sorted and joined by spaces (once per distinct set)."""
    made: dict[int, str] = {}
    out = np.empty(len(masks), dtype=object)
    for i, m in enumerate(masks.tolist()):
        text = made.get(m)
        if text is None:
            text = made[m] = " ".join(
                sorted(str(codes[b]) for b in range(len(codes)) if m >> b & 1)
            )
        out[i] = text
    return out


def _joined(keys: IntArray, codes: ObjArray, wanted: IntArray) -> ObjArray:
    """For each wanted key, its distinct codes sorted and joined by spaces ("" for none)."""
    key, texts = joined(keys, codes)
    at = np.searchsorted(key, wanted)
    found = at < len(key)
    found[found] = key[at[found]] == wanted[found]
    out = np.full(len(wanted), "", dtype=object)
    out[found] = texts[at[found]]
    return out
