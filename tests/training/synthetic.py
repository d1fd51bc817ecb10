"""A tiny prepared dataset made by the tests: drawn faces whose landmarks are known exactly."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from export.data import template_landmarks  # noqa: F401  (the one 68-point template; re-exported for tests)


def draw_face(landmarks: np.ndarray, resolution: int, colour: tuple[int, int, int]) -> np.ndarray:
    """An RGB image of a filled face with its parts drawn, for landmarks in [-1, 1]."""
    px = (landmarks + 1) * resolution / 2 - 0.5
    img = Image.new("RGB", (resolution, resolution), (40, 40, 60))
    d = ImageDraw.Draw(img)
    d.polygon([tuple(p) for p in px[:17]] + [tuple(px[26]), tuple(px[17])], fill=colour)
    for a, b in ((36, 42), (42, 48), (48, 60)):
        d.polygon([tuple(p) for p in px[a:b]], fill=(20, 20, 20))
    return np.asarray(img)


def make_prepared_dataset(root: Path, videos: int = 3, frames: int = 12, resolution: int = 64,
                          seed: int = 0) -> Path:
    """Write ``videos`` prepared videos (training.prepare's format) of moving drawn faces."""
    rng = np.random.default_rng(seed)
    base = template_landmarks()
    root.mkdir(parents=True, exist_ok=True)
    for v in range(videos):
        folder = root / f"synthetic_{v:02d}"
        (folder / "frames").mkdir(parents=True, exist_ok=True)
        colour = tuple(int(c) for c in rng.integers(80, 255, size=3))
        lms = []
        for f in range(frames):
            lm = base.copy()
            lm[48:68, 1] += (lm[48:68, 1] - 0.36) * 1.5 * np.sin(f / 2 + v)  # mouth opens and closes
            lm += rng.normal(0, 0.01, size=2).astype(np.float32)  # head jitter
            lms.append(lm)
            Image.fromarray(draw_face(lm, resolution, colour)).save(folder / "frames" / f"{f:06d}.jpg", quality=95)
        np.save(folder / "landmarks.npy", np.stack(lms).astype(np.float32))
        (folder / "meta.json").write_text(json.dumps({"source": "synthetic", "frames": frames}))
    return root
