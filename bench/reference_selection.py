"""Which shots a warp avatar should keep when it is given more than the package's reference cap.

    python bench/reference_selection.py --clips ../shared/data/driving --names-file training/holdout.txt \
        [--model PACKAGE] [--candidates 24] [--targets 20] [--out docs/quality/reference_selection]

Per clip: ``--candidates`` frames evenly spaced over the first half are the shots a user gives;
each rule keeps ``cap`` of them (the package's ``references.cap``) and the model renders
``--targets`` frames of the last half from the kept shots (the SDK's create_avatar + render,
feed-forward). Rules:

- ``farthest-landmarks``: the SDK's rule (talkinghead.references.select_references);
- ``first``: the first ``cap`` shots given (what a naive cut keeps);
- ``even``: ``cap`` shots evenly spaced over the given ones;
- ``random``: ``cap`` shots drawn at random (seed 0), a baseline with no rule at all.

Columns: SSIM and PSNR against the real crop, sharpness (output over real Laplacian variance on the
face box), and coverage: the mean landmark distance (crop-normalised) from each target to the
nearest kept shot, which the rule tries to make small for poses and mouth states it cannot foresee.
Prints the CPU with the table; writes OUT/results.md and results.json.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.quality import count_frames, list_clips, make_shots, read_frames, read_names_file, target_indices  # noqa: E402
from bench.quality_metrics import face_box, psnr, sharpness, ssim  # noqa: E402

RULES = ("farthest-landmarks", "first", "even", "random")


def keep(rule: str, norm: np.ndarray, cap: int) -> np.ndarray:
    """Indices into the candidate shots that ``rule`` keeps (at most ``cap``)."""
    from talkinghead.references import select_references

    n = len(norm)
    if n <= cap:
        return np.arange(n)
    if rule == "farthest-landmarks":
        return select_references(norm, cap)
    if rule == "first":
        return np.arange(cap)
    if rule == "even":
        return np.unique(np.linspace(0, n - 1, cap).round().astype(int))
    if rule == "random":
        return np.sort(np.random.default_rng(0).choice(n, cap, replace=False))
    raise ValueError(rule)


def run_clip(model, detector, clip: Path, candidates: int, targets: int, rules: tuple[str, ...]) -> dict | None:
    from talkinghead.crop import crop_from_landmarks, to_normalised
    from talkinghead.references import landmark_distances

    n = count_frames(clip)
    if not n or n < 4 * candidates // 3:
        return None
    cand = sorted({int(i) for i in np.linspace(0, n // 2 - 1, candidates).round()})
    tgt = target_indices(n, targets)
    frames = read_frames(clip, set(cand) | set(tgt))
    found = {}
    for i, f in frames.items():
        faces = detector.detect(f)
        if faces:
            found[i] = faces[0].points
    cand, tgt = [i for i in cand if i in found], [i for i in tgt if i in found]
    if len(cand) <= model.package.references.cap or not tgt:
        return None
    res = model.resolution
    cnorm = np.stack([to_normalised(found[i], crop_from_landmarks(found[i], model.package.crop_config)) for i in cand])
    targets = make_shots(tgt, [frames[i] for i in tgt], [found[i] for i in tgt], model.package.crop_config, res)
    reals, tnorm = targets.crops, targets.norm
    out: dict[str, dict] = {}
    for rule in rules:
        kept = keep(rule, cnorm, model.package.references.cap)
        avatar = model.create_avatar([frames[cand[j]] for j in kept], [found[cand[j]] for j in kept])
        renders = model.render(avatar, tnorm)
        rows = [(ssim(o, r), psnr(o, r), sharpness(o, r, face_box(t, res))) for o, r, t in zip(renders, reals, tnorm)]
        cover = landmark_distances(tnorm.astype(np.float64), cnorm[kept].astype(np.float64)).min(1)
        out[rule] = {"ssim": float(np.mean([r[0] for r in rows])), "psnr": float(np.mean([r[1] for r in rows])),
                     "sharpness": float(np.median([r[2] for r in rows if r[2] is not None])),
                     "coverage": float(cover.mean()), "kept": [cand[j] for j in kept]}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/reference_selection.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=Path, required=True)
    p.add_argument("--names-file", type=Path, help="clip stems, one a line (default: every clip)")
    p.add_argument("--model", type=Path, default=None, help="a warp package (default: the bundled model)")
    p.add_argument("--candidates", type=int, default=24, help="shots given per clip (default 24)")
    p.add_argument("--targets", type=int, default=20)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    import talkinghead
    from export.quantize import cpu_description
    from talkinghead.landmarks import default_detector

    model = talkinghead.load_model(args.model, providers="cpu", intra_op_threads=args.threads, watermark=False)
    if model.package.references is None:
        raise SystemExit("error: the model is not a warp package (it keeps no reference shots)")
    if args.candidates <= model.package.references.cap:
        raise SystemExit(f"error: --candidates must exceed the cap ({model.package.references.cap})")
    detector = default_detector()
    names = read_names_file(args.names_file) if args.names_file else None
    per_clip = {}
    for clip in list_clips(args.clips, names, None):
        r = run_clip(model, detector, clip, args.candidates, args.targets, RULES)
        print(f"{clip.stem}: " + (", ".join(f"{k} {v['ssim']:.3f}" for k, v in r.items()) if r else "skipped"),
              file=sys.stderr)
        if r:
            per_clip[clip.stem] = r
    if not per_clip:
        raise SystemExit("error: no clip had enough frames with a face")
    cpu = cpu_description()
    summary = {rule: {m: float(np.mean([c[rule][m] for c in per_clip.values()]))
                      for m in ("ssim", "psnr", "sharpness", "coverage")} for rule in RULES}
    lines = [f"## Reference selection ({model.name}, cap {model.package.references.cap} of {args.candidates} shots)",
             "", f"{len(per_clip)} clip(s), {args.targets} targets each; {cpu}.", "",
             "| rule | SSIM↑ | PSNR↑ | sharpness | coverage↓ |", "|---|---:|---:|---:|---:|"]
    for rule, s in summary.items():
        lines.append(f"| {rule} | {s['ssim']:.4f} | {s['psnr']:.2f} | {s['sharpness']:.3f} | {s['coverage']:.4f} |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.md").write_text(text + "\n")
        (args.out / "results.json").write_text(json.dumps({"model": model.name, "cpu": cpu, "summary": summary,
                                                           "per_clip": per_clip}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
