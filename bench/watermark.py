"""The watermark measured: detection after what files go through, false positives on real media,
and its cost beside rendering.

    python bench/watermark.py [--videos 8] [--seconds 4] [--data ../shared/data] [--json FILE] [--markdown FILE]

1. Our outputs: ``--videos`` demo performances (seeds 0..N-1) of the bundled model, written as
   `talkinghead demo` writes them (H.264 CRF 18), then each transformation: H.264 re-encoding at
   CRF 23 and 28, scaling to 50%, a 10% crop (5% off each side), brightness +10% and -10%, and a
   screen-capture-like resample (scaled to 90% with bilinear filtering, gamma 1.1, re-encoded at
   CRF 23). Detection per video (up to 150 frames folded, as `talkinghead verify`) and per frame.
2. False positives: every clip, photo and portrait under ``--data`` (driving/, faces/, source/),
   checked as `talkinghead verify` checks a file: must be 0.
3. Cost: PSNR of marked against unmarked frames, and ms per frame of marking at 256 px and at a
   512 px pasted frame, timed beside the generator's own ms per frame in the same run.

Prints the CPU and its vector extensions with the tables.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def encode_video(frames, path: Path, crf: int, fps: float = 25.0) -> Path:
    from talkinghead.video import VideoWriter

    with VideoWriter(path, fps=fps, crf=crf, overwrite=True) as w:
        for f in frames:
            w.write(f)
    return path


def decode_video(path: Path, limit: int = 150) -> list[np.ndarray]:
    from talkinghead.video import iter_frames

    return list(iter_frames(path, limit=limit))


def scale_frame(frame: np.ndarray, s: float) -> np.ndarray:
    import av

    h, w = frame.shape[:2]
    vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
    return vf.reformat(width=max(2, int(w * s) // 2 * 2), height=max(2, int(h * s) // 2 * 2),
                       interpolation="BILINEAR").to_ndarray(format="rgb24")


def render_demo(model, avatar, seed: int, seconds: float) -> np.ndarray:
    """The frames of demo performance ``seed`` (``seconds`` at 25 fps) as ``model`` renders them
    (marked or not, as the model was loaded)."""
    from talkinghead.performance import PerformanceConfig, generate_performance

    return model.render(avatar, generate_performance(avatar.landmarks, seconds, 25.0, PerformanceConfig(seed=seed)))


def write_demo(frames, tmp: Path) -> list[np.ndarray]:
    """``frames`` written as `talkinghead demo` writes them (H.264 CRF 18) and read back."""
    return decode_video(encode_video(frames, tmp / "demo.mp4", 18))


def media_files(data: Path) -> list[Path]:
    """Every clip, photo and portrait under ``data`` (driving/, faces/, source/), sorted."""
    return [p for sub in ("driving", "faces", "source") for p in sorted((data / sub).iterdir()) if p.is_file()]


TRANSFORMS = {
    "as written (CRF 18)": lambda frames, tmp: frames,
    "H.264 CRF 23": lambda frames, tmp: decode_video(encode_video(frames, tmp / "c23.mp4", 23)),
    "H.264 CRF 28": lambda frames, tmp: decode_video(encode_video(frames, tmp / "c28.mp4", 28)),
    "scaled to 50%": lambda frames, tmp: [scale_frame(f, 0.5) for f in frames],
    "10% crop": lambda frames, tmp: [f[int(f.shape[0] * .05):int(f.shape[0] * .95),
                                       int(f.shape[1] * .05):int(f.shape[1] * .95)] for f in frames],
    "brightness +10%": lambda frames, tmp: [np.clip(f * 1.1, 0, 255).astype(np.uint8) for f in frames],
    "brightness -10%": lambda frames, tmp: [(f * 0.9).astype(np.uint8) for f in frames],
    "screen capture (90%, gamma 1.1, CRF 23)": lambda frames, tmp: decode_video(encode_video(
        [(255 * (scale_frame(f, 0.9) / 255.0) ** 1.1).astype(np.uint8) for f in frames], tmp / "cap.mp4", 23)),
}


def outputs(videos: int, seconds: float) -> dict[str, dict]:
    import talkinghead
    from talkinghead.watermark import detect

    model = talkinghead.load_model(providers="cpu")
    avatar = model.default_avatar()
    rows = {name: {"videos": 0, "found": 0, "frames": 0, "frames_found": 0, "confidence": []} for name in TRANSFORMS}
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        for seed in range(videos):
            written = write_demo(render_demo(model, avatar, seed, seconds), tmp)
            for name, change in TRANSFORMS.items():
                frames = change(written, tmp)
                d = detect(frames)
                r = rows[name]
                r["videos"] += 1
                r["found"] += int(d.found)
                r["confidence"].append(round(d.confidence, 2))
                step = max(1, len(frames) // 10)  # per frame: every step-th frame alone
                for f in frames[::step]:
                    r["frames"] += 1
                    r["frames_found"] += int(detect(f).found)
            print(f"video {seed + 1}/{videos} done", file=sys.stderr)
    return rows


def false_positives(data: Path) -> dict:
    from talkinghead.provenance import verify

    files = media_files(data)
    found, errors, worst = [], [], 0.0
    for i, p in enumerate(files):
        v = verify(p)
        if v.error:
            errors.append(p.name)
        elif v.found:
            found.append(p.name)
        worst = max(worst, v.confidence)
        if (i + 1) % 25 == 0:
            print(f"false positives: {i + 1}/{len(files)} files", file=sys.stderr)
    return {"files": len(files), "found": found, "errors": errors, "max_confidence": round(worst, 2)}


def cost() -> dict:
    import talkinghead
    from bench.timing import round_robin
    from talkinghead.pasteback import paste_back
    from talkinghead.performance import generate_performance

    model = talkinghead.load_model(providers="cpu", watermark=False)
    avatar = model.default_avatar()
    track = generate_performance(avatar.landmarks, 1.0, 25.0)
    crop = model.render(avatar, track[:1])[0]
    canvas = np.ascontiguousarray(np.resize(avatar.image, (512, 512, 3)))
    pasted = paste_back(canvas, crop, avatar.crop) if avatar.crop is not None else canvas
    from talkinghead.watermark import Marker

    marker = Marker(1)
    psnr = []
    for f in (crop, pasted):
        mse = float(np.mean((marker.mark(f).astype(float) - f) ** 2))
        psnr.append(10 * np.log10(255 ** 2 / mse))
    runs = {"render (generator, 256 px)": lambda _: model.render(avatar, track[:1]),
            "mark 256 px": lambda _: marker.mark(crop), "mark 512 px": lambda _: marker.mark(pasted)}
    ms = round_robin(runs, [{}] * 2, rounds=30, warmup=3)
    return {"psnr_256": round(psnr[0], 2), "psnr_512": round(psnr[1], 2), "ms": {k: round(v, 3) for k, v in ms.items()}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/watermark.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", type=int, default=8)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--skip-false-positives", action="store_true")
    p.add_argument("--json", type=Path)
    p.add_argument("--markdown", type=Path)
    args = p.parse_args(argv)
    from export.quantize import cpu_description
    from talkinghead.watermark import FOUND_Z

    cpu = cpu_description()
    c = cost()
    rows = outputs(args.videos, args.seconds)
    fp = None if args.skip_false_positives else false_positives(args.data)
    lines = ["## Watermark (talkinghead.watermark)", "", cpu, "",
             f"Our outputs: {args.videos} demo videos of {args.seconds:g} s (bundled model, 256 px, written at CRF 18).", "",
             "| after | videos found | frames found alone | median confidence |", "|---|---:|---:|---:|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['found']}/{r['videos']} ({100 * r['found'] / r['videos']:.0f}%) | "
                     f"{r['frames_found']}/{r['frames']} ({100 * r['frames_found'] / max(r['frames'], 1):.0f}%) | "
                     f"{np.median(r['confidence']):.1f} |")
    if fp is not None:
        lines += ["", f"False positives on real media ({args.data}: driving, faces, source): "
                      f"{len(fp['found'])} of {fp['files']} files ({', '.join(fp['found']) or 'none'}); "
                      f"highest confidence {fp['max_confidence']} (found needs >= {FOUND_Z}); "
                      f"unreadable: {len(fp['errors'])}."]
    lines += ["", f"Cost: PSNR marked vs unmarked {c['psnr_256']} dB (256 px), {c['psnr_512']} dB (512 px pasted); "
                  + ", ".join(f"{k} {v:.2f} ms" for k, v in c["ms"].items()) + " (1 call, round-robin medians)."]
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu, "outputs": rows, "false_positives": fp, "cost": c}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
