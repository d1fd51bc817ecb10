"""Test fixtures for the native core: a tiny model package and shared test vectors.

``make_package`` exports a tiny random model (``training.config.tiny_config``, or ``tiny-warp``: the
warp family) as a model package (docs/architecture.md, manifest schema_version 2). ``make_vectors`` writes inputs and the outputs
of the pure-Python path (talkinghead.crop + onnxruntime sessions) as raw little-endian files with a
JSON index, so the C++ tests (ctest) check the core against Python without Python at run time.

Run as a script: ``python tests/bindings/fixtures.py OUT_DIR`` writes OUT_DIR/model,
OUT_DIR/personalised, OUT_DIR/warp and OUT_DIR/vectors.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `training` lives at the repository root
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _io(name: str, shape: list) -> dict:
    return {"name": name, "dtype": "float32", "shape": shape}


def _stamp_role(path: Path, role: str) -> None:
    import onnx

    m = onnx.load(str(path))
    del m.metadata_props[:]
    entry = m.metadata_props.add()
    entry.key, entry.value = "talkinghead.role", role
    onnx.save(m, str(path))


def _export(module, args: tuple, path: Path, inputs: list[str], outputs: list[str], axis: str) -> None:
    import torch

    dyn = {n: {0: axis} for n in inputs + outputs}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and instance-norm notes
        torch.onnx.export(module, args, str(path), input_names=inputs, output_names=outputs,
                          dynamic_axes=dyn, opset_version=17, dynamo=False)


def has_exporter() -> bool:
    """Whether the project's exporter (``python -m export``) is in this checkout."""
    return (ROOT / "export" / "__main__.py").is_file() and os.environ.get("TH_FIXTURES_OWN_EXPORT") != "1"


def make_package(out: Path, *, personalised: bool = False, seed: int = 0, preset: str = "tiny") -> Path:
    """A tiny random model (the ``tiny`` or ``tiny-warp`` preset of training.config) as a package at ``out``.

    Through the project's exporter (``python -m export CHECKPOINT OUT``) when it is there, so the
    native core is tested on exactly what users get; else (or with TH_FIXTURES_OWN_EXPORT=1) with
    torch.onnx directly, writing the manifest by docs/architecture.md.
    """
    if has_exporter():
        return _export_with_exporter(Path(out), personalised=personalised, seed=seed, preset=preset)
    if preset != "tiny":
        raise ValueError(f"only the exporter writes {preset!r} packages")
    return _export_directly(Path(out), personalised=personalised, seed=seed)


def _export_with_exporter(out: Path, *, personalised: bool, seed: int, preset: str) -> Path:
    import subprocess

    import torch

    from training.checkpoint import CheckpointState, build_models, save_checkpoint
    from training.config import PRESETS

    torch.manual_seed(seed)
    models = build_models(PRESETS[preset](), 1)
    state = CheckpointState()
    if personalised:
        with torch.no_grad():
            models.psi = models.generator.project(torch.randn(1, models.config.net.embedding_dim))
        state.kind = "personalised"
    ckpt = out.parent / f"{out.name}.checkpoint" / "checkpoint.safetensors"
    save_checkpoint(ckpt, models, state)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, "-m", "export", str(ckpt), str(out), "--overwrite"], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"python -m export failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return out


def _export_directly(out: Path, *, personalised: bool, seed: int) -> Path:
    import onnx
    import torch

    from training.checkpoint import build_models
    from training.config import tiny_config
    from training.networks import PersonalisedGenerator

    torch.manual_seed(seed)
    cfg = tiny_config()
    cfg.net.spectral_norm = False  # nothing to fold
    models = build_models(cfg, 1)
    emb, gen = models.embedder.eval(), models.generator.eval()
    r, d = cfg.net.resolution, cfg.net.embedding_dim
    out.mkdir(parents=True, exist_ok=True)
    lm = torch.zeros(2, 68, 2)
    graphs: dict = {}
    if personalised:
        psi = gen.project(torch.randn(1, d))
        _export(PersonalisedGenerator(gen, psi).eval(), (lm,), out / "generator.onnx",
                ["landmarks"], ["image"], "B")
        graphs["generator"] = {"file": "generator.onnx",
                               "inputs": [_io("landmarks", ["B", 68, 2])],
                               "outputs": [_io("image", ["B", 3, r, r])]}
    else:
        _export(emb, (torch.zeros(2, 3, r, r), lm), out / "embedder.onnx",
                ["image", "landmarks"], ["embedding"], "N")
        _export(gen, (lm, torch.zeros(2, d)), out / "generator.onnx",
                ["landmarks", "identity"], ["image"], "B")
        graphs["embedder"] = {"file": "embedder.onnx",
                              "inputs": [_io("image", ["N", 3, r, r]), _io("landmarks", ["N", 68, 2])],
                              "outputs": [_io("embedding", ["N", d])]}
        graphs["generator"] = {"file": "generator.onnx",
                               "inputs": [_io("landmarks", ["B", 68, 2]), _io("identity", ["B", d])],
                               "outputs": [_io("image", ["B", 3, r, r])]}
    for role, g in graphs.items():
        p = out / g["file"]
        _stamp_role(p, role)
        m = onnx.load(str(p))
        g["sha256"] = _sha256(p)
        g["opset"] = int(next(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")))
        g["ir_version"] = int(m.ir_version)
    manifest = {
        "schema_version": 1,
        "name": "talkinghead-test-tiny" + ("-personalised" if personalised else ""),
        "version": "0.1.0",
        "size": "tiny",
        "kind": "personalised" if personalised else "meta",
        "resolution": r,
        "embedding_dim": d,
        "landmarks": {"layout": "ibug68", "count": 68, "coords": "crop_normalised",
                      "crop": {"scale": 1.7, "offset_y": -0.1}},
        "image": {"channels": "rgb", "range": [-1.0, 1.0], "layout": "nchw"},
        "graphs": graphs,
        "variants": {},
        "training": {"data": "random weights (test fixture)", "steps": 0, "content_backbone": "none"},
        "quality": {},
        "speed": {},
        "producer": {"name": "tests.bindings.fixtures", "version": "0.1.0"},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return out


# ---------------------------------------------------------------------------------------------
# The pure-Python reference path (talkinghead.crop + onnxruntime), used until talkinghead.model
# serves the same role.
# ---------------------------------------------------------------------------------------------

def _session(path: Path):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def to_uint8_hwc(images: np.ndarray) -> np.ndarray:
    """Generator output ``[B, 3, R, R]`` in [-1, 1] -> ``uint8 [B, R, R, 3]`` (as the SDK)."""
    x = np.clip((images.astype(np.float32) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


class PythonReference:
    """The pure-Python path on a package: crops, identity and frames.

    Uses ``talkinghead.model.TalkingHeadModel`` (the SDK's own path) when it can load the package,
    else onnxruntime sessions + ``talkinghead.crop`` directly (the same arithmetic).
    """

    def __init__(self, package: Path) -> None:
        self.package = Path(package)
        self.sdk = None
        try:
            from talkinghead.model import TalkingHeadModel
            from talkinghead.package import ModelPackage
            from talkinghead.sessions import SessionConfig

            self.sdk = TalkingHeadModel(ModelPackage.load(self.package), SessionConfig(providers="cpu"))
        except ImportError:
            pass
        self.manifest = json.loads((self.package / "manifest.json").read_text())
        self.resolution = int(self.manifest["resolution"])
        graphs = self.manifest["graphs"]
        self.embedder = _session(self.package / graphs["embedder"]["file"]) if "embedder" in graphs else None
        self.generator = _session(self.package / graphs["generator"]["file"])

    def crop_shot(self, image: np.ndarray, landmarks_px: np.ndarray):
        from talkinghead.crop import crop_from_landmarks, to_normalised, warp_to_crop

        crop = crop_from_landmarks(landmarks_px)
        return crop, warp_to_crop(image, crop, self.resolution), to_normalised(landmarks_px, crop)

    def identity(self, images: list[np.ndarray], landmarks_px: np.ndarray) -> np.ndarray:
        if self.sdk is not None:
            return self.sdk.create_avatar(list(images), list(landmarks_px)).identity
        crops, norms = [], []
        for img, lm in zip(images, landmarks_px):
            _, c, n = self.crop_shot(img, lm)
            crops.append(c)
            norms.append(n)
        x = np.stack(crops).astype(np.float32).transpose(0, 3, 1, 2) / np.float32(127.5) - np.float32(1.0)
        e = self.embedder.run(None, {"image": np.ascontiguousarray(x), "landmarks": np.stack(norms)})[0]
        return e.mean(axis=0).astype(np.float32)

    def render(self, landmarks: np.ndarray, identity: np.ndarray | None, coords: str = "normalised") -> np.ndarray:
        if self.sdk is not None:
            from talkinghead.avatar import Avatar

            ident = identity if identity is not None else np.zeros(0, np.float32)
            avatar = Avatar(identity=ident, landmarks=np.zeros((68, 2), np.float32), model=self.sdk.name,
                            embedding_dim=int(self.manifest["embedding_dim"]))
            return self.sdk.render(avatar, landmarks, coords=coords)
        lm = np.ascontiguousarray(landmarks, dtype=np.float32)
        if coords == "pixels":
            from talkinghead.crop import crops_from_landmarks, to_normalised

            lm = to_normalised(lm, crops_from_landmarks(lm))
        feed = {"landmarks": lm}
        if identity is not None:
            feed["identity"] = np.repeat(identity[None].astype(np.float32), len(lm), axis=0)
        return to_uint8_hwc(self.generator.run(None, feed)[0])


# ---------------------------------------------------------------------------------------------
# Synthetic shots and driving landmarks
# ---------------------------------------------------------------------------------------------

def template_landmarks() -> np.ndarray:
    sys.path.insert(0, str(ROOT / "tests" / "training"))
    try:
        from synthetic import template_landmarks as t  # type: ignore
    finally:
        sys.path.pop(0)
    return t()


def make_shot(rng: np.random.Generator, height: int, width: int, face_px: float):
    """A drawn face in an image of ``height x width``: (uint8 [H, W, 3], landmarks px [68, 2])."""
    from PIL import Image, ImageDraw

    t = template_landmarks()
    centre = np.array([width * rng.uniform(0.35, 0.65), height * rng.uniform(0.35, 0.65)])
    lm = (t * face_px / 2 + centre + rng.normal(0, face_px * 0.01, size=(68, 2))).astype(np.float32)
    img = Image.new("RGB", (width, height), tuple(int(v) for v in rng.integers(20, 90, 3)))
    d = ImageDraw.Draw(img)
    colour = tuple(int(v) for v in rng.integers(120, 250, 3))
    d.polygon([tuple(map(float, p)) for p in lm[:17]] + [tuple(map(float, lm[26])), tuple(map(float, lm[17]))],
              fill=colour)
    for a, b in ((36, 42), (42, 48), (48, 60)):
        d.polygon([tuple(map(float, p)) for p in lm[a:b]], fill=(20, 20, 20))
    arr = np.asarray(img).copy()
    arr += rng.integers(0, 12, size=arr.shape, dtype=np.uint8)  # texture, so sampling matters
    return arr, lm


def driving_landmarks(rng: np.random.Generator, frames: int) -> np.ndarray:
    """Crop-normalised driving landmarks ``[F, 68, 2]``: a mouth that opens and a moving head."""
    base = template_landmarks()
    out = []
    for f in range(frames):
        lm = base.copy()
        lm[48:68, 1] += (lm[48:68, 1] - 0.36) * 1.5 * np.sin(f / 2)
        lm += rng.normal(0, 0.01, size=2).astype(np.float32)
        out.append(lm)
    return np.stack(out).astype(np.float32)


def relative_motion(source: np.ndarray, driver_px: np.ndarray) -> np.ndarray:
    """talkinghead.motion.MotionTransfer (relative, first frame as reference) on pixel landmarks."""
    try:
        from talkinghead.motion import MotionTransfer
    except ImportError:
        MotionTransfer = None
    if MotionTransfer is not None:
        return MotionTransfer(source, "relative")(driver_px)
    from talkinghead.crop import crop_from_landmarks, to_normalised

    ref_crop = crop_from_landmarks(driver_px[0])
    ref = to_normalised(driver_px[0], ref_crop)
    size = lambda p: float(np.max(p.max(axis=0) - p.min(axis=0)))  # noqa: E731
    scale = size(source) / max(size(ref), 1e-6)
    return (source + (to_normalised(driver_px, ref_crop) - ref) * scale).astype(np.float32)


def _write(folder: Path, name: str, arr: np.ndarray, index: dict) -> None:
    a = np.ascontiguousarray(arr)
    a.astype(a.dtype.newbyteorder("<")).tofile(folder / f"{name}.bin")
    index[name] = {"file": f"{name}.bin", "dtype": str(a.dtype), "shape": list(a.shape)}


def make_corrupt_package(package: Path, out: Path) -> Path:
    """A copy of ``package`` whose generator graph is broken (an operator no runtime has) while
    its header, role stamp and sha256 in the manifest are all in order: only loading it fails."""
    import shutil

    import onnx

    out = Path(out)
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(package, out)
    m = onnx.load(str(out / "generator.onnx"))
    m.graph.node[len(m.graph.node) // 2].op_type = "NoSuchOperator"
    onnx.save(m, str(out / "generator.onnx"))
    manifest_variants = json.loads((out / "manifest.json").read_text()).get("variants", {})
    for v in manifest_variants.values():
        (out / v["file"]).unlink(missing_ok=True)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["variants"] = {}
    manifest["graphs"]["generator"]["sha256"] = _sha256(out / "generator.onnx")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return out


def make_vectors(package: Path, out: Path, seed: int = 1) -> Path:
    """Inputs and Python-path outputs for the C++ tests (``out/index.json`` + raw files)."""
    from talkinghead.crop import crop_from_landmarks, to_normalised, to_pixels, warp_to_crop

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ref = PythonReference(package)
    r = ref.resolution
    index: dict = {"resolution": r, "shots": [], "warps": []}
    # Shots: one upscaled (face smaller than the crop), one mild, one >2x downscale (box prefilter).
    shots = [make_shot(rng, 96, 120, 30.0), make_shot(rng, 150, 130, 60.0), make_shot(rng, 480, 400, 200.0)]
    for i, (img, lm) in enumerate(shots):
        crop = crop_from_landmarks(lm)
        _write(out, f"shot{i}_image", img, index)
        _write(out, f"shot{i}_landmarks", lm, index)
        _write(out, f"shot{i}_crop", np.array([crop.cx, crop.cy, crop.size], np.float64), index)
        _write(out, f"shot{i}_crop_image", warp_to_crop(img, crop, r), index)
        _write(out, f"shot{i}_normalised", to_normalised(lm, crop), index)
        index["shots"].append(i)
    # Extra warps: random crops at several scales, some partly outside the image (edge padding).
    big = shots[2][0]
    for j, (cx, cy, size, res) in enumerate([(200.0, 240.0, 500.0, 64), (-10.3, 30.7, 90.2, 64),
                                             (390.5, 470.25, 1000.0, 48), (100.1, 100.9, 40.0, 64),
                                             (210.0, 250.0, 1100.0, 64)]):
        crop = np.array([cx, cy, size])
        _write(out, f"warp{j}_crop", crop, index)
        _write(out, f"warp{j}_image", warp_to_crop(big, crop, res), index)
        index["warps"].append({"name": f"warp{j}", "resolution": res})
    # to_pixels round trip
    _write(out, "to_pixels_in", shots[0][1], index)
    crop0 = crop_from_landmarks(shots[0][1])
    _write(out, "to_pixels_out", to_pixels(to_normalised(shots[0][1], crop0), crop0), index)
    if ref.embedder is not None:
        identity = ref.identity([s[0] for s in shots], np.stack([s[1] for s in shots]))
        _write(out, "identity", identity, index)
        drive = driving_landmarks(rng, 5)
        _write(out, "drive_normalised", drive, index)
        _write(out, "frames", ref.render(drive, identity), index)
        # The same motion in the pixels of a 320x240 driving video, and relative motion.
        crop = np.array([150.0, 110.0, 140.0])
        drive_px = to_pixels(drive, crop)
        _write(out, "drive_pixels", drive_px, index)
        _write(out, "frames_pixels", ref.render(drive_px, identity, coords="pixels"), index)
        source = to_normalised(shots[0][1], crop_from_landmarks(shots[0][1]))
        _write(out, "source_landmarks", source, index)
        _write(out, "frames_relative", ref.render(relative_motion(source, drive_px), identity), index)
    (out / "index.json").write_text(json.dumps(index, indent=1))
    return out


def add_warp_vectors(package: Path, out: Path, seed: int = 3) -> Path:
    """A 'warp' package's vectors, added to ``out/index.json``: more shots than its reference cap
    (so the selection rule runs), the references the SDK keeps, and frames."""
    from talkinghead.model import TalkingHeadModel
    from talkinghead.package import ModelPackage
    from talkinghead.sessions import SessionConfig

    out = Path(out)
    index = json.loads((out / "index.json").read_text())
    rng = np.random.default_rng(seed)
    sdk = TalkingHeadModel(ModelPackage.load(Path(package)), SessionConfig(providers="cpu"))
    cap = sdk.package.references.cap
    shots = [make_shot(rng, 160, 140, float(rng.uniform(50, 80))) for _ in range(cap + 2)]
    for i, (img, lm) in enumerate(shots):
        _write(out, f"warp_shot{i}_image", img, index)
        _write(out, f"warp_shot{i}_landmarks", lm, index)
    avatar = sdk.create_avatar([s[0] for s in shots], [s[1] for s in shots])
    images, ref_lm = avatar.reference_inputs()
    _write(out, "warp_identity", avatar.identity, index)
    _write(out, "warp_ref_images", images, index)
    _write(out, "warp_ref_landmarks", ref_lm, index)
    drive = driving_landmarks(rng, 4)
    _write(out, "warp_drive_normalised", drive, index)
    _write(out, "warp_frames", sdk.render(avatar, drive), index)
    index["warp"] = {"shots": len(shots), "cap": cap}
    (out / "index.json").write_text(json.dumps(index, indent=1))
    return out


REAL_PHOTO = ROOT.parent / "shared" / "data" / "faces" / "aaai22_AdamSchiff.jpg"


def real_photo():
    """(uint8 [H, W, 3], landmarks [68, 2]) of a real face photo, or None when the shared data or
    the landmark extra (dlib) is not there."""
    if not REAL_PHOTO.is_file():
        return None
    try:
        from talkinghead.images import read_image
        from talkinghead.landmarks import detect_landmarks

        img = read_image(REAL_PHOTO)
        return img, np.asarray(detect_landmarks(img).points, np.float32)
    except Exception as exc:  # noqa: BLE001 - optional: fall back to the drawn face
        print(f"note: no real photo for the example ({type(exc).__name__}: {exc}); using a drawn face")
        return None


def write_ppm(path: Path, image: np.ndarray) -> None:
    """Binary PPM (P6), through Pillow, as a user would convert a photo for the C example."""
    from PIL import Image

    Image.fromarray(image).save(path, format="PPM")


def read_ppm(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


def _write_points(path: Path, points: np.ndarray) -> None:
    with open(path, "w") as f:
        f.write("# x y per line, 68 lines per face (pixels)\n")
        for face in points.reshape(-1, 68, 2):
            f.writelines(f"{x:.6f} {y:.6f}\n" for x, y in face)
            f.write("\n")


def _read_points(path: Path) -> np.ndarray:
    vals = [float(v) for line in open(path) if not line.startswith("#") for v in line.split()]
    return np.array(vals, np.float32).reshape(-1, 68, 2)


def make_example_inputs(root: Path, seed: int = 2) -> Path:
    """Shots as PPM files + landmark text files, and a driver's landmarks, for examples/render_ppm.c."""
    ex = Path(root) / "example"
    ex.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i, (h, w, face) in enumerate([(240, 200, 90.0), (300, 360, 120.0)]):
        img, lm = make_shot(rng, h, w, face)
        write_ppm(ex / f"shot{i}.ppm", img)
        _write_points(ex / f"shot{i}.txt", lm)
    photo = real_photo()
    if photo is not None:  # a real photo as the first shot, converted to PPM as a user would
        img, lm = photo
        write_ppm(ex / "shot0.ppm", img)
        _write_points(ex / "shot0.txt", lm)
        print("example shot0: a real photo from ../shared/data with dlib landmarks")
    from talkinghead.crop import to_pixels

    drive_px = to_pixels(driving_landmarks(rng, 6), np.array([320.0, 240.0, 260.0]))
    _write_points(ex / "drive.txt", drive_px)
    return ex


def check_example(root: Path) -> int:
    """Compare the C example's frames with the pure-Python path (max abs difference <= 1)."""
    ex = Path(root) / "example"
    ref = PythonReference(Path(root) / "model")
    images = [read_ppm(ex / f"shot{i}.ppm") for i in range(2)]
    lms = np.stack([_read_points(ex / f"shot{i}.txt")[0] for i in range(2)])
    identity = ref.identity(images, lms)
    from talkinghead.crop import crop_from_landmarks, to_normalised

    source = to_normalised(lms[0], crop_from_landmarks(lms[0]))
    drive = _read_points(ex / "drive.txt")
    want = ref.render(relative_motion(source, drive), identity)
    frames = sorted((ex / "out").glob("frame_*.ppm"))
    if len(frames) != len(want):
        print(f"FAIL: the example wrote {len(frames)} frames, expected {len(want)}")
        return 1
    worst = max(int(np.abs(read_ppm(f).astype(int) - w.astype(int)).max()) for f, w in zip(frames, want))
    print(f"example frames vs Python: max abs difference {worst} over {len(frames)} frames")
    return 0 if worst <= 1 else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="output folder (model/, personalised/, vectors/, example/)")
    ap.add_argument("--example-only", action="store_true", help="only write the C example's inputs")
    ap.add_argument("--check-example", action="store_true", help="compare the C example's output with Python")
    args = ap.parse_args(argv)
    if args.check_example:
        return check_example(args.out)
    if args.example_only:
        make_example_inputs(args.out)
        return 0
    make_package(args.out / "model")
    make_package(args.out / "personalised", personalised=True)
    make_corrupt_package(args.out / "model", args.out / "corrupt")
    make_vectors(args.out / "model", args.out / "vectors")
    if has_exporter():
        make_package(args.out / "warp", preset="tiny-warp")
        add_warp_vectors(args.out / "warp", args.out / "vectors")
    print(f"fixtures written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
