"""A long render with memory sampled (issue 18): 50,000 frames through ``model.render`` by default,
the process's resident memory read every ``--every`` frames. After a warm-up (the first 10% of
frames: ONNX Runtime's arena and caches grow to their working size) the memory must stay flat
within 5%; the report says whether it did.

    python bench/long_run.py --frames 50000 --batch 8 --out docs/bench/long_run

Writes <out>.md (the table), <out>.csv (frames, seconds, RSS MiB) and <out>.png (the curve), and
prints the CPU with its vector extensions (machines here differ).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.web_load import rss_mib  # noqa: E402  (a process's resident memory from /proc)


def plot(samples: list[tuple[int, float, float]], warm_from: int, title: str, path: Path) -> None:
    """RSS against frames as a PNG (Pillow, as the other benches: no plotting dependency), the axis
    from 0 so that a flat line looks flat."""
    from PIL import Image, ImageDraw

    w, h, left, bottom = 800, 320, 70, 40
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    top_mib = max(s[2] for s in samples) * 1.2
    last = max(samples[-1][0], 1)
    def xy(frames: float, mib: float) -> tuple[float, float]:
        return left + frames / last * (w - left - 20), h - bottom - mib / top_mib * (h - bottom - 30)
    d.rectangle([left, 30, w - 20, h - bottom], outline="grey")
    d.line([xy(warm_from, 0), xy(warm_from, top_mib)], fill="grey", width=1)
    d.line([xy(f, m) for f, _, m in samples], fill="navy", width=2)
    d.text((10, 8), title + " (grey line: end of warm-up)", fill="black")
    for mib in (0, top_mib / 2, top_mib):
        d.text((5, xy(0, mib)[1] - 6), f"{mib:.0f} MiB", fill="black")
    d.text((left, h - bottom + 8), "0", fill="black")
    d.text((w - 90, h - bottom + 8), f"{last:,} frames", fill="black")
    img.save(path)


def main() -> None:
    import talkinghead
    from export.quantize import cpu_description
    from talkinghead.performance import PerformanceConfig, generate_performance

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=50_000)
    p.add_argument("--batch", type=int, default=8, help="frames per render call")
    p.add_argument("--every", type=int, default=1000, help="sample memory every this many frames")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--model", help="package folder (default: the bundled model)")
    p.add_argument("--out", type=Path, help="write <out>.md, .csv and .png")
    args = p.parse_args()

    model = talkinghead.load_model(args.model, providers="cpu", intra_op_threads=args.threads)
    avatar = model.default_avatar()
    track = generate_performance(avatar.landmarks, 60.0, 25.0, PerformanceConfig(seed=0))  # 1,500 frames, looped
    samples = [(0, 0.0, rss_mib(os.getpid()))]
    start = time.perf_counter()
    done = 0
    checksum = 0
    while done < args.frames:
        n = min(args.batch, args.frames - done)
        idx = (np.arange(done, done + n) % len(track))
        frames = model.render(avatar, track[idx])
        checksum += int(frames[:, ::64, ::64].sum())  # the frames are used, not optimised away
        done += n
        if done % args.every < n or done == args.frames:
            samples.append((done, time.perf_counter() - start, rss_mib(os.getpid())))
            print(f"\r{done}/{args.frames} frames, {samples[-1][1]:.0f} s, RSS {samples[-1][2]:.1f} MiB",
                  end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    warm = [s for s in samples if s[0] >= args.frames // 10]
    lo, hi = min(s[2] for s in warm), max(s[2] for s in warm)
    growth = (hi - lo) / lo
    seconds = samples[-1][1]
    table = "\n".join([
        f"# Long run: {args.frames:,} frames through model.render", "",
        cpu_description(), "",
        f"model {model.name} ({model.variant}), default avatar, batch {args.batch}, {args.threads} thread(s), "
        f"watermark on; {seconds / 60:.1f} min, {1000 * seconds / args.frames:.1f} ms per frame", "",
        "| | RSS MiB |", "|---|---|",
        f"| at start (model loaded) | {samples[0][2]:.1f} |",
        f"| after {args.frames // 10:,} frames (warm) | {warm[0][2]:.1f} |",
        f"| lowest after warm-up | {lo:.1f} |",
        f"| highest after warm-up | {hi:.1f} |",
        f"| at the end | {samples[-1][2]:.1f} |", "",
        f"Spread after warm-up: {100 * growth:.2f}% of the lowest ({'flat within 5%' if growth <= 0.05 else 'NOT flat'}).",
        f"Samples every {args.every:,} frames: {len(samples)}.",
    ])
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".md").write_text(table + "\n")
        args.out.with_suffix(".csv").write_text("frames,seconds,rss_mib\n" + "".join(
            f"{f},{t:.2f},{m:.2f}\n" for f, t, m in samples))
        plot(samples, args.frames // 10, f"{model.name}: RSS over {args.frames:,} frames", args.out.with_suffix(".png"))
    sys.exit(0 if growth <= 0.05 else 1)


if __name__ == "__main__":
    main()
