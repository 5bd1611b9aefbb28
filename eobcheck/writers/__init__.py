"""Report writers: JSON, CSV, XLSX and terminal text. Each takes a Report and nothing else."""

from __future__ import annotations

from eobcheck.writers.csv import write_csv
from eobcheck.writers.json import dumps, write_json
from eobcheck.writers.text import render_text
from eobcheck.writers.xlsx import write_xlsx

__all__ = ["dumps", "render_text", "write_csv", "write_json", "write_xlsx"]
