"""The tracker's whole-frame detection at a coarse scale against full size, on real clips.

    python bench/tracker_detection.py CLIP [CLIP ...] [--frames 300] [--coarse-side 640]
                                      [--json FILE] [--markdown FILE]

Per clip, each way (``TrackerConfig.coarse_side`` = N, then None: full size only), a fresh
tracker runs the clip's first ``--frames`` frames without smoothing. The table gives the first
frame's time (a whole-frame detection and the landmark fit: what a live source's first frame, a
lost face or a failed verification pays), the mean time per frame, the detections, and how far the
coarse way's landmarks are from the full-size way's (mean and max over frames, over the outer eye
corners' distance). The first frame is timed on a second fresh tracker, after the run warmed the
detector up. Prints the CPU and its vector extensions.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


@dataclass
class Record:
    clip: str
    size: str
    frames: int
    first_full_ms: float
    first_coarse_ms: float
    per_frame_full_ms: float
    per_frame_coarse_ms: float
    detections_full: int
    detections_coarse: int
    nme_mean: float
    nme_max: float


def measure(clip: Path, frames: int, coarse_side: int) -> Record:
    from bench.quality_metrics import landmark_error
    from talkinghead.landmarks import FaceTracker, TrackerConfig, default_detector
    from talkinghead.video import iter_frames

    detector = default_detector()
    video = list(iter_frames(clip, limit=frames))
    runs = {}
    for side in (coarse_side, None):
        config = TrackerConfig(smoothing=False, coarse_side=side)
        tracker = FaceTracker(detector, config)
        t0 = time.perf_counter()
        points = [tracker.update(f).points for f in video]
        per_frame = (time.perf_counter() - t0) / len(video) * 1e3
        t0 = time.perf_counter()
        FaceTracker(detector, config).update(video[0])
        runs[side] = (points, per_frame, (time.perf_counter() - t0) * 1e3, tracker.counts["detected"])
    errors = [landmark_error(a, b) for a, b in zip(runs[coarse_side][0], runs[None][0])
              if a is not None and b is not None]
    h, w = video[0].shape[:2]
    return Record(clip.name, f"{w}x{h}", len(video), runs[None][2], runs[coarse_side][2], runs[None][1],
                  runs[coarse_side][1], runs[None][3], runs[coarse_side][3],
                  float(np.mean(errors)) if errors else float("nan"), float(np.max(errors)) if errors else float("nan"))


def table(records: list[Record], cpu: str, coarse_side: int) -> str:
    lines = [cpu, "", f"coarse side {coarse_side} px against full size; landmark difference over interocular",
             "", "| clip | size | frames | first frame ms (full / coarse) | ms per frame (full / coarse) "
             "| detections (full / coarse) | landmarks mean / max |",
             "| --- | --- | ---: | --- | --- | --- | --- |"]
    for r in records:
        lines.append(f"| {r.clip} | {r.size} | {r.frames} | {r.first_full_ms:.0f} / {r.first_coarse_ms:.0f} "
                     f"| {r.per_frame_full_ms:.1f} / {r.per_frame_coarse_ms:.1f} "
                     f"| {r.detections_full} / {r.detections_coarse} | {r.nme_mean:.4f} / {r.nme_max:.4f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/tracker_detection.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("clips", type=Path, nargs="+")
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--coarse-side", type=int, default=640)
    p.add_argument("--json", type=Path)
    p.add_argument("--markdown", type=Path)
    args = p.parse_args(argv)
    from bench.report import write_report
    from export.quantize import cpu_description

    records = []
    for clip in args.clips:
        records.append(measure(clip, args.frames, args.coarse_side))
        print(f"  {clip.name}: done", file=sys.stderr)
    write_report(table(records, cpu_description(), args.coarse_side), records, args.markdown, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
