"""Generator variants (int8 for CPUs, fp16 for GPUs), built from an fp32 generator and measured
against it on the same inputs: the exporter's variants stage, and :mod:`export.package_variants`,
which rebuilds the variants of an existing package.
"""
from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import onnx
from talkinghead.manifest import REFERENCE_INPUTS

from .errors import ExportError
from .onnx_export import stamp
from .parity import cpu_session, image_error, run_session
from .quantize import Int8Recipe, convert_fp16, quantize_int8
from .simplify import check

log = logging.getLogger("export")

VARIANTS = {
    # name: (precision, method, target)
    "int8": ("int8", "static", "cpu"),
    "fp16": ("fp16", "cast", "gpu"),
}


def split_batch(feeds: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    """Batched inputs -> one batch-1 input dict per sample (how int8 calibration reads them); a warp
    generator's references are shared by the batch and go whole into each."""
    count = len(next(iter(feeds.values())))
    return [{k: v if k in REFERENCE_INPUTS else v[i:i + 1] for k, v in feeds.items()} for i in range(count)]


def build_variant(name: str, generator: onnx.ModelProto, feeds: dict[str, np.ndarray], reference: np.ndarray,
                  description: str, threads: int = 2,
                  recipe: Int8Recipe | None = None) -> tuple[onnx.ModelProto, dict[str, Any]]:
    """Variant ``name`` of the fp32 ``generator`` and its manifest record.

    Args:
        feeds: batched generator inputs; int8 calibrates on them one sample at a time, and every
            variant's output on them is compared with ``reference`` (the fp32 graph's output).
        description: what the inputs are (recorded with the int8 calibration).
        recipe: the int8 recipe (default: the shipped one, :class:`export.quantize.Int8Recipe`).
    """
    if name not in VARIANTS:
        raise ExportError(f"unknown variant {name!r}; choose from {sorted(VARIANTS)}")
    t0 = time.perf_counter()
    precision, method, target = VARIANTS[name]
    if precision == "int8":
        recipe, calib = recipe or Int8Recipe(), split_batch(feeds)
        model = quantize_int8(generator, calib, recipe)
    else:
        model = convert_fp16(generator)
    model = check(stamp(model, "generator", name), f"generator.{name}")
    error = image_error(reference, run_session(cpu_session(model, threads), feeds))
    record: dict[str, Any] = {"graph": "generator", "precision": precision, "method": method, "target": target,
                              "error": error}
    if precision == "int8":
        record["calibration"] = f"{recipe.describe()}, over {len(calib)} samples: {description[:200]}"
    log.info("variant %s (%s %s, for %s): max abs %.3g, mean abs %.3g, SSIM %.4f vs fp32 (%.1f s)", name,
             precision, method, target, error["max_abs"], error["mean_abs"], error["ssim"], time.perf_counter() - t0)
    return model, record
