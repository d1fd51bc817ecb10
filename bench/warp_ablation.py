"""The warp family's ablation table: what each learned stage adds, with bench/quality.py's protocol.

    python bench/warp_ablation.py CHECKPOINT --clips ../shared/data/driving \
        --names-file training/holdout.txt --out docs/quality/warp_ablation [--shots 1 8] [--targets 20]

The checkpoint is exported once per cumulative stage (``export --stages``: prior; + flow; + blend;
+ synthesis = the whole model), each package is scored as ``ours`` by bench/quality.py (the classical
``warp`` baseline comes along in the first run), and one table is written: SSIM, PSNR, landmark
error, CSIM, sharpness, mouth SSIM and flicker per stage and K (ablation.md, ablation.json, and each
run's own results under OUT/<stage>/). At initialisation every stage is a no-op
(tests/training/test_warp_generator.py), so the rows differ only by what training taught each part.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import quality  # noqa: E402
from export import ExportOptions, export_checkpoint  # noqa: E402
from training.config import REFERENCE_SCALES  # noqa: E402
from training.networks.warp_generator import STAGES  # noqa: E402

TABLE_METRICS = ("ssim", "psnr", "lmk_err", "csim", "sharpness", "mouth_ssim", "mouth_n", "flicker")
ROW_NAMES = {"prior": "prior only", "flow": "+ learned flow", "blend": "+ blending", "synthesis": "+ synthesis"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/warp_ablation.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path, help="a warp-family checkpoint (e.g. checkpoints/warp/checkpoint.safetensors)")
    p.add_argument("--clips", type=Path, required=True)
    p.add_argument("--names-file", type=Path, required=True, help="the held-out clips (training/holdout.txt)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--shots", type=int, nargs="+", default=[1, 8])
    p.add_argument("--targets", type=int, default=20)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--reference-scale", type=int, default=1, choices=REFERENCE_SCALES,
                   help="the shots at this multiple of the output side, as export's option (the bundled "
                        "model: 2)")
    return p.parse_args(argv)


def run_stage(args: argparse.Namespace, stages: tuple[str, ...], packages: Path, with_baseline: bool) -> dict:
    """Export the checkpoint with ``stages`` and score it; returns quality's results.json."""
    name = stages[-1]
    package = packages / name
    export_checkpoint(args.checkpoint, package, ExportOptions(stages=stages, overwrite=True,
                                                              reference_scale=args.reference_scale))
    out = args.out / name
    argv = ["--clips", str(args.clips), "--names-file", str(args.names_file), "--model", str(package),
            "--out", str(out), "--shots", *map(str, args.shots), "--targets", str(args.targets),
            "--methods", *(["warp", "ours"] if with_baseline else ["ours"]), "--video-frames", "0",
            "--threads", str(args.threads)]
    if quality.main(argv) != 0:
        raise SystemExit(f"error: bench/quality.py failed for stage {name}")
    return json.loads((out / "results.json").read_text())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict] = {}
    docs = {}
    with tempfile.TemporaryDirectory(prefix="warp-ablation-") as tmp:
        for n in range(1, len(STAGES) + 1):
            stages = STAGES[:n]
            doc = run_stage(args, stages, Path(tmp), with_baseline=n == 1)
            docs[stages[-1]] = doc
            if n == 1:
                rows["warp (classical)"] = doc["results"]["warp"]
            rows[ROW_NAMES[stages[-1]]] = doc["results"]["ours"]
    first = docs[STAGES[0]]
    cpu = quality_cpu()
    md = [f"## Warp family ablation ({args.checkpoint})", "",
          f"bench/quality.py's protocol on {first.get('clips_evaluated', '?')} held-out clip(s) "
          f"({args.names_file}), {args.targets} targets each, feed-forward; each row exports the checkpoint "
          "with the learned stages up to it (the rest are the identity: no flow correction, landmark-distance "
          f"blending, no synthesis); shots at {args.reference_scale}x the output side. Sharpness: Laplacian variance of the output over the real crop's (1 = as "
          f"sharp as the real frame). {cpu}.", "",
          quality.markdown_table(rows, TABLE_METRICS, None)]
    (args.out / "ablation.md").write_text("\n".join(md) + "\n")
    (args.out / "ablation.json").write_text(json.dumps({"checkpoint": str(args.checkpoint), "cpu": cpu,
                                                        "reference_scale": args.reference_scale, "rows": rows},
                                                       indent=1))
    print("\n".join(md))
    return 0


def quality_cpu() -> str:
    from export.quantize import cpu_description

    return cpu_description()


if __name__ == "__main__":
    sys.exit(main())
