"""The public API is exactly what __all__ says, sorted."""

from __future__ import annotations

import eobcheck


def test_all_is_sorted_and_pinned() -> None:
    assert eobcheck.__all__ == sorted(eobcheck.__all__)
    assert eobcheck.__all__ == [
        "Applicability",
        "CodeLookup",
        "ConfigError",
        "EobcheckError",
        "InputError",
        "ReferenceDataError",
        "Report",
        "Settings",
        "Severity",
        "Suggestion",
        "__version__",
        "check",
        "load_settings",
        "lookup",
        "read",
    ]
    for name in eobcheck.__all__:
        assert hasattr(eobcheck, name), name


def test_error_hierarchy() -> None:
    for exc in (eobcheck.ConfigError, eobcheck.InputError, eobcheck.ReferenceDataError):
        assert issubclass(exc, eobcheck.EobcheckError)
