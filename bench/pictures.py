"""The README's pictures, made with the SDK exactly as a user would get them.

    python bench/pictures.py --out docs/images [--model PACKAGE] [--painting IMG --driving CLIP]

- ``demo_frames.png``: frames of ``talkinghead demo`` (the bundled default avatar, a performance
  generated in code), evenly spaced over its 8 seconds.
- ``painting.png`` (with ``--painting`` and ``--driving``): the painting, then frames of it animated
  by the clip (``model.animate``, relative motion, pasted back), with the driving frames beneath.

Every frame here is rendered on the spot; nothing is copied from the shared media into the
output except the reduced painting and driving frames shown for comparison (docs only, not shipped).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def strip(rows: list[list[np.ndarray]], height: int = 192, labels: list[str] | None = None) -> "Image":
    """Rows of RGB images, each resized to ``height`` px tall, laid out as one picture."""
    from PIL import Image, ImageDraw

    def fit(a: np.ndarray) -> Image.Image:
        im = Image.fromarray(a)
        return im.resize((max(1, round(im.width * height / im.height)), height), Image.LANCZOS)

    fitted = [[fit(a) for a in row] for row in rows]
    width = max(sum(im.width for im in row) for row in fitted)
    sheet = Image.new("RGB", (width, height * len(rows)), "white")
    for r, row in enumerate(fitted):
        x = 0
        for im in row:
            sheet.paste(im, (x, r * height))
            x += im.width
    if labels:
        draw = ImageDraw.Draw(sheet)
        for r, text in enumerate(labels):
            draw.text((4, r * height + 4), text, fill="white")
    return sheet


def pick(frames: list[np.ndarray], n: int) -> list[np.ndarray]:
    return [frames[int(i)] for i in np.linspace(0, len(frames) - 1, n).round()]


def demo_frames(model_dir: Path | None, out: Path, n: int = 6) -> Path:
    from talkinghead.cli import main as cli
    from talkinghead.video import iter_frames

    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "demo.mp4"
        argv = ["demo", "-o", str(video), "-q"] + (["--model", str(model_dir)] if model_dir else [])
        if cli(argv) != 0:
            raise SystemExit("error: talkinghead demo failed")
        frames = list(iter_frames(video))
    path = out / "demo_frames.png"
    strip([pick(frames, n)]).save(path)
    return path


def painting(model_dir: Path | None, painting_path: Path, driving: Path, out: Path, n: int = 5,
             seconds: float = 4.0) -> Path:
    import talkinghead
    from talkinghead.images import read_image
    from talkinghead.video import iter_frames

    model = talkinghead.load_model(model_dir, providers="cpu")
    avatar = model.create_avatar([painting_path])
    drive = []
    for i, f in enumerate(iter_frames(driving)):
        drive.append(f)
        if i >= 25 * seconds:
            break
    rendered = list(model.animate(avatar, drive))
    idx = np.linspace(0, len(rendered) - 1, n).round().astype(int)
    face = _box(avatar.crop, rendered[0].shape)  # the face region, where the motion is
    top = [read_image(painting_path)] + [rendered[i][face] for i in idx]
    path = out / "painting.png"
    strip([top, [np.full((8, 8, 3), 255, np.uint8)] + [drive[i] for i in idx]]).save(path)
    return path


def _box(crop, shape: tuple[int, ...]) -> tuple[slice, slice]:
    """The crop's square in image pixels, clipped to the image."""
    h, w = shape[:2]
    half = crop.size / 2
    y0, y1 = max(0, int(crop.cy - half)), min(h, int(crop.cy + half))
    x0, x1 = max(0, int(crop.cx - half)), min(w, int(crop.cx + half))
    return slice(y0, y1), slice(x0, x1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/pictures.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--model", type=Path, default=None, help="model package (default: the bundled model)")
    p.add_argument("--painting", type=Path)
    p.add_argument("--driving", type=Path)
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    print(demo_frames(args.model, args.out))
    if args.painting and args.driving:
        print(painting(args.model, args.painting, args.driving, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
