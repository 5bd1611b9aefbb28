"""X12 837/835 reader: separators and quirks, claims, lines, diagnoses, 835 money, the join."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from eobcheck.errors import InputError
from eobcheck.model import COLUMNS, DTYPES
from eobcheck.readers.x12 import join_remittance, line_controls, read_x12

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples"
needs_samples = pytest.mark.skipif(
    not SAMPLES.is_dir(), reason=f"shared samples not found at {SAMPLES}"
)

ISA = (
    "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       "
    "*230105*1200*^*00501*000000001*0*P*{comp}~"
)
GS = "GS*HC*SENDER*RECEIVER*20230105*1200*1*X*005010X222A1~"

CLAIM_837P = (
    "ST*837*0001*005010X222A1~"
    "BHT*0019*00*1*20230105*1200*CH~"
    "HL*1**20*1~"
    "NM1*85*2*BACK CLINIC*****XX*1234567893~"
    "HL*2*1*22*0~"
    "SBR*P*18*******CI~"
    "NM1*IL*1*DOE*JANE****MI*W123~"
    "DMG*D8*19800215*F~"
    "NM1*PR*2*ACME HEALTH*****PI*999~"
    "CLM*C100*300***11{c}B{c}1*Y*A*Y*Y~"
    "HI*ABK{c}M5450*ABF{c}S335XXA*ABF{c}M5126~"
    "LX*1~"
    "SV1*HC{c}97110{c}GP{c}59*100*UN*1***1{c}2~"
    "DTP*472*D8*20230104~"
    "REF*6R*L1~"
    "LX*2~"
    "SV1*HC{c}97140*200*UN*1***3~"
    "DTP*472*D8*20230104~"
    "REF*6R*L2~"
    "SE*19*0001~"
)


def _x12(tmp_path: Path, body: str, name: str = "claims.837", comp: str = ":") -> Path:
    path = tmp_path / name
    path.write_text(body.replace("{c}", comp), encoding="ascii", newline="")
    return path


def _interchange(comp: str = ":", body_comp: str | None = None, sep: str = "") -> str:
    text = ISA.format(comp=comp) + GS + CLAIM_837P.replace("{c}", body_comp or comp)
    text += "GE*1*1~IEA*1*000000001~"
    return text.replace("~", "~" + sep) if sep else text


def test_837p_claim_lines_and_pointers(tmp_path: Path) -> None:
    result = read_x12(_x12(tmp_path, _interchange()))
    frame = result.frame
    assert result.format == "x12-837p"
    assert list(frame.columns) == list(COLUMNS)
    assert {k: str(v) for k, v in frame.dtypes.items()} == DTYPES
    # Line 1 points at dx 1 and 2, line 2 at dx 3: one row per line x pointed diagnosis.
    assert frame[["line", "dx_position", "dx_value"]].values.tolist() == [
        [1, 1, "M5450"],
        [1, 2, "S335XXA"],
        [2, 3, "M5126"],
    ]
    first = frame.iloc[0]
    assert first["claim_id"] == "C100"
    assert first["procedure"] == "97110"
    assert first["modifiers"] == "GP 59"
    assert first["dx_pointers"] == "1,2"
    assert first["date_of_service"] == pd.Timestamp("2023-01-04")
    assert first["birth_date"] == pd.Timestamp("1980-02-15")
    assert first["sex"] == "F"
    assert first["patient_id"] == "W123"
    assert first["payer"] == "ACME HEALTH"
    assert first["provider"] == "1234567893"
    assert first["billed"] == 100.0
    assert pd.isna(first["source_sheet"])
    # Provenance: HI is segment 13 (ISA is 1); its second element holds dx 2.
    assert frame["source_row"].tolist() == [13, 13, 13]
    assert frame["dx_column"].tolist() == ["HI01-2", "HI02-2", "HI03-2"]
    assert frame["line_id"].tolist() == [0, 0, 1]
    assert result.rows_read == 2


@pytest.mark.parametrize("sep", ["\r\n", "\n", "\n    "])
def test_line_breaks_and_indentation_do_not_matter(tmp_path: Path, sep: str) -> None:
    plain = read_x12(_x12(tmp_path, _interchange(), "a.837")).frame
    varied = read_x12(_x12(tmp_path, _interchange(sep=sep), "b.837")).frame
    cols = ["claim_id", "line", "dx_value", "procedure", "source_row", "date_of_service"]
    pd.testing.assert_frame_equal(plain[cols], varied[cols])


def test_component_separator_in_body_differs_from_isa16(tmp_path: Path) -> None:
    result = read_x12(_x12(tmp_path, _interchange(comp=":", body_comp=">")))
    assert result.frame["dx_value"].tolist() == ["M5450", "S335XXA", "M5126"]
    assert result.frame["procedure"].tolist() == ["97110", "97110", "97140"]
    assert any("ISA16 declares ':'" in n and "'>'" in n for n in result.notes)


def test_several_envelopes_in_one_file(tmp_path: Path) -> None:
    one = _interchange()
    two = _interchange().replace("C100", "C200")
    result = read_x12(_x12(tmp_path, one + "\n" + two))
    frame = result.frame
    assert frame["claim_id"].unique().tolist() == ["C100", "C200"]
    assert frame["line_id"].nunique() == 4
    # Segment numbers keep counting through the second interchange.
    assert frame.loc[frame["claim_id"] == "C200", "source_row"].min() > 23


def test_line_id_start_and_source_name(tmp_path: Path) -> None:
    result = read_x12(_x12(tmp_path, _interchange()), line_id_start=10, source_name="in.837")
    assert result.frame["line_id"].tolist() == [10, 10, 11]
    assert set(result.frame["source_file"]) == {"in.837"}


def test_no_pointers_means_every_claim_diagnosis(tmp_path: Path) -> None:
    body = _interchange().replace("***1:2~", "~").replace("***3~", "~")
    frame = read_x12(_x12(tmp_path, body)).frame
    assert frame.groupby("line")["dx_position"].apply(list).to_dict() == {
        1: [1, 2, 3],
        2: [1, 2, 3],
    }
    assert frame["dx_pointers"].isna().all()


def test_claim_without_diagnosis_keeps_one_row_per_line(tmp_path: Path) -> None:
    body = _interchange().replace("HI*ABK:M5450*ABF:S335XXA*ABF:M5126~", "")
    result = read_x12(_x12(tmp_path, body))
    frame = result.frame
    assert len(frame) == 2
    assert frame["dx_value"].isna().all()
    assert frame["dx_position"].isna().all()
    assert any("point past" in n for n in result.notes)


def test_icd9_qualifiers_and_principal_first(tmp_path: Path) -> None:
    body = (
        _interchange()
        .replace("HI*ABK:M5450*ABF:S335XXA*ABF:M5126~", "HI*BF:7213*BK:7242~")
        .replace("***1:2~", "~")
        .replace("***3~", "~")
    )
    frame = read_x12(_x12(tmp_path, body)).frame
    line1 = frame[frame["line"] == 1]
    assert line1[["dx_position", "dx_value", "dx_column"]].values.tolist() == [
        [1, "7242", "HI02-2"],
        [2, "7213", "HI01-2"],
    ]


def test_institutional_statement_date_and_revenue_line(tmp_path: Path) -> None:
    body = (
        ISA.format(comp=":")
        + "GS*HC*S*R*20230105*1200*1*X*005010X223A2~"
        + "ST*837*0001*005010X223A2~HL*1**20*1~HL*2*1*22*0~NM1*IL*1*DOE*JOHN****MI*M1~"
        + "DMG*D8*19500101*M~CLM*I1*500***13:A:1**A*Y*Y~DTP*434*RD8*20221201-20221205~"
        + "HI*ABK:I10*ABF:E119~HI*BH:A1:D8:20221201~LX*1~SV2*0420*HC:97110*500*UN*4~"
        + "SE*10*0001~GE*1*1~IEA*1*000000001~"
    )
    result = read_x12(_x12(tmp_path, body, "i.837"))
    frame = result.frame
    assert result.format == "x12-837i"
    assert frame["dx_value"].tolist() == ["I10", "E119"]  # BH (occurrence) is not a diagnosis
    assert frame["date_of_service"].tolist() == [pd.Timestamp("2022-12-01")] * 2
    assert frame["procedure"].tolist() == ["97110", "97110"]
    assert frame["billed"].tolist() == [500.0, 500.0]


def test_bare_transaction_without_isa(tmp_path: Path) -> None:
    result = read_x12(_x12(tmp_path, CLAIM_837P, comp=":"))
    assert result.frame["claim_id"].unique().tolist() == ["C100"]
    assert any("no ISA interchange header" in n for n in result.notes)


SVC_835 = (
    "ST*835*0001~BPR*I*150*C*CHK************20230201~TRN*1*1*1~"
    "N1*PR*ACME HEALTH~N1*PE*BACK CLINIC*XX*1234567893~LX*1~"
    "CLP*C100*1*300*150**12*ICN1~NM1*QC*1*DOE*JANE****MI*W123~MOA***MA01~"
    "SVC*HC:97110:GP:59*100*80**1~DTM*472*20230104~CAS*CO*45*20~AMT*B6*80~REF*6R*L1~"
    "SVC*HC:97140*200*70**1~DTM*472*20230104~CAS*CO*45*100~CAS*PR*2*30~LQ*HE*N130~"
    "REF*6R*L2~SE*20*0001~"
)


def test_835_lines_money_codes_and_note(tmp_path: Path) -> None:
    result = read_x12(_x12(tmp_path, ISA.format(comp=":") + SVC_835 + "IEA*1*1~", "r.835"))
    frame = result.frame
    assert result.format == "x12-835"
    assert frame["dx_value"].isna().all()
    assert frame[["claim_id", "line", "procedure", "billed", "paid"]].values.tolist() == [
        ["C100", 1, "97110", 100.0, 80.0],
        ["C100", 2, "97140", 200.0, 70.0],
    ]
    assert frame["allowed"].tolist()[0] == 80.0
    assert frame["carc"].tolist() == ["CO-45", "CO-45 PR-2"]
    assert frame["rarc"].tolist() == ["MA01", "MA01 N130"]
    assert frame["modifiers"].tolist()[0] == "GP 59"
    assert frame["payer"].tolist()[0] == "ACME HEALTH"
    assert any("835 carries no diagnosis codes" in n and "837" in n for n in result.notes)
    assert line_controls(frame) == ["L1", "L2"]
    assert line_controls(frame.iloc[:1]) is None  # filtered: no longer aligned


def test_join_by_line_control_number(tmp_path: Path) -> None:
    claims = read_x12(_x12(tmp_path, _interchange())).frame
    remits = read_x12(_x12(tmp_path, ISA.format(comp=":") + SVC_835, "r.835")).frame
    joined = join_remittance(claims, remits)
    assert list(joined.columns) == list(COLUMNS)
    assert joined[["line", "dx_value", "paid", "carc", "rarc"]].values.tolist() == [
        [1, "M5450", 80.0, "CO-45", "MA01"],
        [1, "S335XXA", 80.0, "CO-45", "MA01"],
        [2, "M5126", 70.0, "CO-45 PR-2", "MA01 N130"],
    ]


def test_join_by_procedure_when_no_line_control(tmp_path: Path) -> None:
    claims = read_x12(_x12(tmp_path, _interchange())).frame
    remit_text = ISA.format(comp=":") + SVC_835.replace("REF*6R*L1~", "").replace("REF*6R*L2~", "")
    # The payer answers the lines in the other order: matching is by procedure, not position.
    first, second = remit_text.index("SVC*HC:97110"), remit_text.index("SVC*HC:97140")
    end = remit_text.index("SE*")
    swapped = remit_text[:first] + remit_text[second:end] + remit_text[first:second]
    swapped += remit_text[end:]
    remits = read_x12(_x12(tmp_path, swapped, "r.835")).frame
    joined = join_remittance(claims, remits)
    assert joined.drop_duplicates("line_id")["paid"].tolist() == [80.0, 70.0]


def test_join_reversal_is_superseded_and_claim_level_codes_spread(tmp_path: Path) -> None:
    claims = read_x12(_x12(tmp_path, _interchange())).frame
    remit = (
        ISA.format(comp=":")
        + "ST*835*1~N1*PR*ACME~"
        + "CLP*C100*22*-300*-150**12*ICN1~SVC*HC:97110*-100*-80**1~SVC*HC:97140*-200*-70**1~"
        + "CLP*C100*1*300*120**12*ICN2~SVC*HC:97110*100*60**1~SVC*HC:97140*200*60**1~"
        + "CLP*OTHER*4*50*0**12*ICN3~CAS*CO*146*50~SE*9*1~"
    )
    remits = read_x12(_x12(tmp_path, remit, "r.835")).frame
    assert len(remits) == 5
    joined = join_remittance(claims, remits)
    assert joined.drop_duplicates("line_id")["paid"].tolist() == [60.0, 60.0]
    other = read_x12(_x12(tmp_path, _interchange().replace("C100", "OTHER"), "o.837")).frame
    joined_other = join_remittance(other, remits)
    assert set(joined_other["carc"]) == {"CO-146"}
    assert joined_other["paid"].isna().all()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hello world", "not an X12 file"),
        ("ISA*00*  *00*", "segment 1: ISA header is truncated"),
        (ISA.format(comp=":") + "GS*HC~GE*0*1~IEA*1*1~", "no ST transaction set"),
        (ISA.format(comp=":") + "ST*270*1~SE*1*1~", "transaction set 270 is not supported"),
        (
            ISA.format(comp=":") + "ST*837*1~SE*1*1~ST*835*2~SE*1*2~",
            "mixes 837 and 835",
        ),
    ],
)
def test_malformed_files_raise_input_error(tmp_path: Path, text: str, message: str) -> None:
    path = _x12(tmp_path, text, "bad.x12")
    with pytest.raises(InputError, match=message) as info:
        read_x12(path)
    assert str(path) in str(info.value)


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read the file"):
        read_x12(tmp_path / "absent.837")


# --------------------------------------------------------------------------- real samples

X12_FILES = sorted(
    p
    for folder in ("x12-linuxforhealth", "x12-edi835parser", "x12-pyx12", "hccinfhir")
    for p in (SAMPLES / folder).rglob("*")
    if p.is_file() and p.suffix not in (".json", ".ndjson")
)


@needs_samples
@pytest.mark.parametrize("path", X12_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_x12_sample_parses(path: Path) -> None:
    result = read_x12(path)
    frame = result.frame
    assert len(frame) > 0
    assert frame["claim_id"].notna().all()
    assert frame["date_of_service"].notna().all()
    assert frame["source_row"].ge(1).all()
    if result.format == "x12-835":
        assert frame["dx_value"].isna().all()
    else:
        assert frame["dx_value"].notna().any()


# (claims, service lines, diagnosis rows) counted by hand from the files
COUNTS = {
    "hccinfhir/sample_837_0.txt": ("x12-837p", 5, 5, 8),
    "hccinfhir/sample_837_5.txt": ("x12-837i", 1, 4, 11),
    "hccinfhir/sample_837_12.txt": ("x12-837i", 2, 8, 28),
    "x12-pyx12/simple_837p.txt": ("x12-837p", 2, 5, 5),
    "x12-linuxforhealth/837_004010X098A1/patient-is-subscriber.837": ("x12-837p", 1, 4, 4),
    "x12-linuxforhealth/837_005010X222A2/demo.example6.837": ("x12-837p", 1, 1, 1),
    "x12-linuxforhealth/837_005010X223A3/institutional-claim.837i": ("x12-837i", 1, 2, 6),
    "x12-linuxforhealth/837_005010X223A3/two-claims-single-provider.837i": (
        "x12-837i",
        2,
        3,
        7,
    ),
    "x12-linuxforhealth/835_005010X221A1/secondary-payment.835": ("x12-835", 2, 3, 0),
    "x12-edi835parser/sample_835.txt": ("x12-835", 6, 12, 0),
    "x12-edi835parser/emedny_sample.txt": ("x12-835", 1, 10, 0),
    "x12-pyx12/835_simple.txt": ("x12-835", 2, 3, 0),
}


@needs_samples
@pytest.mark.parametrize("name", sorted(COUNTS))
def test_sample_counts(name: str) -> None:
    fmt, claims, lines, dx = COUNTS[name]
    result = read_x12(SAMPLES / name)
    frame = result.frame
    assert result.format == fmt
    assert frame["claim_id"].nunique() == claims
    assert frame["line_id"].nunique() == lines
    assert frame["dx_value"].notna().sum() == dx


@needs_samples
def test_sample_pointers_select_repeated_principal_codes() -> None:
    frame = read_x12(SAMPLES / "hccinfhir" / "sample_837_5.txt").frame
    line1 = frame[frame["line"] == 1]
    assert line1["dx_pointers"].iloc[0] == "1,3,6"
    assert line1["dx_position"].tolist() == [1, 3, 6]
    assert line1["dx_value"].tolist() == ["S89219K", "S81052D", "T81505D"]


@needs_samples
def test_sample_invalid_i109_is_read_with_its_date() -> None:
    frame = read_x12(SAMPLES / "hccinfhir" / "sample_837_11.txt").frame
    row = frame[frame["dx_value"] == "I109"]
    assert len(row) == 1
    assert row["date_of_service"].iloc[0] >= pd.Timestamp("2015-10-01")


@needs_samples
def test_icd9_samples_have_pre_icd10_dates() -> None:
    folders = ("837_004010X096A1", "837_004010X098A1", "837_005010X222A2", "837_005010X223A3")
    for folder in folders:
        for path in (SAMPLES / "x12-linuxforhealth" / folder).iterdir():
            frame = read_x12(path).frame
            assert frame["date_of_service"].max() < pd.Timestamp("2015-10-01"), path.name


@needs_samples
def test_sample_declared_colon_body_greater_than() -> None:
    path = SAMPLES / "x12-linuxforhealth" / "835_005010X221A1" / "secondary-payment.835"
    result = read_x12(path)
    assert result.frame["procedure"].dropna().tolist() == ["12345", "66543"]
    assert result.frame["carc"].tolist() == ["OA-23", "OA-23", "PR-1 PR-2 CO-42"]


@needs_samples
@pytest.mark.parametrize("name", ["README.md", "fhir-carin-inferno/eob_metadata_v200.yml"])
def test_non_x12_sample_fails_clearly(name: str) -> None:
    with pytest.raises(InputError, match="not an X12 file: it should start with an ISA"):
        read_x12(SAMPLES / name)
