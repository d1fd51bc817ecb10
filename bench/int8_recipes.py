"""int8 recipes for a generator: accuracy against fp32 and speed, side by side in one run.

    python bench/int8_recipes.py [--package DIR] [--calibration DIR] [--samples 48] [--threads 2]
                                 [--rounds 3] [--json FILE] [--markdown FILE]

Each recipe (:class:`export.quantize.Int8Recipe`) quantises the package's fp32 generator with
static QDQ int8, calibrated on the first half of the samples (real face crops: a prepared dataset
with ``--calibration``, else what :func:`export.data.load_samples` finds — ../shared/data or
synthetic inputs); the other half is held out. Per recipe: SSIM, max and mean abs error against the
fp32 graph on the held-out inputs (the speed issue's bar: SSIM >= 0.98), and the median ms per frame
at batch 1 timed round-robin with fp32 (:mod:`bench.timing`), with the speed ratio to fp32.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.report import write_report  # noqa: E402
from bench.timing import round_robin  # noqa: E402
from export import data as export_data  # noqa: E402
from export.parity import cpu_session, image_error  # noqa: E402
from export.quantize import Int8Recipe, quantize_int8  # noqa: E402
from export.package_variants import package_feeds  # noqa: E402
from export.variants import split_batch  # noqa: E402
from talkinghead.package import ModelPackage  # noqa: E402

DEFAULT_PACKAGE = REPO / "sdk" / "talkinghead" / "models" / "default"

RECIPES: dict[str, Int8Recipe] = {
    "every Conv/MatMul/Gemm, MinMax (shipped until session 8)": Int8Recipe(
        op_types=("Conv", "MatMul", "Gemm"), calibration="minmax", max_side=None),
    "every Conv, MinMax": Int8Recipe(calibration="minmax", max_side=None),
    "every Conv, percentile 99.99": Int8Recipe(max_side=None),
    "Conv, depthwise kept float": Int8Recipe(skip_depthwise=True, calibration="minmax", max_side=None),
    "Conv, depthwise + first/last kept float, percentile": Int8Recipe(
        skip_depthwise=True, skip_ends=True, max_side=None),
    # only where the maps are small and the convolutions wide, so int8 arithmetic saves most and
    # the conversions around each float instance norm cost least
    "Conv at maps <= 16 px, percentile": Int8Recipe(max_side=16),
    "Conv at maps <= 32 px, percentile (shipped)": Int8Recipe(),
    "pointwise Conv at maps <= 32 px, percentile": Int8Recipe(skip_depthwise=True),
    "Conv at maps <= 64 px, percentile": Int8Recipe(max_side=64),
}


@dataclass
class RecipeResult:
    recipe: str
    ssim: float
    max_abs: float
    mean_abs: float
    ms_per_frame: float
    speed_vs_fp32: float
    threads: int


def run_all(package: ModelPackage, samples: export_data.Samples, threads: int,
            rounds: int) -> tuple[list[RecipeResult], float]:
    """Each recipe's accuracy and speed, and fp32's ms per frame in the same timing run."""
    feeds = split_batch(package_feeds(package, samples, threads))
    half = len(feeds) // 2
    calib, held = feeds[:half], feeds[half:]
    fp32_model = onnx.load(str(package.generator_path))
    sessions = {"fp32": cpu_session(fp32_model, threads)}
    errors: dict[str, dict[str, float]] = {}
    reference = np.concatenate([sessions["fp32"].run(None, f)[0] for f in held])
    for name, recipe in RECIPES.items():
        print(f"  quantising: {name}", file=sys.stderr)
        model = quantize_int8(fp32_model, calib, recipe)
        sessions[name] = cpu_session(model, threads)
        errors[name] = image_error(reference, np.concatenate([sessions[name].run(None, f)[0] for f in held]))
    medians = round_robin({n: (lambda f, s=s: s.run(None, f)) for n, s in sessions.items()}, held, rounds)
    results = [RecipeResult(name, round(e["ssim"], 4), round(e["max_abs"], 4), round(e["mean_abs"], 5),
                            round(medians[name], 3), round(medians["fp32"] / medians[name], 3), threads)
               for name, e in errors.items()]
    return results, medians["fp32"]


def table(results: list[RecipeResult], fp32_ms: float) -> str:
    lines = ["| recipe | SSIM vs fp32 | max abs | mean abs | ms/frame | speed vs fp32 |",
             "| --- | ---: | ---: | ---: | ---: | ---: |",
             f"| fp32 (reference) | 1 | 0 | 0 | {fp32_ms:.2f} | 1.00x |"]
    for r in results:
        lines.append(f"| {r.recipe} | {r.ssim:.4f} | {r.max_abs:.3f} | {r.mean_abs:.4f} | {r.ms_per_frame:.2f} "
                     f"| {r.speed_vs_fp32:.2f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--package", type=Path, default=DEFAULT_PACKAGE)
    p.add_argument("--calibration", type=Path, help="a prepared dataset folder (default: what export finds)")
    p.add_argument("--samples", type=int, default=48, help="inputs: half calibrate, half are held out")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json", type=Path)
    p.add_argument("--markdown", type=Path)
    args = p.parse_args(argv)
    package = ModelPackage.load(args.package)
    samples = export_data.load_samples(package.resolution, args.samples, args.calibration)
    print(f"{package.name}: {export_data.describe(samples)}", file=sys.stderr)
    results, fp32_ms = run_all(package, samples, args.threads, args.rounds)
    write_report(table(results, fp32_ms), results, args.markdown, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
