"""Report writers: JSON, CSV, XLSX and terminal text. Each takes a Report and nothing else."""
