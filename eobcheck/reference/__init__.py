"""eobcheck's code knowledge: ICD-10-CM by date of service, titles, crosswalks and GEMs.

``get_reference()`` returns the process-wide :class:`Reference`; ``Reference.check(codes,
dates)`` answers, for whole columns at once, whether each code was billable on its date of
service, and if not, why not and what replaces it. ``lookup(code, on)`` does the same for one
code and explains the answer in a sentence.
"""

from __future__ import annotations

from eobcheck.reference.core import (
    STATUSES,
    CodeLookup,
    Reference,
    Suggestion,
    default_user_dir,
    get_reference,
    lookup,
    reset_reference,
)

__all__ = [
    "STATUSES",
    "CodeLookup",
    "Reference",
    "Suggestion",
    "default_user_dir",
    "get_reference",
    "lookup",
    "reset_reference",
]
