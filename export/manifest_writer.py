"""Builds manifest.json (schema_version 1, see docs/architecture.md) and writes it, validated."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import onnx

import talkinghead
from talkinghead.crop import CropConfig
from talkinghead.manifest import SCHEMA_VERSION, validate_manifest
from talkinghead.package import sha256_file

from .errors import ExportError
from .simplify import interface


def graph_record(path: Path, model: onnx.ModelProto) -> dict[str, Any]:
    inputs, outputs = interface(model)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    return {"file": path.name, "sha256": sha256_file(path), "inputs": inputs, "outputs": outputs,
            "opset": int(opset), "ir_version": int(model.ir_version)}


def variant_entry(path: Path, record: dict[str, Any], file_name: str | None = None) -> dict[str, Any]:
    """A manifest ``variants`` entry: the build record (:func:`export.variants.build_variant`) with
    the file written at ``path`` — named ``file_name`` in the package, default its own name — and
    its hash."""
    return {"graph": record["graph"], "file": file_name or path.name, "sha256": sha256_file(path),
            **{k: v for k, v in record.items() if k != "graph"}}


def training_record(config, state) -> dict[str, Any]:
    """The training data summary of a checkpoint (folder names only, no absolute paths)."""
    data = state.data or {}
    roots = [Path(r).name for r in data.get("roots", [])]
    if state.step == 0 and not roots:
        summary = "none (untrained, randomly initialised weights)"
    else:
        parts = [f"{data[k]} {k}" for k in ("videos", "photos", "frames") if isinstance(data.get(k), int)]
        summary = f"prepared dataset(s) {', '.join(roots) or '(unrecorded)'}"
        if parts:
            summary += f": {', '.join(parts)}"
    rec: dict[str, Any] = {"data": summary, "steps": int(state.step),
                           "content_backbone": config.loss.content_backbone}
    for k in ("videos", "photos", "frames"):
        if isinstance(data.get(k), int):
            rec[k] = data[k]
    seconds = state.extra.get("train_seconds")
    if isinstance(seconds, (int, float)):
        rec["seconds"] = float(seconds)
    steps, shots = state.extra.get("finetune_steps"), state.extra.get("shots")
    if state.kind == "personalised" and isinstance(steps, int) and isinstance(shots, int):
        rec["finetune"] = {"steps": steps, "shots": shots}
    return rec


def producer_record() -> dict[str, str]:
    import onnxruntime
    import torch

    return {"name": "talkinghead.export", "version": talkinghead.__version__, "torch": torch.__version__,
            "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}


def build_manifest(*, name: str, version: str, size: str, kind: str, resolution: int, embedding_dim: int,
                   graphs: dict[str, dict], variants: dict[str, dict], parity: dict, training: dict,
                   crop: CropConfig | None = None, family: str = "adain",
                   references: dict[str, Any] | None = None) -> dict[str, Any]:
    crop = crop or CropConfig()
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "version": version,
        "family": family,
        "size": size,
        "kind": kind,
        "resolution": resolution,
        "embedding_dim": embedding_dim,
        "landmarks": {"layout": "ibug68", "count": 68, "coords": "crop_normalised", "crop": crop.to_dict()},
        "image": {"channels": "rgb", "range": [-1.0, 1.0], "layout": "nchw"},
        "graphs": graphs,
        "variants": variants,
        "parity": parity,
        "training": training,
        "producer": producer_record(),
    }
    if references is not None:
        manifest["references"] = references
    try:
        validate_manifest(manifest)
    except talkinghead.ModelPackageError as exc:  # a bug in the exporter, not the user's fault
        raise ExportError(f"the exporter built an invalid manifest: {exc}") from exc
    return manifest


def write_manifest(folder: Path, manifest: dict[str, Any]) -> Path:
    path = folder / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return path
