"""Batches of the coming steps built in worker threads while the current step trains.

A step's batch depends only on (seed, step, rank) (:meth:`EpisodeDataset.batch`), so building it
early changes nothing but the time the training loop waits for JPEG decoding; on a GPU that wait
would otherwise dominate a ``lite`` step. PIL decodes with the GIL released, so threads suffice.
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterable, Iterator


class BatchPrefetcher:
    """Iterate ``(step, make(step))`` over ``steps``, ``workers`` batches in flight (0: inline).

    Use as a context manager so that an interrupted run stops its workers.
    """

    def __init__(self, make: Callable[[int], dict], steps: Iterable[int], workers: int) -> None:
        if workers < 0:
            raise ValueError("workers must be >= 0")
        self._make = make
        self._steps = iter(steps)
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="batches") if workers else None
        self._depth = 2 * workers
        self._pending: deque[tuple[int, Future]] = deque()

    def _submit_next(self) -> None:
        step = next(self._steps, None)
        if step is not None:
            self._pending.append((step, self._pool.submit(self._make, step)))

    def __iter__(self) -> Iterator[tuple[int, dict]]:
        if self._pool is None:
            for step in self._steps:
                yield step, self._make(step)
            return
        while len(self._pending) < self._depth:
            before = len(self._pending)
            self._submit_next()
            if len(self._pending) == before:
                break
        while self._pending:
            step, future = self._pending.popleft()
            self._submit_next()
            yield step, future.result()

    def __enter__(self) -> "BatchPrefetcher":
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
