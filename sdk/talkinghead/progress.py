"""A small progress line on stderr (frames, frames per second), with no dependency."""
from __future__ import annotations

import sys
import time


class Progress:
    """``with Progress("rendering", total) as p: p.update()`` — prints at most 4 times a second."""

    def __init__(self, label: str, total: int | None = None, enabled: bool = True) -> None:
        self.label, self.total, self.enabled = label, total, enabled and sys.stderr is not None
        self.count, self.t0, self._last = 0, time.perf_counter(), 0.0

    @property
    def fps(self) -> float:
        return self.count / max(time.perf_counter() - self.t0, 1e-9)

    def update(self, n: int = 1) -> None:
        self.count += n
        now = time.perf_counter()
        if self.enabled and now - self._last > 0.25:
            self._last = now
            self._print()

    def _print(self, end: str = "\r") -> None:
        total = f"/{self.total}" if self.total else ""
        pct = f" {100 * self.count / self.total:5.1f}%" if self.total else ""
        sys.stderr.write(f"{self.label}: {self.count}{total} frames{pct}  {self.fps:6.1f} fps{end}")
        sys.stderr.flush()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self._print(end="\n")
