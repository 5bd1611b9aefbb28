"""Rule packs: the shipped packs validate; a bad user pack names its file and field."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import eobcheck
from eobcheck.errors import ConfigError
from eobcheck.packs import builtin_packs, load_pack, load_packs, pack_schema

GOOD = """
pack: knee
description: Knee therapy needs a knee diagnosis.
sources: [Local payer policy 12]
edits:
  - id: knee-only-screening
    procedures: ["97110"]
    check: only-unsupported
    not_supporting:
      - codes: ["Z00-Z13"]
        note: a screening encounter
    message: screening does not support therapy
    sources: [Local payer policy 12]
"""


def write(tmp_path: Path, text: str, name: str = "pack.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_packs_validate() -> None:
    names = {p.pack for p in load_packs()}
    assert {"therapy", "chiropractic"} <= names
    assert len(builtin_packs()) >= 2
    for pack in load_packs():
        assert pack.sources and all(e.sources for e in pack.edits)
        for edit in pack.edits:
            for pattern in [*edit.supporting, *edit.not_supporting]:
                assert pattern.note.strip()


def test_schema_is_json_schema() -> None:
    schema = pack_schema()
    assert schema["title"] == "Pack"
    assert {"pack", "description", "sources", "edits"} <= set(schema["required"])


def test_good_user_pack_loads(tmp_path: Path) -> None:
    pack = load_pack(write(tmp_path, GOOD))
    assert pack.pack == "knee"
    assert pack.edits[0].covers("97110") and not pack.edits[0].covers("97140")


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ('procedures: ["97110"]', 'procedures: ["9711"]', "edits.0.procedures"),
        ('codes: ["Z00-Z13"]', 'codes: ["not a code"]', "edits.0.not_supporting.0.codes"),
        ("check: only-unsupported", "check: sometimes", "edits.0.check"),
        ("        note: a screening encounter\n", "", "edits.0.not_supporting.0.note"),
        ("id: knee-only-screening", "id: Knee Only", "edits.0.id"),
        ("sources: [Local payer policy 12]\nedits", "sources: []\nedits", "sources"),
        ("    message: screening", "    messages: screening", "edits.0.messages"),
    ],
)
def test_bad_user_pack_names_file_and_field(tmp_path: Path, old: str, new: str, field: str) -> None:
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(ConfigError) as err:
        load_pack(path)
    text = str(err.value)
    assert str(path.resolve()) in text
    assert field in text


def test_check_needs_its_patterns(tmp_path: Path) -> None:
    bad = GOOD.replace("check: only-unsupported", "check: primary-supported")
    with pytest.raises(ConfigError, match="needs supporting patterns"):
        load_pack(write(tmp_path, bad))


def test_not_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_pack(write(tmp_path, "pack: [unclosed"))
    with pytest.raises(ConfigError, match="a rule pack is a mapping"):
        load_pack(write(tmp_path, "- just a list", "list.yaml"))
    with pytest.raises(ConfigError, match="not found"):
        load_pack(tmp_path / "nope.yaml")


def test_duplicate_pack_names(tmp_path: Path) -> None:
    a = write(tmp_path, GOOD, "a.yaml")
    b = write(tmp_path, GOOD, "b.yaml")
    with pytest.raises(ConfigError, match="already used"):
        load_packs([str(a), str(b)], builtin=False)


def _claims() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Claim ID": ["C1", "C2"],
            "DOS": ["2023-01-05", "2023-01-05"],
            "CPT": ["97110", "97110"],
            "Dx 1": ["Z13.820", "M54.50"],
        }
    )


def test_user_pack_drives_the_rule(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    report = eobcheck.check(
        _claims(), select=["procedure-diagnosis-mismatch"], packs=[str(path)], builtin_packs=False
    )
    found = report.findings
    assert list(found["claim_id"]) == ["C1"]
    assert "pack knee, knee-only-screening" in found["message"].iloc[0]


def test_bad_user_pack_stops_the_check(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("check: only-unsupported", "check: sometimes"))
    with pytest.raises(ConfigError, match=r"edits\.0\.check"):
        eobcheck.check(_claims(), select=["procedure-diagnosis-mismatch"], packs=[str(path)])


def test_relative_pack_paths_follow_the_config_file(tmp_path: Path) -> None:
    write(tmp_path, GOOD, "knee.yaml")
    config = tmp_path / "eobcheck.toml"
    config.write_text('packs = ["knee.yaml"]\nbuiltin_packs = false\n', encoding="utf-8")
    settings = eobcheck.load_settings(config)
    report = eobcheck.check(_claims(), settings=settings, select=["procedure-diagnosis-mismatch"])
    assert list(report.findings["claim_id"]) == ["C1"]
