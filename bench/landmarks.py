"""Landmark accuracy and speed of each available backend against 68-point ground truth.

    python bench/landmarks.py --gt DIR [--json FILE] [--upsample 0 1] [--insightface-dir DIR]
                              [--video CLIP] [--repeat 3]

DIR holds one or more XML files in dlib's imglab format (``<image file=...><box top= left=
width= height=><part name='00' x= y=/>...``), e.g. ../shared/data/landmarks_gt_dlib. Per backend:

- found: share of ground-truth faces matched by a detection (greedy, box IoU >= --match-iou);
  extra: detections that match no ground-truth face;
- NME (detected): mean point error of matched faces / inter-ocular distance (outer eye corners
  36 and 45 of the ground truth), mean and median over faces;
- NME (GT box): the same with landmarks fitted in the ground-truth box (the landmark model alone);
- detect ms: detection + landmarks per image (median of --repeat runs), with the image size;
- fit ms: one tracking fit (landmarks in a given box) per face;
- with --video: tracker ms per frame on that clip (verification every 10 frames and every frame).

All timings are CPU, single process, measured here side by side.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talkinghead.errors import TalkingHeadError
from talkinghead.images import read_image
from talkinghead.landmarks import FaceTracker, LandmarkDetector, TrackerConfig, box_iou
from talkinghead.landmarks import get_detector


@dataclass
class GTFace:
    box: np.ndarray      # x0, y0, x1, y1
    points: np.ndarray   # [68, 2]


@dataclass
class GTImage:
    path: Path
    faces: list[GTFace]


def load_dlib_xml(folder: Path) -> list[GTImage]:
    """Every image with 68-point boxes from the dlib XML files in ``folder``."""
    images: list[GTImage] = []
    for xml in sorted(folder.glob("*.xml")):
        root = ET.parse(xml).getroot()
        for im in root.iter("image"):
            faces = []
            for box in im.iter("box"):
                if box.get("ignore") == "1":
                    continue
                parts = {int(p.get("name")): (float(p.get("x")), float(p.get("y")))
                         for p in box.iter("part")}
                if sorted(parts) != list(range(68)):
                    continue
                t, l = float(box.get("top")), float(box.get("left"))
                w, h = float(box.get("width")), float(box.get("height"))
                faces.append(GTFace(np.array([l, t, l + w, t + h], np.float32),
                                    np.array([parts[i] for i in range(68)], np.float32)))
            if faces:
                images.append(GTImage(xml.parent / im.get("file"), faces))
    return images


def nme(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean point-to-point error normalised by the ground truth's outer-eye-corner distance."""
    iod = float(np.linalg.norm(gt[45] - gt[36]))
    return float(np.linalg.norm(pred - gt, axis=1).mean() / iod)


def _match(gt_boxes: list[np.ndarray], det_boxes: list[np.ndarray], thr: float) -> dict[int, int]:
    pairs = sorted(((box_iou(g, d), gi, di) for gi, g in enumerate(gt_boxes)
                    for di, d in enumerate(det_boxes)), reverse=True)
    used_g, used_d, out = set(), set(), {}
    for iou, gi, di in pairs:
        if iou < thr or gi in used_g or di in used_d:
            continue
        used_g.add(gi)
        used_d.add(di)
        out[gi] = di
    return out


def _median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def bench_backend(name: str, det: LandmarkDetector, data: list[GTImage], match_iou: float,
                  repeat: int, video: Path | None) -> dict:
    """Accuracy and speed of one detector on the ground truth (and a clip)."""
    total = found = extra = 0
    nme_det, nme_box, det_ms, fit_ms, pixels = [], [], [], [], []
    for item in data:
        img = read_image(item.path)
        faces = det.detect(img)
        det_ms.append(_median_ms(lambda: det.detect(img), repeat))
        pixels.append(img.shape[0] * img.shape[1])
        gt_boxes = [f.box for f in item.faces]
        # Match on the landmarks' extent: each backend draws its boxes its own way.
        det_boxes = [det.box_from_points(f.points) for f in faces]
        gt_lm_boxes = [det.box_from_points(f.points) for f in item.faces]
        matches = _match(gt_lm_boxes, det_boxes, match_iou)
        total += len(gt_boxes)
        found += len(matches)
        extra += len(faces) - len(matches)
        for gi, di in matches.items():
            nme_det.append(nme(faces[di].points, item.faces[gi].points))
        for g in item.faces:
            nme_box.append(nme(det.fit(img, g.box).points, g.points))
            fit_ms.append(_median_ms(lambda g=g: det.fit(img, g.box), repeat))
    out = {
        "backend": name,
        "settings": det.describe(),
        "images": len(data),
        "faces": total,
        "found": found,
        "found_share": found / total if total else 0.0,
        "extra_detections": extra,
        "nme_detected_mean": float(np.mean(nme_det)) if nme_det else None,
        "nme_detected_median": float(np.median(nme_det)) if nme_det else None,
        "nme_gt_box_mean": float(np.mean(nme_box)),
        "nme_gt_box_median": float(np.median(nme_box)),
        "detect_ms_median": statistics.median(det_ms),
        "detect_megapixels_median": statistics.median(pixels) / 1e6,
        "fit_ms_median": statistics.median(fit_ms),
    }
    if video is not None:
        out["video"] = bench_tracking(det, video)
    return out


def bench_tracking(det: LandmarkDetector, video: Path, limit: int = 150) -> dict:
    """Tracker milliseconds per frame on the first ``limit`` frames of a clip."""
    from talkinghead.video import iter_frames, probe

    frames = list(iter_frames(video, limit=limit))
    info = probe(video)
    res = {"clip": video.name, "size": [info.width, info.height], "frames": len(frames)}
    for every in (10, 1):
        tracker = FaceTracker(det, TrackerConfig(verify_every=every), fps=info.fps or 25.0)
        t = time.perf_counter()
        for f in frames:
            tracker.update(f)
        res[f"ms_per_frame_verify_{every}"] = (time.perf_counter() - t) * 1000 / len(frames)
        res[f"counts_verify_{every}"] = dict(tracker.counts)
    return res


def _detectors(args) -> list[tuple[str, LandmarkDetector | None, str]]:
    out: list[tuple[str, LandmarkDetector | None, str]] = []
    for up in args.upsample:
        label = "dlib" if up == 0 else f"dlib (upsample={up})"
        try:
            out.append((label, get_detector("dlib", upsample=up), ""))
        except TalkingHeadError as exc:
            out.append((label, None, str(exc)))
    ins_dir = args.insightface_dir or os.environ.get("TALKINGHEAD_INSIGHTFACE_DIR")
    if ins_dir:
        try:
            out.append(("insightface", get_detector("insightface", model_dir=ins_dir), ""))
        except TalkingHeadError as exc:
            out.append(("insightface", None, str(exc)))
    else:
        out.append(("insightface", None, "no buffalo_l folder given (--insightface-dir)"))
    return out


def _fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def print_table(results: list[dict], skipped: list[tuple[str, str]]) -> None:
    head = (f"{'backend':<22} {'found':>9} {'extra':>5} {'NME det':>8} {'NME box':>8} "
            f"{'detect ms':>10} {'fit ms':>7}")
    print(head)
    print("-" * len(head))
    for r in results:
        print(f"{r['backend']:<22} {r['found']:>3}/{r['faces']:<3} "
              f"{r['found_share']:>4.0%} {r['extra_detections']:>3} "
              f"{_fmt(r['nme_detected_mean'], '.4f'):>8} {r['nme_gt_box_mean']:>8.4f} "
              f"{r['detect_ms_median']:>10.1f} {r['fit_ms_median']:>7.2f}")
    for r in results:
        v = r.get("video")
        if v:
            print(f"{r['backend']}: tracking {v['clip']} {v['size'][0]}x{v['size'][1]}: "
                  f"{v['ms_per_frame_verify_10']:.1f} ms/frame (verify every 10), "
                  f"{v['ms_per_frame_verify_1']:.1f} ms/frame (verify every frame)")
    for name, why in skipped:
        print(f"{name}: not measured ({why})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gt", type=Path, required=True, help="folder with dlib XML ground truth")
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--upsample", type=int, nargs="+", default=[0],
                    help="dlib detector upsampling settings to measure")
    ap.add_argument("--insightface-dir", help="a buffalo_l folder (det_10g.onnx, 1k3d68.onnx)")
    ap.add_argument("--video", type=Path, help="a clip to time the tracker on")
    ap.add_argument("--match-iou", type=float, default=0.4)
    ap.add_argument("--repeat", type=int, default=3, help="timing repetitions (median)")
    args = ap.parse_args(argv)
    data = load_dlib_xml(args.gt)
    if not data:
        print(f"error: no dlib XML ground truth in {args.gt}", file=sys.stderr)
        return 2
    results, skipped = [], []
    for name, det, why in _detectors(args):
        if det is None:
            skipped.append((name, why))
            continue
        results.append(bench_backend(name, det, data, args.match_iou, args.repeat, args.video))
    print(f"{sum(len(d.faces) for d in data)} faces in {len(data)} images from {args.gt}")
    print_table(results, skipped)
    if args.json:
        args.json.write_text(json.dumps({"gt": str(args.gt), "results": results,
                                         "skipped": dict(skipped)}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
