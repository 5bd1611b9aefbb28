"""The rule registry: unique codes, kebab names, documented sections, a case file each."""

from __future__ import annotations

import re
from pathlib import Path

from eobcheck.rule import DOC_SECTIONS
from eobcheck.rules import RULES

CASES = Path(__file__).resolve().parents[2] / "fixtures" / "rules"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "rules"


def test_codes_and_names_unique() -> None:
    assert len({r.code for r in RULES}) == len(RULES)
    assert len({r.name for r in RULES}) == len(RULES)


def test_names_are_kebab_and_name_the_problem() -> None:
    for r in RULES:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", r.name), r.name
        assert not r.name.startswith(("check-", "no-", "validate-")), r.name


def test_docstring_sections_present() -> None:
    for r in RULES:
        sections = r.sections()
        missing = [s for s in DOC_SECTIONS if not sections.get(s)]
        assert not missing, f"{r.name} lacks sections {missing}"
        assert r.sources, f"{r.name} names no source"


def test_every_rule_has_a_case_file() -> None:
    for r in RULES:
        assert (CASES / f"{r.code}-{r.name}.csv").is_file(), f"no case file for {r.name}"


def test_rule_docs_are_generated_from_declarations() -> None:
    for r in RULES:
        page = DOCS / f"{r.name}.md"
        assert page.is_file(), f"run tools/gen_rule_docs.py: {page} missing"
        assert page.read_text(encoding="utf-8") == r.markdown(), f"{page} is stale"
