"""eobcheck: check EOB and claim exports for diagnosis-code problems and say how to fix them.

Public API::

    eobcheck.check(path | paths | DataFrame, **settings) -> Report
    eobcheck.read(path | DataFrame, sheet=None, columns=None) -> DataFrame (canonical frame)
    eobcheck.lookup(code, on=date) -> CodeLookup
"""

from __future__ import annotations

from eobcheck.config import Settings, load_settings
from eobcheck.engine import check
from eobcheck.errors import ConfigError, EobcheckError, InputError, ReferenceDataError
from eobcheck.readers import read
from eobcheck.reference import CodeLookup, Suggestion, lookup
from eobcheck.report import Report
from eobcheck.rule import Applicability, Severity

__version__ = "0.1.0"

__all__ = [
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
