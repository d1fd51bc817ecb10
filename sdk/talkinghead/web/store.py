"""Avatars and render jobs of the web server: each in its own temporary folder, named by an
unguessable id, removed on delete or after ``Limits.ttl_seconds``; a bounded job queue.

No string from a client becomes a path: files are saved under names the server makes
(``shot0.jpeg``, ``driving.mp4``, ``result.mp4``) inside folders named by server-made ids, and an id
from a request is only ever a dictionary key.
"""
from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from ..avatar import Avatar
from ..errors import InputError, TalkingHeadError
from ..limits import MAX_SHOTS


@dataclass(frozen=True)
class Limits:
    """Every bound of the server (each refusal names the one it hit)."""

    max_file_bytes: int = 25 * 2**20      # one uploaded file
    max_files: int = MAX_SHOTS             # photos per avatar (the SDK's shot limit)
    max_image_pixels: int = 40_000_000     # width x height of one photo
    max_clip_seconds: float = 60.0         # driving clip length
    max_clip_pixels: int = 3840 * 2160     # driving clip frame size
    max_demo_seconds: float = 30.0
    queue_size: int = 4                    # jobs waiting beyond those rendering
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)  # one render per core
    ttl_seconds: float = 1800.0            # avatars and jobs expire after this long
    max_avatars: int = 64
    max_live_frame_bytes: int = 2 * 2**20  # one JPEG frame over the live WebSocket
    max_live_pixels: int = 1920 * 1080


class LimitError(InputError):
    """A request over one of the server's limits (HTTP 413)."""


class QueueFullError(TalkingHeadError):
    """The job queue is full (HTTP 503)."""


class NotFound(TalkingHeadError):
    """No avatar or job with that id (HTTP 404)."""


def new_id() -> str:
    return secrets.token_urlsafe(18)  # 144 bits


@dataclass
class AvatarEntry:
    id: str
    avatar: Avatar
    folder: Path
    preview_png: bytes
    faces: list[list[float]]  # boxes (x0, y0, x1, y1) of the faces found in the first photo
    face: int
    created: float = field(default_factory=time.monotonic)


JobState = Literal["queued", "running", "done", "failed"]


@dataclass
class Job:
    id: str
    avatar_id: str
    folder: Path
    state: JobState = "queued"
    frames: int = 0
    total: int = 0
    error: str | None = None
    created: float = field(default_factory=time.monotonic)
    cancelled: bool = False

    @property
    def result(self) -> Path:
        return self.folder / "result.mp4"

    def view(self) -> dict:
        return {"id": self.id, "avatar": self.avatar_id, "state": self.state, "frames": self.frames,
                "total": self.total, "progress": (self.frames / self.total) if self.total else 0.0,
                "error": self.error}


class Store:
    """The server's state. Thread-safe; renders run on ``limits.workers`` threads."""

    def __init__(self, model, limits: Limits | None = None, root: Path | None = None) -> None:
        self.model = model
        self.limits = limits or Limits()
        self.root = Path(tempfile.mkdtemp(prefix="talkinghead-serve-", dir=root))
        self.avatars: dict[str, AvatarEntry] = {}
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=self.limits.workers, thread_name_prefix="talkinghead-job")
        self._active = 0  # queued + running

    # -- folders ----------------------------------------------------------------------------------

    def folder(self, kind: str) -> tuple[str, Path]:
        ident = new_id()
        path = self.root / f"{kind}-{ident}"
        path.mkdir(mode=0o700)
        return ident, path

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        shutil.rmtree(self.root, ignore_errors=True)

    # -- avatars ----------------------------------------------------------------------------------

    def add_avatar(self, entry: AvatarEntry) -> None:
        with self._lock:
            if len(self.avatars) >= self.limits.max_avatars:
                shutil.rmtree(entry.folder, ignore_errors=True)
                raise QueueFullError(f"the server holds {self.limits.max_avatars} avatars already; delete one or "
                                     "wait for them to expire")
            self.avatars[entry.id] = entry

    def _lookup(self, table: dict, ident: str, what: str, remove: bool = False):
        """``table[ident]`` (taken out when ``remove``), or NotFound naming the id."""
        with self._lock:
            item = table.pop(ident, None) if remove else table.get(ident)
        if item is None:
            raise NotFound(f"no {what} {ident!r} (unknown, deleted or expired)")
        return item

    def avatar(self, ident: str) -> AvatarEntry:
        return self._lookup(self.avatars, ident, "avatar")

    def delete_avatar(self, ident: str) -> None:
        shutil.rmtree(self._lookup(self.avatars, ident, "avatar", remove=True).folder, ignore_errors=True)

    # -- jobs -------------------------------------------------------------------------------------

    def submit(self, job: Job, render) -> Job:
        """Queue ``render(job)`` unless the queue is full (then QueueFullError and the job's folder
        is removed)."""
        with self._lock:
            if self._active >= self.limits.workers + self.limits.queue_size:
                shutil.rmtree(job.folder, ignore_errors=True)
                raise QueueFullError(f"the render queue is full ({self._active} jobs rendering or waiting); "
                                     "try again in a moment")
            self._active += 1
            self.jobs[job.id] = job
        self._pool.submit(self._run, job, render)
        return job

    def _run(self, job: Job, render) -> None:
        try:
            if job.cancelled:
                return
            job.state = "running"
            render(job)
            job.state = "done" if not job.cancelled else job.state
        except TalkingHeadError as exc:
            job.state, job.error = "failed", self._public(str(exc), job)
        except Exception as exc:  # noqa: BLE001 - reported to the client, the server goes on
            job.state, job.error = "failed", self._public(f"internal error: {type(exc).__name__}: {exc}", job)
        finally:
            with self._lock:
                self._active -= 1
            if job.cancelled:
                shutil.rmtree(job.folder, ignore_errors=True)

    def _public(self, message: str, job: Job) -> str:
        """A message without the server's paths (the job's files are named as the client knows them)."""
        return message.replace(str(job.folder / "driving."), "the driving clip.").replace(str(self.root), "<server>")

    def job(self, ident: str) -> Job:
        return self._lookup(self.jobs, ident, "job")

    def delete_job(self, ident: str) -> None:
        job = self._lookup(self.jobs, ident, "job", remove=True)
        job.cancelled = True
        if job.state in ("done", "failed"):
            shutil.rmtree(job.folder, ignore_errors=True)

    # -- expiry -----------------------------------------------------------------------------------

    def expire(self, now: float | None = None) -> int:
        """Remove avatars and finished jobs older than the TTL; returns how many went."""
        now = time.monotonic() if now is None else now
        ttl = self.limits.ttl_seconds
        with self._lock:
            old_avatars = [k for k, e in self.avatars.items() if now - e.created > ttl]
            old_jobs = [k for k, j in self.jobs.items() if now - j.created > ttl and j.state in ("done", "failed")]
        for k in old_avatars:
            try:
                self.delete_avatar(k)
            except NotFound:
                pass
        for k in old_jobs:
            try:
                self.delete_job(k)
            except NotFound:
                pass
        return len(old_avatars) + len(old_jobs)


def preview_png(crop: np.ndarray, landmarks_norm: np.ndarray) -> bytes:
    """The avatar's face crop with its landmarks drawn (green dots), as PNG bytes."""
    from ..media import encode_image

    img = crop.copy()
    r = img.shape[0]
    pts = np.round((landmarks_norm + 1) * r / 2 - 0.5).astype(int)
    for x, y in pts:
        img[max(0, y - 1):y + 2, max(0, x - 1):x + 2] = (40, 220, 60)
    return encode_image(img, "png")
