"""One Euro filter (Casiez, Roussel and Vogel, CHI 2012), vectorised over arrays of points.

A low-pass filter whose cutoff rises with speed: still points are smoothed hard (less jitter),
fast motion passes with little lag. Each array element is filtered independently.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

__all__ = ["OneEuroConfig", "OneEuroFilter"]


@dataclass(frozen=True)
class OneEuroConfig:
    """One Euro filter parameters.

    Attributes:
        min_cutoff: cutoff frequency (Hz) at rest; lower: smoother and laggier when still.
        beta: how fast the cutoff rises with speed (cutoff = min_cutoff + beta * |speed|, speed
            in input units per second); higher: less lag in fast motion.
        d_cutoff: cutoff frequency (Hz) of the speed estimate.
    """

    min_cutoff: float = 1.5
    beta: float = 5.0
    d_cutoff: float = 1.0

    def validate(self) -> "OneEuroConfig":
        """Raise :class:`InputError` unless all values are finite and in range; return self."""
        for name in ("min_cutoff", "d_cutoff"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise InputError(f"OneEuroConfig.{name} must be > 0, got {v!r}")
        if not (math.isfinite(self.beta) and self.beta >= 0):
            raise InputError(f"OneEuroConfig.beta must be >= 0, got {self.beta!r}")
        return self


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Stateful One Euro filter over arrays of any fixed shape.

    Call it with successive samples and their times (seconds); the first sample passes unchanged.

    Example::

        f = OneEuroFilter(OneEuroConfig(min_cutoff=1.0, beta=2.0))
        smoothed = [f(points, t=i / fps) for i, points in enumerate(track)]
    """

    def __init__(self, config: OneEuroConfig | None = None) -> None:
        self.config = (config or OneEuroConfig()).validate()
        self.reset()

    def reset(self) -> None:
        """Forget the history: the next sample passes unchanged."""
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        """Filter one sample ``x`` taken at time ``t`` (seconds, increasing). Returns float64."""
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._t is None:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), float(t)
            return x.copy()
        if x.shape != self._x.shape:
            raise InputError(f"sample shape changed from {self._x.shape} to {x.shape}")
        dt = float(t) - self._t
        if dt <= 0:
            raise InputError(f"sample times must increase (got {t} after {self._t})")
        cfg = self.config
        a_d = _alpha(cfg.d_cutoff, dt)
        dx = a_d * (x - self._x) / dt + (1 - a_d) * self._dx
        a = _alpha(cfg.min_cutoff + cfg.beta * np.abs(dx), dt)
        self._x = a * x + (1 - a) * self._x
        self._dx, self._t = dx, float(t)
        return self._x.copy()
