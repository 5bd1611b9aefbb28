"""Exceptions raised by eobcheck.

The hierarchy::

    EobcheckError                 base of everything eobcheck raises on purpose
     +-- ConfigError              bad configuration, selector or column mapping
     +-- InputError               an input file that cannot be read (names file, sheet, row, column)
     +-- ReferenceDataError       the reference tables are missing, corrupt or cannot be imported

The command-line interface turns any of these into a message and exit status 2.
"""

from __future__ import annotations


class EobcheckError(Exception):
    """Base class of every error eobcheck raises on purpose."""


class ConfigError(EobcheckError):
    """A configuration value, rule selector or column mapping is wrong."""


class InputError(EobcheckError):
    """An input cannot be read; the message says where and what to do."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        sheet: str | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.path = path
        self.sheet = sheet
        self.row = row
        self.column = column
        self.detail = message
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.path is not None:
            where.append(self.path)
        if self.sheet is not None:
            where.append(f"sheet {self.sheet!r}")
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        return f"{', '.join(where)}: {self.detail}" if where else self.detail


class ReferenceDataError(EobcheckError):
    """The reference data is missing, corrupt, or an import failed."""
