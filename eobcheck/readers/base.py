"""What every reader returns: the canonical frame plus what was read."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd


@dataclass
class ReadResult:
    """One input file read into the canonical frame (see eobcheck.model)."""

    frame: pd.DataFrame
    path: Path
    format: str
    sheets: list[str] = field(default_factory=list)
    rows_read: int = 0
    column_map: dict[str, str | list[str]] = field(default_factory=dict)
    skipped_sheets: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
