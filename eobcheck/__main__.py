"""Run the command-line interface: ``python -m eobcheck``."""

from eobcheck.cli import run

run()
