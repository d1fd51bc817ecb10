"""The classical baselines of bench/quality.py: piecewise-affine warping of face crops.

A shot's crop is warped onto a target's landmarks: both point sets (68 landmarks plus fixed points
on the crop border, in crop-normalised coordinates) share one Delaunay triangulation (of the
target's points), and every output pixel takes the affine map of the triangle it lies in. No
learning: every pixel it shows is a real pixel of the shot, moved.

Multi-shot forms: ``warp_shots`` warps every shot onto one target (one triangulation), ``blend``
averages those warps with ``blend_weights`` (softmax of minus the shots' mean landmark distance to
the target over a temperature), ``best_warp`` picks the warp that scores best against a reference
(the bench's oracle, which sees the real frame).

Numpy only (the Delaunay triangulation is a small Bowyer-Watson, ~90 points).
"""
from __future__ import annotations

import numpy as np

from training import face_mesh
from training.face_mesh import BORDER_PER_SIDE

__all__ = ["border_points", "delaunay", "piecewise_affine_warp", "warp_face", "warp_shots", "landmark_distances",
           "blend_weights", "blend", "to_uint8", "best_warp"]


def border_points(per_side: int = BORDER_PER_SIDE) -> np.ndarray:
    """Fixed points on the crop square's border [-1, 1]^2 (``4 * per_side``, corners included), float64
    [P, 2]: the warp family's (training/face_mesh.py), so the baseline and the model pin the same edge."""
    return np.asarray(face_mesh.border_points(per_side), np.float64)


def _circumcircle(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[float, float, float]:
    d = 2.0 * (a[0] * (b[1] - c[1]) + b[0] * (c[1] - a[1]) + c[0] * (a[1] - b[1]))
    if abs(d) < 1e-18:
        return 0.0, 0.0, np.inf
    a2, b2, c2 = a @ a, b @ b, c @ c
    ux = (a2 * (b[1] - c[1]) + b2 * (c[1] - a[1]) + c2 * (a[1] - b[1])) / d
    uy = (a2 * (c[0] - b[0]) + b2 * (a[0] - c[0]) + c2 * (b[0] - a[0])) / d
    return ux, uy, (a[0] - ux) ** 2 + (a[1] - uy) ** 2


def delaunay(points: np.ndarray) -> np.ndarray:
    """Delaunay triangulation (Bowyer-Watson) of points [N, 2] -> int64 [T, 3] vertex indices.

    Duplicate points are triangulated once (the first of them is used); a tiny deterministic
    jitter breaks exact co-circular ties.
    """
    pts = np.asarray(points, dtype=np.float64)
    n = len(pts)
    if n < 3:
        return np.zeros((0, 3), np.int64)
    span = float(np.ptp(pts, axis=0).max()) or 1.0
    rng = np.random.default_rng(12345)
    work = pts + rng.uniform(-1e-9, 1e-9, pts.shape) * span
    # Skip exact duplicates.
    _, first = np.unique(np.round(pts / span, 12), axis=0, return_index=True)
    order = np.sort(first)
    centre = work.mean(axis=0)
    big = 50.0 * span
    verts = np.concatenate([work, centre + np.array([[-big, -big], [big, -big], [0.0, big]])])
    s0, s1, s2 = n, n + 1, n + 2
    tris: list[tuple[int, int, int]] = [(s0, s1, s2)]
    circ = [_circumcircle(verts[s0], verts[s1], verts[s2])]
    for i in order:
        p = verts[i]
        bad = [t for t, (ux, uy, r2) in enumerate(circ) if (p[0] - ux) ** 2 + (p[1] - uy) ** 2 < r2]
        edges: dict[tuple[int, int], int] = {}
        for t in bad:
            a, b, c = tris[t]
            for e in ((a, b), (b, c), (c, a)):
                key = (min(e), max(e))
                edges[key] = edges.get(key, 0) + 1
        keep = sorted(set(range(len(tris))) - set(bad))
        tris = [tris[t] for t in keep]
        circ = [circ[t] for t in keep]
        for (a, b), count in edges.items():
            if count == 1:
                tris.append((a, b, int(i)))
                circ.append(_circumcircle(verts[a], verts[b], verts[i]))
    out = np.array([t for t in tris if max(t) < n], dtype=np.int64).reshape(-1, 3)
    return out


def _bilinear(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear samples of image [H, W, C] at pixel coordinates (edge padding) -> float32 [N, C]."""
    h, w = image.shape[:2]
    x = np.clip(x, 0, w - 1)
    y = np.clip(y, 0, h - 1)
    x0 = np.floor(x).astype(np.int64)
    y0 = np.floor(y).astype(np.int64)
    x1 = np.minimum(x0 + 1, w - 1)
    y1 = np.minimum(y0 + 1, h - 1)
    wx = (x - x0)[:, None].astype(np.float32)
    wy = (y - y0)[:, None].astype(np.float32)
    img = image.astype(np.float32)
    top = img[y0, x0] * (1 - wx) + img[y0, x1] * wx
    bot = img[y1, x0] * (1 - wx) + img[y1, x1] * wx
    return top * (1 - wy) + bot * wy


def piecewise_affine_warp(image: np.ndarray, src_points: np.ndarray, dst_points: np.ndarray,
                          triangles: np.ndarray | None = None) -> np.ndarray:
    """Warp ``image`` [R, R, C] so that ``src_points`` land on ``dst_points``.

    Points are in crop-normalised coordinates (the image spans [-1, 1]^2 on the pixel-centre
    grid). The triangulation (default: Delaunay of ``dst_points``) must cover the crop square;
    output pixels in no triangle keep the source pixel at the same place.
    """
    img = np.asarray(image)
    r_h, r_w = img.shape[:2]
    src = np.asarray(src_points, np.float64)
    dst = np.asarray(dst_points, np.float64)
    tri = delaunay(dst) if triangles is None else np.asarray(triangles, np.int64)
    # To output pixel coordinates (centre of pixel j at u = (2j + 1)/R - 1).
    scale = np.array([r_w / 2.0, r_h / 2.0])
    d_px = (dst + 1.0) * scale - 0.5
    s_px = (src + 1.0) * scale - 0.5
    map_x = np.tile(np.arange(r_w, dtype=np.float64), (r_h, 1))
    map_y = np.tile(np.arange(r_h, dtype=np.float64)[:, None], (1, r_w))
    done = np.zeros((r_h, r_w), bool)
    eps = 1e-9
    for a, b, c in tri:
        p0, p1, p2 = d_px[a], d_px[b], d_px[c]
        m = np.array([[p1[0] - p0[0], p2[0] - p0[0]], [p1[1] - p0[1], p2[1] - p0[1]]])
        det = m[0, 0] * m[1, 1] - m[0, 1] * m[1, 0]
        if abs(det) < 1e-12:
            continue
        lo = np.floor(np.minimum(np.minimum(p0, p1), p2)).astype(int)
        hi = np.ceil(np.maximum(np.maximum(p0, p1), p2)).astype(int)
        x0, y0 = max(lo[0], 0), max(lo[1], 0)
        x1, y1 = min(hi[0], r_w - 1), min(hi[1], r_h - 1)
        if x1 < x0 or y1 < y0:
            continue
        ys, xs = np.mgrid[y0:y1 + 1, x0:x1 + 1]
        dx, dy = xs - p0[0], ys - p0[1]
        inv = np.array([[m[1, 1], -m[0, 1]], [-m[1, 0], m[0, 0]]]) / det
        l1 = inv[0, 0] * dx + inv[0, 1] * dy
        l2 = inv[1, 0] * dx + inv[1, 1] * dy
        inside = (l1 >= -eps) & (l2 >= -eps) & (l1 + l2 <= 1 + eps) & ~done[y0:y1 + 1, x0:x1 + 1]
        if not inside.any():
            continue
        q0, q1, q2 = s_px[a], s_px[b], s_px[c]
        sx = q0[0] + l1 * (q1[0] - q0[0]) + l2 * (q2[0] - q0[0])
        sy = q0[1] + l1 * (q1[1] - q0[1]) + l2 * (q2[1] - q0[1])
        ry, rx = ys[inside], xs[inside]
        map_x[ry, rx] = sx[inside]
        map_y[ry, rx] = sy[inside]
        done[ry, rx] = True
    flat = _bilinear(img, map_x.reshape(-1), map_y.reshape(-1)).reshape(r_h, r_w, -1)
    if img.dtype == np.uint8:
        return np.clip(flat + 0.5, 0, 255).astype(np.uint8)
    return flat.astype(img.dtype)


def warp_face(shot_crop: np.ndarray, shot_landmarks: np.ndarray, target_landmarks: np.ndarray,
              per_side: int = 4) -> np.ndarray:
    """The `warp` method: a shot's crop [R, R, 3] with its crop-normalised landmarks [68, 2],
    warped onto the target's crop-normalised landmarks [68, 2] (plus fixed border points)."""
    border = border_points(per_side)
    src = np.concatenate([np.asarray(shot_landmarks, np.float64), border])
    dst = np.concatenate([np.asarray(target_landmarks, np.float64), border])
    return piecewise_affine_warp(shot_crop, src, dst)


def warp_shots(shot_crops: np.ndarray, shot_landmarks: np.ndarray, target_landmarks: np.ndarray,
               per_side: int = 4) -> np.ndarray:
    """Every shot crop [K, R, R, 3] warped onto the target's landmarks, unrounded: float32 [K, R, R, 3].

    ``to_uint8`` of warp i equals ``warp_face`` of shot i (the same triangulation and samples)."""
    border = border_points(per_side)
    dst = np.concatenate([np.asarray(target_landmarks, np.float64), border])
    tri = delaunay(dst)
    return np.stack([piecewise_affine_warp(np.asarray(crop, np.float32),
                                           np.concatenate([np.asarray(lm, np.float64), border]), dst, tri)
                     for crop, lm in zip(shot_crops, shot_landmarks)])


def landmark_distances(shot_landmarks: np.ndarray, target_landmarks: np.ndarray) -> np.ndarray:
    """Mean point distance of each shot's landmarks [K, 68, 2] to the target's [68, 2] -> [K]."""
    diff = np.asarray(shot_landmarks, np.float64) - np.asarray(target_landmarks, np.float64)[None]
    return np.linalg.norm(diff, axis=-1).mean(axis=-1)


def blend_weights(distances: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(-distance / temperature) over the shots [K]."""
    if not temperature > 0:
        raise ValueError(f"blend temperature must be > 0, got {temperature}")
    d = np.asarray(distances, np.float64)
    w = np.exp(-(d - d.min()) / temperature)
    return w / w.sum()


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Round a float image to uint8 as the warp does."""
    return np.clip(np.asarray(image, np.float32) + 0.5, 0, 255).astype(np.uint8)


def blend(warps: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted sum of warped shots [K, R, R, 3] -> uint8 [R, R, 3]."""
    return to_uint8(np.tensordot(np.asarray(weights, np.float64), np.asarray(warps, np.float64), axes=1))


def best_warp(warps: np.ndarray, reference: np.ndarray, score) -> int:
    """Index of the warp (rounded to uint8) with the highest ``score(warp, reference)``."""
    return int(np.argmax([score(to_uint8(w), reference) for w in warps]))
