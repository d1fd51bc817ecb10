"""Rebuild the generator variants of an existing model package:

    python -m export.package_variants PACKAGE [--variants int8,fp16] [--calibration DIR] [--samples 16]
                                      [--overwrite] [--threads 2]

from the package's own fp32 generator (:mod:`export.variants`), e.g. after a better int8 recipe,
without its training checkpoint. The calibration inputs are real face crops (a prepared dataset with ``--calibration``, else what :func:`export.data.load_samples`
finds; synthetic inputs are refused unless ``--allow-synthetic``), their identity from the
package's own embedder. A variant already in the package is
replaced only with ``--overwrite``; the manifest is rewritten with the new file's hash and error (for
int8 also the CPU the error was measured on) and
the package is loaded back (hashes, role stamps) before the command succeeds. Exit status: 0 done,
2 refused or failed a check (the package is left as it was), 1 a bug.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from talkinghead.errors import TalkingHeadError
from talkinghead.package import ModelPackage

from . import data as data_mod
from .errors import ExportError
from .manifest_writer import variant_entry, write_manifest
from .parity import cpu_session, run_session
from .quantize import Int8Recipe, measured_on
from .variants import VARIANTS, build_variant

log = logging.getLogger("export")


def package_feeds(package: ModelPackage, samples: data_mod.Samples, threads: int = 2) -> dict[str, np.ndarray]:
    """Batched generator inputs for a package: each sample driven by the next one's landmarks and,
    for a meta model, with its own identity from the package's embedder (as the exporter feeds)."""
    inputs = package.graph("generator").input_names
    feeds = {"landmarks": samples.driving_landmarks()}
    if "identity" in inputs:
        if package.embedder_path is None:
            raise ExportError(f"{package.folder}: the generator takes an identity but the package has no embedder")
        embedder = cpu_session(str(package.embedder_path), threads)
        feeds["identity"] = np.concatenate([
            embedder.run(None, {"image": samples.images[i:i + 1], "landmarks": samples.landmarks[i:i + 1]})[0]
            for i in range(len(samples))])
    return feeds


def rebuild_variants(folder: Path, names: tuple[str, ...], *, calibration: Path | None = None, samples: int = 16,
                     overwrite: bool = False, threads: int = 2,
                     allow_synthetic: bool = False) -> dict[str, dict[str, Any]]:
    """(Re)build variants ``names`` of the package at ``folder`` in place; returns their records.

    Raises:
        ExportError: not a package, a variant exists and ``overwrite`` is off, no real calibration
            inputs (unless ``allow_synthetic``), or the rebuilt package does not load (the package
            is then left as it was).
    """
    try:
        package = ModelPackage.load(folder)
    except TalkingHeadError as exc:
        raise ExportError(f"{folder}: not a loadable model package: {exc}") from exc
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))  # the raw manifest, to edit
    present = [n for n in names if n in manifest.get("variants", {}) or (folder / f"generator.{n}.onnx").exists()]
    if present and not overwrite:
        raise ExportError(f"{folder} already has variant(s) {present}; pass --overwrite to replace them")
    data = data_mod.load_samples(package.resolution, samples, calibration)
    log.info("calibration inputs: %s", data_mod.describe(data))
    if data.kind != "real" and not allow_synthetic:
        raise ExportError(f"no real face crops to calibrate on (found: {data.description}); pass --calibration "
                          "with a prepared dataset, or --allow-synthetic to calibrate on synthetic inputs")
    generator = onnx.load(str(package.generator_path))
    feeds = package_feeds(package, data, threads)
    reference = run_session(cpu_session(generator, threads), feeds)
    built = {name: build_variant(name, generator, feeds, reference, data.description, threads) for name in names}
    for _, record in built.values():
        if "calibration" in record:  # int8: its error may depend on the CPU it was measured on
            record["calibration"] += f"; {measured_on(Int8Recipe())}"
    staged: list[tuple[Path, Path]] = []  # (temporary file, final file)
    try:
        for name, (model, record) in built.items():
            final = folder / f"generator.{name}.onnx"
            tmp = folder / f".{final.name}.tmp-{os.getpid()}"
            onnx.save(model, tmp)
            staged.append((tmp, final))
            manifest.setdefault("variants", {})[name] = variant_entry(tmp, record, final.name)
        _replace_files(folder, staged, manifest)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
    return {name: manifest["variants"][name] for name in names}


def _replace_files(folder: Path, staged: list[tuple[Path, Path]], manifest: dict[str, Any]) -> None:
    """Move the staged files into place, then the manifest (written beside it first, so it is never
    half-written); if anything fails on the way or the package then does not load, put back what was
    there before."""
    backup = {final: final.read_bytes() if final.exists() else None for _, final in staged}
    manifest_path = folder / "manifest.json"
    old_manifest = manifest_path.read_bytes()
    with tempfile.TemporaryDirectory(dir=folder, prefix=".manifest-") as tmp:
        new_manifest = write_manifest(Path(tmp), manifest)  # may refuse (e.g. NaN) before anything moved
        try:
            for staged_file, final in staged:
                os.replace(staged_file, final)
            os.replace(new_manifest, manifest_path)
            ModelPackage.load(folder)
        except BaseException as exc:
            for final, content in backup.items():
                if content is None:
                    final.unlink(missing_ok=True)
                else:
                    final.write_bytes(content)
            manifest_path.write_bytes(old_manifest)
            if isinstance(exc, (TalkingHeadError, ExportError)):
                raise ExportError(f"the rebuilt package does not load, left as it was: {exc}") from exc
            raise


def _variant_list(text: str) -> tuple[str, ...]:
    names = tuple(v.strip() for v in text.split(",") if v.strip())
    unknown = [v for v in names if v not in VARIANTS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown or no variant(s) {unknown or text!r}; choose from {sorted(VARIANTS)}")
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"variants listed twice: {list(names)}")
    return names


def main(argv: list[str] | None = None) -> int:
    """``python -m export.package_variants``: exit status 0 done, 2 refused or failed a check."""
    p = argparse.ArgumentParser(prog="python -m export.package_variants", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("package", type=Path, help="the model package folder to update")
    p.add_argument("--variants", type=_variant_list, default=("int8",),
                   help=f"comma-separated variants to build: {', '.join(VARIANTS)} (default: int8)")
    p.add_argument("--calibration", type=Path, default=None, help="prepared dataset folder for calibration inputs")
    p.add_argument("--samples", type=int, default=16, help="calibration samples (default 16)")
    p.add_argument("--overwrite", action="store_true", help="replace variants the package already has")
    p.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads (default 2)")
    p.add_argument("--allow-synthetic", action="store_true",
                   help="calibrate on synthetic inputs when no real face crops are found (tests, offline runs)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr, force=True)
    log.setLevel(logging.INFO)
    try:
        if args.calibration is not None and not args.calibration.is_dir():
            raise ExportError(f"--calibration {args.calibration}: not a folder")
        if not 1 <= args.samples <= 256:
            raise ExportError(f"--samples must be in 1..256, got {args.samples}")
        if args.threads < 1:
            raise ExportError(f"--threads must be >= 1, got {args.threads}")
        records = rebuild_variants(args.package, args.variants, calibration=args.calibration, samples=args.samples,
                                   overwrite=args.overwrite, threads=args.threads,
                                   allow_synthetic=args.allow_synthetic)
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name, rec in records.items():
        print(f"{args.package / rec['file']}: SSIM {rec['error']['ssim']:.4f} vs fp32")
    return 0


if __name__ == "__main__":
    sys.exit(main())
