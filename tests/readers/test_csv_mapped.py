"""A large CSV file is memory-mapped instead of read: both ways give the same result."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from eobcheck.errors import InputError
from eobcheck.readers import read_file

READERS = Path(__file__).resolve().parents[2] / "fixtures" / "readers"
CSV = sys.modules["eobcheck.readers.csv"]

FILES = sorted(
    p.name
    for p in READERS.iterdir()
    # the files that need a column mapping have their own tests
    if p.suffix in {".csv", ".tsv", ".txt"} and p.stem not in {"missing_columns", "custom_headers"}
)


@pytest.mark.parametrize("name", FILES)
def test_mapped_file_reads_as_the_read_file(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = read_file(READERS / name)
    monkeypatch.setattr(CSV, "_MAP_BYTES", 1)
    assert isinstance(CSV._load(READERS / name), memoryview)
    mapped = read_file(READERS / name)
    pd.testing.assert_frame_equal(plain.frame, mapped.frame, check_exact=True)
    assert (plain.rows_read, plain.notes) == (mapped.rows_read, mapped.notes)


def test_mapped_bom_non_ascii_and_blank_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(CSV, "_MAP_BYTES", 1)
    text = "Title row\nClaim #,DOS,Dx 1,Payer\nC1,01/05/2023,M54.50,Société Générale\n"
    path = tmp_path / "eob.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    res = read_file(path)
    assert res.notes[0].startswith("encoding utf-8-sig")
    assert res.frame["payer"].tolist() == ["Société Générale"]
    assert res.frame["source_row"].tolist() == [3]
    path.write_bytes(text.encode("cp1252"))
    res = read_file(path)
    assert res.notes[0].startswith("encoding cp1252")
    assert res.frame["payer"].tolist() == ["Société Générale"]
    for blank in (b"", b" \r\n\t\n"):
        path.write_bytes(blank)
        with pytest.raises(InputError, match="empty"):
            read_file(path)
