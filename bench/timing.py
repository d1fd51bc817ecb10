"""Round-robin timing: every candidate runs the same frames in turn, round after round.

On a shared machine a slow spell then hits all candidates alike, so their ratios hold even when
the absolute times drift.
"""
from __future__ import annotations

import statistics
import sys
import time
from typing import Callable, Hashable, Mapping, Sequence, TypeVar

Feed = Mapping[str, object]
Name = TypeVar("Name", bound=Hashable)


def round_robin(runs: Mapping[Name, Callable[[Feed], object]], feeds: Sequence[Feed], rounds: int,
                warmup: int = 3) -> dict[Name, float]:
    """Median ms per call of each ``runs[name](feed)`` over ``rounds`` passes over ``feeds``."""
    times: dict[Name, list[float]] = {name: [] for name in runs}
    for run in runs.values():
        for feed in feeds[:warmup]:
            run(feed)
    for i in range(rounds):
        print(f"  round {i + 1}/{rounds}", file=sys.stderr)
        for name, run in runs.items():
            for feed in feeds:
                t = time.perf_counter()
                run(feed)
                times[name].append((time.perf_counter() - t) * 1000)
    return {name: statistics.median(ts) for name, ts in times.items()}
