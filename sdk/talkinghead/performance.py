"""A talking performance generated in code: speech-like mouth motion, blinks, small head turns.

Used by `talkinghead demo` so a fresh install can render a video with nothing from outside the
package. Works on crop-normalised landmarks of any face (the avatar's own shape).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .controls import BROWS as _BROWS
from .controls import CHIN as _CHIN
from .controls import LOWER_LIP as _LOWER_LIP
from .controls import MOUTH_CORNERS as _MOUTH_CORNERS
from .controls import UPPER_LID_TO_LOWER as _UPPER_LID
from .controls import rotate_head


@dataclass
class PerformanceConfig:
    """Amplitudes are in units of the face's size (its landmark box side); rates in Hz."""

    syllable_rate: float = 4.0
    mouth_open: float = 0.16
    blink_interval: tuple[float, float] = (2.0, 4.5)
    blink_duration: float = 0.18
    yaw_degrees: float = 12.0
    roll_degrees: float = 4.0
    nod: float = 0.03
    seed: int = 0


def _phrase_envelope(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """1 while 'speaking', 0 in pauses, with soft edges: phrases of 1.2–3 s, pauses 0.3–0.8 s."""
    env = np.zeros_like(t)
    start = 0.3
    while start < t[-1] + 1:
        length = rng.uniform(1.2, 3.0)
        rise = np.clip((t - start) / 0.15, 0, 1) * np.clip((start + length - t) / 0.15, 0, 1)
        env = np.maximum(env, rise)
        start += length + rng.uniform(0.3, 0.8)
    return env


def generate_performance(base: np.ndarray, seconds: float, fps: float,
                         config: PerformanceConfig | None = None) -> np.ndarray:
    """[T, 68, 2] crop-normalised landmarks: ``base`` (the avatar's face) talking."""
    cfg = config or PerformanceConfig()
    rng = np.random.default_rng(cfg.seed)
    n = max(1, int(round(seconds * fps)))
    t = np.arange(n) / fps
    size = float(np.max(base.max(0) - base.min(0)))
    centre = base.mean(axis=0)

    # Speech: syllables with jittered rate inside phrases.
    phase = np.cumsum(2 * np.pi * cfg.syllable_rate * (1 + 0.25 * np.sin(2 * np.pi * 0.7 * t)) / fps)
    syllable = 0.5 - 0.5 * np.cos(phase + 0.6 * np.sin(1.3 * phase))
    loudness = rng.uniform(0.5, 1.0, size=int(phase[-1] // (2 * np.pi)) + 2)[(phase // (2 * np.pi)).astype(int)]
    openness = _phrase_envelope(t, rng) * syllable * loudness
    # Blinks.
    blink = np.zeros(n)
    when = rng.uniform(*cfg.blink_interval) / 2
    while when < seconds:
        blink = np.maximum(blink, np.clip(1 - np.abs(t - when) / (cfg.blink_duration / 2), 0, 1))
        when += rng.uniform(*cfg.blink_interval)
    # Head: slow yaw, roll and nod.
    yaw = np.deg2rad(cfg.yaw_degrees) * np.sin(2 * np.pi * 0.17 * t + rng.uniform(0, 6))
    roll = np.deg2rad(cfg.roll_degrees) * np.sin(2 * np.pi * 0.11 * t + rng.uniform(0, 6))
    nod = cfg.nod * size * np.sin(2 * np.pi * 0.23 * t + rng.uniform(0, 6))

    out = np.repeat(base[None].astype(np.float32), n, axis=0)
    drop = (cfg.mouth_open * size * openness)[:, None]
    out[:, _LOWER_LIP, 1] += drop
    out[:, _CHIN, 1] += 0.6 * drop
    out[:, _MOUTH_CORNERS, 0] -= 0.15 * drop * np.sign(out[:, _MOUTH_CORNERS, 0] - centre[0])
    out[:, _BROWS, 1] -= (0.02 * size * openness)[:, None]
    for upper, lower in _UPPER_LID.items():
        out[:, upper, 1] += blink * 0.9 * (base[lower, 1] - base[upper, 1])
    # Out-of-plane yaw (x shifts with depth), then in-plane roll about the face centre, then nod.
    out = rotate_head(out, yaw, 0.0, roll, centre, size)
    out[..., 1] += nod[:, None]
    return out.astype(np.float32)
