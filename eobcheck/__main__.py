"""Run the command-line interface: ``python -m eobcheck``."""

from eobcheck.cli import main

raise SystemExit(main())
