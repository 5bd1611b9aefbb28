"""Recognize X12 and FHIR inputs by their content, whatever the file is called."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Final

__all__ = ["detect_format"]

_HEAD_BYTES: Final = 8192
_FHIR_MARKS: Final = ('"resourceType"', '"fullUrl"', "http://hl7.org/fhir")
_ST_RE: Final = re.compile(r"(?:^|[~'\n\r])\s*ST([^A-Za-z0-9\s])(83[57])\1")


def detect_format(path: Path) -> str | None:
    """Return "x12-837", "x12-835", "fhir-json", "fhir-ndjson" or None from the first KB."""
    try:
        with Path(path).open("rb") as fh:
            head = fh.read(_HEAD_BYTES)
    except OSError:
        return None
    text = head.decode("utf-8-sig", errors="replace").lstrip()
    if text.startswith("ISA") or re.match(r"ST[^A-Za-z0-9\s]83[57]", text):
        match = _ST_RE.search(text if not text.startswith("ST") else "\n" + text)
        if match:
            return f"x12-{match.group(2)}"
        # An ISA header whose first ST lies past the head: still X12, type unknown here.
        return None
    if text.startswith("{") and any(mark in text for mark in _FHIR_MARKS):
        first, sep, rest = text.partition("\n")
        if not sep:
            # One line longer than the head: minified JSON or the first line of NDJSON.
            # read_fhir accepts both, so the suffix only breaks the tie.
            suffix = Path(path).suffix.lower()
            return "fhir-ndjson" if suffix in (".ndjson", ".jsonl") else "fhir-json"
        if first.rstrip().endswith("}"):
            try:
                obj = json.loads(first)
            except json.JSONDecodeError:
                return "fhir-json"
            if isinstance(obj, dict) and rest.strip():
                return "fhir-ndjson"
        return "fhir-json"
    return None
