"""A run directory: options, a metrics log (CSV), sample grids and the loss curve as PNG."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

METRICS = "metrics.csv"


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[N,3,H,W] in [-1,1] -> [N,H,W,3] uint8."""
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().byte()
    return x.permute(0, 2, 3, 1).numpy()


def write_grid(path: Path, columns: list[torch.Tensor], max_rows: int = 4) -> None:
    """Save a PNG whose columns are image batches (e.g. shot | real | fake), one row per item."""
    cols = [to_uint8(c[:max_rows]) for c in columns]
    rows = [np.concatenate([c[i] for c in cols], axis=1) for i in range(cols[0].shape[0])]
    Image.fromarray(np.concatenate(rows, axis=0)).save(path)


class MetricsLog:
    """Appends one CSV row per logged step; on resume drops rows past the checkpoint's step."""

    def __init__(self, run_dir: Path, resume_step: int | None) -> None:
        self.path = Path(run_dir) / METRICS
        self.fields: list[str] | None = None
        if resume_step is not None and self.path.is_file():
            rows = read_metrics(self.path)
            kept = [r for r in rows if int(r["step"]) <= resume_step]
            if rows:
                self.fields = list(rows[0].keys())
                self._rewrite(kept)
        elif self.path.is_file():
            self.path.unlink()

    def _rewrite(self, rows: list[dict]) -> None:
        with self.path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.fields)
            w.writeheader()
            w.writerows(rows)

    def log(self, row: dict) -> None:
        new = not self.path.is_file()
        if self.fields is None:
            self.fields = list(row.keys())
        with self.path.open("a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.fields, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow(row)


def read_metrics(path: Path) -> list[dict]:
    with Path(path).open(newline="") as f:
        return list(csv.DictReader(f))


def plot_losses(metrics_file: Path, out_png: Path, keys: tuple[str, ...] = ("l1", "content", "loss_d", "match"),
                size: tuple[int, int] = (900, 520)) -> None:
    """A simple loss-curve PNG (one panel per key, smoothed), drawn with Pillow."""
    rows = read_metrics(metrics_file)
    if not rows:
        return
    w, h = size
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    panel_h = h // len(keys)
    steps = np.array([float(r["step"]) for r in rows])
    for p, key in enumerate(keys):
        if key not in rows[0]:
            continue
        y = np.array([float(r[key]) for r in rows])
        k = max(1, len(y) // 12)  # moving average over ~1/12 of the run
        ys = np.convolve(y, np.ones(k) / k, mode="valid")
        xs = steps[k - 1:]
        top = p * panel_h
        d.rectangle([60, top + 5, w - 10, top + panel_h - 20], outline="grey")
        lo, hi = float(ys.min()), float(ys.max())
        span = hi - lo or 1.0
        x0, x1 = float(xs.min()), float(xs.max()) or 1.0
        pts = [(60 + (x - x0) / max(x1 - x0, 1e-9) * (w - 70), top + panel_h - 20 - (v - lo) / span * (panel_h - 25))
               for x, v in zip(xs, ys)]
        if len(pts) > 1:
            d.line(pts, fill="navy", width=2)
        tenth = max(1, len(y) // 10)
        d.text((65, top + 8), f"{key} (moving average of {k} logs): first 10% {y[:tenth].mean():.3f}, "
                              f"last 10% {y[-tenth:].mean():.3f}", fill="black")
        d.text((2, top + 8), f"{hi:.3g}", fill="black")
        d.text((2, top + panel_h - 30), f"{lo:.3g}", fill="black")
    d.text((w // 2, h - 14), f"step {int(steps[0])}..{int(steps[-1])}", fill="black")
    img.save(out_png)


def write_options(run_dir: Path, options: dict) -> None:
    (Path(run_dir) / "options.json").write_text(json.dumps(options, indent=1))
