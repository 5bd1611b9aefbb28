"""Write fixtures/sample_eob.xlsx from fixtures/sample_eob.csv, the way a payer portal would.

A title block above the header, real date cells, numeric amounts, one date of service as an
Excel serial number and one as text, and a notes sheet without a table.
"""

from __future__ import annotations

import csv
from datetime import date, datetime
from pathlib import Path

from openpyxl import Workbook

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "fixtures" / "sample_eob.csv"
TARGET = ROOT / "fixtures" / "sample_eob.xlsx"
EXCEL_EPOCH = date(1899, 12, 30)


def _date(text: str) -> date | str:
    for fmt in ("%m/%d/%Y", "%Y-%m-%d", "%m/%d/%y"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return text


def _amount(text: str) -> float | str:
    cleaned = text.replace("$", "").replace(",", "").strip()
    try:
        return float(cleaned)
    except ValueError:
        return text


def main() -> None:
    """Regenerate the XLSX fixture (deterministic content)."""
    with SOURCE.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    wb = Workbook()
    ws = wb.active
    ws.title = "Remittance Detail"
    ws.append(["Lakeside Physical Therapy - Remittance detail"])
    ws.append(["Report period: 2021-06-01 to 2024-11-30"])
    ws.append([])
    ws.append(header)
    dates = {header.index(h) for h in ("DOB", "DOS")}
    money = {header.index(h) for h in ("Billed", "Allowed", "Paid")}
    for raw in body:
        out: list[object] = []
        for i, cell in enumerate(raw):
            if i in dates and cell:
                out.append(_date(cell))
            elif i in money and cell:
                out.append(_amount(cell))
            else:
                out.append(cell if cell != "" else None)
        if raw[0] == "1023":  # a date of service stored as an Excel serial number
            dos = out[header.index("DOS")]
            assert isinstance(dos, date)
            out[header.index("DOS")] = (dos - EXCEL_EPOCH).days
        ws.append(out)
    for row in ws.iter_rows(min_row=5):
        for cell in row:
            if isinstance(cell.value, date):
                cell.number_format = "mm/dd/yyyy"
    notes = wb.create_sheet("Notes")
    notes.append(["Amounts in USD. Adjustment codes are X12 CARC with group prefixes."])
    wb.properties.creator = "eobcheck fixtures"
    wb.properties.created = datetime(2024, 12, 1)
    wb.properties.modified = datetime(2024, 12, 1)
    wb.save(TARGET)


if __name__ == "__main__":
    main()
