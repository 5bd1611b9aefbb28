"""eobcheck: check EOB and claim exports for diagnosis-code problems and say how to fix them."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
