"""Report writers: JSON, CSV, XLSX and terminal text. Each takes a Report and nothing else.

Import the one you need (``eobcheck.writers.json``, ``.csv``, ``.xlsx``, ``.text``): each
module loads only what its format needs, so writing JSON never imports openpyxl.
"""
