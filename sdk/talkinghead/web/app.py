"""The HTTP API and page of `talkinghead serve` (FastAPI). OpenAPI docs at /docs.

Routes:
- ``POST /api/avatars`` (multipart ``files``: 1-32 photos or one painting; ``face``): the avatar's
  id, the faces found in the first photo and a preview URL (the crop with its landmarks).
- ``GET /api/avatars/{id}/preview.png``, ``DELETE /api/avatars/{id}``.
- ``POST /api/jobs`` (multipart ``avatar``, and ``driving`` a clip or ``demo_seconds`` for the
  performance generated in code): a job id; 503 when the queue is full.
- ``GET /api/jobs/{id}`` (state and progress), ``GET /api/jobs/{id}/events`` (server-sent events
  until it ends), ``GET /api/jobs/{id}/result`` (the mp4), ``DELETE /api/jobs/{id}``.
- ``WS /api/live/{avatar id}``: JPEG frames in (the browser's webcam), rendered JPEG frames out,
  through the SDK's stream (talkinghead.stream): newest frame wins, and a JSON status line after
  each rendered frame.

Errors are JSON ``{"detail": message}`` with 400 (bad input), 404 (unknown id), 409 (not ready),
413 (over a limit), 415 (wrong file type), 503 (queue full).
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import time
from importlib import resources
from pathlib import Path

from ..errors import ImageReadError, InputError, MissingDependencyError, NoFaceError, TalkingHeadError, VideoError
from ..filetypes import IMAGE_TYPES, VIDEO_TYPES, sniff
from .store import AvatarEntry, Job, Limits, LimitError, NotFound, QueueFullError, Store, preview_png

try:
    from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile, WebSocket, WebSocketDisconnect
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
    from fastapi.staticfiles import StaticFiles
except ImportError as exc:  # pragma: no cover - the extra is missing
    raise MissingDependencyError("talkinghead serve needs the web extra: pip install 'talkinghead[web]'") from exc

CHUNK = 1 << 20


async def save_upload(upload: UploadFile, folder: Path, stem: str, allowed: tuple[str, ...], limit: int) -> Path:
    """Stream an upload into ``folder/stem.<sniffed type>``, refusing it past ``limit`` bytes or when
    its bytes are not one of ``allowed`` (its name and content type are ignored)."""
    head = await upload.read(64)
    kind = sniff(head)
    if kind not in allowed:
        raise HTTPException(415, f"{upload.filename or 'the upload'}: not a supported file "
                                 f"(expected {', '.join(allowed)}; the type is read from the file's bytes)")
    path = folder / f"{stem}.{kind}"
    size = len(head)
    with open(path, "wb") as f:
        f.write(head)
        while chunk := await upload.read(CHUNK):
            size += len(chunk)
            if size > limit:
                f.close()
                path.unlink(missing_ok=True)
                raise LimitError(f"{upload.filename or 'the upload'} is over the {limit // 2**20} MiB limit per file")
            f.write(chunk)
    return path


def create_app(model=None, limits: Limits | None = None, root: Path | None = None) -> FastAPI:
    """The app around one loaded model (default: the bundled model on the CPU)."""
    import talkinghead

    limits = limits or Limits()
    model = model or talkinghead.load_model(providers="auto")
    store = Store(model, limits, root)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        yield
        store.close()  # every avatar's and job's folder goes with the server

    app = FastAPI(title="talkinghead", version=talkinghead.__version__, lifespan=lifespan,
                  description="Few-shot talking heads: upload photos, drive them with a clip or a webcam.")
    app.state.store = store

    @app.exception_handler(TalkingHeadError)
    async def _errors(request: Request, exc: TalkingHeadError):  # noqa: ANN202
        code = {NotFound: 404, QueueFullError: 503, LimitError: 413}.get(type(exc), 400)
        return JSONResponse({"detail": str(exc)}, status_code=code)

    @app.middleware("http")
    async def _expire(request: Request, call_next):  # noqa: ANN202
        store.expire()
        return await call_next(request)

    static = resources.files("talkinghead.web") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> str:
        return (static / "index.html").read_text()

    @app.get("/api/limits")
    def get_limits() -> dict:
        return {k: getattr(limits, k) for k in limits.__dataclass_fields__}

    @app.post("/api/avatars")
    async def create_avatar(files: list[UploadFile] = File(...), face: int = Form(0)) -> dict:
        if not 1 <= len(files) <= limits.max_files:
            raise LimitError(f"{len(files)} files; an avatar takes 1 to {limits.max_files} photos")
        if not 0 <= face < 16:
            raise InputError(f"face must be in 0..15, got {face}")
        ident, folder = store.folder("avatar")
        with _removed_on_failure(folder):
            paths = [await save_upload(f, folder, f"shot{i}", IMAGE_TYPES, limits.max_file_bytes) for i, f in enumerate(files)]
            entry = await asyncio.to_thread(_make_avatar, model, ident, folder, paths, face, limits)
        store.add_avatar(entry)
        return {"id": entry.id, "shots": entry.avatar.shots, "faces": entry.faces, "face": entry.face,
                "preview": f"/api/avatars/{entry.id}/preview.png"}

    @app.get("/api/avatars/{ident}/preview.png")
    def avatar_preview(ident: str) -> Response:
        return Response(store.avatar(ident).preview_png, media_type="image/png")

    @app.delete("/api/avatars/{ident}", status_code=204)
    def delete_avatar(ident: str) -> Response:
        store.delete_avatar(ident)
        return Response(status_code=204)

    @app.post("/api/jobs", status_code=202)
    async def create_job(avatar: str = Form(...), driving: UploadFile | None = File(None),
                         demo_seconds: float = Form(4.0)) -> dict:
        entry = store.avatar(avatar)
        ident, folder = store.folder("job")
        with _removed_on_failure(folder):
            if driving is not None and driving.filename is not None:
                clip = await save_upload(driving, folder, "driving", VIDEO_TYPES, limits.max_file_bytes)
                await asyncio.to_thread(_check_clip, clip, limits)
            else:
                clip = None
                if not 0.5 <= demo_seconds <= limits.max_demo_seconds:
                    raise LimitError(f"demo_seconds must be in 0.5..{limits.max_demo_seconds:g}, got {demo_seconds:g}")
        job = Job(ident, entry.id, folder)
        store.submit(job, lambda j: _render(model, entry, j, clip, demo_seconds))
        return {"id": job.id, "status": f"/api/jobs/{job.id}", "events": f"/api/jobs/{job.id}/events",
                "result": f"/api/jobs/{job.id}/result"}

    @app.get("/api/jobs/{ident}")
    def job_status(ident: str) -> dict:
        return store.job(ident).view()

    @app.get("/api/jobs/{ident}/events")
    async def job_events(ident: str) -> StreamingResponse:
        job = store.job(ident)

        async def events():
            last = None
            while True:
                view = job.view()
                if view != last:
                    yield f"data: {json.dumps(view)}\n\n"
                    last = view
                if view["state"] in ("done", "failed") or job.cancelled:
                    return
                await asyncio.sleep(0.2)

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.get("/api/jobs/{ident}/result")
    def job_result(ident: str) -> FileResponse:
        job = store.job(ident)
        if job.state != "done":
            raise HTTPException(409, f"job {ident} is {job.state}" + (f": {job.error}" if job.error else ""))
        return FileResponse(job.result, media_type="video/mp4", filename="talkinghead.mp4")

    @app.delete("/api/jobs/{ident}", status_code=204)
    def delete_job(ident: str) -> Response:
        store.delete_job(ident)
        return Response(status_code=204)

    @app.websocket("/api/live/{ident}")
    async def live(ws: WebSocket, ident: str) -> None:
        await ws.accept()
        try:
            entry = store.avatar(ident)
        except NotFound as exc:
            await ws.close(code=4404, reason=str(exc)[:120])
            return
        await _live_session(ws, model, entry, limits)

    return app


@contextlib.contextmanager
def _removed_on_failure(folder: Path):
    """A new item's folder goes again when making the item fails (the client keeps nothing half-made)."""
    try:
        yield
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _make_avatar(model, ident: str, folder: Path, paths: list[Path], face: int, limits: Limits) -> AvatarEntry:
    from ..crop import warp_to_crop
    from ..images import read_image
    from ..landmarks import default_detector
    from ..media import picture_size

    images = []
    for i, p in enumerate(paths):
        try:  # messages name the photo by its number: the server's paths are not the client's business
            w, h = picture_size(p)
            if w * h > limits.max_image_pixels:
                raise LimitError(f"photo {i + 1} is {w}x{h}: over the {limits.max_image_pixels / 1e6:g} megapixel limit")
            images.append(read_image(p))
        except ImageReadError:
            raise ImageReadError(f"photo {i + 1}: not a readable image (truncated, or not a picture)") from None
    faces = default_detector().detect(images[0])
    if not faces:
        raise NoFaceError("no face found in the first photo")
    if face >= len(faces):
        raise InputError(f"face {face} asked for, but the first photo has {len(faces)} face(s)")
    avatar = model.create_avatar(images, face_index=face)
    crop = warp_to_crop(images[0], avatar.crop, model.resolution)
    boxes = [[round(float(v), 1) for v in f.box] for f in faces]
    return AvatarEntry(ident, avatar, folder, preview_png(crop, avatar.landmarks), boxes, face)


def _check_clip(path: Path, limits: Limits) -> None:
    from ..video import probe

    try:
        info = probe(path)
    except TalkingHeadError:
        raise VideoError("the driving clip is not a readable video (truncated, or not a video)") from None
    if info.width * info.height > limits.max_clip_pixels:
        raise LimitError(f"the clip is {info.width}x{info.height}: over the limit of "
                         f"{limits.max_clip_pixels / 1e6:g} megapixels per frame")
    if info.duration > limits.max_clip_seconds:
        raise LimitError(f"the clip is {info.duration:.1f} s long: over the {limits.max_clip_seconds:g} s limit")


def _render(model, entry: AvatarEntry, job: Job, clip: Path | None, demo_seconds: float) -> None:
    from ..performance import generate_performance
    from ..video import VideoWriter, probe

    avatar = entry.avatar
    if clip is None:
        fps = 25.0
        track = generate_performance(avatar.landmarks, demo_seconds, fps)
        job.total = len(track)
        with VideoWriter(job.result, fps=fps) as writer:
            for start in range(0, len(track), 8):
                for frame in model.render(avatar, track[start:start + 8]):
                    if job.cancelled:
                        raise InputError("deleted while rendering")
                    writer.write(frame)
                    job.frames += 1
        return
    info = probe(clip)
    job.total = info.frame_count
    output = "paste" if avatar.can_paste else "crop"
    with VideoWriter(job.result, fps=info.fps or 25.0, audio_from=clip) as writer:
        for frame in model.animate(avatar, clip, output=output):
            if job.cancelled:
                raise InputError("deleted while rendering")
            writer.write(frame)
            job.frames += 1


async def _live_session(ws: "WebSocket", model, entry: AvatarEntry, limits: Limits) -> None:
    """JPEG frames in, rendered JPEG frames out, through a LiveStream (the newest frame wins)."""
    from ..media import decode_image, encode_image

    loop = asyncio.get_running_loop()
    outbox: asyncio.Queue = asyncio.Queue(maxsize=2)
    stream = model.stream(entry.avatar, output="crop")

    def on_frame(frame, t, latency_ms) -> None:  # worker thread
        data = encode_image(frame, "mjpeg")
        status = {"t": t, "latency_ms": latency_ms, **{k: getattr(stream.stats, k) for k in
                                                       ("pushed", "rendered", "dropped", "failed")}}

        def put() -> None:
            if outbox.full():  # the browser is slower than the renderer: keep the newest
                outbox.get_nowait()
            outbox.put_nowait((data, status))

        loop.call_soon_threadsafe(put)

    async def sender() -> None:
        while True:
            data, status = await outbox.get()
            await ws.send_bytes(data)
            await ws.send_text(json.dumps(status))

    # Off the event loop: the first render and the detector's loading (stream.live() then finds it warm).
    await loop.run_in_executor(None, stream.warm_up, True)
    start = time.monotonic()
    send_task = asyncio.create_task(sender())
    try:
        with stream.live(on_frame=on_frame) as live_stream:
            while True:
                data = await ws.receive_bytes()
                if len(data) > limits.max_live_frame_bytes:
                    await ws.send_text(json.dumps({"error": "frame over the size limit"}))
                    continue
                if sniff(data[:64]) != "jpeg":
                    await ws.send_text(json.dumps({"error": "frames must be JPEG images"}))
                    continue
                try:
                    frame = await asyncio.to_thread(decode_image, data, "live frame")
                except TalkingHeadError as exc:
                    await ws.send_text(json.dumps({"error": str(exc)}))
                    continue
                if frame.shape[0] * frame.shape[1] > limits.max_live_pixels:
                    await ws.send_text(json.dumps({"error": "frame over the pixel limit"}))
                    continue
                live_stream.submit(frame, timestamp=time.monotonic() - start)
    except WebSocketDisconnect:
        pass
    finally:
        send_task.cancel()
