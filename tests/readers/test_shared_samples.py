"""read_file on the real sample files in ../shared/samples: every one is dispatched and read."""

from __future__ import annotations

from pathlib import Path

import pytest

from eobcheck.errors import InputError
from eobcheck.model import COLUMNS
from eobcheck.readers import SUPPORTED_SUFFIXES, read_file

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples"
FILES = (
    sorted(
        p
        for p in SAMPLES.rglob("*")
        if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES and p.name != "README.md"
    )
    if SAMPLES.is_dir()
    else []
)
# resources without any ExplanationOfBenefit in them: a clear InputError is the right answer
NO_CLAIMS = {"c4bb_eob_coverage_example.json"}


@pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"shared samples not found at {SAMPLES}")
def test_samples_exist() -> None:
    assert len(FILES) >= 20


@pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"shared samples not found at {SAMPLES}")
@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_every_sample_reads_into_the_canonical_frame(path: Path) -> None:
    if path.name in NO_CLAIMS:
        with pytest.raises(InputError, match=path.name):
            read_file(path)
        return
    res = read_file(path, line_id_start=1000)
    assert tuple(res.frame.columns) == COLUMNS
    assert res.rows_read > 0
    assert res.format != "csv"  # X12 and FHIR are recognized by content, even as .txt
    assert res.frame["line_id"].min() >= 1000
