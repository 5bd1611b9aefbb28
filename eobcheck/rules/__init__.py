"""The rule registry: every rule eobcheck knows, in one tuple."""

from __future__ import annotations

from eobcheck.rule import Rule
from eobcheck.rules.consistency import (
    excludes1_conflict,
    external_cause_first,
    laterality_conflict,
    manifestation_first,
    sequela_first,
)
from eobcheck.rules.diagnosis import (
    icd9_code,
    incomplete_code,
    malformed_code,
    missing_placeholder,
    premature_code,
    retired_code,
    unknown_code,
)
from eobcheck.rules.patient import (
    age_conflict,
    episode_region_change,
    sex_conflict,
    unspecified_persisting,
)
from eobcheck.rules.records import (
    duplicate_diagnosis,
    invalid_date,
    missing_claim_id,
    missing_diagnosis,
)
from eobcheck.rules.therapy import (
    initial_encounter_for_therapy,
    procedure_diagnosis_mismatch,
)

RULES: tuple[Rule, ...] = (
    malformed_code,
    unknown_code,
    retired_code,
    premature_code,
    incomplete_code,
    missing_placeholder,
    icd9_code,
    duplicate_diagnosis,
    missing_diagnosis,
    invalid_date,
    missing_claim_id,
    excludes1_conflict,
    external_cause_first,
    manifestation_first,
    sequela_first,
    laterality_conflict,
    initial_encounter_for_therapy,
    procedure_diagnosis_mismatch,
    age_conflict,
    sex_conflict,
    unspecified_persisting,
    episode_region_change,
)

BY_NAME: dict[str, Rule] = {r.name: r for r in RULES}
BY_CODE: dict[str, Rule] = {r.code: r for r in RULES}


def find(key: str) -> Rule | None:
    """The rule with this name or code (case-insensitive), or None."""
    return BY_NAME.get(key.lower()) or BY_CODE.get(key.upper())
