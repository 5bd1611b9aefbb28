"""join_results: the 835s of one check joined into the 837s whose claims they pay."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from test_x12_reader import ISA, SVC_835, _interchange, _x12

from eobcheck.model import COLUMNS, empty_frame
from eobcheck.readers.base import ReadResult
from eobcheck.readers.x12 import join_results, line_controls, read_x12

NO_DX = "an X12 835 carries no diagnosis codes"

# One more claim paid in the same 835, that no 837 of the check carries.
OTHER_CLAIM = "CLP*C999*4*50*0**12*ICN9~CAS*CO*146*50~SVC*HC:97530*50*0**1~REF*6R*X1~"


def _remit(tmp_path: Path, extra: str = "", name: str = "r.835") -> ReadResult:
    body = SVC_835.replace("SE*20*0001~", extra + "SE*20*0001~")
    return read_x12(_x12(tmp_path, ISA.format(comp=":") + body + "IEA*1*1~", name))


def test_835_joined_into_its_837(tmp_path: Path) -> None:
    claims = read_x12(_x12(tmp_path, _interchange(), "c.837"))
    remit = _remit(tmp_path)
    out = join_results([claims, remit])
    assert [r.format for r in out] == ["x12-837p", "x12-835"]
    joined = out[0].frame
    assert list(joined.columns) == list(COLUMNS)
    assert joined[["line", "dx_value", "paid", "carc", "rarc"]].values.tolist() == [
        [1, "M5450", 80.0, "CO-45", "MA01"],
        [1, "S335XXA", 80.0, "CO-45", "MA01"],
        [2, "M5126", 70.0, "CO-45 PR-2", "MA01 N130"],
    ]
    assert joined["allowed"].tolist()[:2] == [80.0, 80.0]  # AMT*B6 on the first SVC only
    assert pd.isna(joined["allowed"].iloc[2])
    assert any(
        "were joined by claim number" in n and "2 service line(s)" in n for n in out[0].notes
    )
    # Every claim of the 835 is checked in the 837: nothing is left to report from the 835.
    assert out[1].frame.empty
    assert list(out[1].frame.columns) == list(COLUMNS)
    assert not any(n.startswith(NO_DX) for n in out[1].notes)
    assert any("1 of 1 claim(s) were joined into" in n for n in out[1].notes)
    assert out[1].rows_read == 2  # what was read from the file is still reported
    # The inputs are left as they were.
    assert claims.frame["paid"].isna().all()
    assert len(remit.frame) == 2


def test_unmatched_835_claims_stay_in_the_835(tmp_path: Path) -> None:
    claims = read_x12(_x12(tmp_path, _interchange(), "c.837"))
    remit = _remit(tmp_path, OTHER_CLAIM)
    assert remit.frame["claim_id"].tolist() == ["C100", "C100", "C999"]
    out = join_results([remit, claims])
    left = out[0].frame
    assert left["claim_id"].tolist() == ["C999"]
    assert left["carc"].tolist() == ["CO-146"]
    assert left["dx_value"].isna().all()
    assert line_controls(left) == ["X1"]  # kept aligned with the remaining row
    assert any("1 of 2 claim(s) were joined into" in n for n in out[0].notes)
    assert any(n.startswith(NO_DX) for n in out[0].notes)
    assert out[1].frame["paid"].tolist() == [80.0, 80.0, 70.0]


def test_835_paying_claims_of_two_837_files(tmp_path: Path) -> None:
    first = read_x12(_x12(tmp_path, _interchange(), "a.837"))
    second_text = _interchange().replace("C100", "C999").replace("HC:97140", "HC:97530")
    second = read_x12(_x12(tmp_path, second_text.replace("REF*6R*L2~", "REF*6R*X1~"), "b.837"))
    remit = _remit(tmp_path, OTHER_CLAIM)
    out = join_results([first, second, remit])
    assert out[0].frame["paid"].tolist() == [80.0, 80.0, 70.0]
    # b.837's second line carries the control number X1 the 835 answers.
    carc = out[1].frame.drop_duplicates("line_id")["carc"]
    assert carc.isna().tolist() == [True, False]
    assert carc.iloc[1] == "CO-146"
    assert out[2].frame.empty
    joined_note = next(n for n in out[2].notes if "were joined into" in n)
    assert "a.837" in joined_note and "b.837" in joined_note


def test_payment_matching_no_837_line_stays_in_the_835(tmp_path: Path) -> None:
    # The 837 knows claim C999 but not the procedure the payer answered (97530, no REF*6R).
    claims = read_x12(_x12(tmp_path, _interchange().replace("C100", "C999"), "c.837"))
    remit = _remit(tmp_path, OTHER_CLAIM.replace("REF*6R*X1~", ""))
    out = join_results([claims, remit])
    assert out[0].frame["carc"].isna().all()
    left = out[1].frame
    assert left[["claim_id", "procedure", "carc"]].values.tolist() == [
        ["C100", "97110", "CO-45"],
        ["C100", "97140", "CO-45 PR-2"],
        ["C999", "97530", "CO-146"],
    ]
    assert any("1 service payment(s) of those claims matched no 837" in n for n in out[1].notes)
    assert any(n.startswith(NO_DX) for n in out[1].notes)


def test_other_results_pass_through(tmp_path: Path) -> None:
    csv = ReadResult(frame=empty_frame(), path=Path("eob.csv"), format="csv", notes=["x"])
    remit = _remit(tmp_path)
    out = join_results([csv, remit])
    assert out[0] is csv
    assert out[1] is remit  # no 837 in the check: the 835 is read alone
    claims = read_x12(_x12(tmp_path, _interchange(), "c.837"))
    assert join_results([claims, csv])[0] is claims


def test_835_for_claims_of_no_837_is_unchanged(tmp_path: Path) -> None:
    claims = read_x12(_x12(tmp_path, _interchange().replace("C100", "C555"), "c.837"))
    remit = _remit(tmp_path)
    out = join_results([claims, remit])
    assert out[1] is remit
    pd.testing.assert_frame_equal(out[0].frame, claims.frame)
