"""Synthetic EOB exports for benchmarks: realistic column layout and code mix, reproducible.

Codes are real ICD-10-CM codes (and a few deliberate problems: retired, header, missing
placeholder, ICD-9, malformed) as a low-back-pain therapy practice bills them; dates of service
span 2019-2025 so the retired/premature checks have work to do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

# (code as written, weight). "LBP" stands for low back pain, coded as a practice codes it on
# the date of service: M54.5 before 2021-10-01, M54.50/M54.51/M54.59 from then on. The rest are
# valid throughout 2019-2025, written oddly now and then, plus deliberate problems at the rates
# an audit finds them: M54.5 kept after its retirement, M54.50 on old dates, headers, a missing
# placeholder, ICD-9, a typo, M51.36 (split 2024-10-01).
CODE_MIX: tuple[tuple[str, float], ...] = (
    ("LBP", 30),
    ("M47.816", 10),
    ("M51.26", 7),
    ("M54.16", 6),
    ("M48.061", 5),
    ("M54.41", 4),
    ("M54.42", 4),
    ("S39.012D", 5),
    ("S33.5XXD", 3),
    ("M62.81", 6),
    ("R26.2", 3),
    ("M25.561", 3),
    ("M25.562", 3),
    ("M54.2", 4),
    ("M54.6", 2),
    ("m47816", 1),
    (" M51.26", 1),
    ("M51.36", 1.5),
    ("M54.5", 1.2),
    ("M54.50", 0.5),
    ("M54.4", 0.4),
    ("S33.5", 0.2),
    ("S33.5A", 0.2),
    ("724.2", 0.2),
    ("XYZ.1", 0.1),
    ("S32.2XXA", 0.3),
)
LBP_AFTER = np.array(["M54.50", "M54.50", "M54.50", "M5450", "M54.59", "M54.51"], dtype=object)
PROCEDURES = ("97110", "97140", "97112", "97530", "97161", "97162", "97014", "G0283")
PAYERS = ("Medicare Part B", "Blue Shield PPO", "Aetna Choice POS II", "Cigna Open Access Plus")
HEADER = [
    "Claim #",
    "Patient ID",
    "DOS",
    "Line",
    "CPT/HCPCS",
    "Mod",
    "Dx 1",
    "Dx 2",
    "Dx 3",
    "Dx 4",
    "Billed",
    "Allowed",
    "Paid",
    "Adj Codes",
    "Remark Codes",
    "Payer",
]


def frame(lines: int, seed: int = 7) -> pd.DataFrame:
    """``lines`` service lines, about 2.5 lines per claim, 1-4 diagnoses each."""
    rng = np.random.default_rng(seed)
    claims = max(1, int(lines / 2.5))
    claim_of_line = np.sort(rng.integers(0, claims, lines))
    codes = np.array([c for c, _ in CODE_MIX], dtype=object)
    weights = np.array([w for _, w in CODE_MIX], dtype=float)
    weights /= weights.sum()
    # diagnoses are per claim, repeated on each line of the claim, as exports do
    dx_claim = rng.choice(codes, size=(claims, 4), p=weights)
    for _ in range(6):  # a claim lists each diagnosis once: redraw repeats
        repeat = np.zeros(dx_claim.shape, dtype=bool)
        for j in range(1, 4):
            repeat[:, j] = (dx_claim[:, :j] == dx_claim[:, j : j + 1]).any(axis=1)
        if not repeat.any():
            break
        dx_claim[repeat] = rng.choice(codes, size=int(repeat.sum()), p=weights)
    n_dx = rng.choice([1, 2, 3, 4], size=claims, p=[0.35, 0.35, 0.2, 0.1])
    dx_claim[np.arange(4)[None, :] >= n_dx[:, None]] = ""
    start = np.datetime64("2019-01-01")
    days = rng.integers(0, 7 * 365, claims)
    dos_claim = (start + days.astype("timedelta64[D]")).astype("datetime64[D]")
    lbp = dx_claim == "LBP"
    after = np.broadcast_to((dos_claim >= np.datetime64("2021-10-01"))[:, None], lbp.shape)
    dx_claim[lbp & ~after] = "M54.5"
    dx_claim[lbp & after] = rng.choice(LBP_AFTER, size=int((lbp & after).sum()))
    dos = pd.to_datetime(dos_claim[claim_of_line]).strftime("%m/%d/%Y")
    billed = rng.choice([120.0, 140.0, 150.0, 165.0, 210.0], lines)
    denied = rng.random(lines) < 0.08
    paid = np.where(denied, 0.0, np.round(billed * 0.19, 2))
    allowed = np.where(denied, 0.0, np.round(billed * 0.24, 2))
    line_no = pd.Series(claim_of_line).groupby(claim_of_line).cumcount().to_numpy() + 1
    data = {
        "Claim #": (claim_of_line + 100000).astype(str),
        "Patient ID": np.char.add("P", (claim_of_line % 50000).astype(str)),
        "DOS": dos.to_numpy(),
        "Line": line_no.astype(str),
        "CPT/HCPCS": rng.choice(PROCEDURES, lines),
        "Mod": np.where(rng.random(lines) < 0.9, "GP", "GP 59"),
        "Dx 1": dx_claim[claim_of_line, 0],
        "Dx 2": dx_claim[claim_of_line, 1],
        "Dx 3": dx_claim[claim_of_line, 2],
        "Dx 4": dx_claim[claim_of_line, 3],
        "Billed": np.char.add("$", np.char.mod("%.2f", billed)),
        "Allowed": np.char.mod("%.2f", allowed),
        "Paid": np.char.mod("%.2f", paid),
        "Adj Codes": np.where(
            denied, rng.choice(["CO-146", "CO-16", "CO-11"], lines), "CO-45 PR-2"
        ),
        "Remark Codes": np.where(denied, rng.choice(["M84", "M81", "M76", ""], lines), ""),
        "Payer": rng.choice(PAYERS, lines),
    }
    return pd.DataFrame(data, columns=HEADER)


def write_csv(path: Path, lines: int, seed: int = 7) -> Path:
    """Write a synthetic CSV export of ``lines`` service lines."""
    table = pa.Table.from_pandas(frame(lines, seed), preserve_index=False)
    pacsv.write_csv(table, path)
    return path


def write_xlsx(path: Path, lines: int, seed: int = 7) -> Path:
    """Write a synthetic XLSX export (title row, then the table) of ``lines`` service lines."""
    from openpyxl import Workbook

    df = frame(lines, seed)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("EOB Detail")
    ws.append(["Synthetic remittance detail"])
    ws.append(HEADER)
    for row in df.itertuples(index=False, name=None):
        ws.append(list(row))
    wb.save(path)
    return path
