"""Rule packs: YAML files mapping procedure code sets to diagnoses that do or do not support them.

A pack is data, not code. ``procedure-diagnosis-mismatch`` reads the packs shipped in
``eobcheck/rules/packs`` and those the ``packs`` setting names; each is validated against
:class:`Pack` and a bad one raises a ConfigError naming the file and the field. The schema is
documented in docs/rule-packs.md; ``pack_schema()`` returns it as JSON Schema.

Patterns (``codes``) are ICD-10-CM codes, dotted or not: a code covers itself and every code
under it ("S32.2" covers S32.2XXA; a trailing "-" is accepted, "M54.5-"); a range "Z00-Z13" or
"M99.00-M99.05" covers the codes whose first characters lie between the bounds.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from eobcheck.errors import ConfigError

BUILTIN_DIR = Path(__file__).resolve().parent / "rules" / "packs"
# libyaml's safe loader when PyYAML was built with it: the same documents, parsed in C.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_CODE = r"[A-Z][0-9][0-9A-Z](?:\.?[0-9A-Z]{1,4})?"
_CODE_PATTERN = re.compile(rf"^{_CODE}-?$|^{_CODE}-{_CODE}$")
_PROCEDURE = re.compile(r"^[0-9A-Z]{5}(?:-[0-9A-Z]{5})?$")
_ID = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")

Check = Literal["only-unsupported", "primary-supported", "count-supported"]


def _regex(value: str | None) -> str | None:
    """``value`` unchanged when it is a valid regular expression (or None); else ValueError."""
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"{value!r} is not a regular expression: {exc}") from None
    return value


class Pattern(BaseModel):
    """A set of diagnoses, with the note that says why it does (not) support the procedures."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    codes: list[str] = Field(
        min_length=1, description='Codes, prefixes ("M54.5-") or ranges ("Z00-Z13").'
    )
    seventh: str | None = Field(
        default=None, description='Allowed 7th characters, e.g. "AB" (initial encounters).'
    )
    title: str | None = Field(
        default=None,
        description="A regular expression the code's title must match (case-insensitive).",
    )
    note: str = Field(min_length=1, description="Why this pattern does or does not support.")

    @field_validator("codes")
    @classmethod
    def _codes(cls, value: list[str]) -> list[str]:
        out = []
        for raw in value:
            code = str(raw).strip().upper()
            if not _CODE_PATTERN.match(code):
                raise ValueError(
                    f"{raw!r} is not an ICD-10-CM code, prefix (M54.5-) or range (Z00-Z13)"
                )
            out.append(code)
        return out

    @field_validator("seventh")
    @classmethod
    def _seventh(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[0-9A-Z]+", value.upper()):
            raise ValueError(f"{value!r}: list the 7th characters as letters, e.g. AB")
        return None if value is None else value.upper()

    @field_validator("title")
    @classmethod
    def _title(cls, value: str | None) -> str | None:
        return _regex(value)

    def bounds(self) -> list[tuple[str, str]]:
        """Each code pattern as undotted (low, high) prefixes."""
        out = []
        for code in self.codes:
            if "-" in code.rstrip("-"):
                lo, hi = code.split("-")
            else:
                lo = hi = code.rstrip("-")
            out.append((lo.replace(".", ""), hi.replace(".", "")))
        return out

    def matches(self, code: str, title: str) -> bool:
        """Whether one undotted code (with its title) is in this pattern."""
        hit = any(code[: len(lo)] >= lo and code[: len(hi)] <= hi for lo, hi in self.bounds())
        if hit and self.seventh is not None:
            hit = len(code) == 7 and code[6] in self.seventh
        if hit and self.title is not None:
            hit = re.search(self.title, title, flags=re.IGNORECASE) is not None
        return hit


class Edit(BaseModel):
    """One pairing of procedures with the diagnoses that do or do not support them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="Kebab-case id, unique within the pack.")
    procedures: list[str] = Field(
        min_length=1, description='CPT/HCPCS codes or ranges ("97010-97799").'
    )
    check: Check = Field(
        description="only-unsupported: flag when every diagnosis of the claim is in "
        "not_supporting; primary-supported: flag when the line's first-listed diagnosis is not "
        "in supporting; count-supported: flag when the claim has fewer than min_supporting "
        "distinct supporting diagnoses."
    )
    supporting: list[Pattern] = Field(default_factory=list)
    not_supporting: list[Pattern] = Field(default_factory=list)
    min_supporting: int = Field(default=1, ge=1)
    payer: str | None = Field(
        default=None,
        description="A regular expression: the edit applies to lines whose payer matches it "
        "(and to lines with no payer).",
    )
    message: str = Field(min_length=1, description="What to tell the user.")
    sources: list[str] = Field(min_length=1, description="Where the rule comes from.")

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError(f"{value!r} must be kebab-case, e.g. therapy-fracture-initial")
        return value

    @field_validator("procedures")
    @classmethod
    def _procedures(cls, value: list[str]) -> list[str]:
        out = []
        for raw in value:
            code = str(raw).strip().upper()
            if not _PROCEDURE.match(code):
                raise ValueError(f"{raw!r} is not a 5-character procedure code or range")
            lo, _, hi = code.partition("-")
            if hi and hi < lo:
                raise ValueError(f"{raw!r}: the range ends before it starts")
            out.append(code)
        return out

    @field_validator("payer")
    @classmethod
    def _payer(cls, value: str | None) -> str | None:
        return _regex(value)

    @model_validator(mode="after")
    def _patterns_for_check(self) -> Edit:
        if self.check == "only-unsupported" and not self.not_supporting:
            raise ValueError("check only-unsupported needs not_supporting patterns")
        if self.check in ("primary-supported", "count-supported") and not self.supporting:
            raise ValueError(f"check {self.check} needs supporting patterns")
        return self

    def covers(self, procedure: str) -> bool:
        """Whether the edit applies to one procedure code."""
        for spec in self.procedures:
            lo, _, hi = spec.partition("-")
            hi = hi or lo
            if len(procedure) == len(lo) and lo <= procedure <= hi:
                return True
        return False


class Pack(BaseModel):
    """A rule pack file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pack: str = Field(description="Kebab-case name of the pack.")
    description: str = Field(min_length=1)
    sources: list[str] = Field(min_length=1, description="Where the pack's rules come from.")
    edits: list[Edit] = Field(min_length=1)
    path: str | None = Field(default=None, description="Set on loading: the file read.")

    @field_validator("pack")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError(f"{value!r} must be kebab-case, e.g. therapy")
        return value

    @model_validator(mode="after")
    def _unique_ids(self) -> Pack:
        ids = [e.id for e in self.edits]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"edit ids must be unique; repeated: {', '.join(dup)}")
        return self


def pack_schema() -> dict[str, Any]:
    """The JSON Schema of a rule pack file."""
    return Pack.model_json_schema()


def _where(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


@lru_cache(maxsize=64)
def _load(path: Path, mtime: float) -> Pack:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: rule pack cannot be read: {exc.strerror}") from None
    try:
        data = yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: rule pack is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: a rule pack is a mapping with pack, description, sources, edits"
        )
    try:
        pack = Pack.model_validate({**data, "path": str(path)})
    except ValidationError as exc:
        problems = "; ".join(f"{_where(e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path}: invalid rule pack: {problems}") from None
    return pack


def load_pack(path: str | Path) -> Pack:
    """Read and validate one pack file (cached while the file is unchanged)."""
    p = Path(path).resolve()
    try:
        mtime = p.stat().st_mtime
    except OSError:
        raise ConfigError(f"{path}: rule pack not found; check the `packs` setting") from None
    return _load(p, mtime)


def builtin_packs() -> list[Path]:
    """The packs shipped with eobcheck."""
    return sorted(BUILTIN_DIR.glob("*.yaml"))


def load_packs(
    paths: list[str] | tuple[str, ...] = (), *, builtin: bool = True, base: Path | None = None
) -> list[Pack]:
    """The shipped packs (unless ``builtin`` is False) and the user's, in that order.

    Relative user paths are read from ``base`` (the configuration file's folder) when given.
    """
    files: list[Path] = list(builtin_packs()) if builtin else []
    for raw in paths:
        p = Path(raw).expanduser()
        if not p.is_absolute() and base is not None:
            p = base / p
        files.append(p)
    packs = [load_pack(p) for p in files]
    names: dict[str, str] = {}
    for pack in packs:
        if pack.pack in names:
            raise ConfigError(
                f"{pack.path}: rule pack name {pack.pack!r} is already used by {names[pack.pack]}"
            )
        names[pack.pack] = str(pack.path)
    return packs
