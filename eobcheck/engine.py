"""Run the selected rules over the canonical frame and build the Report."""

from __future__ import annotations

import glob
import hashlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from eobcheck import model
from eobcheck.config import Settings, load_columns
from eobcheck.denials import summarize, triage
from eobcheck.errors import EobcheckError, InputError
from eobcheck.readers import SUPPORTED_SUFFIXES, read, read_file
from eobcheck.readers.base import ReadResult
from eobcheck.readers.values import dictionary
from eobcheck.reference import Reference, get_reference
from eobcheck.report import FINDING_COLUMNS, InputInfo, Report, Stats, build_stats, empty_findings
from eobcheck.rule import Hits, Rule, Severity, select
from eobcheck.rules import RULES
from eobcheck.rules.records import REJECT_REASONS

Progress = Callable[[str, int, int], None]

# Adjustment reasons that are not denials: contractual (45), deductible (1), coinsurance (2),
# copay (3), sequestration (253) and prior-payer adjustments (23).
_NOT_DENIAL_RE = r"(?:^|\s)(?:[A-Z]{2}-)?(?:1|2|3|23|45|253)(?=\s|$)"


@dataclass
class Context:
    """What a rule sees: the canonical frame, the reference data and the settings."""

    frame: pd.DataFrame
    reference: Reference
    settings: Settings = field(default_factory=Settings)
    column_maps: dict[str, dict[str, Any]] = field(default_factory=dict)  # file -> field -> header
    cache: dict[str, Any] = field(default_factory=dict)  # facts several rules share, per check
    no_dx_files: frozenset[str] = frozenset()  # inputs whose format carries no diagnoses (835)

    def header_of(self, name: str, mask: pd.Series) -> pd.Series:
        """For the rows in ``mask``, the header of canonical field ``name`` in the row's file."""
        files = self.frame["source_file"][mask].astype("category")
        headers = [
            _first(self.column_maps.get(str(c), {}).get(name)) or name for c in files.cat.categories
        ]
        lookup = np.array([*headers, name], dtype=object)
        return pd.Series(lookup[files.cat.codes.to_numpy()], index=files.index)

    @cached_property
    def _lines(self) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """(first row of each service line, the line of each row), lines in frame order."""
        ids = self.frame["line_id"].to_numpy()
        step = np.diff(ids)
        if (step >= 0).all():  # a line's rows are adjacent (every reader builds it so)
            starts = np.concatenate(([True], step != 0))[: len(ids)]
            return np.flatnonzero(starts), np.cumsum(starts, dtype=np.intp) - 1
        of_row, _ = pd.factorize(ids)
        first = np.flatnonzero(~pd.Series(ids).duplicated().to_numpy())
        return first, of_row.astype(np.intp)

    @property
    def line_first(self) -> npt.NDArray[np.intp]:
        """Position of the first row of each service line (its first diagnosis position)."""
        return self._lines[0]

    @property
    def line_of_row(self) -> npt.NDArray[np.intp]:
        """Per row, the index of its service line in ``line_first``."""
        return self._lines[1]

    def first_rows(self, mask: pd.Series | npt.NDArray[np.bool_]) -> pd.Series:
        """Narrow ``mask`` to the first row of each service line."""
        values = mask.to_numpy(dtype=bool) if isinstance(mask, pd.Series) else mask
        out = np.zeros(len(self.frame), dtype=bool)
        first = self.line_first
        out[first] = values[first]
        return pd.Series(out, index=self.frame.index)

    @cached_property
    def _claims(self) -> tuple[npt.NDArray[np.int64], int]:
        """Per line, an integer per distinct stripped claim id (-1 when blank or missing), and
        how many distinct ids there are."""
        codes, distinct = dictionary(self.frame["claim_id"].take(self.line_first))
        # ids are stripped by the readers; a frame built elsewhere may differ in spaces only
        stripped = pc.utf8_trim_whitespace(distinct)
        if not pc.all(pc.equal(stripped, distinct)).as_py():
            again, distinct_stripped = pd.factorize(np.asarray(stripped.to_pylist(), dtype=object))
            codes = np.append(again, -1)[codes]
            stripped = pa.array(np.asarray(distinct_stripped, dtype=object), pa.string())
        blank = np.append(np.asarray(pc.equal(stripped, ""), dtype=bool), True)
        return np.where(blank[codes], -1, codes), len(stripped)

    @cached_property
    def reject_code(self) -> npt.NDArray[np.int8]:
        """Per row, the index in REJECT_REASONS of why its line is not checked, -1 if it is."""
        no_claim = self._claims[0] < 0
        no_date = self.frame["date_of_service"].take(self.line_first).isna().to_numpy()
        no_date_code = np.where(no_date, REJECT_REASONS.index("invalid-date"), -1)
        line_code = np.where(no_claim, REJECT_REASONS.index("missing-claim-id"), no_date_code)
        line_code = line_code.astype(np.int8)
        return line_code[self.line_of_row]

    @cached_property
    def checked(self) -> pd.Series:
        """Rows of lines that are checked (not rejected)."""
        return pd.Series(self.reject_code < 0, index=self.frame.index)

    @cached_property
    def has_dx(self) -> pd.Series:
        """Rows that carry a diagnosis (not blank)."""
        v = self.frame["dx_value"]
        return v.notna() & (v.str.strip() != "")

    @cached_property
    def dx(self) -> pd.DataFrame:
        """Reference status of every checked diagnosis (see Reference.check)."""
        use = self.checked & self.has_dx
        codes = self.frame["dx_value"].where(use)
        return self.reference.check(codes, self.frame["date_of_service"])

    @cached_property
    def dx_ids(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.object_]]:
        """Per row, an integer id of its normalized diagnosis (-1 when none); the codes."""
        normalized = self.dx["normalized"]
        if isinstance(normalized.dtype, pd.StringDtype) and normalized.dtype.storage == "pyarrow":
            ids, distinct = dictionary(normalized)  # Arrow's hash: no object per row
            return ids, np.asarray(distinct.to_pylist(), dtype=object)
        codes, uniques = pd.factorize(normalized)
        return codes.astype(np.int64), np.asarray(uniques, dtype=object)

    @cached_property
    def line_carc(self) -> tuple[npt.NDArray[np.int64], list[str]]:
        """Per service line (in ``line_first`` order), the index of its adjustment codes among
        the distinct ones (-1 when it has none), and those distinct texts."""
        codes, uniques = dictionary(self.frame["carc"].take(self.line_first))
        return codes, uniques.to_pylist()

    @cached_property
    def denied(self) -> pd.Series:
        """Per row, the amount denied on its line.

        Billed when nothing was paid and an adjustment other than contractual or patient
        responsibility is present; 0 otherwise; NaN when the billed amount is unknown.
        """
        f = self.frame
        first = self.line_first  # adjustments and amounts are the line's: once per line
        codes, distinct = self.line_carc
        texts = pd.Series(distinct, dtype=object)
        other = texts.str.replace(_NOT_DENIAL_RE, " ", regex=True).str.strip()
        denies = np.append((other != "").to_numpy(dtype=bool), False)[codes]  # null: -1
        paid = f["paid"].to_numpy()[first]
        denial = denies & ~(paid > 0)  # nothing paid (NaN counts as nothing)
        amount = np.where(denial, f["billed"].to_numpy()[first], 0.0)
        return pd.Series(amount[self.line_of_row], index=f.index)

    @cached_property
    def claim_key(self) -> pd.Series:
        """An integer per (file, claim id): claims are per input file; -1 per file for lines
        without a claim id."""
        f = self.frame
        first = self.line_first
        files = f["source_file"].take(first).astype("category").cat.codes.to_numpy(np.int64)
        claims, distinct = self._claims
        key = files * (distinct + 1) + claims
        return pd.Series(key[self.line_of_row], index=f.index)


def _first(value: Any) -> str | None:
    if isinstance(value, list | tuple):
        return str(value[0]) if value else None
    return None if value is None else str(value)


def _objects(values: pd.Series) -> np.ndarray:
    """An object array of the values with None for every missing value."""
    out: np.ndarray = values.astype("object").to_numpy(copy=True)
    out[pd.isna(out)] = None
    return out


def _take(
    values: pd.Series | str | None, frame_index: pd.Index, pos: np.ndarray, default: Any = None
) -> np.ndarray:
    """Values at positions ``pos``: a Series aligned to the frame or indexed by hit rows only,
    or one value for every hit."""
    if isinstance(values, pd.Series):
        if len(values) == len(frame_index):
            picked = values.take(pos)
        else:
            picked = values.reindex(frame_index[pos])
        return _objects(picked)
    out = np.empty(len(pos), dtype=object)
    out[:] = [values if values is not None else default] * len(pos)
    return out


def _arrow_text(values: pd.Series) -> pa.Array:
    """The values as an Arrow large_string array (missing -> null; other objects as text)."""
    if isinstance(values.dtype, pd.CategoricalDtype):  # by its codes: one text per category
        codes = values.cat.codes.to_numpy()
        categories = _arrow_text(pd.Series(values.cat.categories, dtype=object))
        return categories.take(pa.array(codes, mask=codes < 0))
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        arr = pa.array(values.array)
    else:
        try:
            arr = pa.array(values.to_numpy(dtype=object), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            arr = pa.array(values.astype("string").array)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), pa.large_string())
    return arr.cast(pa.large_string())


def run_rules(ctx: Context, rules: Sequence[Rule]) -> pd.DataFrame:
    """Run ``rules`` over ``ctx`` and return one findings frame (FINDING_COLUMNS).

    Each rule gives a mask and its per-hit values; the frame's own columns are then taken once
    for the hits of every rule together.
    """
    hit: list[tuple[Rule, np.ndarray, Hits]] = []
    for r in rules:
        hits = r.func(ctx)
        pos = np.flatnonzero(hits.mask.fillna(False).to_numpy(dtype=bool))
        if len(pos):
            hit.append((r, pos, hits))
    if not hit:
        return empty_findings()
    frame = ctx.frame
    idx = frame.index
    pos = np.concatenate([p for _, p, _ in hit])
    sizes = [len(p) for _, p, _ in hit]
    which = np.repeat(np.arange(len(hit)), sizes)
    # findings in frame order: by line, diagnosis position (none last), then rule code; a
    # stable sort keeps each rule's own order among equals
    code_rank = np.argsort(np.argsort([r.code for r, _, _ in hit], kind="stable"))
    position = frame["dx_position"].to_numpy(dtype="float64", na_value=np.inf)[pos]
    order = np.lexsort((code_rank[which], position, frame["line_id"].to_numpy()[pos]))
    at = pos[order]
    take_order = pa.array(order)

    def per_rule(get: Callable[[Rule], str]) -> pd.Series:
        texts = pa.array([get(r) for r, _, _ in hit], type=pa.large_string())
        return pd.Series(pd.arrays.ArrowStringArray(texts.take(pa.array(which[order]))))

    def objects(pick: Callable[[Hits], pd.Series | str | None], default: Any) -> pd.Series:
        """Rule-given values as objects (suggestion tuples)."""
        parts = [_take(pick(h), idx, p, default) for _, p, h in hit]
        return pd.Series(np.concatenate(parts)[order], dtype=object, copy=False)

    def text(name: str, pick: Callable[[Hits], pd.Series | str | None]) -> pd.Series:
        """A text field as one Arrow string column: the rule's values, or the frame's column
        ``name`` where the rule gives none (no object per hit for Arrow strings)."""
        parts = []
        base: pa.Array | None = None
        start = 0
        for (_, p, h), size in zip(hit, sizes, strict=True):
            value = pick(h)
            if value is None and name:
                if base is None:  # one take from the frame for every rule that needs it
                    base = _arrow_text(frame[name].take(pos))
                parts.append(base.slice(start, size))
            elif isinstance(value, pd.Series):
                full = len(value) == len(idx)
                parts.append(_arrow_text(value.take(p) if full else value.reindex(idx[p])))
            else:
                one = pa.array([value], type=pa.large_string())
                parts.append(one.take(pa.array(np.zeros(size, dtype=np.int64))))
            start += size
        texts = pa.concat_arrays(parts).take(take_order)
        return pd.Series(pd.arrays.ArrowStringArray(texts), copy=False)

    def column(name: str) -> pd.Series:
        return frame[name].take(at).reset_index(drop=True)

    def column_text(name: str) -> pd.Series:
        texts = _arrow_text(frame[name].take(at))
        return pd.Series(pd.arrays.ArrowStringArray(texts), copy=False)

    columns = {
        "code": per_rule(lambda r: r.code),
        "name": per_rule(lambda r: r.name),
        "severity": per_rule(lambda r: r.severity.value),
        "message": text("", lambda h: h.message),
        "claim_id": column("claim_id"),
        "line": column("line"),
        "dx_position": column("dx_position"),
        "value": text("dx_value", lambda h: h.value),
        "normalized": ctx.dx["normalized"].take(at).reset_index(drop=True),
        "date_of_service": column("date_of_service"),
        "suggestions": objects(lambda h: h.suggestions, ()),
        "fix_applicability": text("", lambda h: h.fix_applicability),
        "fix_replacement": text("", lambda h: h.fix_replacement),
        "file": column_text("source_file"),
        "sheet": column_text("source_sheet"),
        "row": column("source_row"),
        "column": text("dx_column", lambda h: h.column),
        "line_id": column("line_id"),
        "procedure": column("procedure"),
        "billed": column("billed"),
        "denied": ctx.denied.take(at).reset_index(drop=True),
        "carc": column("carc"),
        "rarc": column("rarc"),
    }
    return pd.DataFrame({name: columns[name] for name in FINDING_COLUMNS}, copy=False)


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files, directories (every supported file inside, recursively) and globs -> files."""
    found: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found += sorted(
                q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in SUPPORTED_SUFFIXES
            )
        elif p.exists():
            found.append(p)
        elif any(ch in str(raw) for ch in "*?["):
            matches = sorted(Path(m) for m in glob.glob(str(raw), recursive=True))
            if not matches:
                raise InputError("no file matches this pattern", path=str(raw))
            found += [m for m in matches if m.is_file()]
        else:
            raise InputError("no such file or directory; check the path", path=str(raw))
    seen: set[Path] = set()
    unique = []
    for q in found:
        key = q.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(q)
    return unique


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _resolve_settings(settings: Settings | None, options: dict[str, Any]) -> Settings:
    base = settings or Settings()
    columns = options.pop("columns", None)
    if isinstance(columns, str | Path):
        columns = load_columns(Path(columns))
    return base.merged(columns=columns, **options)


def check(
    source: str | Path | pd.DataFrame | Sequence[str | Path],
    *,
    settings: Settings | None = None,
    reference: Reference | None = None,
    progress: Progress | None = None,
    **options: Any,
) -> Report:
    """Check one or more exports (paths, directories, globs) or a DataFrame; return a Report.

    ``options`` are Settings fields (select, ignore, severity, sheet, columns, fail_on) and
    override ``settings``. ``columns`` may be a mapping or the path of a mapping file.
    """
    cfg = _resolve_settings(settings, dict(options))
    rules = select(RULES, cfg.select, cfg.ignore, cfg.severity)
    # the reference data loads (once per process) while the inputs are read
    with ThreadPoolExecutor(max_workers=1) as loading:
        loaded = loading.submit(get_reference) if reference is None else None
        frames, inputs, column_maps = _read_inputs(source, cfg, progress)
        ref = loaded.result() if loaded is not None else reference
    assert ref is not None
    frame = _concat(frames)
    if progress:
        progress("checking", len(inputs), len(inputs))
    no_dx = frozenset(i.path for i in inputs if i.format == "x12-835")
    ctx = Context(frame, ref, cfg, column_maps, no_dx_files=no_dx)
    findings = run_rules(ctx, rules)
    denials = triage(ctx, findings)
    stats = _stats(ctx, findings, inputs).model_copy(update=summarize(denials))
    valid = not (findings["severity"] == Severity.ERROR.value).any() and not any(
        i.error for i in inputs
    )
    return Report(
        valid=bool(valid),
        stats=stats,
        inputs=inputs,
        reference=ref.info(),
        rules=[r.name for r in rules],
        findings=findings,
        denials=denials,
    )


def _read_inputs(
    source: str | Path | pd.DataFrame | Sequence[str | Path],
    cfg: Settings,
    progress: Progress | None,
) -> tuple[list[pd.DataFrame], list[InputInfo], dict[str, dict[str, Any]]]:
    """Read every input (an 835 joined into the 837s it pays) -> frames, input infos, headers."""
    if isinstance(source, pd.DataFrame):
        frame = read(source, columns=cfg.columns)
        info = InputInfo(
            path="<dataframe>", format="dataframe", rows_read=int(frame["line_id"].nunique())
        )
        return [frame], [info], {}
    raw = [source] if isinstance(source, str | Path) else list(source)
    files = expand_paths(raw)
    if not files:
        raise InputError(
            "no supported input files found (.csv, .xlsx, ...)",
            path=", ".join(str(p) for p in raw),
        )
    # inputs are hashed in the background while they are parsed (hashlib releases the GIL)
    with ThreadPoolExecutor(max_workers=1) as hashing:
        digests = {str(path): hashing.submit(_safe_sha, path) for path in files}
        results = _read_files(files, cfg, progress)
        shas = {name: digest.result() for name, digest in digests.items()}
    read_ok = [r for r in results if isinstance(r, ReadResult)]
    if any(r.format.startswith("x12") for r in read_ok):
        from eobcheck.readers.x12 import join_results

        read_ok = join_results(read_ok)
    joined = iter(read_ok)
    frames: list[pd.DataFrame] = []
    inputs: list[InputInfo] = []
    column_maps: dict[str, dict[str, Any]] = {}
    for item in results:
        if isinstance(item, InputInfo):
            inputs.append(item.model_copy(update={"sha256": shas.get(item.path)}))
            continue
        res = next(joined)
        name = str(res.path)
        frames.append(res.frame)
        column_maps[name] = dict(res.column_map)
        notes = list(res.notes) + [f"sheet {s!r} skipped: {why}" for s, why in res.skipped_sheets]
        inputs.append(
            InputInfo(
                path=name,
                format=res.format,
                sha256=shas.get(name),
                sheets=res.sheets,
                rows_read=res.rows_read,
                notes=notes,
            )
        )
    return frames, inputs, column_maps


def _read_files(
    files: list[Path], cfg: Settings, progress: Progress | None
) -> list[ReadResult | InputInfo]:
    """Read each file in turn; a file that cannot be read becomes an InputInfo with its error."""
    results: list[ReadResult | InputInfo] = []
    next_id = 0
    for i, path in enumerate(files):
        if progress:
            progress(f"reading {path.name}", i, len(files))
        try:
            res = read_file(
                path,
                sheet=cfg.sheet,
                columns=cfg.columns or None,
                line_id_start=next_id,
                source_name=str(path),
            )
        except EobcheckError as exc:
            fmt = path.suffix.lstrip(".").lower()
            results.append(InputInfo(path=str(path), format=fmt, error=str(exc)))
            continue
        if len(res.frame):
            next_id = int(res.frame["line_id"].max()) + 1
        results.append(res)
    return results


def _safe_sha(path: Path) -> str | None:
    try:
        return _sha256(path)
    except OSError:
        return None


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return model.empty_frame()
    if len(frames) == 1:
        return frames[0]
    out = pd.concat(frames, ignore_index=True)
    return model.conform(out)


def _stats(ctx: Context, findings: pd.DataFrame, inputs: list[InputInfo]) -> Stats:
    f = ctx.frame
    first = ctx.line_first
    files = f["source_file"].take(first).astype("category")
    file_code = files.cat.codes.to_numpy()
    reason_code = ctx.reject_code[first]
    per_file: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(files.cat.categories):
        here = file_code == i
        counts = np.bincount(reason_code[here & (reason_code >= 0)], minlength=len(REJECT_REASONS))
        per_file[str(name)] = {
            "read": int(here.sum()),
            "rejected": int(counts.sum()),
            "reasons": {r: int(c) for r, c in zip(REJECT_REASONS, counts, strict=True) if c},
        }
    for info in inputs:
        got = per_file.get(info.path, {"read": 0, "rejected": 0, "reasons": {}})
        if info.error is not None:
            continue
        # lines of an 835 that were joined into the 837 lines they pay are checked there
        info.rows_joined = max(info.rows_read - got["read"], 0) if info.format == "x12-835" else 0
        info.rows_read = max(info.rows_read, got["read"]) if info.rows_joined else got["read"]
        info.rows_rejected = got["rejected"]
        info.rows_checked = got["read"] - got["rejected"]
        info.rejected_reasons = got["reasons"]
    checked = ctx.checked.to_numpy()
    claims = ctx.claim_key.to_numpy()[first][reason_code < 0]
    return build_stats(
        findings,
        inputs,
        claims=len(pd.unique(claims)),
        lines=int((reason_code < 0).sum()),
        diagnoses=int((checked & ctx.has_dx.to_numpy()).sum()),
    )
