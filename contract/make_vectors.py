"""Write the conformance corpus's packages and vectors: tiny model packages, the pure-Python path's
geometry, motion and frame vectors, and the C example's inputs with the frames it must write.

    python contract/make_vectors.py            # rewrites contract/{packages,vectors,example}

Re-run only when the contract changes (the crop rule, motion transfer, the manifest, the
watermark, the exporter's graphs): ctest (no Python, no torch) and pytest (tests/sdk/test_contract.py,
tests/bindings/test_native.py) read these files, so a change to either language that the corpus
does not follow fails both suites. Vectors are raw little-endian arrays with a JSON index
(``vectors/index.json``: name -> file, dtype, shape), readable from C++ with no library.

The packages are random weights at 64 px with small widths (``contract_config``): the graphs use the
same operators as the shipped models but keep the corpus about a megabyte.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:  # `training` and `export` live at the repository root
    sys.path.insert(0, str(REPO))

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

PACKAGES = HERE / "packages"
VECTORS = HERE / "vectors"
EXAMPLE = HERE / "example"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------
# Packages
# ---------------------------------------------------------------------------------------------

def contract_config(preset: str):
    """``tiny`` / ``tiny-warp`` of training.config with narrower layers (same operators, fewer bytes)."""
    from training.config import PRESETS

    cfg = PRESETS[preset]()
    net = cfg.net
    net.embedding_dim = 32
    net.gen_down, net.gen_up = (8, 16), (8, 8)
    net.emb_widths = net.disc_widths = (8, 16, 32)
    net.gen_attention, net.emb_attention = (16,), (16,)
    return cfg


def make_package(out: Path, *, preset: str = "tiny", personalised: bool = False, seed: int = 0,
                 export_args: tuple[str, ...] = ()) -> Path:
    """A random model as a package at ``out``, through the project's exporter (``python -m export``
    with ``export_args``), so the corpus holds exactly what users get from a checkpoint."""
    import torch

    from training.checkpoint import CheckpointState, build_models, save_checkpoint

    torch.manual_seed(seed)
    models = build_models(contract_config(preset), 1)
    state = CheckpointState()
    if personalised:
        with torch.no_grad():
            models.psi = models.generator.project(torch.randn(1, models.config.net.embedding_dim))
        state.kind = "personalised"
    work = out.parent / f".{out.name}.checkpoint"
    save_checkpoint(work / "checkpoint.safetensors", models, state)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, "-m", "export", str(work / "checkpoint.safetensors"), str(out), "--overwrite",
                           *export_args],
                          cwd=REPO, env=env, capture_output=True, text=True)
    shutil.rmtree(work, ignore_errors=True)
    if proc.returncode != 0:
        raise RuntimeError(f"python -m export failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return out


def make_corrupt_package(package: Path, out: Path) -> Path:
    """A copy of ``package`` whose generator graph is broken (an operator no runtime has) while
    its header, role stamp and sha256 in the manifest are all in order: only loading it fails."""
    import onnx

    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(package, out)
    m = onnx.load(str(out / "generator.onnx"))
    m.graph.node[len(m.graph.node) // 2].op_type = "NoSuchOperator"
    onnx.save(m, str(out / "generator.onnx"))
    manifest = json.loads((out / "manifest.json").read_text())
    for v in manifest.get("variants", {}).values():
        (out / v["file"]).unlink(missing_ok=True)
    manifest["variants"] = {}
    manifest["graphs"]["generator"]["sha256"] = _sha256(out / "generator.onnx")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return out


def load_model(package: Path):
    """The Python SDK's model on a package (CPU)."""
    from talkinghead.model import TalkingHeadModel
    from talkinghead.package import ModelPackage
    from talkinghead.sessions import SessionConfig

    return TalkingHeadModel(ModelPackage.load(package), SessionConfig(providers="cpu"))


# ---------------------------------------------------------------------------------------------
# Synthetic shots and driving landmarks
# ---------------------------------------------------------------------------------------------

def template_landmarks() -> np.ndarray:
    from export.data import template_landmarks as t

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


# ---------------------------------------------------------------------------------------------
# Vectors
# ---------------------------------------------------------------------------------------------

class VectorWriter:
    """Raw little-endian arrays in a folder plus their index (name -> file, dtype, shape)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        self.index: dict = {}

    def __call__(self, name: str, arr: np.ndarray) -> None:
        a = np.ascontiguousarray(arr)
        a.astype(a.dtype.newbyteorder("<")).tofile(self.folder / f"{name}.bin")
        self.index[name] = {"file": f"{name}.bin", "dtype": str(a.dtype), "shape": list(a.shape)}

    def close(self, extra: dict) -> None:
        (self.folder / "index.json").write_text(json.dumps({**extra, **self.index}, indent=1))


def geometry_vectors(write: VectorWriter, rng: np.random.Generator, resolution: int) -> dict:
    """The crop rule, the coordinate maps and the crop warp (talkinghead.crop) on three shots and
    five free crops (some partly off the image: edge padding; some > 2x down: the box prefilter)."""
    from talkinghead.crop import crop_from_landmarks, to_normalised, to_pixels, warp_to_crop

    shots = [make_shot(rng, 96, 120, 30.0), make_shot(rng, 150, 130, 60.0), make_shot(rng, 240, 200, 100.0)]
    for i, (img, lm) in enumerate(shots):
        crop = crop_from_landmarks(lm)
        write(f"shot{i}_image", img)
        write(f"shot{i}_landmarks", lm)
        write(f"shot{i}_crop", np.array([crop.cx, crop.cy, crop.size], np.float64))
        write(f"shot{i}_crop_image", warp_to_crop(img, crop, resolution))
        write(f"shot{i}_normalised", to_normalised(lm, crop))
    big = shots[2][0]
    warps = []
    for j, (cx, cy, size, res) in enumerate([(100.0, 120.0, 250.0, 64), (-10.3, 30.7, 90.2, 64),
                                             (195.5, 235.25, 500.0, 48), (50.1, 50.9, 20.0, 64),
                                             (105.0, 125.0, 550.0, 64)]):
        crop = np.array([cx, cy, size])
        write(f"warp{j}_crop", crop)
        write(f"warp{j}_image", warp_to_crop(big, crop, res))
        warps.append({"name": f"warp{j}", "resolution": res})
    crop0 = crop_from_landmarks(shots[0][1])
    write("to_pixels_in", shots[0][1])
    write("to_pixels_out", to_pixels(to_normalised(shots[0][1], crop0), crop0))
    return {"shots": list(range(len(shots))), "warps": warps, "pastes": paste_vectors(write, np.random.default_rng(4), shots[1][0])}


def paste_vectors(write: VectorWriter, rng: np.random.Generator, frame: np.ndarray) -> list[dict]:
    """Paste-back (talkinghead.pasteback) of random crop images into ``frame``: crops inside the
    frame (upscaled), partly off it, wholly off it (nothing changes), and > 2x smaller than the crop
    image (the box prefilter), at the default feather and at 0 and 0.5."""
    from talkinghead.pasteback import DEFAULT_FEATHER, paste_back

    write("paste_frame", frame)
    cases = []
    for j, (cx, cy, size, res, feather) in enumerate([
            (60.0, 70.0, 90.0, 32, DEFAULT_FEATHER), (5.5, 140.25, 70.3, 48, DEFAULT_FEATHER),
            (400.0, 50.0, 60.0, 16, DEFAULT_FEATHER), (70.2, 80.7, 20.5, 64, DEFAULT_FEATHER),
            (64.0, 75.0, 120.0, 40, 0.0), (64.5, 74.5, 33.0, 96, 0.5)]):
        crop_image = rng.integers(0, 256, (res, res, 3), dtype=np.uint8)
        crop = np.array([cx, cy, size], np.float64)
        write(f"paste{j}_crop_image", crop_image)
        write(f"paste{j}_crop", crop)
        write(f"paste{j}_out", paste_back(frame, crop_image, crop, feather))
        cases.append({"name": f"paste{j}", "resolution": res, "feather": feather})
    return cases


def motion_and_frame_vectors(write: VectorWriter, rng: np.random.Generator, package: Path) -> None:
    """An 'adain' package: identity, frames from normalised and pixel landmarks, relative motion
    (talkinghead.motion.MotionTransfer) as landmarks and as frames."""
    from talkinghead.crop import to_pixels
    from talkinghead.motion import MotionTransfer

    model = load_model(package)
    images = [np.fromfile(write.folder / f"shot{i}_image.bin", np.uint8).reshape(write.index[f"shot{i}_image"]["shape"])
              for i in range(3)]
    lms = [np.fromfile(write.folder / f"shot{i}_landmarks.bin", np.float32).reshape(68, 2) for i in range(3)]
    avatar = model.create_avatar(images, lms)
    write("identity", avatar.identity)
    write("source_landmarks", avatar.landmarks)
    drive = driving_landmarks(rng, 5)
    write("drive_normalised", drive)
    write("frames", model.render(avatar, drive))
    drive_px = to_pixels(drive, np.array([150.0, 110.0, 140.0]))  # the same motion in a 320x240 video
    write("drive_pixels", drive_px)
    write("frames_pixels", model.render(avatar, drive_px, coords="pixels"))
    moved = MotionTransfer(avatar.landmarks, "relative")(drive_px)
    write("motion_relative", moved)
    write("frames_relative", model.render(avatar, moved))


def warp_vectors(write: VectorWriter, rng: np.random.Generator, package: Path) -> dict:
    """A 'warp' package: more shots than its reference cap (so the selection rule runs), the
    references the SDK keeps, and frames."""
    model = load_model(package)
    cap = model.package.references.cap
    shots = [make_shot(rng, 96, 84, float(rng.uniform(30, 45))) for _ in range(cap + 2)]
    for i, (img, lm) in enumerate(shots):
        write(f"warp_shot{i}_image", img)
        write(f"warp_shot{i}_landmarks", lm)
    avatar = model.create_avatar([s[0] for s in shots], [s[1] for s in shots])
    images, ref_lm = avatar.reference_inputs()
    write("warp_identity", avatar.identity)
    write("warp_ref_images", images)
    write("warp_ref_landmarks", ref_lm)
    drive = driving_landmarks(rng, 4)
    write("warp_drive_normalised", drive)
    write("warp_frames", model.render(avatar, drive))
    return {"shots": len(shots), "cap": cap}


# ---------------------------------------------------------------------------------------------
# The C example's inputs (PPM shots, landmark text files) and the frames it must write
# ---------------------------------------------------------------------------------------------

def write_ppm(path: Path, image: np.ndarray) -> None:
    """Binary PPM (P6), through Pillow, as a user would convert a photo for the C example."""
    from PIL import Image

    Image.fromarray(image).save(path, format="PPM")


def _write_points(path: Path, points: np.ndarray) -> None:
    with open(path, "w") as f:
        f.write("# x y per line, 68 lines per face (pixels)\n")
        for face in points.reshape(-1, 68, 2):
            f.writelines(f"{x:.6f} {y:.6f}\n" for x, y in face)
            f.write("\n")


def _read_points(path: Path) -> np.ndarray:
    vals = [float(v) for line in open(path) if not line.startswith("#") for v in line.split()]
    return np.array(vals, np.float32).reshape(-1, 68, 2)


def example_files(package: Path, out: Path, seed: int = 2) -> None:
    """Two shots and a driver for examples/render_ppm.c, and in ``expected/`` the frames of
    ``th_example MODEL OUT --shot ... --drive drive.txt --pixels --relative`` by the Python SDK."""
    from talkinghead.crop import to_pixels
    from talkinghead.motion import MotionTransfer

    shutil.rmtree(out, ignore_errors=True)
    (out / "expected").mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i, (h, w, face) in enumerate([(120, 100, 45.0), (150, 180, 60.0)]):
        img, lm = make_shot(rng, h, w, face)
        write_ppm(out / f"shot{i}.ppm", img)
        _write_points(out / f"shot{i}.txt", lm)
    _write_points(out / "drive.txt", to_pixels(driving_landmarks(rng, 6), np.array([320.0, 240.0, 260.0])))
    # What the example computes, from the files it reads (the text files round the points).
    from PIL import Image

    model = load_model(package)
    shots = [np.asarray(Image.open(out / f"shot{i}.ppm").convert("RGB")) for i in range(2)]
    avatar = model.create_avatar(shots, [_read_points(out / f"shot{i}.txt")[0] for i in range(2)])
    drive = _read_points(out / "drive.txt")
    for k, frame in enumerate(model.render(avatar, MotionTransfer(avatar.landmarks, "relative")(drive))):
        write_ppm(out / "expected" / f"frame_{k:04d}.ppm", frame)


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    shutil.rmtree(PACKAGES, ignore_errors=True)
    meta = make_package(PACKAGES / "model")
    personalised = make_package(PACKAGES / "personalised", personalised=True)
    make_corrupt_package(personalised, PACKAGES / "corrupt")
    # shots kept at twice the output side, as the bundled model keeps them (references.resolution)
    warp = make_package(PACKAGES / "warp", preset="tiny-warp", export_args=("--reference-scale", "2"))

    write = VectorWriter(VECTORS)
    rng = np.random.default_rng(1)
    resolution = load_model(meta).resolution
    extra = {"resolution": resolution, **geometry_vectors(write, rng, resolution)}
    motion_and_frame_vectors(write, rng, meta)
    extra["warp"] = warp_vectors(write, np.random.default_rng(3), warp)
    write.close(extra)
    example_files(meta, EXAMPLE)
    size = sum(f.stat().st_size for d in (PACKAGES, VECTORS, EXAMPLE) for f in d.rglob("*") if f.is_file())
    print(f"contract: packages, vectors and example written under {HERE} ({size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
