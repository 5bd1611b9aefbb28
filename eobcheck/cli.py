"""The command-line interface: ``eobcheck check | code | rules | rule | reference``.

Exit status: 0 when nothing at or above ``--fail-on`` was found, 1 when something was, 2 on a
usage, configuration or input error (a message on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any, NoReturn, TextIO

from eobcheck import __version__
from eobcheck.config import Settings, load_columns, load_settings
from eobcheck.errors import ConfigError, EobcheckError
from eobcheck.rule import Severity, describe

FORMATS = ("text", "json", "csv", "xlsx")


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with a one-line hint (it already does) and no usage dump twice."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="eobcheck", description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--version", action="version", version=f"eobcheck {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    c = sub.add_parser("check", help="check EOB/claim exports and report diagnosis-code problems")
    c.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="files, directories (searched recursively) or glob patterns",
    )
    c.add_argument(
        "--format",
        "-f",
        choices=FORMATS,
        default=None,
        help="report format (default: text, or from the -o suffix)",
    )
    c.add_argument("-o", "--output", type=Path, help="write the report here instead of stdout")
    c.add_argument("--select", help="rules to enable: codes, prefixes or names, comma separated")
    c.add_argument("--ignore", help="rules to disable, comma separated")
    c.add_argument(
        "--severity",
        action="append",
        metavar="RULE=LEVEL",
        default=[],
        help="override a rule's severity (error, warning, info); repeatable",
    )
    c.add_argument(
        "--fail-on",
        choices=("error", "warning", "info", "never"),
        default=None,
        help="lowest severity that makes the exit status 1 (default: error)",
    )
    c.add_argument("--sheet", help="XLSX sheet to read (default: every sheet)")
    c.add_argument(
        "--columns",
        type=Path,
        metavar="FILE",
        help="TOML file mapping canonical fields to your headers",
    )
    c.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="settings file (default: eobcheck.toml or [tool.eobcheck] in pyproject.toml)",
    )
    c.add_argument("--no-config", action="store_true", help="ignore configuration files")
    c.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    c.add_argument(
        "--max-findings",
        type=int,
        default=200,
        help="text format: findings shown per report (default 200; 0 = all)",
    )

    k = sub.add_parser("code", help="look up codes on a date of service")
    k.add_argument("codes", nargs="+", metavar="CODE")
    k.add_argument("--on", required=True, metavar="DATE", help="date of service, YYYY-MM-DD")
    k.add_argument("--format", "-f", choices=("text", "json"), default="text")

    r = sub.add_parser("rules", help="list every rule")
    r.add_argument("--format", "-f", choices=("text", "json"), default="text")

    one = sub.add_parser("rule", help="explain one rule")
    one.add_argument("name", help="rule name or code, e.g. retired-code or DX003")

    ref = sub.add_parser("reference", help="reference data: show coverage or import a CMS release")
    rsub = ref.add_subparsers(dest="action", required=True, parser_class=_Parser)
    info = rsub.add_parser("info", help="show releases, coverage and sources")
    info.add_argument("--format", "-f", choices=("text", "json"), default="text")
    imp = rsub.add_parser("import", help="import an official CMS ICD-10-CM release (zip or folder)")
    imp.add_argument("source", type=Path, metavar="DIR")
    imp.add_argument(
        "--effective",
        metavar="DATE",
        help="effective date of the release (default: inferred from the files)",
    )
    imp.add_argument(
        "--data-dir",
        type=Path,
        help="user data directory (default: $EOBCHECK_DATA_DIR or ~/.local/share/eobcheck)",
    )
    return p


def _parse_date(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{what} {text!r} is not a date; write it as YYYY-MM-DD") from None


def _severity_overrides(items: list[str]) -> dict[str, str] | None:
    if not items:
        return None
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(
                f"--severity {item!r}: write RULE=LEVEL, e.g. duplicate-diagnosis=info"
            )
        out[key.strip()] = value.strip().lower()
    return out


def _split(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


class _Progress:
    """A one-line progress display on stderr (only used when stderr is a terminal)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def __call__(self, what: str, done: int, total: int) -> None:
        width = 24
        filled = width * done // max(total, 1)
        bar = "#" * filled + "-" * (width - filled)
        self.stream.write(f"\r[{bar}] {done}/{total} {what[:40]:<40}")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\r" + " " * 80 + "\r")
        self.stream.flush()


def _no_huge_pages() -> None:
    """Ask numpy not to back its large arrays with transparent huge pages.

    On Linux numpy advises the kernel to use huge pages for every array of 4 MB or more; with
    the common ``defrag=madvise`` setting each such allocation may compact memory first. A
    check allocates and frees many short-lived column arrays, and on a 1,000,000-line export
    this costs over a second of system time for no gain (docs/performance.md). The command
    line owns its process, so it turns the advice off (NUMPY_MADVISE_HUGEPAGE=0 does the same
    for programs that import eobcheck).
    """
    import numpy as np

    core = getattr(np, "_core", None) or getattr(np, "core", None)
    setter = getattr(getattr(core, "multiarray", None), "_set_madvise_hugepage", None)
    if callable(setter):
        setter(False)


def _cmd_check(args: argparse.Namespace) -> int:
    from eobcheck.engine import check
    from eobcheck.writers.csv import write_csv
    from eobcheck.writers.json import write_json

    _no_huge_pages()

    settings = Settings() if args.no_config else load_settings(args.config)
    settings = settings.merged(
        select=_split(args.select),
        ignore=_split(args.ignore),
        severity=_severity_overrides(args.severity),
        fail_on=args.fail_on,
        sheet=args.sheet,
        columns=load_columns(args.columns) if args.columns else None,
    )
    fmt = args.format
    if fmt is None:
        suffix = args.output.suffix.lower().lstrip(".") if args.output else ""
        fmt = {"json": "json", "csv": "csv", "xlsx": "xlsx"}.get(suffix, "text")
    if fmt == "xlsx" and args.output is None:
        raise ConfigError("--format xlsx writes a file: name it with -o report.xlsx")
    progress = _Progress(sys.stderr) if sys.stderr.isatty() else None
    try:
        report = check(args.paths, settings=settings, progress=progress)
    finally:
        if progress:
            progress.close()
    out: Path | None = args.output
    if fmt == "json":
        sys.stdout.flush()
        write_json(report, out if out is not None else sys.stdout.buffer)
    elif fmt == "csv":
        if out is None:
            sys.stdout.flush()
            write_csv(report, sys.stdout.buffer)
        else:
            report.to_csv(out)
    elif fmt == "xlsx":
        assert out is not None  # checked above
        report.to_excel(out)
    else:
        color = args.color == "always" or (
            args.color == "auto" and out is None and sys.stdout.isatty()
        )
        limit = args.max_findings or None
        _emit(report.to_text(color=color, max_findings=limit), out)
    failed = [i for i in report.inputs if i.error]
    for info in failed:
        print(f"eobcheck: {info.error}", file=sys.stderr)
    if failed:
        return 2
    if settings.fail_on == "never":
        return 0
    floor = Severity(settings.fail_on).rank
    hit = any(Severity(s).rank >= floor and n for s, n in report.stats.by_severity.items())
    return 1 if hit else 0


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        out.write_text(text, encoding="utf-8")


def _cmd_code(args: argparse.Namespace) -> int:
    from eobcheck.reference import lookup

    on = _parse_date(args.on, "--on")
    results = [lookup(code, on=on) for code in args.codes]
    if args.format == "json":
        print(json.dumps([r.model_dump(mode="json") for r in results], indent=2))
    else:
        for r in results:
            print(f"{r.code}  {r.status}  {r.title or ''}".rstrip())
            print(f"  {r.reason}")
            for s in r.suggestions:
                print(f"  -> {s.code}  {s.title or ''}".rstrip())
    return 0 if all(r.status == "valid" for r in results) else 1


def _cmd_rules(args: argparse.Namespace) -> int:
    from eobcheck.rules import RULES

    if args.format == "json":
        print(json.dumps([describe(r) for r in RULES], indent=2))
        return 0
    width = max(len(r.name) for r in RULES)
    for r in RULES:
        print(f"{r.code}  {r.name:<{width}}  {r.severity.value:<7}  {r.summary}")
    return 0


def _cmd_rule(args: argparse.Namespace) -> int:
    from eobcheck.rules import RULES, find

    r = find(args.name)
    if r is None:
        known = ", ".join(x.name for x in RULES)
        raise ConfigError(f"no rule {args.name!r}; known rules: {known}")
    sys.stdout.write(r.markdown())
    return 0


def _cmd_reference(args: argparse.Namespace) -> int:
    if args.action == "import":
        from eobcheck.reference.importer import import_release

        effective = _parse_date(args.effective, "--effective") if args.effective else None
        result = import_release(args.source, user_dir=args.data_dir, effective=effective)
        print(result.summary() if hasattr(result, "summary") else result)
        return 0
    from eobcheck.reference import get_reference

    info: dict[str, Any] = get_reference().info()
    if args.format == "json":
        print(json.dumps(info, indent=2, default=str))
        return 0
    for rel in info.get("releases", []):
        print(
            f"{rel['name']:<10} effective {rel['effective']}  {rel['billable']:>6} billable codes"
        )
    for key in ("newest", "coverage", "user_data"):
        if key in info:
            print(f"{key}: {info[key]}")
    return 0


COMMANDS = {
    "check": _cmd_check,
    "code": _cmd_code,
    "rules": _cmd_rules,
    "rule": _cmd_rule,
    "reference": _cmd_reference,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except EobcheckError as exc:
        print(f"eobcheck: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("eobcheck: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def run() -> NoReturn:
    """The ``eobcheck`` command: run ``main`` and leave the process at once.

    A large check leaves gigabytes of arrays behind; freeing them one by one at interpreter
    shutdown takes a quarter of a second or more and serves nothing once the report is
    written and closed. The output streams are flushed first; no atexit work is registered.
    """
    status = main()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe has nothing to flush
            stream.flush()
    os._exit(status)


if __name__ == "__main__":
    run()
