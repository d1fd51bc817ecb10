"""An invisible watermark on every frame the SDK writes: a tiled spread-spectrum pattern in the
luminance, found again after re-encoding, scaling, cropping, brightness changes and resampling.

Method (spread spectrum in the spatial domain, after Cox et al. 1997, "Secure spread spectrum
watermarking for multimedia", with a tiled template for geometric synchronisation in the manner of
Kutter 1998, "Watermarking resisting to translation, rotation and scaling"):

- A 64 x 64 *tile* is the sum of a sync pattern S and one pattern P_k per payload bit, signed by the
  bit; each pattern is smooth (a 16 x 16 grid of random +-1 values, bilinearly upsampled by 4), so its
  energy sits at low and middle frequencies that survive H.264 and downscaling; the patterns are
  made orthonormal (QR), and the detector decodes the bits jointly (least squares).
- The tile repeats over the frame on a grid measured in units of the frame's height (one period is
  1/4 of the height: 64 px at 256 px, 128 px at 512), and is added to the luminance (the same
  offset to R, G and B) with amplitude ``strength`` levels: PSNR about 40.4 dB at the default.
- Detection resizes the frame to 256 px tall, then for each candidate scale (a crop or a resample
  changes the period) folds the luminance modulo the period (averaging every tile: the image
  averages out, the pattern adds up), and finds the cyclic shift of the *known part* of the tile
  (the sync pattern plus the patterns of the 8 tag bits, 3/4 of the mark's energy) by FFT
  correlation, then reads the 16 bits there (high-passed templates, solved jointly). A video folds
  its frames together before deciding. ``confidence`` is the peak's z-score against the rest of the
  correlation surface, after the template's own side lobes (its autocorrelation, scaled to the
  peak) are taken out of that surface: a strong mark no longer raises its own noise estimate. The
  mark is "found" when the z-score reaches FOUND_Z; the model id is reported when the decoded tag
  also matches. bench/watermark.py checks the threshold against every real clip and photo in the
  shared data (no false positive allowed). Correlating with sync and tag together, and taking out
  the side lobes, raised the z-score after H.264 at CRF 28 from about 6.2 to about 8.3 on the
  bench's videos with the same marks (docs/watermark.md).

Payload (16 bits): the project tag 0xA7 (8 bits) and an 8-bit id of the model name and version
(:func:`model_id`): 8 bits of id tell models apart, not prove which one (the container tags name it).
Pure numpy. Measured by bench/watermark.py (docs/watermark.md).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

TILE = 64           # pattern period at the canonical height
CANONICAL = 256     # detection works at this frame height
GRID = 16           # random values per tile side before upsampling
TAG = 0xA7          # project tag: the top 8 bits of the payload
TAG_BITS, ID_BITS = 8, 8
BITS = TAG_BITS + ID_BITS
STRENGTH = 2.5      # amplitude in 8-bit levels (PSNR ~40.4 dB)
SYNC_SHARE = 0.5    # share of the amplitude spent on the sync pattern
SCALES = (1.0, 0.95, 1.05, 0.9, 1.11, 0.85, 1.18, 0.8, 1.25)  # period / TILE candidates
FOUND_Z = 6.3       # z-score of the sync-and-tag correlation peak needed to call a mark found
SEED = 20191125     # fixed: the patterns are part of the format


class SplitMix64:
    """The patterns' random source (Steele et al. 2014): tiny, exact in any language, so the C++ core
    (bindings/src/watermark.cpp) makes the same patterns."""

    MASK = (1 << 64) - 1

    def __init__(self, seed: int) -> None:
        self.state = seed & self.MASK

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & self.MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & self.MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & self.MASK
        return z ^ (z >> 31)


def _smooth_pattern(rng: SplitMix64) -> np.ndarray:
    """A periodic TILE x TILE pattern from a GRID x GRID grid of random +-1 (the top bit of each
    draw, row-major), bilinearly upsampled; float64."""
    g = np.array([1.0 if rng.next() >> 63 else -1.0 for _ in range(GRID * GRID)]).reshape(GRID, GRID)
    f = TILE // GRID
    t = (np.arange(TILE) + 0.5) / f - 0.5
    i0 = np.floor(t).astype(int)
    w = t - i0
    rows = g[i0 % GRID] * (1 - w)[:, None] + g[(i0 + 1) % GRID] * w[:, None]
    return rows[:, i0 % GRID] * (1 - w)[None] + rows[:, (i0 + 1) % GRID] * w[None]


def _patterns() -> tuple[np.ndarray, np.ndarray]:
    """The sync pattern and the data patterns: smooth random patterns made zero-mean and
    orthonormal by modified Gram-Schmidt in order (the bits do not leak into one another), then
    scaled to unit RMS. Plain loops in float64, mirrored line for line in C++."""
    rng = SplitMix64(SEED)
    vs = [_smooth_pattern(rng).ravel() for _ in range(BITS + 1)]
    out = []
    for v in vs:
        v = v - v.mean()
        for u in out:
            v = v - np.dot(u, v) * u
        out.append(v / np.sqrt(np.dot(v, v)))
    pats = np.stack(out).reshape(BITS + 1, TILE, TILE) * TILE  # unit RMS: |v| = 1 over TILE^2 values
    return pats[0], pats[1:]


SYNC, DATA = _patterns()
HIGHPASS = 5  # box size of the detector's high-pass (the picture's own low frequencies go)


def _periodic_highpass(p: np.ndarray) -> np.ndarray:
    """A tile minus its periodic HIGHPASS x HIGHPASS box average: what a pattern looks like after
    the detector's high-pass (the matched templates)."""
    k = HIGHPASS
    f = np.fft.fft2(p)
    box = np.zeros_like(p)
    idx = np.arange(k) - k // 2
    box[np.ix_(idx % TILE, idx % TILE)] = 1.0 / (k * k)
    return p - np.real(np.fft.ifft2(f * np.fft.fft2(box)))


SYNC_T = _periodic_highpass(SYNC)
DATA_T = np.stack([_periodic_highpass(d) for d in DATA])
# Zero-forcing decoder: the high-pass makes the filtered patterns slightly non-orthogonal, so the
# coefficients are solved for jointly (least squares on the sync and data templates).
_BASIS = np.concatenate([SYNC_T[None], DATA_T]).reshape(BITS + 1, -1)
_DECODE = np.linalg.solve(_BASIS @ _BASIS.T, _BASIS)  # [33, 1024]: tile -> coefficients
EXCLUDE = 5  # the peak's own lobe (smooth patterns correlate with their neighbours) left out of its z


def _known_template() -> np.ndarray:
    """The high-passed part of every tile that does not depend on the model: the sync pattern and the
    tag bits' patterns, weighted as :func:`tile_for` weights them (the model id's bits are left out)."""
    tag = np.tensordot(payload_bits(0)[:TAG_BITS], DATA[:TAG_BITS], axes=1) / np.sqrt(BITS)
    return np.sqrt(SYNC_SHARE) * SYNC_T + np.sqrt(1 - SYNC_SHARE) * _periodic_highpass(tag)


def _side_lobes(template: np.ndarray) -> np.ndarray:
    """The template's cyclic autocorrelation, 1 at zero shift, zero-mean: the shape its correlation
    peak has around the true shift, which :func:`_peak_z` removes before measuring the noise."""
    f = np.fft.fft2(template)
    auto = np.real(np.fft.ifft2(f * np.conj(f)))
    auto = auto / auto[0, 0]
    return auto - auto.mean()


def model_id(name: str, version: str) -> int:
    """The 8-bit id of a model package (name and version) that the payload carries."""
    digest = hashlib.sha256(f"{name}\0{version}".encode()).digest()
    return int.from_bytes(digest[:4], "big") >> (32 - ID_BITS)


def payload_bits(ident: int) -> np.ndarray:
    """The 16 payload bits (tag then id), as +-1."""
    value = (TAG << ID_BITS) | (ident & ((1 << ID_BITS) - 1))
    return np.array([1.0 if (value >> (BITS - 1 - k)) & 1 else -1.0 for k in range(BITS)])


KNOWN_T = _known_template()
_KNOWN_F = np.conj(np.fft.fft2(KNOWN_T))
_LOBES = _side_lobes(KNOWN_T)


def tile_for(ident: int) -> np.ndarray:
    """The TILE x TILE tile that carries ``ident`` (sync plus the signed data patterns), unit-scaled."""
    bits = payload_bits(ident)
    data = np.tensordot(bits, DATA, axes=1) / np.sqrt(BITS)
    return np.sqrt(SYNC_SHARE) * SYNC + np.sqrt(1 - SYNC_SHARE) * data


@dataclass
class Marker:
    """Adds the mark of one model to frames of any size (the per-size offset plane is cached)."""

    ident: int
    strength: float = STRENGTH

    def __post_init__(self) -> None:
        self._tile = tile_for(self.ident)
        self._cache: dict[tuple[int, int], np.ndarray] = {}

    def plane(self, height: int, width: int) -> np.ndarray:
        """The offset [H, W, 1] (int16, rounded) added to each channel of a frame of this size."""
        key = (height, width)
        plane = self._cache.get(key)  # one read: another thread may clear the cache meanwhile
        if plane is None:
            period = TILE * height / CANONICAL  # pixels per tile in this frame
            u = ((np.arange(width) + 0.5) / period * TILE) % TILE
            v = ((np.arange(height) + 0.5) / period * TILE) % TILE
            if len(self._cache) > 8:
                self._cache.clear()
            plane = np.round(self.strength * _sample_periodic(self._tile, v, u)).astype(np.int16)[:, :, None]
            self._cache[key] = plane
        return plane

    def mark(self, frame: np.ndarray) -> np.ndarray:
        """A marked copy of an RGB uint8 frame [H, W, 3] (integer arithmetic: ~1.4 ms at 512 px)."""
        out = frame.astype(np.int16)
        out += self.plane(frame.shape[0], frame.shape[1])
        np.clip(out, 0, 255, out=out)
        return out.astype(np.uint8)


def _sample_periodic(tile: np.ndarray, v: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Bilinear samples of a periodic tile at rows ``v`` and columns ``u`` (tile units)."""
    n = tile.shape[0]
    v0, u0 = np.floor(v - 0.5).astype(int), np.floor(u - 0.5).astype(int)
    wv, wu = v - 0.5 - v0, u - 0.5 - u0
    r0, r1 = tile[v0 % n], tile[(v0 + 1) % n]
    rows = r0 * (1 - wv)[:, None] + r1 * wv[:, None]
    return rows[:, u0 % n] * (1 - wu)[None] + rows[:, (u0 + 1) % n] * wu[None]


# ---- detection ------------------------------------------------------------------------------------


def _luma(frame: np.ndarray) -> np.ndarray:
    f = frame.astype(np.float32)
    return 0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2]


def _resize(gray: np.ndarray, height: int, width: int) -> np.ndarray:
    """Area-averaging when shrinking, bilinear when growing (numpy only)."""
    h, w = gray.shape
    ys = (np.arange(height) + 0.5) * h / height - 0.5
    xs = (np.arange(width) + 0.5) * w / width - 0.5
    k = int(min(h / height, w / width))
    if k >= 2:  # box-filter first, as a scaler would
        hh, ww = (h // k) * k, (w // k) * k
        gray = gray[:hh, :ww].reshape(hh // k, k, ww // k, k).mean((1, 3))
        return _resize(gray, height, width)
    y0 = np.clip(np.floor(ys).astype(int), 0, h - 1)
    x0 = np.clip(np.floor(xs).astype(int), 0, w - 1)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    wy, wx = np.clip(ys - y0, 0, 1), np.clip(xs - x0, 0, 1)
    rows = gray[y0] * (1 - wy)[:, None] + gray[y1] * wy[:, None]
    return rows[:, x0] * (1 - wx)[None] + rows[:, x1] * wx[None]


def fold(frame: np.ndarray) -> dict[float, np.ndarray]:
    """Per candidate scale, the frame's high-passed luminance folded onto one TILE x TILE period."""
    gray = _luma(frame) if frame.ndim == 3 else frame.astype(np.float32)
    h, w = gray.shape
    width = max(TILE, int(round(w * CANONICAL / h)))
    base = _resize(gray, CANONICAL, width)
    # remove the picture's own low frequencies (the pattern's period is 32 px; keep what is finer)
    blur = _box(base, HIGHPASS)
    base = base - blur
    out = {}
    for s in SCALES:
        hh, ww = int(round(CANONICAL / s)), int(round(width / s))
        g = _resize(base, hh, ww) if s != 1.0 else base
        nh, nw = (hh // TILE) * TILE, (ww // TILE) * TILE
        if nh < TILE or nw < TILE:
            continue
        out[s] = g[:nh, :nw].reshape(nh // TILE, TILE, nw // TILE, TILE).sum((0, 2))
    return out


def _box(x: np.ndarray, k: int) -> np.ndarray:
    c = np.cumsum(np.cumsum(np.pad(x, k // 2 + 1, mode="edge"), 0), 1)
    n = k
    s = c[n:, n:] - c[:-n, n:] - c[n:, :-n] + c[:-n, :-n]
    h, w = x.shape
    return (s / (n * n))[:h, :w]


@dataclass
class Detection:
    """What :func:`detect` found."""

    found: bool
    confidence: float          # z-score of the sync-and-tag correlation peak
    model_id: int | None       # the payload's model id when the tag decoded
    tag_ok: bool
    scale: float | None
    bit_margin: float          # smallest |bit correlation| over the bits' noise (1: barely, >3: clear)


def _peak_z(corr: np.ndarray) -> tuple[float, tuple[int, int]]:
    """The correlation peak's z-score and position: the surface minus its mean and minus the
    template's side lobes scaled to the peak, then the peak over the spread of what is left outside
    its own lobe (EXCLUDE)."""
    idx = np.unravel_index(int(np.argmax(corr)), corr.shape)
    c = corr - corr.mean()
    peak = float(c[idx])
    rest = c - peak * np.roll(_LOBES, idx, axis=(0, 1))
    dy = (np.arange(TILE) - idx[0] + TILE // 2) % TILE - TILE // 2
    dx = (np.arange(TILE) - idx[1] + TILE // 2) % TILE - TILE // 2
    lobe = (np.abs(dy)[:, None] <= EXCLUDE) & (np.abs(dx)[None] <= EXCLUDE)
    rest = rest[~lobe]
    return (peak - float(rest.mean())) / (float(rest.std()) + 1e-12), (int(idx[0]), int(idx[1]))


def _read_bits(t: np.ndarray, dy: int, dx: int) -> tuple[int, float]:
    """The 16-bit value read from a folded tile aligned at (dy, dx), and the smallest bit's margin
    over the bits' noise (the same decoder at a wrong alignment)."""
    coef = _DECODE @ np.roll(t, (-dy, -dx), axis=(0, 1)).ravel()
    off = _DECODE @ np.roll(t, (-dy + TILE // 2, -dx + 11), axis=(0, 1)).ravel()
    noise = float(np.std(off[1:])) + 1e-12
    value = 0
    for b in coef[1:] > 0:
        value = (value << 1) | int(b)
    return value, float(np.min(np.abs(coef[1:])) / noise)


def detect_folded(folded: dict[float, np.ndarray]) -> Detection:
    """Decide on folded tiles (one frame's, or many frames' summed)."""
    best = None
    for s, t in folded.items():
        t = t - t.mean()
        z, idx = _peak_z(np.real(np.fft.ifft2(np.fft.fft2(t) * _KNOWN_F)))
        if best is None or z > best[0]:
            best = (z, s, idx, t)
    if best is None:
        return Detection(False, 0.0, None, False, None, 0.0)
    z, s, (dy, dx), t = best
    value, margin = _read_bits(t, dy, dx)
    tag_ok = (value >> ID_BITS) == TAG
    found = z >= FOUND_Z
    return Detection(found, z, value & ((1 << ID_BITS) - 1) if found and tag_ok else None, tag_ok, s, margin)


def detect(frames) -> Detection:
    """Look for the mark in one RGB frame or a sequence of them (folded together)."""
    if isinstance(frames, np.ndarray) and frames.ndim in (2, 3) and (frames.ndim == 2 or frames.shape[-1] == 3):
        frames = [frames]
    total: dict[float, np.ndarray] = {}
    for f in frames:
        for s, t in fold(f).items():
            total[s] = total.get(s, 0) + t
    return detect_folded(total)
