"""Rules: a function plus metadata, the hits it returns, and ruff-style selection."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import pandas as pd

from eobcheck.errors import ConfigError

if TYPE_CHECKING:
    from eobcheck.engine import Context


class Severity(StrEnum):
    """How bad a finding is; ``--fail-on`` compares against this order."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        """0 for info, 1 for warning, 2 for error."""
        return ("info", "warning", "error").index(self.value)


class Applicability(StrEnum):
    """How far a suggested fix can be trusted (ruff's terms)."""

    SAFE = "safe"  # format-only; the result is itself valid on the date of service
    UNSAFE = "unsafe"  # one replacement a coder should confirm
    DISPLAY_ONLY = "display_only"  # several candidates: a coder chooses


@dataclass
class Hits:
    """What a rule returns: a mask over the frame plus per-hit message and fix columns.

    Every Series is aligned to the frame's index; only rows where ``mask`` is True are used.
    ``message`` may be a single string for all hits.
    """

    mask: pd.Series
    message: pd.Series | str
    suggestions: pd.Series | None = None
    fix_applicability: pd.Series | str | None = None
    fix_replacement: pd.Series | None = None
    column: pd.Series | None = None  # location column when it is not the diagnosis column
    value: pd.Series | None = None  # the offending value when it is not the diagnosis


RuleFunc = Callable[["Context"], Hits]

DOC_SECTIONS = ("What it does", "Why it matters", "Example", "Fix")
_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_CODE = re.compile(r"^[A-Z]{2,3}[0-9]{3}$")


@dataclass(frozen=True)
class Rule:
    """One check: stable code, kebab name, default severity, docs and the function."""

    code: str
    name: str
    severity: Severity
    summary: str
    sources: tuple[str, ...]
    func: RuleFunc
    rejects: bool = False  # a hit means the line is rejected (not checked by other rules)

    @property
    def doc(self) -> str:
        """The rule's documentation (its function's docstring, dedented)."""
        return textwrap.dedent(self.func.__doc__ or "").strip()

    def sections(self) -> dict[str, str]:
        """The docstring split into its "What it does / Why it matters / ..." sections."""
        found: dict[str, str] = {}
        current: str | None = None
        for raw in self.doc.splitlines():
            line = raw.rstrip()
            heading = line.rstrip(":").strip()
            if heading in DOC_SECTIONS and line.endswith(":"):
                current = heading
                found[current] = ""
            elif current is not None:
                found[current] += line + "\n"
        return {k: textwrap.dedent(v).strip() for k, v in found.items()}

    def markdown(self) -> str:
        """The rule's documentation page as Markdown (docs/rules and ``eobcheck rule``)."""
        parts = [
            f"# {self.name} ({self.code})",
            "",
            f"{self.summary}",
            "",
            f"Default severity: **{self.severity.value}**"
            + ("; a hit rejects the line from the other checks" if self.rejects else ""),
        ]
        for heading, body in self.sections().items():
            parts += ["", f"## {heading}", "", body]
        parts += ["", "## Sources", ""] + [f"- {s}" for s in self.sources]
        return "\n".join(parts) + "\n"


def rule(
    code: str,
    name: str,
    severity: Severity,
    summary: str,
    *,
    sources: Iterable[str] = (),
    rejects: bool = False,
) -> Callable[[RuleFunc], Rule]:
    """Declare a rule: ``@rule("DX003", "retired-code", Severity.ERROR, "...")``."""
    if not _CODE.match(code):
        raise ValueError(f"rule code {code!r} must look like DX003")
    if not _NAME.match(name):
        raise ValueError(f"rule name {name!r} must be kebab-case")

    def wrap(func: RuleFunc) -> Rule:
        return Rule(code, name, severity, summary, tuple(sources), func, rejects)

    return wrap


def _specificity(selector: str, r: Rule) -> int | None:
    """How specifically ``selector`` names rule ``r`` (None: it does not)."""
    s = selector.strip()
    if s.upper() == "ALL":
        return 0
    if s.lower() == r.name:
        return 100
    up = s.upper()
    if r.code.startswith(up):
        return len(up)
    return None


def select(
    rules: Iterable[Rule],
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    severity: Mapping[str, str] | None = None,
) -> list[Rule]:
    """Return the rules enabled by ``select``/``ignore`` with severities overridden.

    Selectors are codes (``DX003``), code prefixes (``DX``), names (``retired-code``) or ``ALL``.
    The most specific selector wins; ``ignore`` wins a tie. ``select=None`` means every rule.
    """
    pool = list(rules)
    sel = list(select) if select is not None else ["ALL"]
    ign = list(ignore or [])
    for s in [*sel, *ign, *(severity or {})]:
        if not any(_specificity(s, r) is not None for r in pool):
            known = ", ".join(r.name for r in pool)
            raise ConfigError(
                f"unknown rule selector {s!r}; use a code (DX003), a prefix (DX), "
                f"a name or ALL. Rules: {known}"
            )
    chosen: list[Rule] = []
    for r in pool:
        best_sel = max((v for s in sel if (v := _specificity(s, r)) is not None), default=-1)
        best_ign = max((v for s in ign if (v := _specificity(s, r)) is not None), default=-1)
        if best_sel >= 0 and best_sel > best_ign:
            chosen.append(_with_severity(r, severity or {}))
    return chosen


def _with_severity(r: Rule, overrides: Mapping[str, str]) -> Rule:
    best: tuple[int, str] | None = None
    for s, value in overrides.items():
        v = _specificity(s, r)
        if v is not None and (best is None or v > best[0]):
            best = (v, value)
    if best is None:
        return r
    try:
        sev = Severity(best[1].lower())
    except ValueError:
        raise ConfigError(
            f"severity {best[1]!r} for {r.name} is not one of error, warning, info"
        ) from None
    return Rule(r.code, r.name, sev, r.summary, r.sources, r.func, r.rejects)


def describe(r: Rule) -> dict[str, Any]:
    """A rule as a plain dict (``eobcheck rules --format json``)."""
    return {
        "code": r.code,
        "name": r.name,
        "severity": r.severity.value,
        "summary": r.summary,
        "sources": list(r.sources),
    }
