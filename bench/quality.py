"""Quality of a talking-head model against classical baselines, with a fixed protocol.

    python bench/quality.py --clips DIR --model DIR --out DIR [--checkpoint CKPT] [--cross IMG ...]

Self-reenactment (the paper's protocol, fixed so that numbers compare across runs):

- landmarks: the SDK's default detector (dlib) run on every frame used (detection per frame, the
  largest face; no tracking, no smoothing);
- crop: the SDK's crop rule (the package's ``CropConfig``) resampled to the model's resolution;
- shots: the first 25% of a clip's frames are the source pool; K shots evenly spaced in it
  (K = 1: its first frame);
- targets: ``--targets`` (20) frames evenly spaced over the clip's last half;
- each method renders each target from the target's landmarks; its crop is compared with the real
  crop of that frame.

Methods: ``nearest`` (the shot whose crop-normalised landmarks are closest to the target's, shown
unchanged), ``warp`` (that shot warped piecewise-affinely onto the target's landmarks),
``warp_blend`` (every shot warped, blended by softmax(-mean landmark distance / T), T chosen by a
sweep on training clips, never the held-out ones, or ``--blend-temperature``), ``warp_oracle`` (per
target the one shot warp with the best SSIM to the real frame: an oracle that sees the answer, a
bound and not a method anyone can run), ``ours`` (the package through the SDK's create_avatar and
render, feed-forward, whatever its family), ``ours_ft`` (the checkpoint fine-tuned on the K shots;
needs ``--checkpoint``).

Metrics per method and K, averaged over all targets of all clips: SSIM, PSNR, landmark error (the
detector on the output crop vs the target's landmarks, over the outer-eye-corner distance; the
detector's own error on the real crops is reported as the floor), how often the detector finds no
face on the output, CSIM (dlib 128-d descriptors, output vs real crop), sharpness (variance of the
Laplacian of the luminance on the face box, output over real; median over targets), mouth SSIM
(SSIM on the mouth box, over the targets whose mouth opens wider than in every shot; their count
``mouth_n``), flicker (frame-to-frame change of the output crops over that of the real crops, on
``--flicker-runs`` runs of ``--flicker-length`` consecutive frames in the clip's last half), frames
per second of the per-frame path (detection on the frame + crop + the method).

Cross-identity (``--cross IMG ...``): each portrait is driven by each clip (relative motion
transfer, as the SDK animates); no ground truth, so landmark error (to the transferred landmarks)
and CSIM to the portrait.

Outputs in OUT: results.json, results.md, grid.png, mouth_grid.png (close-ups of the mouth box of the
targets whose mouth opens widest beyond every shot's, two per clip), side_by_side.mp4 (real | ours |
warp), and for cross-identity cross_grid.png.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.quality_metrics import (FaceAnalyzer, change_ratio, cosine, face_box, frame_changes,  # noqa: E402
                                   landmark_error, mouth_box, mouth_opening, psnr, sharpness, ssim)
from bench.quality_warp import (best_warp, blend, blend_weights, landmark_distances, to_uint8,  # noqa: E402
                                warp_face, warp_shots)
from training.errors import TrainingError  # noqa: E402
from training.finetune_recipe import add_finetune_arguments, finetune_config_from_arguments  # noqa: E402

VIDEO_EXTS = {".mp4", ".mov", ".mpg", ".mpeg", ".mkv", ".avi", ".webm", ".m4v"}
METHODS = ("nearest", "warp", "warp_blend", "warp_oracle", "ours", "ours_ft")
ORACLES = ("warp_oracle",)  # render functions that take the real crop too: they see the answer
SELF_ONLY = ("warp_blend", "warp_oracle")  # not in the cross-identity run (K = 1, no ground truth)
METRICS = ("ssim", "psnr", "lmk_err", "no_face", "csim", "sharpness", "mouth_ssim", "mouth_n", "flicker",
           "fps", "render_fps")
BLEND_SWEEP = (0.001, 0.002, 0.003, 0.005, 0.01, 0.02, 0.03)
BLEND_SWEEP_CLIPS = 4
FLICKER_RUNS = 2
FLICKER_LENGTH = 8
CROSS_METRICS = ("lmk_err", "no_face", "csim", "csim_driver", "fps", "render_fps")
POOL_FRACTION = 0.25
ANALYSIS_SIZE = 256
PANEL = 128


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------
# Protocol: which frames


def shot_indices(num_frames: int, k: int) -> list[int]:
    """K shots in the first 25% of frames: K = 1 its first frame, else evenly spaced."""
    pool = max(1, int(num_frames * POOL_FRACTION))
    if k == 1:
        return [0]
    return sorted({int(i) for i in np.linspace(0, pool - 1, num=k).round()})


def pool_size(num_frames: int) -> int:
    return max(1, int(num_frames * POOL_FRACTION))


def target_indices(num_frames: int, count: int) -> list[int]:
    """``count`` frames evenly spaced over the clip's last half."""
    start = num_frames // 2
    return sorted({int(i) for i in np.linspace(start, num_frames - 1, num=count).round()})


def flicker_runs(num_frames: int, runs: int, length: int) -> list[list[int]]:
    """``runs`` runs of ``length`` consecutive frames, their starts evenly spaced over the last half."""
    start = num_frames // 2
    length = min(length, num_frames - start)
    if runs < 1 or length < 2:
        return []
    starts = sorted({int(i) for i in np.linspace(start, num_frames - length, num=runs).round()})
    return [list(range(s, s + length)) for s in starts]


def split_runs(run: list[int], has_face: Callable[[int], bool]) -> list[list[int]]:
    """A run cut at the frames without a face; pieces of fewer than 2 frames dropped."""
    pieces, cur = [], []
    for i in run:
        if has_face(i):
            cur.append(i)
            continue
        pieces.append(cur)
        cur = []
    pieces.append(cur)
    return [p for p in pieces if len(p) >= 2]


# ------------------------------------------------------------------------------------------------
# Clips and frames


def list_clips(folder: Path, names: list[str] | None, limit: int | None) -> list[Path]:
    if not folder.is_dir():
        raise SystemExit(f"error: --clips {folder}: not a folder")
    clips = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_EXTS and p.is_file()
                   or (p.is_symlink() and p.suffix.lower() in VIDEO_EXTS))
    if names:
        by_stem = {p.stem: p for p in clips}
        missing = [n for n in names if n not in by_stem and n not in {p.name for p in clips}]
        if missing:
            raise SystemExit(f"error: no clip named {', '.join(missing)} in {folder} "
                             f"(it has {', '.join(sorted(by_stem)) or 'no clips'})")
        clips = [by_stem.get(n) or folder / n for n in names]
    if limit is not None:
        clips = clips[:limit]
    if not clips:
        raise SystemExit(f"error: no video clips ({', '.join(sorted(VIDEO_EXTS))}) in {folder}")
    return clips


def read_names_file(path: Path) -> list[str]:
    out = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out


def count_frames(path: Path) -> int:
    """Decoded frame count (containers such as MPEG-PS do not store one)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return sum(1 for _ in container.decode(stream))


def read_frames(path: Path, wanted: Iterable[int],
                visit: Callable[[int, np.ndarray], None] | None = None, visit_range: range | None = None
                ) -> dict[int, np.ndarray]:
    """Decode ``path`` once; keep the wanted frames; call ``visit(i, frame)`` on frames in
    ``visit_range``."""
    from talkinghead.video import iter_frames

    wanted = set(wanted)
    last = max(wanted | ({visit_range[-1]} if visit_range else set()), default=-1)
    out: dict[int, np.ndarray] = {}
    for i, frame in enumerate(iter_frames(path)):
        if i in wanted:
            out[i] = frame
        if visit is not None and visit_range is not None and i in visit_range:
            visit(i, frame)
        if i >= last:
            break
    return out


def clip_fps(path: Path) -> float:
    from talkinghead.video import probe

    try:
        fps = probe(path).fps
    except Exception:  # noqa: BLE001 - only used for the side-by-side video
        fps = 0.0
    return fps if fps and math.isfinite(fps) and fps > 0 else 25.0


# ------------------------------------------------------------------------------------------------
# Methods


@dataclasses.dataclass
class Shots:
    """K shots of one identity: frames, pixel landmarks, crops at the model's resolution."""

    indices: list[int]
    frames: list[np.ndarray]
    landmarks_px: list[np.ndarray]
    crops: np.ndarray  # uint8 [K, R, R, 3]
    norm: np.ndarray  # float32 [K, 68, 2]


def crop_shots(frames: list[np.ndarray], lms: list[np.ndarray], crop_config, res: int) -> tuple[np.ndarray, np.ndarray]:
    """The frames' face crops at ``res`` (uint8 [K, res, res, 3]) and their crop-normalised landmarks."""
    from talkinghead.crop import crop_from_landmarks, to_normalised, warp_to_crop

    crops, norms = [], []
    for f, lm in zip(frames, lms):
        c = crop_from_landmarks(lm, crop_config)
        crops.append(warp_to_crop(f, c, res))
        norms.append(to_normalised(lm, c))
    return np.stack(crops), np.stack(norms).astype(np.float32)


def make_shots(indices: list[int], frames: list[np.ndarray], lms: list[np.ndarray], crop_config, res: int) -> Shots:
    crops, norms = crop_shots(frames, lms, crop_config, res)
    return Shots(list(indices), list(frames), list(lms), crops, norms)


def render_with(method: str, fn: Callable, target_norm: np.ndarray, real_crop: np.ndarray | None) -> np.ndarray:
    """One method's output for one target; only the oracles are given the real crop."""
    return fn(target_norm, real_crop) if method in ORACLES else fn(target_norm)


class Renderer:
    """The methods, each ``(target_norm [68, 2]) -> uint8 crop [R, R, 3]`` for one identity
    (the oracles: ``(target_norm, real_crop) -> crop``)."""

    def __init__(self, model, checkpoint_models=None, ft_config=None, device: str = "cpu") -> None:
        self.model = model
        self.ckpt = checkpoint_models
        self.ft_config = ft_config
        self.device = device
        self.blend_temperature: float | None = None  # set once chosen; warp_blend runs only then

    def methods(self) -> list[str]:
        out = ["nearest", "warp"]
        if self.blend_temperature is not None:
            out.append("warp_blend")
        out.append("warp_oracle")
        if not self.model.personalised:
            out.append("ours")
        if self.ckpt is not None:
            out.append("ours_ft")
        return out

    def prepare(self, shots: Shots, methods: list[str]) -> tuple[dict[str, Callable[[np.ndarray], np.ndarray]],
                                                              dict[str, float]]:
        """Per-method render functions for these shots, and each method's setup time (s)."""
        fns: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
        setup: dict[str, float] = {}

        def nearest_index(target: np.ndarray) -> int:
            return int(np.argmin(landmark_distances(shots.norm, target)))

        fns["nearest"] = lambda t: shots.crops[nearest_index(t)]
        setup["nearest"] = 0.0

        def warp(t: np.ndarray) -> np.ndarray:
            i = nearest_index(t)
            return warp_face(shots.crops[i], shots.norm[i], t)

        fns["warp"] = warp
        setup["warp"] = 0.0
        if "warp_blend" in methods:
            fns["warp_blend"], setup["warp_blend"] = self._blend(shots), 0.0
        fns["warp_oracle"], setup["warp_oracle"] = self._oracle(shots), 0.0
        if "ours" in methods:
            t0 = time.perf_counter()
            avatar = self.model.create_avatar(shots.frames, landmarks=shots.landmarks_px)
            setup["ours"] = time.perf_counter() - t0
            fns["ours"] = lambda t: self.model.render(avatar, t, coords="normalised")
        if "ours_ft" in methods:
            fns["ours_ft"], setup["ours_ft"] = self._finetuned(shots)
        return {m: fns[m] for m in methods}, setup

    def _blend(self, shots: Shots) -> Callable[[np.ndarray], np.ndarray]:
        """warp_blend: every shot warped onto the target, blended by softmax(-distance / T)."""
        temperature = self.blend_temperature

        def render(t: np.ndarray) -> np.ndarray:
            weights = blend_weights(landmark_distances(shots.norm, t), temperature)
            return blend(warp_shots(shots.crops, shots.norm, t), weights)

        return render

    @staticmethod
    def _oracle(shots: Shots) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """warp_oracle: the shot warp with the best SSIM to the real crop (it sees the answer)."""

        def render(t: np.ndarray, real: np.ndarray) -> np.ndarray:
            warps = warp_shots(shots.crops, shots.norm, t)
            return to_uint8(warps[best_warp(warps, real, ssim)])

        return render

    def _finetuned(self, shots: Shots) -> tuple[Callable[[np.ndarray], np.ndarray], float]:
        import torch

        from training.finetune import finetune

        def as_input(crops: np.ndarray) -> torch.Tensor:  # uint8 [K,S,S,3] -> [-1, 1] [K,3,S,S]
            return torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 127.5 - 1.0

        images = as_input(shots.crops)
        lms = torch.from_numpy(shots.norm.copy())
        t0 = time.perf_counter()
        tuned, _ = finetune(self.ckpt, images, lms, self.ft_config, device=self.device)
        setup = time.perf_counter() - t0
        gen = tuned.generator.to(self.device).eval()
        if tuned.config.net.family == "warp":  # the tuned warp model renders from the same shots
            from training.warp_finetune import shots_identity

            ref_images = images  # at the package's reference resolution, as `ours` renders them
            spec = self.model.package.references
            if spec is not None and spec.resolution != images.shape[-1]:
                ref_images = as_input(crop_shots(shots.frames, shots.landmarks_px, self.model.package.crop_config,
                                                 spec.resolution)[0])
            refs = (shots_identity(tuned, images, lms).to(self.device), ref_images[None].to(self.device),
                    lms[None].to(self.device))
            synthesize = lambda lm: gen(lm, *refs)  # noqa: E731
        else:
            psi = tuned.psi.to(self.device)
            synthesize = lambda lm: gen.synthesize(lm, psi)  # noqa: E731

        def render(t: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                x = synthesize(torch.from_numpy(np.ascontiguousarray(t, np.float32))[None].to(self.device))
            x = x[0].detach().float().cpu().numpy()
            return np.ascontiguousarray(np.clip((x + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8).transpose(1, 2, 0))

        return render, setup


# ------------------------------------------------------------------------------------------------
# Aggregation


def _mean(values: list[float]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def _median(values: list[float]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.median(vals)) if vals else None


def flicker_of(runs: list[dict]) -> float | None:
    """Flicker over flicker rows (one per run): their summed output change over their summed real change."""
    if not runs:
        return None
    return change_ratio(sum(r["out_change"] for r in runs), sum(r["real_change"] for r in runs))


def aggregate(rows: list[dict], metrics: tuple[str, ...], flicker_rows: list[dict] = ()) -> dict[str, Any]:
    """Metrics over per-target rows (means; sharpness: the median), flicker over per-run rows."""
    out: dict[str, Any] = {"n": len(rows)}
    if "ssim" in metrics:
        out["ssim"] = _mean([r["ssim"] for r in rows])
        out["psnr"] = _mean([r["psnr"] for r in rows])
    if "sharpness" in metrics:
        out["sharpness"] = _median([r["sharpness"] for r in rows])
    if "mouth_ssim" in metrics:
        mouth = [r["mouth_ssim"] for r in rows if r["mouth_ssim"] is not None]
        out["mouth_ssim"] = _mean(mouth)
        out["mouth_n"] = len(mouth)
    if "flicker" in metrics:
        out["flicker"] = flicker_of(list(flicker_rows))
        out["flicker_pairs"] = sum(r["pairs"] for r in flicker_rows)
    found = [r["lmk_err"] for r in rows if r["lmk_err"] is not None]
    out["lmk_err"] = _mean(found)
    out["no_face"] = float(1 - len(found) / len(rows)) if rows else None
    out["csim"] = _mean([r["csim"] for r in rows])
    if "csim_driver" in metrics:
        out["csim_driver"] = _mean([r["csim_driver"] for r in rows])
    total = sum(r["t_detect"] + r["t_method"] for r in rows)
    render = sum(r["t_method"] for r in rows)
    out["fps"] = float(len(rows) / total) if total > 0 else None
    out["render_fps"] = float(len(rows) / render) if render > 0 else None
    return out


def group(rows: list[dict], keys: tuple[str, ...]) -> dict:
    out: dict = defaultdict(list)
    for r in rows:
        out[tuple(r[k] for k in keys)].append(r)
    return out


# ------------------------------------------------------------------------------------------------
# Pictures


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    from talkinghead.crop import resize_image

    return img if img.shape[0] == size else resize_image(np.ascontiguousarray(img), size, size)


def square_around(image: np.ndarray | None, box: tuple[slice, slice]) -> np.ndarray | None:
    """The square of ``image`` centred on ``box`` (a (rows, cols) slice pair) with its larger side,
    moved inside the image: a close-up that keeps the aspect when a grid panel scales it."""
    if image is None:
        return None
    h, w = image.shape[:2]
    side = min(max(box[0].stop - box[0].start, box[1].stop - box[1].start), h, w)
    cy, cx = (box[0].start + box[0].stop) // 2, (box[1].start + box[1].stop) // 2
    y0, x0 = min(max(cy - side // 2, 0), h - side), min(max(cx - side // 2, 0), w - side)
    return image[y0:y0 + side, x0:x0 + side]


def save_grid(path: Path, rows: list[tuple[str, list[np.ndarray]]], header: list[str]) -> None:
    """A PNG grid: one row per sample (label on the left), one column per header entry."""
    from PIL import Image, ImageDraw

    if not rows:
        return
    label_w, head_h = 150, 18
    ncol = len(header)
    canvas = Image.new("RGB", (label_w + ncol * PANEL, head_h + len(rows) * PANEL), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for j, h in enumerate(header):
        draw.text((label_w + j * PANEL + 3, 3), h, fill=(0, 0, 0))
    for i, (label, panels) in enumerate(rows):
        y = head_h + i * PANEL
        draw.text((3, y + PANEL // 2 - 6), label[:24], fill=(0, 0, 0))
        for j, p in enumerate(panels):
            if p is not None:
                canvas.paste(Image.fromarray(_resize(p, PANEL)), (label_w + j * PANEL, y))
    tmp = path.with_suffix(".tmp.png")
    canvas.save(tmp)
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------------------
# The benchmark


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        import talkinghead
        from talkinghead.landmarks import get_detector

        self.args = args
        # The model's own quality: its output unmarked (the watermark's cost is bench/watermark.py's measurement;
        # at PSNR ~40 dB the mark alone lowers SSIM by ~0.02 on these crops).
        self.model = talkinghead.load_model(args.model, providers=args.providers, intra_op_threads=args.threads,
                                            watermark=False,
                                            variant=args.variant)
        self.res = self.model.resolution
        self.crop_config = self.model.package.crop_config
        self.detector = get_detector("dlib")
        self.analyzer = FaceAnalyzer(max(ANALYSIS_SIZE, self.res), detector=self.detector)
        self.notes: list[str] = []
        self.ckpt_models = None
        self.ft_config = None
        if args.checkpoint is not None:
            self._load_checkpoint(args.checkpoint)
        else:
            self.notes.append("ours_ft skipped: no --checkpoint given (fine-tuning needs the PyTorch checkpoint)")
        if self.model.personalised:
            self.notes.append("ours skipped: the package is personalised (no embedder to embed the shots)")
        self.renderer = Renderer(self.model, self.ckpt_models, self.ft_config, args.device)

    def _load_checkpoint(self, path: Path) -> None:
        import torch

        from training.checkpoint import load_checkpoint

        if self.args.threads > 0:
            torch.set_num_threads(self.args.threads)
        models, state = load_checkpoint(path)
        if models.config.net.resolution != self.res:
            raise SystemExit(f"error: --checkpoint {path} is a {models.config.net.resolution}px model; "
                             f"the package is {self.res}px")
        if state.kind != "meta":
            raise SystemExit(f"error: --checkpoint {path} is {state.kind}; fine-tuning needs a meta-learned one")
        self.ckpt_models = models
        self.ft_config = self.args.ft_config
        self.ckpt_info = {"path": str(path), "step": state.step, "size": models.config.size,
                          "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest()}

    # -- detection -------------------------------------------------------------------------------
    def detect(self, frame: np.ndarray) -> tuple[np.ndarray | None, float]:
        t0 = time.perf_counter()
        faces = self.detector.detect(frame)
        dt = time.perf_counter() - t0
        return (faces[0].points if faces else None), dt

    def real_crop(self, frame: np.ndarray, lm_px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from talkinghead.crop import crop_from_landmarks, to_normalised, warp_to_crop

        c = crop_from_landmarks(lm_px, self.crop_config)
        return warp_to_crop(frame, c, self.res), to_normalised(lm_px, c)

    def target_norm(self, lm_px: np.ndarray) -> tuple[np.ndarray, float]:
        """The per-frame path's crop step: pixel landmarks -> crop-normalised (timed)."""
        from talkinghead.crop import crop_from_landmarks, to_normalised

        t0 = time.perf_counter()
        norm = to_normalised(lm_px, crop_from_landmarks(lm_px, self.crop_config))
        return norm, time.perf_counter() - t0

    # -- shots -----------------------------------------------------------------------------------
    def select_shots(self, path: Path, n: int, frames: dict[int, np.ndarray], lms: dict[int, np.ndarray | None],
                     k: int) -> tuple[Shots | None, list[str]]:
        """The K shots; a shot frame without a face is replaced by the next pool frame with one."""
        notes = []
        pool = pool_size(n)
        chosen: list[int] = []
        for idx in shot_indices(n, k):
            j = idx
            while j < pool:
                if j not in lms:  # not decoded yet: read the next few pool frames
                    more = read_frames(path, [i for i in range(j, min(pool, j + 8)) if i not in lms])
                    for i2, f2 in more.items():
                        frames[i2] = f2
                        lms[i2] = self.detect(f2)[0]
                    if j not in lms:
                        j = pool
                        break
                if lms[j] is not None and j not in chosen:
                    break
                j += 1
            if j < pool:
                if j != idx:
                    notes.append(f"K={k}: shot frame {idx} has no face; used frame {j}")
                chosen.append(j)
            else:
                notes.append(f"K={k}: shot frame {idx} has no face and no later pool frame has one; dropped")
        if not chosen:
            return None, notes
        chosen = sorted(chosen)
        return make_shots(chosen, [frames[i] for i in chosen], [lms[i] for i in chosen], self.crop_config,
                          self.res), notes

    # -- self-reenactment ------------------------------------------------------------------------
    def run_clip(self, path: Path, video_writer_factory=None) -> dict[str, Any]:
        args = self.args
        name = path.stem
        t_clip = time.perf_counter()
        n = count_frames(path)
        if n < 8:
            return {"name": name, "frames": n, "skipped": f"only {n} frames (at least 8 needed)"}
        shot_sets = {k: shot_indices(n, k) for k in args.shots}
        targets = target_indices(n, args.targets)
        runs = flicker_runs(n, args.flicker_runs, args.flicker_length)
        wanted = set(targets).union(*shot_sets.values(), *runs)
        video_frames: list[tuple[int, np.ndarray, float]] = []  # (index, landmarks px, detect s)
        video_range = None
        real_video: dict[int, np.ndarray] = {}
        if video_writer_factory is not None:
            video_range = range(n // 2, min(n, n // 2 + args.video_frames))

            def visit(i: int, frame: np.ndarray) -> None:
                lm, dt = self.detect(frame)
                if lm is None:
                    return
                video_frames.append((i, lm, dt))
                real_video[i] = self.real_crop(frame, lm)[0]

        frames, lms, det_time = self._load(path, wanted, visit if video_range else None, video_range)
        # Real target crops: the floor (detector noise) and the real descriptors.
        real: dict[int, dict[str, Any]] = {}
        skipped_targets = []
        floor_rows = []
        for t in targets:
            if lms.get(t) is None:
                skipped_targets.append(t)
                continue
            crop, norm = self.real_crop(frames[t], lms[t])
            ana = self.analyzer.analyse(crop, norm)
            err = landmark_error(ana.landmarks, norm) if ana.landmarks is not None else None
            real[t] = {"crop": crop, "norm": norm, "desc": ana.descriptor, "face_box": face_box(norm, self.res),
                       "mouth_box": mouth_box(norm, self.res), "mouth_opening": mouth_opening(norm)}
            floor_rows.append({"target": t, "lmk_err": err})
        run_pieces = [piece for run in runs for piece in split_runs(run, lambda i: lms.get(i) is not None)]
        run_real = {i: self.real_crop(frames[i], lms[i]) for piece in run_pieces for i in piece}
        flicker_rows: list[dict] = []
        rows: list[dict] = []
        notes: list[str] = []
        shots_used: dict[str, list[int]] = {}
        setup: dict[str, dict[str, float]] = {}
        samples: dict[tuple[str, int], dict[int, np.ndarray]] = defaultdict(dict)
        mouth_targets: dict[int, list[tuple[float, int]]] = defaultdict(list)  # K -> (opening beyond the shots, t)
        for k in args.shots:
            shots, shot_notes = self.select_shots(path, n, frames, lms, k)
            notes += shot_notes
            if shots is None:
                notes.append(f"K={k}: no shot with a face; skipped")
                continue
            shots_used[str(k)] = shots.indices
            methods = [m for m in self.renderer.methods() if m in args.methods]
            fns, setup_k = self.renderer.prepare(shots, methods)
            setup[str(k)] = setup_k
            widest_shot_mouth = max(mouth_opening(lm) for lm in shots.norm)
            for t in targets:
                if t not in real:
                    continue
                r = real[t]
                norm, t_crop = self.target_norm(lms[t])
                mouth_target = r["mouth_opening"] > widest_shot_mouth
                if mouth_target:
                    mouth_targets[k].append((r["mouth_opening"] - widest_shot_mouth, t))
                for m, fn in fns.items():
                    t0 = time.perf_counter()
                    out = render_with(m, fn, norm, r["crop"])
                    t_method = time.perf_counter() - t0 + t_crop
                    rows.append({"clip": name, "target": t, "method": m, "K": k, **self.score(out, r, mouth_target),
                                 "t_detect": det_time[t], "t_method": t_method})
                    samples[(m, k)][t] = out
            flicker_rows += [dict(row, clip=name, K=k) for row in self.flicker_rows(fns, run_pieces, run_real)]
            if video_writer_factory is not None and k == max(args.shots) and video_frames:
                self._side_by_side(video_writer_factory, path, video_frames, real_video, fns)
        log(f"  {name}: {n} frames, {len(real)}/{len(targets)} targets, {time.perf_counter() - t_clip:.1f}s")
        return {"name": name, "frames": n, "targets": targets, "skipped_targets": skipped_targets,
                "shots": shots_used, "setup_s": setup, "notes": notes, "rows": rows, "floor_rows": floor_rows,
                "flicker_rows": flicker_rows, "flicker_runs": run_pieces,
                "real": {t: r["crop"] for t, r in real.items()}, "real_desc": [r["desc"] for r in real.values()],
                "samples": samples, "mouth_targets": mouth_targets,
                "mouth_boxes": {t: r["mouth_box"] for t, r in real.items()}}

    def _load(self, path: Path, wanted: set[int], visit=None, visit_range=None
              ) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray | None], dict[int, float]]:
        """The wanted frames of a clip, their landmarks (None: no face) and detection times."""
        frames = read_frames(path, wanted, visit, visit_range)
        lms: dict[int, np.ndarray | None] = {}
        det_time: dict[int, float] = {}
        for i in sorted(frames):
            lms[i], det_time[i] = self.detect(frames[i])
        return frames, lms, det_time

    def score(self, out: np.ndarray, r: dict[str, Any], mouth_target: bool) -> dict[str, float | None]:
        """One output crop against its real target: the per-target metrics."""
        ana = self.analyzer.analyse(out, r["norm"])
        found = ana.landmarks is not None
        mb = r["mouth_box"]
        return {"ssim": ssim(out, r["crop"]), "psnr": psnr(out, r["crop"]),
                "lmk_err": landmark_error(ana.landmarks, r["norm"]) if found else None,
                "csim": cosine(ana.descriptor, r["desc"]) if found else None,
                "sharpness": sharpness(out, r["crop"], r["face_box"]),
                "mouth_ssim": ssim(out[mb], r["crop"][mb]) if mouth_target else None}

    @staticmethod
    def flicker_rows(fns: dict[str, Callable], pieces: list[list[int]],
                     run_real: dict[int, tuple[np.ndarray, np.ndarray]]) -> list[dict]:
        """Per method and run of consecutive frames: the summed frame-to-frame change of its
        outputs and of the real crops."""
        rows = []
        for piece in pieces:
            reals = [run_real[i][0] for i in piece]
            real_change = float(frame_changes(reals).sum())
            for m, fn in fns.items():
                outs = [render_with(m, fn, run_real[i][1], run_real[i][0]) for i in piece]
                rows.append({"method": m, "start": piece[0], "pairs": len(piece) - 1,
                             "out_change": float(frame_changes(outs).sum()), "real_change": real_change})
        return rows

    def sweep_blend_temperature(self, clips: list[Path], k: int, temperatures: Iterable[float]
                                ) -> dict[str, Any] | None:
        """warp_blend's temperature: the one of ``temperatures`` with the highest mean SSIM over
        these clips' targets at K = k (ties: the lowest); None when no clip gives a target."""
        temperatures = sorted(temperatures)
        scores: dict[float, dict[str, list]] = {t: {"ssim": [], "sharpness": []} for t in temperatures}
        used = []
        for path in clips:
            try:
                count = self._sweep_clip(path, k, temperatures, scores)
            except Exception as exc:  # noqa: BLE001 - one bad clip must not end the run
                log(f"  blend sweep {path.name}: failed: {exc}")
                continue
            if count:
                used.append({"clip": path.stem, "targets": count})
        if not used:
            return None
        table = {str(t): {"ssim": _mean(v["ssim"]), "sharpness": _median(v["sharpness"])} for t, v in scores.items()}
        best = max(temperatures, key=lambda t: (table[str(t)]["ssim"], -t))
        return {"temperature": best, "chosen_by": "sweep", "K": k, "clips": used, "sweep": table,
                "criterion": "highest mean SSIM over the clips' targets (ties: the lower temperature)"}

    def _sweep_clip(self, path: Path, k: int, temperatures: list[float], scores: dict) -> int:
        """Score every temperature's blend on one clip's targets; returns how many targets it scored."""
        n = count_frames(path)
        if n < 8:
            return 0
        targets = target_indices(n, self.args.targets)
        frames, lms, _ = self._load(path, set(targets) | set(shot_indices(n, k)))
        shots, _ = self.select_shots(path, n, frames, lms, k)
        if shots is None:
            return 0
        count = 0
        for t in targets:
            if lms.get(t) is None:
                continue
            real, norm = self.real_crop(frames[t], lms[t])
            box = face_box(norm, self.res)
            warps = warp_shots(shots.crops, shots.norm, norm)
            dist = landmark_distances(shots.norm, norm)
            for temp in temperatures:
                out = blend(warps, blend_weights(dist, temp))
                scores[temp]["ssim"].append(ssim(out, real))
                scores[temp]["sharpness"].append(sharpness(out, real, box))
            count += 1
        log(f"  blend sweep {path.stem}: {count} targets")
        return count

    def _side_by_side(self, factory, path: Path, video_frames, real_video, fns) -> None:
        size = max(self.res, ANALYSIS_SIZE)
        writer = factory(clip_fps(path))
        with writer:
            for i, lm, _ in video_frames:
                norm, _ = self.target_norm(lm)
                panels = [real_video[i]]
                panels.append(fns["ours"](norm) if "ours" in fns else np.zeros_like(real_video[i]))
                panels.append(fns["warp"](norm))
                writer.write(np.concatenate([_resize(p, size) for p in panels], axis=1))

    # -- cross-identity --------------------------------------------------------------------------
    def run_cross(self, portrait: Path, clip: Path, shots: Shots, fns: dict, portrait_desc: np.ndarray
                  ) -> dict[str, Any]:
        from talkinghead.motion import MotionTransfer

        n = count_frames(clip)
        targets = target_indices(n, self.args.targets)
        frames = read_frames(clip, set(targets) | {0})
        ref, _ = self.detect(frames[0])
        transfer = MotionTransfer(shots.norm[0], "relative", self.crop_config)
        rows, samples, driver_vs_portrait = [], {}, []
        for t in targets:
            lm, dt = self.detect(frames[t])
            if lm is None:
                continue
            driver_crop, driver_norm = self.real_crop(frames[t], lm)
            driver_desc = self.analyzer.analyse(driver_crop, driver_norm).descriptor
            driver_vs_portrait.append(cosine(driver_desc, portrait_desc))
            if ref is None:
                ref = lm
            if transfer.reference is None:
                transfer.set_reference(ref)
            t0 = time.perf_counter()
            driven = transfer(lm)
            t_prep = time.perf_counter() - t0
            for m, fn in fns.items():
                t0 = time.perf_counter()
                out = fn(driven)
                t_method = time.perf_counter() - t0 + t_prep
                ana = self.analyzer.analyse(out, driven)
                rows.append({"portrait": portrait.stem, "clip": clip.stem, "target": t, "method": m, "K": 1,
                             "lmk_err": landmark_error(ana.landmarks, driven) if ana.landmarks is not None else None,
                             "csim": cosine(ana.descriptor, portrait_desc) if ana.landmarks is not None else None,
                             "csim_driver": cosine(ana.descriptor, driver_desc) if ana.landmarks is not None else None,
                             "t_detect": dt, "t_method": t_method})
                samples.setdefault(m, {})[t] = out
        return {"rows": rows, "samples": samples, "targets": targets, "frames": n,
                "driver_vs_portrait": driver_vs_portrait}


# ------------------------------------------------------------------------------------------------
# Tables


def _fmt(v: Any, metric: str) -> str:
    if v is None:
        return "–"
    if metric in ("psnr",):
        return f"{v:.2f}"
    if metric in ("fps", "render_fps"):
        return f"{v:.1f}"
    if metric == "no_face":
        return f"{100 * v:.0f}%"
    if metric == "mouth_n":
        return str(int(v))
    if metric in ("sharpness", "flicker"):
        return f"{v:.2f}"
    return f"{v:.3f}"


HEAD = {"ssim": "SSIM↑", "psnr": "PSNR↑", "lmk_err": "LMK err↓", "no_face": "no face", "csim": "CSIM↑",
        "sharpness": "sharp→1", "mouth_ssim": "mouth SSIM↑", "mouth_n": "mouth n", "flicker": "flicker→1",
        "fps": "FPS", "render_fps": "render FPS", "csim_driver": "CSIM driver↓"}
LABEL = {"warp_oracle": "warp_oracle (oracle†)"}
ORACLE_NOTE = ("† oracle: per target, the shot warp with the best SSIM to the real frame. It sees the answer; "
               "a bound on choosing one shot, not a method anyone can run.")


def table_rows(results: dict, metrics: tuple[str, ...], floor: dict | None) -> list[list[str]]:
    rows = []
    for m in [*(m for m in METHODS if m in results), *(m for m in results if m not in METHODS)]:  # others: as given
        for k, vals in results[m].items():
            rows.append([LABEL.get(m, m), str(k)] + [_fmt(vals.get(x), x) for x in metrics])
    if floor is not None:
        rows.append(["real (detector floor)", "–"] + [_fmt(floor.get(x), x) if x in ("lmk_err", "no_face") else "–"
                                                      for x in metrics])
        for key, label in (("csim_other_person", "other person (CSIM ref)"),
                           ("csim_driver_vs_portrait", "driver vs portrait (CSIM ref)")):
            if floor.get(key) is not None:
                rows.append([label, "–"] + [_fmt(floor[key], x) if x == "csim" else "–" for x in metrics])
    return rows


def plain_table(results: dict, metrics: tuple[str, ...], floor: dict | None) -> str:
    head = ["method", "K"] + [HEAD[m] for m in metrics]
    rows = [head] + table_rows(results, metrics, floor)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def markdown_table(results: dict, metrics: tuple[str, ...], floor: dict | None) -> str:
    head = ["method", "K"] + [HEAD[m] for m in metrics]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * len(metrics)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in table_rows(results, metrics, floor)]
    return "\n".join(lines)


def finetune_text(ft: dict) -> str:
    """ours_ft's recipe in words, from results.json's protocol.finetune (a FinetuneConfig)."""
    losses = "content + adversarial" if ft.get("use_discriminator", True) else "content loss only"
    jitter = f"; shots jittered by {ft['augment']:g}" if ft.get("augment") else ""
    return (f"{ft['steps']} fine-tuning steps of {ft.get('batch_size', '?')} shots ({losses}; learning rates "
            f"generator {ft.get('lr_gen', 0):g}, AdaIN {ft.get('lr_psi', 0):g}{jitter}; {ft.get('precision', 'fp32')})")


def blend_text(rec: dict) -> str:
    """How warp_blend's temperature was chosen, in words (from protocol.blend)."""
    if "temperature" not in rec:
        return f"not run ({rec.get('skipped', 'no temperature')})"
    if rec.get("chosen_by") != "sweep":
        return f"temperature {rec['temperature']:g} (given by {rec.get('chosen_by')})"
    clips = ", ".join(c["clip"] for c in rec.get("clips", []))
    return (f"temperature {rec['temperature']:g}, the best mean SSIM of {', '.join(rec['sweep'])} on the training "
            f"clips {clips} at K={rec['K']}")


def protocol_text(doc: dict) -> str:
    p = doc["protocol"]
    ft = p["finetune"]
    return (f"Model `{doc['model']['name']}` ({doc['model']['resolution']} px, {doc['model']['variant']}, "
            f"{', '.join(doc['model']['providers'])}); {doc['clips_evaluated']} clip(s), "
            f"{p['targets']['count']} targets each (evenly spaced over the last half); shots from the first 25% "
            f"of frames (K=1: first frame; K>1 evenly spaced); crop rule {p['crop']['rule']} at "
            f"{p['crop']['resolution']} px; landmarks: dlib detector on every frame used; "
            f"ours_ft: {finetune_text(ft) if ft else 'not run (no checkpoint)'}. "
            f"LMK err: mean landmark distance / outer-eye-corner distance, detector on the output crop "
            f"(faces not found excluded, counted in 'no face'); CSIM: dlib 128-d descriptors, output vs real crop "
            f"(outputs with a face found; 'other person' = two different real people); "
            f"Sharpness: variance of the Laplacian of the luminance on the face box, output over real, median over "
            f"targets (1: the real frame's detail; SSIM and PSNR reward blur, this does not); mouth SSIM: the mouth "
            f"box, over the targets whose mouth opens wider than in every shot (mouth n of them); flicker: "
            f"frame-to-frame change of the output over the real crops', on {p['flicker_runs']['runs']} run(s) of "
            f"{p['flicker_runs']['length']} consecutive frames per clip; warp_blend: {blend_text(p.get('blend', {}))}. "
            f"FPS: detection on the frame + crop + method, on {doc['host']['cpus']} CPU core(s)."
            + ("" if p["standard"] else " NOT the standard protocol (20 targets, K = 1 and 8): do not compare "
                                        "with standard runs."))


# ------------------------------------------------------------------------------------------------
# Main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python bench/quality.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=Path, required=True, help="folder of video clips (one person per clip)")
    p.add_argument("--model", type=Path, required=True, help="model package folder")
    p.add_argument("--out", type=Path, required=True, help="output folder (created)")
    p.add_argument("--names", nargs="+", help="clip file stems to evaluate (default: all clips in --clips)")
    p.add_argument("--names-file", type=Path, help="a file of clip stems, one a line (# comments), e.g. training/holdout.txt")
    p.add_argument("--limit-clips", type=int, help="evaluate at most N clips (quick runs)")
    p.add_argument("--shots", type=int, nargs="+", default=[1, 8], help="K values (default 1 8)")
    p.add_argument("--targets", type=int, default=20, help="targets per clip (default 20: the protocol)")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--checkpoint", type=Path, help="meta-learned checkpoint of the model, for ours_ft")
    p.add_argument("--blend-temperature", type=float,
                   help="warp_blend's softmax temperature (default: swept on training clips, never the held-out ones)")
    p.add_argument("--blend-sweep-clips", type=int, default=BLEND_SWEEP_CLIPS,
                   help=f"training clips of --clips the temperature is swept on (default {BLEND_SWEEP_CLIPS})")
    p.add_argument("--holdout-file", type=Path, default=REPO / "training" / "holdout.txt",
                   help="held-out clip stems, never used for the sweep (default training/holdout.txt)")
    p.add_argument("--flicker-runs", type=int, default=FLICKER_RUNS,
                   help=f"runs of consecutive frames per clip for flicker (default {FLICKER_RUNS}; 0: none)")
    p.add_argument("--flicker-length", type=int, default=FLICKER_LENGTH,
                   help=f"frames per flicker run (default {FLICKER_LENGTH})")
    # ours_ft's steps are the bench's own fixed default (not training.finetune's), so that its
    # numbers compare across runs; 100 until session 7, 200 with the faster recipe since.
    add_finetune_arguments(p.add_argument_group("ours_ft's fine-tuning recipe (recorded in results.json)"),
                           prefix="ft-", steps=200)
    p.add_argument("--device", default="cpu", help="torch device for ours_ft (default cpu)")
    p.add_argument("--cross", type=Path, nargs="+", metavar="IMG", help="portraits to drive with the clips (cross-identity)")
    p.add_argument("--skip-self", action="store_true", help="only the cross-identity run")
    p.add_argument("--providers", default="cpu", help="onnxruntime providers for the package (default cpu)")
    p.add_argument("--variant", default="fp32", help="generator variant (default fp32)")
    p.add_argument("--threads", type=int, default=0, help="onnxruntime/torch threads (0: all cores)")
    p.add_argument("--video-frames", type=int, default=150, help="frames in the side-by-side video (0: none)")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown (results.md is always written)")
    p.add_argument("--write-manifest", action="store_true",
                   help="also put the summary table into --model's manifest.json as its 'quality' (replacing the old one)")
    args = p.parse_args(argv)
    if args.targets < 1:
        p.error("--targets must be >= 1")
    if any(k < 1 or k > 32 for k in args.shots):
        p.error("--shots: K must be in 1..32")
    args.shots = sorted(set(args.shots))
    if args.names_file:
        args.names = (args.names or []) + read_names_file(args.names_file)
    if args.skip_self and not args.cross:
        p.error("--skip-self needs --cross")
    if args.blend_temperature is not None and not args.blend_temperature > 0:
        p.error("--blend-temperature must be > 0")
    if args.flicker_runs < 0 or args.flicker_length < 2:
        p.error("--flicker-runs must be >= 0 and --flicker-length >= 2")
    if args.blend_temperature is None and "warp_blend" in args.methods and not args.holdout_file.is_file():
        p.error(f"--holdout-file {args.holdout_file}: no such file (the sweep must know the held-out clips)")
    try:
        args.ft_config = finetune_config_from_arguments(args, prefix="ft-")  # ours_ft's recipe, checked once
    except TrainingError as exc:
        p.error(str(exc))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from talkinghead.errors import TalkingHeadError

    try:
        import PIL  # noqa: F401  (the PNG grids; checked before the long run)
        import dlib  # noqa: F401
    except ImportError as exc:
        raise SystemExit(f"error: bench/quality.py needs {exc.name}: pip install pillow 'talkinghead[landmarks]'")
    clips = list_clips(args.clips, args.names, args.limit_clips)
    try:
        bench = Bench(args)
        args.out.mkdir(parents=True, exist_ok=True)
        return run(args, bench, clips)
    except TalkingHeadError as exc:
        raise SystemExit(f"error: {exc}") from None


def sweep_clips(folder: Path, exclude: set[str], count: int) -> list[Path]:
    """Up to ``count`` clips of ``folder`` not in ``exclude``, evenly spaced over their sorted list."""
    pool = [p for p in list_clips(folder, None, None) if p.stem not in exclude]
    if not pool or count < 1:
        return []
    picks = sorted({int(i) for i in np.linspace(0, len(pool) - 1, num=min(count, len(pool))).round()})
    return [pool[i] for i in picks]


def choose_blend(args: argparse.Namespace, bench: "Bench", evaluated: list[Path]) -> dict[str, Any]:
    """warp_blend's temperature (given, or swept on training clips), as recorded in protocol.blend;
    sets it on the renderer, which runs warp_blend only once it has one."""
    if "warp_blend" not in args.methods:
        return {"skipped": "warp_blend not in --methods"}
    if args.blend_temperature is not None:
        rec: dict[str, Any] | None = {"temperature": args.blend_temperature, "chosen_by": "--blend-temperature"}
    else:
        exclude = set(read_names_file(args.holdout_file)) | {p.stem for p in evaluated}
        pool = sweep_clips(args.clips, exclude, args.blend_sweep_clips)
        log(f"warp_blend: sweeping its temperature on {len(pool)} training clip(s) at K={max(args.shots)}")
        rec = bench.sweep_blend_temperature(pool, max(args.shots), BLEND_SWEEP) if pool else None
        if rec is None:
            bench.notes.append("warp_blend skipped: no training clip in --clips (outside --holdout-file and the "
                               "evaluated clips) to choose its temperature on; pass --blend-temperature")
            return {"skipped": "no training clip to sweep the temperature on"}
        rec["excluded"] = {"holdout_file": str(args.holdout_file), "held_out_and_evaluated": sorted(exclude)}
    bench.renderer.blend_temperature = rec["temperature"]
    log(f"warp_blend: temperature {rec['temperature']:g} ({rec['chosen_by']})")
    return rec


def run(args: argparse.Namespace, bench: "Bench", clips: list[Path]) -> int:
    import talkinghead
    from talkinghead.video import VideoWriter

    t_start = time.perf_counter()
    blend_record = choose_blend(args, bench, clips) if not args.skip_self else {"skipped": "--skip-self"}
    log(f"quality: model {bench.model.name} ({bench.res}px), {len(clips)} clip(s), K={args.shots}, "
        f"{args.targets} targets, methods {', '.join(m for m in bench.renderer.methods() if m in args.methods)}")

    doc: dict[str, Any] = {
        "protocol": {
            "landmarks": {"detector": bench.detector.describe(), "per_frame": "detect() on every frame used; the largest face"},
            "crop": {"rule": str(bench.crop_config), **bench.crop_config.to_dict(), "resolution": bench.res},
            "shots": {"pool": "first 25% of frames", "K": args.shots,
                      "spacing": "K=1: the first frame; K>1: round(linspace(0, pool-1, K)); a shot frame without "
                                 "a face is replaced by the next pool frame with one"},
            "targets": {"count": args.targets, "range": "last half: round(linspace(N//2, N-1, count))",
                        "without_face": "skipped (listed per clip)"},
            "methods": {
                "nearest": "the shot whose crop-normalised landmarks are closest (mean L2) to the target's, unchanged",
                "warp": "the nearest shot, piecewise-affine warped onto the target's landmarks (Delaunay of the "
                        "target's 68 points + 16 fixed crop-border points)",
                "warp_blend": "every shot piecewise-affine warped onto the target's landmarks, blended per pixel by "
                              "softmax(-mean landmark distance of the shot to the target / T); T in protocol.blend",
                "warp_oracle": "ORACLE (sees the answer): per target, the one shot warp with the best SSIM to the "
                               "real crop; a bound on choosing one shot, not a method anyone can run",
                "ours": "the package through the SDK (create_avatar on the K shots, render per target), feed-forward",
                "ours_ft": "the checkpoint fine-tuned on the K shots (training.finetune), rendered in PyTorch",
            },
            "metrics": {
                "ssim": "Gaussian 11x11 sigma 1.5, per RGB channel, valid region, data range 255",
                "psnr": "dB over all pixels and channels",
                "lmk_err": "dlib on the output crop (analysed at >= 256 px) vs the target's landmarks: mean point "
                           "distance / distance of points 36 and 45; only outputs with a face found",
                "no_face": "fraction of outputs where the detector finds no face",
                "csim": "cosine of dlib 128-d face descriptors (output vs real target crop), each aligned by its "
                        "detected landmarks; only outputs with a face found (dlib descriptors of non-faces still "
                        "score ~0.85); 'other person' gives the score of two different real people",
                "fps": "1 / mean time of the per-frame path: detection on the full frame + crop rule + the method",
                "render_fps": "1 / mean time of the method alone (crop rule + render)",
                "sharpness": "variance of the 4-neighbour Laplacian of the luminance (Rec. 601) of the output crop "
                             "over that of the real crop, on the target's 68 landmarks' bounding box expanded by "
                             "10% a side; median over targets (1: the real frame's detail; below: blur)",
                "mouth_ssim": "SSIM on the mouth box (points 48-67's bounding box, expanded 20% a side, >= 16 px), "
                              "mean over the targets whose mouth opening (|p62 - p66| / sqrt(landmark bounding-box "
                              "area)) exceeds every shot's; mouth_n: how many",
                "flicker": "over runs of consecutive frames: summed mean absolute change of the output crop from "
                           "frame to frame (0-255, all pixels) over the same for the real crops; 1: as steady as "
                           "the real clip; flicker_pairs: frame pairs counted",
            },
            "flicker_runs": {"runs": args.flicker_runs, "length": args.flicker_length,
                             "placement": "starts round(linspace(N//2, N-length, runs)); landmarks detected per "
                                          "frame; a run is cut at frames without a face"},
            "blend": blend_record,
            "analysis_size": bench.analyzer.size,
            "finetune": (dataclasses.asdict(bench.ft_config) if bench.ft_config is not None else None),
            "standard": (args.targets == 20 and args.shots == [1, 8] and args.flicker_runs == FLICKER_RUNS
                         and args.flicker_length == FLICKER_LENGTH),
        },
        "model": {"name": bench.model.name, "path": str(args.model), "resolution": bench.res,
                  "kind": bench.model.package.kind, "variant": bench.model.variant,
                  "providers": list(bench.model.providers), "threads": args.threads,
                  "checkpoint": getattr(bench, "ckpt_info", None)},
        "host": {"cpus": os.cpu_count(), "talkinghead": getattr(talkinghead, "__version__", None)},
        "clips_dir": str(args.clips),
        "notes": list(bench.notes),
    }
    grid_rows: list[tuple[str, list[np.ndarray]]] = []
    mouth_rows: list[tuple[str, list[np.ndarray]]] = []
    header: list[str] = []
    all_rows: list[dict] = []
    all_flicker: list[dict] = []
    floor_rows: list[dict] = []
    per_clip: dict[str, Any] = {}
    real_desc: dict[str, list[np.ndarray]] = {}
    video_path = args.out / "side_by_side.mp4"
    video_done = False
    if not args.skip_self:
        for ci, clip in enumerate(clips):
            factory = None
            if not video_done and args.video_frames > 0 and "warp" in args.methods:
                factory = (lambda fps: VideoWriter(video_path, fps, overwrite=True))
            try:
                res = bench.run_clip(clip, factory)
            except Exception as exc:  # noqa: BLE001 - one bad clip must not end the run
                log(f"  {clip.name}: failed: {exc}")
                per_clip[clip.stem] = {"skipped": f"{type(exc).__name__}: {exc}"}
                continue
            if "skipped" in res:
                log(f"  {clip.name}: skipped: {res['skipped']}")
                per_clip[clip.stem] = {"frames": res["frames"], "skipped": res["skipped"]}
                continue
            if factory is not None and video_path.exists():
                video_done = True
                doc["side_by_side"] = {"file": video_path.name, "clip": clip.stem, "panels": ["real", "ours", "warp"],
                                       "K": max(args.shots)}
            all_rows += res["rows"]
            all_flicker += res["flicker_rows"]
            real_desc[res["name"]] = res["real_desc"]
            floor_rows += [dict(r, clip=res["name"]) for r in res["floor_rows"]]
            pc = {"frames": res["frames"], "targets": res["targets"], "skipped_targets": res["skipped_targets"],
                  "shots": res["shots"], "setup_s": res["setup_s"], "notes": res["notes"],
                  "floor": aggregate_floor(res["floor_rows"]), "flicker_runs": res["flicker_runs"], "results": {}}
            clip_flicker = group(res["flicker_rows"], ("method", "K"))
            for (m, k), rs in sorted(group(res["rows"], ("method", "K")).items()):
                agg = aggregate(rs, METRICS, clip_flicker.get((m, k), []))
                agg["values"] = {x: [r[x] for r in rs] for x in ("ssim", "psnr", "lmk_err", "csim", "sharpness",
                                                                 "mouth_ssim")}
                pc["results"].setdefault(m, {})[str(k)] = agg
            per_clip[res["name"]] = pc
            # Grid: two targets per clip.
            keys = [(m, k) for m in METHODS for k in args.shots if (m, k) in res["samples"]]
            header = ["real"] + [f"{m} K={k}" for m, k in keys]
            real_ts = sorted(res["real"])
            for t in [real_ts[len(real_ts) // 4], real_ts[(3 * len(real_ts)) // 4]] if real_ts else []:
                grid_rows.append((f"{res['name']} #{t}", [res["real"][t]] + [res["samples"][key].get(t) for key in keys]))
            # Mouth grid: the two targets whose mouth opens widest beyond the fewest shots', mouth box only.
            for _, t in sorted(res["mouth_targets"].get(min(args.shots), []), reverse=True)[:2]:
                box = res["mouth_boxes"][t]
                mouth_rows.append((f"{res['name']} #{t}", [square_around(res["real"][t], box)]
                                   + [square_around(res["samples"][key].get(t), box) for key in keys]))
        results: dict[str, dict[str, Any]] = {}
        flicker_groups = group(all_flicker, ("method", "K"))
        for (m, k), rs in group(all_rows, ("method", "K")).items():
            results.setdefault(m, {})[str(k)] = aggregate(rs, METRICS, flicker_groups.get((m, k), []))
        results = {m: dict(sorted(results[m].items(), key=lambda kv: int(kv[0]))) for m in METHODS if m in results}
        doc["results"] = results
        doc["bars_K"] = str(8 if 8 in args.shots else max(args.shots))
        doc["bars"] = bars(results, doc["bars_K"])
        doc["finetune_gain"] = finetune_gain(results)
        doc["floor"] = aggregate_floor(floor_rows)
        doc["floor"]["csim_other_person"] = other_person_csim(real_desc)
        doc["per_clip"] = per_clip
        doc["clips_evaluated"] = sum(1 for v in per_clip.values() if "skipped" not in v)
        if grid_rows:
            save_grid(args.out / "grid.png", grid_rows, header)
            doc["grid"] = "grid.png"
        if mouth_rows:
            save_grid(args.out / "mouth_grid.png", mouth_rows, header)
            doc["mouth_grid"] = "mouth_grid.png"
    else:
        doc["clips_evaluated"] = 0
    if args.cross:
        doc["cross"] = run_cross_all(bench, args, clips)
    doc["elapsed_s"] = time.perf_counter() - t_start
    doc["summary"] = summary(doc)
    write_outputs(args, doc)
    if args.write_manifest:
        write_manifest_quality(args.model, doc["summary"])
    return 0


def write_manifest_quality(package: Path, quality: dict[str, Any]) -> None:
    """Replace the package manifest's ``quality`` with ``quality``: validated, then written atomically.

    Only the manifest changes; ``quality`` is outside every hash, so the package stays valid.
    """
    from talkinghead.manifest import validate_manifest
    from talkinghead.package import ModelPackage

    path = package / "manifest.json"
    obj = json.loads(path.read_text())
    obj["quality"] = _strip(quality)
    validate_manifest(obj)
    tmp = path.with_name(f".manifest.json.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)
    ModelPackage.load(package)  # still loads, hashes and all
    log(f"quality summary written to {path}")


def other_person_csim(descs: dict[str, list[np.ndarray]]) -> float | None:
    """Mean CSIM between real crops of different clips (different people): what CSIM gives for
    a wrong identity (dlib descriptors of any two faces are far from orthogonal)."""
    names = [n for n in descs if descs[n]]
    vals = [cosine(a, b) for i, x in enumerate(names) for y in names[i + 1:] for a in descs[x] for b in descs[y]]
    return float(np.mean(vals)) if vals else None


def aggregate_floor(rows: list[dict]) -> dict[str, Any]:
    found = [r["lmk_err"] for r in rows if r["lmk_err"] is not None]
    return {"lmk_err": _mean(found), "no_face": float(1 - len(found) / len(rows)) if rows else None, "n": len(rows)}


def run_cross_all(bench: Bench, args: argparse.Namespace, clips: list[Path]) -> dict[str, Any]:
    from talkinghead.images import read_image

    rows: list[dict] = []
    per_pair: dict[str, Any] = {}
    floor_rows = []
    grid: list[tuple[str, list[np.ndarray]]] = []
    methods_used: list[str] = []
    driver_csim: list[float] = []
    notes = []
    for portrait in args.cross:
        img = read_image(portrait)
        lm, _ = bench.detect(img)
        if lm is None:
            notes.append(f"{portrait.name}: no face found; skipped")
            continue
        shots = make_shots([0], [img], [lm], bench.crop_config, bench.res)
        ana = bench.analyzer.analyse(shots.crops[0], shots.norm[0])
        floor_rows.append({"lmk_err": landmark_error(ana.landmarks, shots.norm[0]) if ana.landmarks is not None else None})
        methods = [m for m in bench.renderer.methods() if m in args.methods and m not in SELF_ONLY]
        fns, setup = bench.renderer.prepare(shots, methods)
        methods_used = methods
        for clip in clips:
            try:
                res = bench.run_cross(portrait, clip, shots, fns, ana.descriptor)
            except Exception as exc:  # noqa: BLE001
                notes.append(f"{portrait.name} x {clip.name}: failed: {exc}")
                continue
            rows += res["rows"]
            driver_csim += res["driver_vs_portrait"]
            key = f"{portrait.stem}|{clip.stem}"
            per_pair[key] = {"frames": res["frames"], "targets": res["targets"], "setup_s": setup, "results": {
                m: {"1": aggregate(rs, CROSS_METRICS)} for (m,), rs in group(res["rows"], ("method",)).items()}}
            ts = sorted(next(iter(res["samples"].values()), {}))
            if ts:
                t = ts[len(ts) // 2]
                grid.append((f"{portrait.stem[:11]}<{clip.stem[:11]}",
                             [shots.crops[0]] + [res["samples"].get(m, {}).get(t) for m in methods]))
        log(f"  cross {portrait.name}: {len(clips)} clip(s)")
    results = {m: {"1": aggregate(rs, CROSS_METRICS)} for (m,), rs in group(rows, ("method",)).items()}
    results = {m: results[m] for m in METHODS if m in results}
    floor = aggregate_floor(floor_rows)
    floor["csim_driver_vs_portrait"] = float(np.mean(driver_csim)) if driver_csim else None
    if grid:
        save_grid(args.out / "cross_grid.png", grid, ["portrait"] + methods_used)
    return {"protocol": "each portrait (K=1) driven by each clip's targets (relative motion transfer from the clip's "
                        "first frame, as talkinghead animates); lmk_err vs the transferred landmarks; csim vs the "
                        "portrait crop; csim_driver vs the driver's real crop (identity leak: lower is better); "
                        "nearest = the portrait unchanged",
            "portraits": [str(p) for p in args.cross], "results": results, "floor": floor,
            "per_pair": per_pair, "notes": notes, "grid": "cross_grid.png" if grid else None}


def bars(results: dict, k: str) -> dict[str, dict[str, bool | None]]:
    """The issue's bars at K = k for ours and ours_ft: SSIM above nearest's; landmark error closer to
    warp's than to nearest's; SSIM above warp's (the hard one). None where a number is missing."""
    out: dict[str, dict[str, bool | None]] = {}
    near, warp = results.get("nearest", {}).get(k), results.get("warp", {}).get(k)
    for m in ("ours", "ours_ft"):
        r = results.get(m, {}).get(k)
        if r is None or near is None or warp is None:
            continue

        def cmp(fn, *vals):
            return None if any(v is None for v in vals) else bool(fn(*vals))

        out[m] = {
            "ssim_above_nearest": cmp(lambda a, b: a > b, r["ssim"], near["ssim"]),
            "lmk_err_closer_to_warp_than_nearest": (
                False if r["lmk_err"] is None and r["no_face"] == 1 else
                cmp(lambda a, w, n: abs(a - w) < abs(a - n), r["lmk_err"], warp["lmk_err"], near["lmk_err"])),
            "ssim_above_warp": cmp(lambda a, b: a > b, r["ssim"], warp["ssim"]),
        }
    return out


def finetune_gain(results: dict) -> dict[str, dict[str, float | None]]:
    """ours_ft minus ours per K (the paper: fine-tuning is the largest gain in identity, CSIM)."""
    out = {}
    for k, ft in results.get("ours_ft", {}).items():
        base = results.get("ours", {}).get(k)
        if base is None:
            continue
        out[k] = {x: (None if ft.get(x) is None or base.get(x) is None else ft[x] - base[x])
                  for x in ("ssim", "psnr", "lmk_err", "csim")}
    return out


def bars_text(doc: dict) -> list[str]:
    lines = []
    k = doc.get("bars_K")
    for m, checks in doc.get("bars", {}).items():
        parts = [f"{name.replace('_', ' ')}: {'yes' if v else ('no' if v is False else 'n/a')}"
                 for name, v in checks.items()]
        lines.append(f"{m} at K={k}: " + "; ".join(parts))
    for k, gain in doc.get("finetune_gain", {}).items():
        parts = [f"{x} {'n/a' if v is None else f'{v:+.3f}'}" for x, v in gain.items()]
        lines.append(f"fine-tuning gain (ours_ft - ours) at K={k}: " + ", ".join(parts))
    return lines


SUMMARY_METRICS = ("ssim", "psnr", "lmk_err", "csim", "sharpness", "mouth_ssim", "mouth_n", "flicker")


def summary(doc: dict) -> dict[str, Any]:
    """The compact form for a manifest's ``quality`` (K, method -> the main metrics)."""
    out: dict[str, Any] = {"protocol": "bench/quality.py self-reenactment", "clips": doc.get("clips_evaluated", 0)}
    for m, per_k in doc.get("results", {}).items():
        out[m] = {k: {x: (round(v[x], 4) if v.get(x) is not None else None) for x in SUMMARY_METRICS if x in v}
                  for k, v in per_k.items()}
    temperature = doc.get("protocol", {}).get("blend", {}).get("temperature")
    if temperature is not None and "warp_blend" in out:
        out["warp_blend_temperature"] = temperature
    if any(m in out for m in ORACLES):
        out["oracles"] = {m: "sees the answer (picks by SSIM to the real frame): a bound, not a method" for m in ORACLES
                          if m in out}
    return out


def _strip(obj: Any) -> Any:
    """JSON-able copy (numpy scalars to floats)."""
    if isinstance(obj, dict):
        return {str(k): _strip(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strip(v) for v in obj]
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    return obj


def write_outputs(args: argparse.Namespace, doc: dict) -> None:
    out = args.out
    text, md = [], [f"## Quality ({doc['model']['name']})", "", protocol_text(doc), ""]
    if "results" in doc:
        text.append(plain_table(doc["results"], METRICS, doc["floor"]))
        md.append(markdown_table(doc["results"], METRICS, doc["floor"]))
        if any(m in doc["results"] for m in ORACLES):
            text.append(ORACLE_NOTE)
            md += ["", ORACLE_NOTE]
    if "cross" in doc:
        c = doc["cross"]
        text += ["", "cross-identity (no ground truth)", plain_table(c["results"], CROSS_METRICS, c["floor"])]
        md += ["", "Cross-identity: " + c["protocol"] + ".", "", markdown_table(c["results"], CROSS_METRICS, c["floor"])]
    if doc.get("bars"):
        text += [""] + bars_text(doc)
        md += ["", "Bars (issue 7):", ""] + [f"- {line}" for line in bars_text(doc)]
    notes = doc["notes"] + [f"{clip}: {n}" for clip, pc in doc.get("per_clip", {}).items() for n in pc.get("notes", [])]
    notes += [f"{clip}: skipped: {pc['skipped']}" for clip, pc in doc.get("per_clip", {}).items() if "skipped" in pc]
    if notes:
        text += [""] + [f"note: {n}" for n in notes]
        md += [""] + [f"- {n}" for n in notes]
    tmp = out / "results.json.tmp"
    tmp.write_text(json.dumps(_strip(doc), indent=1))
    os.replace(tmp, out / "results.json")
    (out / "results.md").write_text("\n".join(md) + "\n")
    print("\n".join(md) if args.markdown else "\n".join(text))


if __name__ == "__main__":
    sys.exit(main())
