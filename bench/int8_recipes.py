"""int8 recipes for a generator: accuracy against fp32 and speed, side by side in one run.

    python bench/int8_recipes.py [--package DIR] [--calibration DIR] [--samples 48] [--threads 2]
                                 [--rounds 3] [--only TEXT ...] [--json FILE] [--markdown FILE]

Each recipe (:class:`export.quantize.Int8Recipe`) quantises the package's fp32 generator with
static QDQ int8, calibrated on the first half of the samples (real face crops: a prepared dataset
with ``--calibration``, else what :func:`export.data.load_samples` finds — ../shared/data or
synthetic inputs); the other half is held out. Per recipe: SSIM, max and mean abs error against the
fp32 graph on the held-out inputs (the speed issue's bar: SSIM >= 0.98), and the median ms per frame
at batch 1 timed round-robin with fp32 (:mod:`bench.timing`), with the speed ratio to fp32.
``--only`` keeps the recipes whose name contains one of the given texts.

int8 error against fp32 depends on the CPU for u8 x s8 arithmetic with 8-bit weights (without VNNI,
VPMADDUBSW saturates the int16 sum of a pair of products; see :class:`export.quantize.Int8Recipe`),
so the report starts with the CPU's model and its AVX2 / AVX-512 / VNNI flags.
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
from export.quantize import Int8Recipe, cpu_description, quantize_int8  # noqa: E402
from export.package_variants import package_feeds  # noqa: E402
from export.variants import split_batch  # noqa: E402
from talkinghead.package import ModelPackage  # noqa: E402

DEFAULT_PACKAGE = REPO / "sdk" / "talkinghead" / "models" / "default"

EIGHT_BIT = {"reduce_range": False}  # the rows measured before 7-bit weights, as they were measured

RECIPES: dict[str, Int8Recipe] = {
    "every Conv/MatMul/Gemm, MinMax (shipped until session 8)": Int8Recipe(
        op_types=("Conv", "MatMul", "Gemm"), calibration="minmax", max_side=None, **EIGHT_BIT),
    "every Conv, MinMax": Int8Recipe(calibration="minmax", max_side=None, **EIGHT_BIT),
    "every Conv, percentile 99.99": Int8Recipe(max_side=None, **EIGHT_BIT),
    "Conv, depthwise kept float": Int8Recipe(skip_depthwise=True, calibration="minmax", max_side=None, **EIGHT_BIT),
    "Conv, depthwise + first/last kept float, percentile": Int8Recipe(
        skip_depthwise=True, skip_ends=True, max_side=None, **EIGHT_BIT),
    # only where the maps are small and the convolutions wide, so int8 arithmetic saves most and
    # the conversions around each float instance norm cost least
    "Conv at maps <= 16 px, percentile": Int8Recipe(max_side=16, **EIGHT_BIT),
    "Conv at maps <= 32 px, percentile, 8-bit weights (shipped in session 8)": Int8Recipe(**EIGHT_BIT),
    "pointwise Conv at maps <= 32 px, percentile": Int8Recipe(skip_depthwise=True, **EIGHT_BIT),
    "Conv at maps <= 64 px, percentile": Int8Recipe(max_side=64, **EIGHT_BIT),
    # ONNX Runtime's remedies for u8 x s8 saturation on x86-64 CPUs without VNNI (issue 18)
    "Conv at maps <= 32 px, percentile, 7-bit weights (shipped)": Int8Recipe(),
    "Conv at maps <= 32 px, percentile, S8S8": Int8Recipe(activations="int8", **EIGHT_BIT),
    "Conv at maps <= 32 px, percentile, S8S8, 7-bit weights": Int8Recipe(activations="int8"),
    "Conv at maps <= 16 px, percentile, 7-bit weights": Int8Recipe(max_side=16),
}



@dataclass
class RecipeResult:
    recipe: str
    ssim: float
    psnr_db: float
    max_abs: float
    mean_abs: float
    ms_per_frame: float
    speed_vs_fp32: float
    threads: int
    cpu: str


def run_all(package: ModelPackage, samples: export_data.Samples, threads: int,
            rounds: int, recipes: dict[str, Int8Recipe] | None = None) -> tuple[list[RecipeResult], float]:
    """Each recipe's accuracy and speed, and fp32's ms per frame in the same timing run."""
    recipes = RECIPES if recipes is None else recipes
    feeds = split_batch(package_feeds(package, samples, threads))
    half = len(feeds) // 2
    calib, held = feeds[:half], feeds[half:]
    fp32_model = onnx.load(str(package.generator_path))
    sessions = {"fp32": cpu_session(fp32_model, threads)}
    errors: dict[str, dict[str, float]] = {}
    psnr: dict[str, float] = {}
    reference = np.concatenate([sessions["fp32"].run(None, f)[0] for f in held])
    for name, recipe in recipes.items():
        print(f"  quantising: {name}", file=sys.stderr)
        model = quantize_int8(fp32_model, calib, recipe)
        sessions[name] = cpu_session(model, threads)
        out = np.concatenate([sessions[name].run(None, f)[0] for f in held])
        errors[name] = image_error(reference, out)
        psnr[name] = psnr_db(reference, out)
    medians = round_robin({n: (lambda f, s=s: s.run(None, f)) for n, s in sessions.items()}, held, rounds)
    cpu = cpu_description()
    results = [RecipeResult(name, round(e["ssim"], 4), round(psnr[name], 2), round(e["max_abs"], 4),
                            round(e["mean_abs"], 5), round(medians[name], 3), round(medians["fp32"] / medians[name], 3),
                            threads, cpu)
               for name, e in errors.items()]
    return results, medians["fp32"]


def psnr_db(reference: np.ndarray, other: np.ndarray) -> float:
    """PSNR of ``other`` against ``reference``, both images in [-1, 1] (peak-to-peak 2)."""
    mse = float(np.mean((reference.astype(np.float64) - other.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(4.0 / mse)


def table(results: list[RecipeResult], fp32_ms: float, cpu: str = "") -> str:
    lines = ([cpu, ""] if cpu else []) + [
        "| recipe | SSIM vs fp32 | PSNR dB | max abs | mean abs | ms/frame | speed vs fp32 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| fp32 (reference) | 1 | inf | 0 | 0 | {fp32_ms:.2f} | 1.00x |"]
    for r in results:
        lines.append(f"| {r.recipe} | {r.ssim:.4f} | {r.psnr_db:.2f} | {r.max_abs:.3f} | {r.mean_abs:.4f} "
                     f"| {r.ms_per_frame:.2f} | {r.speed_vs_fp32:.2f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--package", type=Path, default=DEFAULT_PACKAGE)
    p.add_argument("--calibration", type=Path, help="a prepared dataset folder (default: what export finds)")
    p.add_argument("--samples", type=int, default=48, help="inputs: half calibrate, half are held out")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--only", nargs="+", metavar="TEXT", help="only the recipes whose name contains one of these")
    p.add_argument("--json", type=Path)
    p.add_argument("--markdown", type=Path)
    args = p.parse_args(argv)
    recipes = {n: r for n, r in RECIPES.items() if not args.only or any(t in n for t in args.only)}
    if not recipes:
        p.error(f"--only {args.only}: no recipe matches; the recipes are: {list(RECIPES)}")
    cpu = cpu_description()
    print(cpu, file=sys.stderr)
    package = ModelPackage.load(args.package)
    samples = export_data.load_samples(package.resolution, args.samples, args.calibration)
    print(f"{package.name}: {export_data.describe(samples)}", file=sys.stderr)
    results, fp32_ms = run_all(package, samples, args.threads, args.rounds, recipes)
    write_report(table(results, fp32_ms, cpu), results, args.markdown, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
