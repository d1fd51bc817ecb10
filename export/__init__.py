"""Checkpoint -> model package (``python -m export CHECKPOINT OUT_DIR``).

See :mod:`export.exporter` for the stages, docs/architecture.md for the package and its manifest.
"""
from __future__ import annotations

from .errors import ExportError
from .exporter import VARIANTS, ExportOptions, ExportResult, export_checkpoint

__all__ = ["ExportError", "ExportOptions", "ExportResult", "export_checkpoint", "VARIANTS"]
