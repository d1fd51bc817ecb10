"""A maintained watermarking library beside ours: invisible-watermark (``imwatermark``, PyPI
invisible-watermark 0.2.0) measured on the same demo videos and transformations as
bench/watermark.py (issue 22).

    pip install invisible-watermark   # dev venv only: it requires torch, opencv-python, PyWavelets
    python bench/watermark_library.py [--videos 4] [--seconds 4] [--methods dwtDct,dwtDctSvd,rivaGan,ours]
                                      [--json FILE] [--markdown FILE]

1. Our outputs, unmarked: ``--videos`` demo performances (seeds 0..N-1) rendered by the bundled model
   with ``watermark=False`` (bench/watermark.py's render_demo); every frame gets a 32-bit payload from
   the library (BGR uint8 in and out, as it expects), then the video is written as `talkinghead
   demo` writes it (H.264 CRF 18, write_demo) and bench/watermark.py's TRANSFORMS are applied (as a
   baseline, the marked frames are also decoded before writing).
   Each decoded frame gives 32 bits: the frame is found when they equal the payload exactly (bit
   accuracy is recorded too); the video is found when the majority vote of its frames' bits
   (ties go to 0) equals the payload. The library refuses frames under 256 x 256 pixels in area
   (scaled to 50%, the 10% crop, the 90% capture): those are resized to 256 x 256 (bilinear) before
   decoding, and the table says so. rivaGan (an ONNX network, ~0.5 s a frame on 2 cores) gets
   shorter videos (``--riva-seconds``) and decodes ``--riva-decode`` evenly spaced frames per video.
   ``ours``: talkinghead.watermark on the same unmarked frames (Marker with the bundled model's
   id; detection as bench/watermark.py: the video's frames folded, and each frame alone).
2. False positives: frames of every clip, photo and portrait under ``--data`` (driving/, faces/,
   source/): up to ``--fp-frames`` frames per file (every (150 / n)-th of its first 150), decoded
   at their own size (rivaGan: ``--riva-fp-frames``, resized to 256 x 256); a file is found when
   its vote equals the payload. Ours is checked by bench/watermark.py.
3. Cost: PSNR of marked against unmarked frames (all frames of the videos), and ms per 256 px
   frame to embed and to decode (round-robin medians, one call per frame, as the library is called).

Prints the CPU and its vector extensions with the tables.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.watermark import TRANSFORMS, media_files, render_demo, write_demo  # noqa: E402

LIBRARY_METHODS = ("dwtDct", "dwtDctSvd", "rivaGan")
OURS = "ours"
BEFORE = "as marked (not written: no encoding)"
MIN_AREA = 256 * 256  # imwatermark raises "image too small" below this many pixels
BITS = 32
PAYLOAD = int.from_bytes(hashlib.sha256(b"talkinghead: invisible-watermark bench").digest()[:4], "big")  # 0xAAD0A2F2


def payload_bits(value: int = PAYLOAD, n: int = BITS) -> np.ndarray:
    """``value``'s ``n`` bits, most significant first, as uint8 0/1."""
    return np.array([(value >> (n - 1 - k)) & 1 for k in range(n)], dtype=np.uint8)


def vote(bits: list[np.ndarray]) -> np.ndarray:
    """The majority of each bit over frames (ties go to 0)."""
    return (np.mean(np.stack(bits), axis=0) > 0.5).astype(np.uint8)


class Library:
    """One imwatermark method with a fixed payload, on RGB uint8 frames (converted to the BGR it takes)."""

    def __init__(self, method: str, bits: np.ndarray, fit: tuple[int, int] | None = None) -> None:
        from imwatermark import WatermarkDecoder, WatermarkEncoder

        if method == "rivaGan":
            WatermarkEncoder.loadModel()  # its bundled rivagan_encoder/decoder.onnx, in onnxruntime
        self.method, self.fit = method, fit
        self.encoder = WatermarkEncoder()
        self.encoder.set_watermark("bits", [int(b) for b in bits])
        self.decoder = WatermarkDecoder("bits", len(bits))

    def embed(self, rgb: np.ndarray) -> np.ndarray:
        bgr = np.ascontiguousarray(rgb[..., ::-1])
        return np.ascontiguousarray(self.encoder.encode(bgr, self.method)[..., ::-1])

    def decode(self, rgb: np.ndarray) -> tuple[np.ndarray, bool]:
        """The 32 bits read from ``rgb``, and whether it had to be resized first (under 256 x 256
        pixels in area, which the library refuses, or ``fit`` given)."""
        import cv2

        bgr = np.ascontiguousarray(rgb[..., ::-1])
        h, w = bgr.shape[:2]
        size = self.fit or ((256, 256) if h * w < MIN_AREA else None)
        if size is not None and (w, h) != size:
            bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_LINEAR)
        return np.asarray(self.decoder.decode(bgr, self.method), dtype=np.uint8), size is not None and (w, h) != size


def _ours(model):
    from talkinghead.watermark import Marker, model_id

    return Marker(model_id(model.package.name, model.package.version))


def _indices(n: int, k: int | None) -> list[int]:
    """All of range(n), or ``k`` evenly spaced."""
    if k is None or k >= n:
        return list(range(n))
    return sorted({int(i) for i in np.linspace(0, n - 1, k)})


def outputs(methods: list[str], videos: int, seconds: float, riva_seconds: float, riva_decode: int,
            keep: Path | None = None) -> tuple[dict, dict]:
    """Detection after each transformation, per method, and the PSNR of the marked frames."""
    import talkinghead
    from talkinghead.watermark import detect

    model = talkinghead.load_model(providers="cpu", watermark=False)
    avatar = model.default_avatar()
    want = payload_bits()
    marks = {m: (_ours(model) if m == OURS else Library(m, want)) for m in methods}
    rows = {m: {name: {"videos": 0, "found": 0, "frames": 0, "frames_found": 0, "bit_accuracy": [],
                       "vote_bit_accuracy": [], "resized": False, "confidence": []} for name in (BEFORE, *TRANSFORMS)}
            for m in methods}
    mse = {m: [] for m in methods}
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        for seed in range(videos):
            clean_by_length: dict[float, np.ndarray] = {}
            for m in methods:
                length = riva_seconds if m == "rivaGan" else seconds
                if length not in clean_by_length:
                    clean_by_length[length] = render_demo(model, avatar, seed, length)
                clean = clean_by_length[length]
                t0 = time.perf_counter()
                marked = [marks[m].mark(f) if m == OURS else marks[m].embed(f) for f in clean]
                mse[m] += [float(np.mean((a.astype(np.float64) - b) ** 2)) for a, b in zip(marked, clean)]
                if keep is not None and seed == 0:
                    _save_png(marked[0], keep / f"watermark_library_{m}.png")
                    _save_png(clean[0], keep / f"watermark_library_{m}_unmarked.png")
                written = write_demo(marked, tmp)
                stages = [(BEFORE, lambda: marked)] + [(name, lambda c=change: c(written, tmp))
                                                        for name, change in TRANSFORMS.items()]
                for name, frames_after in stages:
                    frames = frames_after()
                    r = rows[m][name]
                    r["videos"] += 1
                    if m == OURS:
                        d = detect(frames)
                        r["found"] += int(d.found)
                        r["confidence"].append(round(d.confidence, 2))
                        for f in frames:
                            r["frames"] += 1
                            r["frames_found"] += int(detect(f).found)
                        continue
                    got = []
                    for i in _indices(len(frames), riva_decode if m == "rivaGan" else None):
                        bits, resized = marks[m].decode(frames[i])
                        got.append(bits)
                        r["resized"] |= resized
                        r["frames"] += 1
                        r["frames_found"] += int(np.array_equal(bits, want))
                        r["bit_accuracy"].append(float(np.mean(bits == want)))
                    v = vote(got)
                    r["found"] += int(np.array_equal(v, want))
                    r["vote_bit_accuracy"].append(round(float(np.mean(v == want)), 4))
                print(f"video {seed + 1}/{videos}: {m} done ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    psnr = {m: {"psnr_db": round(10 * np.log10(255 ** 2 / np.mean(v)), 2),
                "min_frame_psnr_db": round(10 * np.log10(255 ** 2 / max(v)), 2), "frames": len(v)}
            for m, v in mse.items()}
    for m in methods:
        for r in rows[m].values():
            acc = r.pop("bit_accuracy")
            r["mean_bit_accuracy"] = round(float(np.mean(acc)), 4) if acc else None
    return rows, psnr


def _save_png(rgb: np.ndarray, path: Path) -> None:
    from talkinghead.media import encode_image

    path.write_bytes(encode_image(rgb, "png"))


def _file_frames(path: Path, n: int) -> list[np.ndarray]:
    """Up to ``n`` RGB frames of a clip or picture: every (150 // n)-th of its first 150 (read as
    talkinghead.provenance.verify reads a file)."""
    import av

    step, out = max(1, 150 // n), []
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError(f"{path}: no picture stream")
        for i, frame in enumerate(container.decode(video=0)):
            if i >= 150 or len(out) >= n:
                break
            if i % step == 0:
                out.append(frame.to_ndarray(format="rgb24"))
    if not out:
        raise ValueError(f"{path}: no frame decoded")
    return out


def false_positives(methods: list[str], data: Path, fp_frames: int, riva_fp_frames: int,
                    limit: int | None = None) -> dict:
    """Per library method: files whose vote equals the payload, frames that decode to it exactly,
    and the closest vote."""
    import av

    want = payload_bits()
    libs = {m: Library(m, want, fit=(256, 256) if m == "rivaGan" else None) for m in methods if m != OURS}
    files = media_files(data)
    if limit is not None:
        files = files[:: max(1, len(files) // limit)][:limit]
    out = {m: {"files": 0, "frames": 0, "found": [], "frames_found": 0, "resized_frames": 0,
               "closest_vote_bits": 0, "closest_file": None, "seconds": 0.0} for m in libs}
    errors = []
    for i, p in enumerate(files):
        try:
            frames = _file_frames(p, max(fp_frames, riva_fp_frames))
        except (av.FFmpegError, OSError, ValueError) as exc:
            errors.append(f"{p.name}: {exc}")
            continue
        for m, lib in libs.items():
            t0 = time.perf_counter()
            sel = frames[:riva_fp_frames] if m == "rivaGan" else frames[:: max(1, len(frames) // fp_frames)][:fp_frames]
            got = []
            for f in sel:
                bits, resized = lib.decode(f)
                got.append(bits)
                out[m]["frames_found"] += int(np.array_equal(bits, want))
                out[m]["resized_frames"] += int(resized)
            v = vote(got)
            agree = int(np.sum(v == want))
            o = out[m]
            o["files"] += 1
            o["frames"] += len(sel)
            if np.array_equal(v, want):
                o["found"].append(p.name)
            if agree > o["closest_vote_bits"]:
                o["closest_vote_bits"], o["closest_file"] = agree, p.name
            o["seconds"] += time.perf_counter() - t0
        if (i + 1) % 25 == 0:
            print(f"false positives: {i + 1}/{len(files)} files", file=sys.stderr)
    for o in out.values():
        o["seconds"] = round(o["seconds"], 1)
    return {"data": str(data), "files": len(files), "unreadable": errors, "methods": out}


def cost(methods: list[str], rounds: int) -> dict:
    """ms per 256 px frame to embed and to decode, one call each, round-robin medians."""
    import talkinghead
    from bench.timing import round_robin
    from talkinghead.performance import generate_performance
    from talkinghead.watermark import detect

    model = talkinghead.load_model(providers="cpu", watermark=False)
    avatar = model.default_avatar()
    track = generate_performance(avatar.landmarks, 0.04, 25.0)  # one frame
    crop = model.render(avatar, track)[0]
    runs = {}
    for m in methods:
        if m == OURS:
            marker = _ours(model)
            marked = marker.mark(crop)
            runs[f"{m} embed"] = lambda _, k=marker: k.mark(crop)
            runs[f"{m} decode"] = lambda _, f=marked: detect(f)
        else:
            lib = Library(m, payload_bits())
            marked = lib.embed(crop)
            runs[f"{m} embed"] = lambda _, k=lib: k.embed(crop)
            runs[f"{m} decode"] = lambda _, k=lib, f=marked: k.decode(f)
    runs["render (generator, 256 px)"] = lambda _: model.render(avatar, track)
    return {k: round(v, 2) for k, v in round_robin(runs, [{}], rounds=rounds, warmup=2).items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/watermark_library.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", type=int, default=4)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--methods", default=",".join(LIBRARY_METHODS + (OURS,)),
                   help="comma-separated: dwtDct, dwtDctSvd, rivaGan, ours")
    p.add_argument("--riva-seconds", type=float, default=2.0, help="rivaGan's videos (embedding ~0.5 s a frame)")
    p.add_argument("--riva-decode", type=int, default=10, help="rivaGan: frames decoded per video and transformation")
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--fp-frames", type=int, default=5, help="frames per clip for false positives")
    p.add_argument("--riva-fp-frames", type=int, default=1)
    p.add_argument("--fp-files", type=int, help="check this many files, evenly spread (default: all)")
    p.add_argument("--skip-false-positives", action="store_true")
    p.add_argument("--rounds", type=int, default=10, help="timing rounds")
    p.add_argument("--keep-frames", type=Path, help="write video 0's first frame per method, marked and unmarked, here (PNG)")
    p.add_argument("--json", type=Path)
    p.add_argument("--markdown", type=Path)
    args = p.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in LIBRARY_METHODS + (OURS,)]
    if bad:
        p.error(f"unknown method(s) {', '.join(bad)}")
    from importlib.metadata import version

    from export.quantize import cpu_description

    cpu = cpu_description()
    versions = {k: version(k) for k in ("invisible-watermark", "opencv-python", "PyWavelets", "onnxruntime", "torch")}
    t0 = time.perf_counter()
    ms = cost(methods, args.rounds)
    rows, psnr = outputs(methods, args.videos, args.seconds, args.riva_seconds, args.riva_decode, args.keep_frames)
    fp = None if args.skip_false_positives else false_positives(methods, args.data, args.fp_frames,
                                                                args.riva_fp_frames, args.fp_files)
    wall = time.perf_counter() - t0
    text = markdown(cpu, versions, args, methods, rows, psnr, fp, ms, wall)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    if args.json:
        settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k not in ("json", "markdown")}
        args.json.write_text(json.dumps({"cpu": cpu, "versions": versions, "settings": settings,
                                         "payload": f"0x{PAYLOAD:08X}", "outputs": rows, "psnr": psnr,
                                         "false_positives": fp, "ms_per_frame_256": ms,
                                         "wall_s": round(wall, 1)}, indent=1))
    return 0


def markdown(cpu, versions, args, methods, rows, psnr, fp, ms, wall) -> str:
    name = {OURS: "talkinghead.watermark (ours, 16-bit payload)"}
    lines = [f"## invisible-watermark {versions['invisible-watermark']} (imwatermark) beside talkinghead.watermark",
             "", cpu, "",
             "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".", "",
             f"Payload 0x{PAYLOAD:08X} (32 bits). {args.videos} demo videos (bundled model, 256 px, rendered unmarked, "
             f"marked by each method, written at CRF 18), bench/watermark.py's transformations. "
             f"{args.seconds:g} s per video (rivaGan: {args.riva_seconds:g} s, {args.riva_decode} frames decoded "
             "per video and transformation). A frame is found when its 32 decoded bits equal the payload; a video "
             "when the majority vote of its decoded frames does. Bit accuracy: mean over decoded frames. "
             "Ours: found as `talkinghead verify` decides (frames folded; z-score threshold), each frame alone too.", ""]
    for m in methods:
        lines += [f"### {name.get(m, m)}", "",
                  "| after | videos found | frames found | bit accuracy |" if m != OURS else
                  "| after | videos found | frames found alone | median confidence |",
                  "|---|---:|---:|---:|"]
        for t, r in rows[m].items():
            after = t + (" (resized to 256x256 to decode: the library refuses it)" if r["resized"] else "")
            last = (f"{100 * r['mean_bit_accuracy']:.1f}%" if m != OURS else f"{np.median(r['confidence']):.1f}")
            lines.append(f"| {after} | {r['found']}/{r['videos']} | {r['frames_found']}/{r['frames']} "
                         f"({100 * r['frames_found'] / max(r['frames'], 1):.0f}%) | {last} |")
        lines.append("")
    if fp is not None:
        lines += [f"False positives on real media ({fp['data']}: driving, faces, source; {fp['files']} files, "
                  f"unreadable {len(fp['unreadable'])}; up to {args.fp_frames} frames per file at their own size "
                  f"(under 256x256 in area: resized up), rivaGan {args.riva_fp_frames} frame resized to 256x256):", "",
                  "| method | files found | frames decoding to the payload | closest vote (bits of 32) | frames | s |",
                  "|---|---:|---:|---:|---:|---:|"]
        for m, o in fp["methods"].items():
            found = f"{len(o['found'])}/{o['files']}" + (f" ({', '.join(o['found'])})" if o["found"] else "")
            lines.append(f"| {m} | {found} | "
                         f"{o['frames_found']}/{o['frames']} | {o['closest_vote_bits']} ({o['closest_file']}) | "
                         f"{o['frames']} | {o['seconds']} |")
        lines += ["", "Ours: bench/watermark.py checks every file as `talkinghead verify` does.", ""]
    lines += ["| method | PSNR marked vs unmarked (all frames) | worst frame | embed ms / 256 px frame | decode ms / 256 px frame |",
              "|---|---:|---:|---:|---:|"]
    for m in methods:
        lines.append(f"| {m} | {psnr[m]['psnr_db']} dB | {psnr[m]['min_frame_psnr_db']} dB | "
                     f"{ms[f'{m} embed']:.2f} | {ms[f'{m} decode']:.2f} |")
    lines += ["", f"Render (generator, 256 px, same run): {ms['render (generator, 256 px)']:.2f} ms a frame. "
                  f"Timings: one call per frame, medians of {args.rounds} round-robin rounds. Whole run {wall / 60:.1f} min."]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
