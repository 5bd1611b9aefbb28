"""Write the reader fixtures under fixtures/readers/: small exports with odd shapes.

Each file exercises one thing a real export does (see tests/readers/). Diagnosis codes are the
low-back seed codes of DOMAIN.md written in the styles exports use; CPT codes carry no
descriptions. Run from the repository root:

    python tools/make_reader_fixtures.py
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

from openpyxl import Workbook

OUT = Path(__file__).resolve().parents[1] / "fixtures" / "readers"


def _write(name: str, text: str, encoding: str = "utf-8", bom: bool = False) -> None:
    data = text.replace("\n", "\r\n").encode(encoding)
    if bom:
        data = b"\xef\xbb\xbf" + data
    (OUT / name).write_bytes(data)


def wide_dx12() -> None:
    """Wide export: Dx 1..Dx 12, numbered modifiers, every optional field."""
    header = [
        "Claim Number", "Line #", "Date of Service", "CPT", "Modifier 1", "Modifier 2",
        *[f"Dx {i}" for i in range(1, 13)],
        "Dx Pointer", "Patient ID", "DOB", "Sex", "Billed Amount", "Allowed", "Paid Amount",
        "Adjustment Codes", "RARC", "Payer", "Rendering Provider",
    ]  # fmt: skip
    dx = [""] * 12
    rows = [
        ["CLM-1001", "1", "01/05/2023", "97110", "GP", "", "M54.50", "M51.26", *dx[2:],
         "1,2", "P001", "03/14/1961", "F", "$120.00", "95.10", "76.08", "CO-45", "", "Medicare",
         "Lee PT"],
        ["CLM-1001", "2", "01/05/2023", "97140", "GP", "59", "M54.50", *dx[1:],
         "1", "P001", "03/14/1961", "F", "$85.00", "70.00", "56.00", "CO-45 PR-2", "", "Medicare",
         "Lee PT"],
        ["CLM-1002", "1", "2022-11-30", "97110", "GP", "", "M54.5", "M54.41", "M47.816",
         "S39.012A", "M51.26", "M54.42", "S33.5XXA", "S32.2XXA", "724.2", "m5450", "S33.5A",
         "S33.5", "1", "P002", "1975-07-04", "Male", "(12.00)", "", "0", "CO-146", "M81, N130",
         "Aetna", "Kim DPT"],
        ["CLM-1003", "1", "20230210", "97530", "", "", *dx,
         "", "P003", "", "female", "$1,234.50", "", "", "CO-16", "M81", "BCBS", "Lee PT"],
    ]  # fmt: skip
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([header, *rows])
    _write("wide_dx12.csv", buf.getvalue())


def list_in_cell() -> None:
    """One "Diagnosis Codes" cell per line, with each separator exports use."""
    text = (
        "Claim #,DOS,CPT/HCPCS,Mod,Diagnosis Codes,Billed,Paid,Adj Codes,Remark Codes\n"
        'A-1,01/05/2023,97110,"GP,59","M54.50, M54.41",$100.00,$80.00,CO45,M81\n'
        "A-1,01/05/2023,97140,GP,M54.50;M51.26,$90.00,$72.00,CO 45,\n"
        "A-2,1/6/23,97112,GP59,S33.5XXA|S39.012A,$75.00,$0.00,CO-146 PR-2,N130\n"
        "A-3,2023-01-07,97530,,M54.42  M47.816,$60.00,$48.00,45,\n"
        "A-4,2023-01-08,97110,,,$60.00,$0.00,CO-16,M76\n"
        'A-5,2023-01-09,97110,," m5450 ",$60.00,$48.00,,\n'
    )
    _write("list_in_cell.csv", text)


def semicolon_cp1252() -> None:
    """cp1252, semicolon-delimited, title rows above odd headers, separate group/reason."""
    text = (
        "Physiothérapie Nord – EOB export\n"
        "Printed 02/01/2023;;;\n"
        "\n"
        "ICN;Svc Date;Proc Code;Mods;ICD-10 Dx 1;ICD-10 Dx 2;Charges;Payment;Group Code;"
        "Reason Code;Remarks;Insurance;Provider\n"
        "9001;01/12/2023;97110;GP;M5450;M51.26;120.00;0;CO;146;M84;Mutuelle Générale;Dr Müller\n"
        "9002;01/13/2023;97140;GP;S33.5A;;85.00;68.00;PR;1, 2;;Mutuelle Générale;Dr Müller\n"
    )
    _write("semicolon_cp1252.csv", text, encoding="cp1252")


def bom_tab() -> None:
    """UTF-8 with BOM, tab-delimited, CMS-style snake_case headers up to diagnosis_code_25."""
    header = ["claim_id", "claim_start_date", "hcpcs_code"] + [
        f"diagnosis_code_{i}" for i in range(1, 26)
    ]
    rows = [
        ["B-77", "2021-10-01", "97110", "M54.5", "M54.50", *[""] * 22, "M47.816"],
        ["B-78", "2021-09-30", "97161", "M54.5", *[""] * 24],
    ]
    _write("bom_tab.tsv", "\n".join("\t".join(r) for r in [header, *rows]) + "\n", bom=True)


def pipe_title_blank() -> None:
    """Pipe-delimited with title rows, blank lines inside the data and a Total row."""
    text = (
        "EOB detail report\n"
        "\n"
        "Claim ID|Service Date|Procedure|Dx1|Dx2|Charge|Paid\n"
        "P-1|01/03/2023|97110|M54.50||100.00|80.00\n"
        "\n"
        "P-2|01/04/2023|97140|M54.41|M51.26|90.00|72.00\n"
        "   |   |   |   |   |   |   \n"
        "P-3|13/45/2023|97110|M54.42||60.00|0.00\n"
        "Total|||||250.00|152.00\n"
    )
    _write("pipe_title_blank.txt", text)


def custom_headers() -> None:
    """Headers no alias knows: read only with a user column mapping."""
    text = (
        "Enc Ref,Visit Day,Primary Dx,Secondary Dx,Svc\n"
        "E1,2023-03-01,M54.50,M54.41,97110\n"
        "E2,2023-03-02,S33.5XXD,,97140\n"
    )
    _write("custom_headers.csv", text)


def missing_columns() -> None:
    """A claim id and diagnoses but no date of service column."""
    text = "Claim #,CPT,Dx 1,Billed\nM-1,97110,M54.50,100.00\n"
    _write("missing_columns.csv", text)


def quoted_irregular() -> None:
    """Quoted fields with delimiters and a line break inside, and a short footer row."""
    text = (
        "Claim ID,DOS,CPT,Dx Codes,Payer\n"
        'Q-1,01/05/2023,97110,"M54.50, M51.26","Blue Cross, Blue Shield"\n'
        'Q-2,01/06/2023,97140,M54.41,"Plan with a\nline break"\n'
        "Q-3,01/07/2023,97110,M54.42,Aetna\n"
        "Generated by PM system\n"
    )
    _write("quoted_irregular.csv", text)


def workbook() -> None:
    """Several sheets: a summary without header, real dates, serials, text dates, lists."""
    wb = Workbook()
    summary = wb.active
    assert summary is not None
    summary.title = "Summary"
    summary.append(["EOB export, January-February 2023"])
    summary.append(["Total billed", 1234.5])

    jan = wb.create_sheet("January")
    jan.append(["Acme Physical Therapy"])
    jan.append(["Remittance detail"])
    jan.append([])
    jan.append(["Claim #", "DOS", "CPT/HCPCS", "Mod", "Dx 1", "Dx 2", "Dx 3", "Billed", "Paid",
                "Adj Codes", "Remark Codes", "DOB", "Gender"])  # fmt: skip
    jan.append([1001, dt.datetime(2023, 1, 5), 97110, "GP", "M54.50", "M51.26", None, 120.0,
                96.0, "CO-45", None, dt.datetime(1961, 3, 14), "F"])  # fmt: skip
    jan.append([1001, dt.datetime(2023, 1, 5), 97140, "GP", "M54.5", None, None, 85.0, 0.0,
                "CO-146", "M81", dt.datetime(1961, 3, 14), "F"])  # fmt: skip
    jan.append([])
    jan.append([1002, dt.date(2023, 1, 9), "97112", None, None, None, None, 75.0, 0,
                "CO-16", "M76", None, "M"])  # fmt: skip
    jan.append(["Total", None, None, None, None, None, None, 280.0, 96.0])

    feb = wb.create_sheet("February")
    feb.append(["Claim ID", "Service Date", "Procedure", "Diagnosis Codes", "Charges", "Payment"])
    feb.append(["F-1", 44963, "97110", "M54.50, M54.41", 100, 80])  # serial number 2023-02-06
    feb.append(["F-2", "44964", "97530", "S33.5A", 60, 0])  # serial as text 2023-02-07
    feb.append(["F-3", "02/08/2023", "97110", "724.2", 60, 0])  # text date
    feb.append(["F-4", "not a date", "97110", "M54.42", 60, 48])

    notes = wb.create_sheet("Notes")
    notes.append(["Payer", "Contact"])
    notes.append(["Medicare", "555-0100"])
    wb.save(OUT / "workbook.xlsx")


def main() -> None:
    """Write every reader fixture."""
    OUT.mkdir(parents=True, exist_ok=True)
    for make in (
        wide_dx12,
        list_in_cell,
        semicolon_cp1252,
        bom_tab,
        pipe_title_blank,
        custom_headers,
        missing_columns,
        quoted_irregular,
        workbook,
    ):
        make()
    print(f"wrote {len(list(OUT.iterdir()))} files to {OUT}")


if __name__ == "__main__":
    main()
