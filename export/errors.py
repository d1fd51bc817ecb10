"""The exporter's one error type: every refusal and failed check raises it (the CLI exits 2)."""
from __future__ import annotations


class ExportError(Exception):
    """An export was refused (existing output, bad arguments) or failed a check (parity, ONNX checker)."""
