"""The int8 generator's error against fp32 on this CPU (issue 18): the int8 kernels differ by CPU
(AVX2, AVX-512, VNNI), so each machine's figure is measured and recorded with the CPU's name.

Renders the package's default avatar through a generated performance with both variants (unmarked
frames) and reports SSIM, PSNR and the largest difference in levels, with the CPU and its vector
extensions. ``--record`` adds (or replaces) this CPU's entry in the package manifest's
``quality.int8_by_cpu`` (free-form, so old readers accept it).

    python bench/int8_error.py [--model DIR] [--frames 200] [--record]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    import talkinghead
    from export.quantize import cpu_description
    from talkinghead.model import DEFAULT_PACKAGE
    from talkinghead.performance import PerformanceConfig, generate_performance
    from training.metrics import ssim

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=DEFAULT_PACKAGE)
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--record", action="store_true", help="write this CPU's figure into the manifest's quality")
    args = p.parse_args()
    models = {v: talkinghead.load_model(args.model, providers="cpu", variant=v, intra_op_threads=args.threads,
                                        watermark=False) for v in ("fp32", "int8")}
    avatar = models["fp32"].default_avatar()
    track = generate_performance(avatar.landmarks, args.frames / 25.0, 25.0, PerformanceConfig(seed=1))
    a, b = (models[v].render(avatar, track).astype(np.float64) for v in ("fp32", "int8"))
    mse = float(np.mean((a - b) ** 2))
    cpu = cpu_description()
    entry = {"cpu": cpu.removeprefix("CPU: "), "frames": len(track), "ssim": round(ssim(a.transpose(0, 3, 1, 2) / 127.5 - 1,
                                                                   b.transpose(0, 3, 1, 2) / 127.5 - 1), 5),
             "psnr_db": round(10 * np.log10(255.0 ** 2 / max(mse, 1e-12)), 2),
             "max_abs_levels": int(np.abs(a - b).max()), "mean_abs_levels": round(float(np.abs(a - b).mean()), 4),
             "measured_by": "bench/int8_error.py"}
    print(cpu)
    print(f"{models['fp32'].name}: int8 vs fp32 over {len(track)} frames of the default avatar: SSIM {entry['ssim']}, "
          f"PSNR {entry['psnr_db']} dB, max {entry['max_abs_levels']} levels, mean {entry['mean_abs_levels']}")
    if args.record:
        path = args.model / "manifest.json"
        manifest = json.loads(path.read_text())
        rows = [r for r in manifest.setdefault("quality", {}).get("int8_by_cpu", []) if r.get("cpu") != entry["cpu"]]
        manifest["quality"]["int8_by_cpu"] = rows + [entry]
        path.write_text(json.dumps(manifest, indent=2) + "\n")
        print(f"recorded in {path}")


if __name__ == "__main__":
    main()
