"""The command line: exit codes, formats, messages without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from eobcheck.cli import main
from eobcheck.rules import find

SAMPLE = str(Path(__file__).resolve().parents[1] / "fixtures" / "sample_eob.csv")


def test_check_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", SAMPLE, "--no-config"]) == 1
    assert main(["check", SAMPLE, "--no-config", "--fail-on", "never"]) == 0
    assert main(["check", SAMPLE, "--no-config", "--select", "DX011"]) == 1
    assert main(["check", SAMPLE, "--no-config", "--select", "duplicate-diagnosis"]) == 0
    assert (
        main(
            [
                "check",
                SAMPLE,
                "--no-config",
                "--select",
                "duplicate-diagnosis",
                "--fail-on",
                "warning",
            ]
        )
        == 1
    )
    out = capsys.readouterr().out
    assert "retired-code" in out


def test_json_output(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    assert main(["check", SAMPLE, "--no-config", "-o", str(out)]) == 1
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["stats"]["rows_read"] == 38
    assert {f["name"] for f in data["findings"]} >= {"retired-code", "icd9-code"}


def test_usage_and_input_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["check", "nope.csv", "--no-config"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["check", SAMPLE, "--no-config", "--select", "bogus"]) == 2
    assert "unknown rule selector" in capsys.readouterr().err
    assert main(["check", SAMPLE, "--no-config", "--format", "xlsx"]) == 2
    assert "-o" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["check"])
    assert exc.value.code == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n", encoding="utf-8")
    assert main(["check", str(bad), "--no-config"]) == 2
    err = capsys.readouterr().err
    assert "bad.csv" in err and "Traceback" not in err


def test_code_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["code", "M54.5", "--on", "2023-01-05"]) == 1
    out = capsys.readouterr().out
    assert "retired" in out and "M54.50" in out and "M54.59" in out
    assert main(["code", "m5450", "--on", "2023-01-05"]) == 0
    assert main(["code", "M54.5", "--on", "01/05/2023"]) == 2


def test_rules_and_rule(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules"]) == 0
    assert "DX003" in capsys.readouterr().out
    assert main(["rule", "retired-code"]) == 0
    rule = find("retired-code")
    assert rule is not None
    assert capsys.readouterr().out == rule.markdown()
    assert main(["rule", "nope"]) == 2


def test_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "eobcheck.toml").write_text('select = ["duplicate-diagnosis"]\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["check", SAMPLE]) == 0
    (tmp_path / "eobcheck.toml").write_text("select = 3\n", encoding="utf-8")
    assert main(["check", SAMPLE]) == 2
    assert "eobcheck.toml" in capsys.readouterr().err


def test_python_dash_m() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "eobcheck", "--version"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and "eobcheck" in done.stdout


def test_the_command_flushes_its_report_and_exit_status() -> None:
    # the command leaves with os._exit: everything written must be flushed first
    done = subprocess.run(
        [sys.executable, "-m", "eobcheck", "check", SAMPLE, "--no-config", "--format", "json"],
        capture_output=True,
        check=False,
    )
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["stats"]["findings"] == len(report["findings"]) > 0
    missing = subprocess.run(
        [sys.executable, "-m", "eobcheck", "check", "no/such/file.csv"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_unreadable_input_is_not_reported_clean(capsys: pytest.CaptureFixture[str]) -> None:
    xlsx = str(Path(SAMPLE).with_suffix(".xlsx"))
    assert main(["check", xlsx, "--no-config", "--sheet", "Nope"]) == 2
    captured = capsys.readouterr()
    assert "No problems found." not in captured.out
    assert "could not be read" in captured.out
    assert "no sheet named 'Nope'" in captured.err


def test_check_turns_off_numpy_huge_page_advice() -> None:
    import numpy as np

    from eobcheck.cli import _no_huge_pages

    setter = np._core.multiarray._set_madvise_hugepage
    before = setter(True)
    try:
        _no_huge_pages()
        assert setter(True) is False  # the previous value: the advice was off
    finally:
        setter(before)
