"""``python -m export CHECKPOINT OUT_DIR [--variants fp16,int8] [--opset N] [--overwrite] [--calibration DIR]``

Writes a model package (embedder.onnx, generator.onnx, variants, manifest.json) from a training
checkpoint. A personalised (fine-tuned) checkpoint gives a generator with input ``landmarks`` only
and no embedder. Exit status: 0 written, 2 refused or failed a check (nothing written), 1 a bug.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .errors import ExportError
from training.config import REFERENCE_SCALES

from .exporter import VARIANTS, ExportOptions, export_checkpoint
from .onnx_export import DEFAULT_OPSET


def _variants(text: str) -> tuple[str, ...]:
    names = tuple(v.strip() for v in text.split(",") if v.strip())
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown variant(s) {unknown}; choose from {sorted(VARIANTS)}")
    return names


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m export", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path, help="checkpoint.safetensors (meta-learned or personalised)")
    p.add_argument("out_dir", type=Path, help="package folder to create")
    p.add_argument("--variants", type=_variants, default=(),
                   help=f"comma-separated generator variants besides fp32: {', '.join(VARIANTS)} (default: none)")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset, 13..20 (default {DEFAULT_OPSET})")
    p.add_argument("--overwrite", action="store_true", help="replace an existing package at OUT_DIR")
    p.add_argument("--calibration", type=Path, default=None,
                   help="prepared dataset folder for parity and int8 calibration inputs "
                        "(default: face photos in ../shared/data, else synthetic inputs)")
    p.add_argument("--samples", type=int, default=16, help="parity/calibration samples (default 16)")
    p.add_argument("--synthetic", action="store_true", help="use synthetic inputs even if real data exists")
    p.add_argument("--tolerance", type=float, default=1e-4, help="fp32 parity tolerance, max abs (default 1e-4)")
    p.add_argument("--instance-norm", choices=("auto", "fused", "two-stage"), default="auto",
                   help="instance norm in the fp32 graphs: ONNX Runtime's fused op, the two-stage form "
                        "(more precise, 5-20%% slower), or auto: fused unless parity needs two-stage (default)")
    p.add_argument("--prune-attention", type=float, default=2e-3, metavar="TOL",
                   help="leave out generator self-attention blocks whose removal moves the output by at most "
                        "TOL max abs on the parity inputs (default 2e-3, a quarter of an 8-bit level; 0 keeps all)")
    p.add_argument("--name", default=None, help="package name (default talkinghead-<size>[-personalised])")
    p.add_argument("--package-version", default="0.1.0", help="the package's own version (default 0.1.0)")
    p.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads for parity runs (default 2)")
    p.add_argument("--stages", type=lambda t: tuple(x.strip() for x in t.split(",") if x.strip()), default=None,
                   help="warp family only, for the ablation table: export the generator with these learned stages "
                        "(a prefix of prior,flow,blend,synthesis); the package is named talkinghead-warp-<last stage>")
    p.add_argument("--reference-scale", type=int, default=1, choices=REFERENCE_SCALES,
                   help="warp family: keep the avatar's reference shots at this multiple of the output resolution, "
                        "so the warp samples real pixels down once (default 1)")
    p.add_argument("--keep-grid-sample", action="store_true",
                   help="keep the traced GridSample and Softmax operators (by default the generator's are rewritten "
                        "into exact equivalents that ONNX Runtime's CPU kernels run faster: export/rewrite.py)")
    p.add_argument("-q", "--quiet", action="store_true", help="only errors")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr, force=True)
    logging.getLogger("export").setLevel(logging.WARNING if args.quiet else logging.INFO)
    opts = ExportOptions(variants=args.variants, opset=args.opset, overwrite=args.overwrite,
                         calibration=args.calibration, samples=args.samples, synthetic=args.synthetic,
                         tolerance=args.tolerance, instance_norm=args.instance_norm, name=args.name,
                         version=args.package_version, threads=args.threads,
                         prune_attention=args.prune_attention, stages=args.stages,
                         reference_scale=args.reference_scale, rewrite=not args.keep_grid_sample)
    try:
        result = export_checkpoint(args.checkpoint, args.out_dir, opts)
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(result.path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
