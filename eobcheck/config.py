"""Settings from ``[tool.eobcheck]`` in pyproject.toml or from eobcheck.toml; CLI flags override.

Lookup order for the configuration file when none is named: ``eobcheck.toml``, then
``pyproject.toml`` with a ``[tool.eobcheck]`` table, in the working directory and then in each
parent directory; the first found wins. A column mapping can also come from its own file
(``--columns FILE``: TOML with the mapping at the top level or under ``[columns]``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from eobcheck.errors import ConfigError

FailOn = Literal["error", "warning", "info", "never"]


class Settings(BaseModel):
    """Everything a check can be told; every field has a default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    select: list[str] | None = Field(
        default=None, description="Rules to enable (codes, prefixes, names or ALL); default all."
    )
    ignore: list[str] = Field(default_factory=list, description="Rules to disable.")
    severity: dict[str, Literal["error", "warning", "info"]] = Field(
        default_factory=dict, description="Per-rule severity overrides: selector -> severity."
    )
    fail_on: FailOn = Field(
        default="error", description="Lowest severity that makes `eobcheck check` exit 1."
    )
    sheet: str | None = Field(default=None, description="XLSX sheet to read (default: all).")
    columns: dict[str, str | list[str]] = Field(
        default_factory=dict,
        description="Column mapping: canonical field -> header as written (a list for dx).",
    )
    unrelated: list[tuple[str, str]] = Field(
        default_factory=list,
        description="Code pairs (prefixes allowed) coded together as unrelated conditions: "
        "excludes1-conflict does not report them.",
    )
    packs: list[str] = Field(
        default_factory=list,
        description="Extra rule packs (YAML files) for procedure-diagnosis-mismatch; relative "
        "paths are read from the configuration file's folder.",
    )
    builtin_packs: bool = Field(
        default=True, description="Use the rule packs shipped with eobcheck."
    )
    unspecified_visits: int = Field(
        default=3,
        ge=2,
        description="unspecified-persisting: fewest visits with the same unspecified code.",
    )
    unspecified_days: int = Field(
        default=42,
        ge=0,
        description="unspecified-persisting: those visits must span more than this many days.",
    )
    episode_gap_days: int = Field(
        default=30,
        ge=1,
        description="episode-region-change: most days between two visits of one episode.",
    )
    source: str | None = Field(default=None, description="The file these settings came from.")

    @field_validator("select", "ignore", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    def merged(self, **overrides: Any) -> Settings:
        """A copy with every non-None override applied (CLI flags over file values)."""
        data = self.model_dump()
        for key, value in overrides.items():
            if value is None:
                continue
            if key == "columns":
                data["columns"] = {**data["columns"], **value}
            elif key == "severity":
                data["severity"] = {**data["severity"], **value}
            else:
                data[key] = value
        return _validate(data, self.source or "command line")


def _validate(data: Mapping[str, Any], where: str) -> Settings:
    try:
        return Settings.model_validate(dict(data))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"{where}: invalid eobcheck settings: {problems}") from None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from None


def find_config(start: Path | None = None) -> Path | None:
    """The configuration file that applies in ``start`` (default: the working directory)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "eobcheck.toml"
        if candidate.is_file():
            return candidate
        candidate = folder / "pyproject.toml"
        if candidate.is_file() and "eobcheck" in _read_toml(candidate).get("tool", {}):
            return candidate
    return None


def load_settings(path: Path | None = None, *, search: bool = True) -> Settings:
    """Settings from ``path``, or from the file :func:`find_config` finds, or the defaults."""
    if path is None and search:
        path = find_config()
    if path is None:
        return Settings()
    data = _read_toml(path)
    if path.name == "pyproject.toml":
        data = data.get("tool", {}).get("eobcheck", {})
    elif "tool" in data and "eobcheck" in data["tool"]:
        data = data["tool"]["eobcheck"]
    data = {k.replace("-", "_"): v for k, v in data.items()}
    data["source"] = str(path)
    return _validate(data, str(path))


def load_columns(path: Path) -> dict[str, str | list[str]]:
    """A column mapping file: TOML with ``field = "Header"`` at the top level or in [columns]."""
    data = _read_toml(path)
    table = data.get("columns", data)
    if "tool" in data:
        table = data["tool"].get("eobcheck", {}).get("columns", {})
    bad = [k for k, v in table.items() if not isinstance(v, str | list)]
    if bad:
        raise ConfigError(
            f"{path}: column mapping values must be a header (text) or a list of headers; "
            f"fix {', '.join(bad)}"
        )
    return dict(table)
